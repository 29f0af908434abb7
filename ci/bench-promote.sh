#!/usr/bin/env bash
# Promotion benchmark: hoist against skopeo, on the same machine in the same run.
#
# Starts its own registries (docker-registry, distribution 2.8) on 127.0.0.1: one source, three
# destinations for hoist, three for skopeo, and one of each for the big-blob phase. Generates a
# seeded corpus in the source (crates/hoist-testkit/examples/bench-corpus: multi-arch OCI indexes,
# Docker manifest lists, single-platform images, shared base layers, cosign .sig tags), then
# promotes it to three destinations with each tool, cold (empty destinations) and warm (again, a
# no-op), validates the copies, and copies one image with a single huge layer with each tool.
# Prints wall time, requests (lines added to all registries' access logs) and peak RSS per run,
# and the ratios next to the targets. A script that prints figures, not a timed test.
#
# The fan-out phase (hoist only: skopeo has no blob mirrors; not with --wan) then promotes a second
# corpus with larger layers and the big image at once to three more registries and three blob
# mirrors (s3s-fs, fake-gcs-server, a directory), --jobs 8: each source blob is read once for all
# six. It prints the source reads and hoist's CPU-seconds per GiB written to destinations, and its
# peak RSS is the one the memory target bounds. Destinations of finished phases are deleted as the
# run goes, to keep the disk use down; the full run still needs about 20 GiB free.
#
# Usage: ci/bench-promote.sh [--quick] [--wan]
#   full:    40 images, ~1.2 GiB of unique blobs, a 2 GiB blob; fan-out corpus 6 images, ~720 MiB
#   --quick: 12 images, ~120 MiB, a 256 MiB blob; fan-out corpus 3 images, ~150 MiB
#   --wan:   every registry behind the test kit's fault proxy playing a wide-area link (BENCH_RTT_MS
#            round trip, default 40, half each way; BENCH_LINK_MB MB/s per connection and
#            direction, default 25), for hoist and skopeo alike; 16 images, ~240 MiB, a 512 MiB
#            blob unless --quick. Prints hoist's CPU-seconds per GiB written too.
# Environment: BENCH_JOBS (default 8) is the parallelism of both tools: `hoist promote --jobs N`,
# and N skopeo processes at once (xargs -P N over (image, destination) pairs; each pair copies
# the digest to its first tag, then once more per extra tag, as `skopeo copy` has no multi-tag
# form). BENCH_IMAGES, BENCH_TOTAL_MIB and BENCH_BIG_MIB override the corpus size.
# BENCH_FAN_IMAGES and BENCH_FAN_TOTAL_MIB size the fan-out corpus.
# Needs: /usr/bin/time (apt-get install time), skopeo, docker-registry, curl, python3; for the
# fan-out phase s3s-fs and fake-gcs-server (ci/install-mirror-servers.sh), else it is skipped.
#
# Targets: cold wall >= 3x faster than skopeo on the wide-area link, >= 1.5x on loopback; warm
# no-op at one request per (destination, tag); hoist's peak RSS <= 64 MiB (big blob; fan-out to
# 3 registries + 3 mirrors); <= 1 CPU-second per GiB written to destinations.
set -euo pipefail
cd "$(dirname "$0")/.."

quick=false
wan=false
for argument in "$@"; do
  case $argument in
    --quick) quick=true ;;
    --wan) wan=true ;;
    *) echo "usage: $0 [--quick] [--wan]" >&2; exit 2 ;;
  esac
done
if $quick; then defaults=(12 120 256 3 150); elif $wan; then defaults=(16 240 512 3 150); else defaults=(40 1200 2048 6 720); fi
rtt_ms=${BENCH_RTT_MS:-40}
link_mb=${BENCH_LINK_MB:-25}
images=${BENCH_IMAGES:-${defaults[0]}}
total_mib=${BENCH_TOTAL_MIB:-${defaults[1]}}
big_mib=${BENCH_BIG_MIB:-${defaults[2]}}
fan_images=${BENCH_FAN_IMAGES:-${defaults[3]}}
fan_total_mib=${BENCH_FAN_TOTAL_MIB:-${defaults[4]}}
jobs=${BENCH_JOBS:-8}

for tool in /usr/bin/time skopeo docker-registry curl python3; do
  command -v "$tool" >/dev/null || { echo "needs $tool (time: apt-get install time)" >&2; exit 2; }
done

work=$(mktemp -d -t hoist-bench-XXXXXX)
server_pids=()
cleanup() {
  for pid in "${server_pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${server_pids[@]}"; do wait "$pid" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

log() { echo "== $*" >&2; }

log "building hoist and the corpus generator (release)"
cargo build --release -p hoist-testkit --example bench-corpus >&2
have_hoist=true
cargo build --release -p hoist >&2 || have_hoist=false
target_dir=$(cargo metadata --format-version 1 --no-deps | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')
hoist=$target_dir/release/hoist
generator=$target_dir/release/examples/bench-corpus
if ! $have_hoist || ! "$hoist" promote --help >/dev/null 2>&1; then
  have_hoist=false
  log "hoist does not build or has no 'promote' command yet: only the skopeo half runs"
fi

# --- registries ---------------------------------------------------------------------------
roles=(source hoist1 hoist2 hoist3 skopeo1 skopeo2 skopeo3 hoistbig skopeobig fan1 fan2 fan3)
# All ports are picked while every socket is still open, so no two roles get the same one (and,
# with --wan, no two proxies).
read -r -a ports <<<"$(python3 -c '
import socket, sys
sockets = [socket.socket() for _ in range(int(sys.argv[1]))]
for s in sockets: s.bind(("127.0.0.1", 0))
print(" ".join(str(s.getsockname()[1]) for s in sockets))' "$(( ${#roles[@]} * 2 ))")"
declare -A host route pid
for index in "${!roles[@]}"; do
  role=${roles[$index]}
  host[$role]=127.0.0.1:${ports[$index]}
  mkdir -p "$work/$role/storage"
  cat >"$work/$role/config.yml" <<EOF
version: 0.1
storage:
  filesystem:
    rootdirectory: $work/$role/storage
http:
  addr: ${host[$role]}
  secret: hoist-bench-$role
log:
  level: info
  accesslog:
    disabled: false
EOF
  docker-registry serve "$work/$role/config.yml" >"$work/$role/log" 2>&1 &
  server_pids+=($!)
  pid[$role]=$!
done
for role in "${roles[@]}"; do
  for _ in $(seq 100); do
    curl -fso /dev/null "http://${host[$role]}/v2/" && continue 2
    sleep 0.1
  done
  echo "registry $role did not start; its log:" >&2
  cat "$work/$role/log" >&2
  exit 1
done
log "registries: $(for role in "${roles[@]}"; do printf '%s=%s ' "$role" "${host[$role]}"; done)"

# How the tools reach each registry: directly, or with --wan through a proxy playing the link.
for index in "${!roles[@]}"; do
  role=${roles[$index]}
  route[$role]=${host[$role]}
  if $wan; then
    route[$role]=127.0.0.1:${ports[$(( ${#roles[@]} + index ))]}
    "$generator" proxy --upstream "${host[$role]}" --listen "${route[$role]}" \
      --rtt-ms "$rtt_ms" --bandwidth-mb "$link_mb" >"$work/$role/proxy.log" 2>&1 &
    server_pids+=($!)
  fi
done
if $wan; then
  for role in "${roles[@]}"; do
    for _ in $(seq 100); do
      curl -fso /dev/null "http://${route[$role]}/v2/" && continue 2
      sleep 0.1
    done
    echo "the proxy of $role did not start; its log:" >&2
    cat "$work/$role/proxy.log" >&2
    exit 1
  done
  log "wide-area link: every registry behind a proxy, $rtt_ms ms RTT, $link_mb MB/s per connection"
fi

# Requests served so far by all registries: access-log lines (combined format), not the
# registry's own "response completed" lines. $1 = a method regex to count only some.
count_requests() {
  local methods=${1:-[A-Z]+}
  # The registry writes its log asynchronously; let the last lines land.
  sleep 0.5
  cat "$work"/*/log | grep -cE "\] \"($methods) [^ ]+ HTTP/[0-9.]+\" [0-9]{3} " || true
}

# --- blob mirrors (the fan-out phase) ------------------------------------------------------
# start_mirrors: s3s-fs and fake-gcs-server on 127.0.0.1 and a directory, described in
# $work/backends.yaml; false (with a note) when a server is not installed.
start_mirrors() {
  local s3s gcs ports
  s3s=$(command -v s3s-fs || true)
  if [ -z "$s3s" ] && [ -x "${CARGO_HOME:-$HOME/.cargo}/bin/s3s-fs" ]; then
    s3s=${CARGO_HOME:-$HOME/.cargo}/bin/s3s-fs
  fi
  gcs=$(command -v fake-gcs-server || find "${XDG_CACHE_HOME:-$HOME/.cache}/hoist-ci/gcs-venv" \
    -type f -name 'fake-gcs-server*' -perm -u+x 2>/dev/null | head -n1)
  if [ -z "$s3s" ] || [ -z "$gcs" ]; then
    log "s3s-fs or fake-gcs-server missing (ci/install-mirror-servers.sh): no fan-out phase"
    return 1
  fi
  read -r -a ports <<<"$(python3 -c '
import socket
sockets = [socket.socket() for _ in range(2)]
for s in sockets: s.bind(("127.0.0.1", 0))
print(" ".join(str(s.getsockname()[1]) for s in sockets))')"
  mkdir -p "$work/s3/mirror" "$work/spool"
  "$s3s" --host 127.0.0.1 --port "${ports[0]}" --access-key benchkey --secret-key benchsecret \
    "$work/s3" >"$work/s3.log" 2>&1 &
  server_pids+=($!)
  # In memory: that is the emulator's RSS, not hoist's, and no disk.
  "$gcs" -scheme http -host 127.0.0.1 -port "${ports[1]}" -backend memory \
    -public-host "127.0.0.1:${ports[1]}" -external-url "http://127.0.0.1:${ports[1]}" \
    >"$work/gcs.log" 2>&1 &
  server_pids+=($!)
  for _ in $(seq 100); do
    if curl -so /dev/null "http://127.0.0.1:${ports[0]}/" \
      && curl -fso /dev/null "http://127.0.0.1:${ports[1]}/storage/v1/b"; then
      break
    fi
    sleep 0.1
  done
  curl -fso /dev/null -X POST -H 'content-type: application/json' -d '{"name":"mirror"}' \
    "http://127.0.0.1:${ports[1]}/storage/v1/b?project=bench"
  printf '%s\n' "backends:" \
    "- name: s3" "  url: s3://mirror" "  region: us-east-1" \
    "  endpoint: http://127.0.0.1:${ports[0]}" "  pathStyle: true" \
    "- name: gcs" "  url: gs://mirror" "  endpoint: http://127.0.0.1:${ports[1]}" \
    "- name: file" "  url: file:$work/file-mirror" >"$work/backends.yaml"
  export AWS_ACCESS_KEY_ID=benchkey AWS_SECRET_ACCESS_KEY=benchsecret AWS_REGION=us-east-1
  export AWS_EC2_METADATA_DISABLED=true
  unset AWS_PROFILE
  log "mirrors: s3s-fs 127.0.0.1:${ports[0]}, fake-gcs-server 127.0.0.1:${ports[1]}, $work/file-mirror"
}

# check_mirrors REPORT: every mirror holds every blob, and nothing failed.
check_mirrors() {
  python3 -c '
import json, sys
mirrors = json.load(open(sys.argv[1]))["mirrors"]
for backend in mirrors["backends"]:
    if backend["failures"] or backend["to_write"] + backend["present"] != backend["blobs"]:
        sys.exit("mirror %s incomplete: %s" % (backend["name"], backend))
print("mirrors: %d complete, %d blobs each" % (len(mirrors["backends"]), mirrors["blobs"]), file=sys.stderr)' "$1"
}

# --- corpus -------------------------------------------------------------------------------
corpus=$work/corpus
log "generating $images images (~$total_mib MiB) in ${host[source]}/staging"
"$generator" generate --registry "${host[source]}" --repository-prefix staging \
  --images "$images" --total-mib "$total_mib" --out "$corpus" \
  --destination "${route[hoist1]}/prod" --destination "${route[hoist2]}/prod" \
  --destination "${route[hoist3]}/prod" 2>"$work/generate.err" | tee "$work/corpus.txt" >&2
log "pushing a $big_mib MiB single-layer image to ${host[source]}/staging/big"
"$generator" big --registry "${host[source]}" --repository-prefix staging --name big \
  --size-mib "$big_mib" --out "$corpus" --destination "${route[hoistbig]}/prod" | tee -a "$work/corpus.txt" >&2
# The corpus was pushed directly; the tools read the source the way they reach it.
if $wan; then
  sed -i "s|${host[source]}/|${route[source]}/|g" "$corpus/promoter-manifest.yaml" "$corpus/big-manifest.yaml"
fi

# --- measuring ----------------------------------------------------------------------------
results=$work/results
: >"$results"
# record TOOL PHASE WALL_S REQUESTS WRITES RSS_KIB CPU_S [WRITTEN_BYTES SOURCE_BYTES]
record() { echo "$*" >>"$results"; }

insecure=()
for role in "${roles[@]}"; do insecure+=(--insecure-registry "${route[$role]}"); done

# run_hoist PHASE MANIFEST... [-- EXTRA ARGUMENTS]
run_hoist() {
  local phase=$1 before writes_before status=0 manifests=() extra=()
  shift
  while [ $# -gt 0 ] && [ "$1" != -- ]; do manifests+=(--manifest "$1"); shift; done
  if [ $# -gt 0 ]; then shift; extra=("$@"); fi
  before=$(count_requests); writes_before=$(count_requests 'PUT|POST|PATCH|DELETE')
  log "hoist $phase"
  /usr/bin/time -f '%e %M %U %S' -o "$work/time.hoist.$phase" \
    "$hoist" promote "${manifests[@]}" --confirm --jobs "$jobs" "${insecure[@]}" --quiet \
    --output json "${extra[@]}" >"$work/hoist.$phase.out" 2>"$work/hoist.$phase.err" || status=$?
  if [ "$status" -ne 0 ]; then
    echo "hoist promote ($phase) exited $status:" >&2
    tail -n 30 "$work/hoist.$phase.err" >&2
    exit 1
  fi
  read -r wall rss user system <"$work/time.hoist.$phase"
  # Bytes written to destinations (registries and mirrors), and read from the source.
  read -r written fetched < <(python3 -c '
import json, sys
report = json.load(open(sys.argv[1]))
execution = report.get("execution") or {}
mirrors = (report.get("mirrors") or {}).get("backends", [])
written = execution.get("bytes_uploaded", 0) + sum(m["bytes_to_write"] for m in mirrors)
print(written, (execution.get("source_reads") or {}).get("bytes_fetched", 0))' "$work/hoist.$phase.out")
  record hoist "$phase" "$wall" $(( $(count_requests) - before )) \
    $(( $(count_requests 'PUT|POST|PATCH|DELETE') - writes_before )) "$rss" \
    "$(awk -v u="$user" -v s="$system" 'BEGIN { printf "%.2f", u + s }')" "$written" "$fetched"
}

# One (image, destination) pair of the skopeo batch: copy the digest to each tag in turn.
cat >"$work/skopeo-pair.sh" <<'EOF'
#!/usr/bin/env bash
# skopeo-pair.sh SOURCE_REPOSITORY DESTINATION_REPOSITORY DIGEST TAG...
set -euo pipefail
source=$1 destination=$2 digest=$3
shift 3
for tag in "$@"; do
  /usr/bin/time -a -o "$SKOPEO_TIMES" -f '%e %M %U %S' \
    skopeo --policy "$SKOPEO_POLICY" copy --all --preserve-digests --quiet \
      --src-tls-verify=false --dest-tls-verify=false \
      "docker://$source@$digest" "docker://$destination:$tag" >/dev/null
done
EOF
chmod +x "$work/skopeo-pair.sh"
echo '{"default":[{"type":"insecureAcceptAnything"}]}' >"$work/policy.json"

# run_skopeo PHASE LIST DESTINATION_ROLE...
run_skopeo() {
  local phase=$1 list=$2 before writes_before start end status=0
  shift 2
  : >"$work/skopeo.$phase.pairs"
  while read -r name digest tags; do
    for role in "$@"; do
      echo "${route[source]}/staging/$name ${route[$role]}/prod/$name $digest $tags" >>"$work/skopeo.$phase.pairs"
    done
  done <"$list"
  before=$(count_requests); writes_before=$(count_requests 'PUT|POST|PATCH|DELETE')
  log "skopeo $phase ($(wc -l <"$work/skopeo.$phase.pairs") image/destination pairs, $jobs at once)"
  : >"$work/time.skopeo.$phase"
  start=$(date +%s.%N)
  SKOPEO_TIMES=$work/time.skopeo.$phase SKOPEO_POLICY=$work/policy.json \
    xargs -P "$jobs" -L 1 "$work/skopeo-pair.sh" <"$work/skopeo.$phase.pairs" \
    2>"$work/skopeo.$phase.err" || status=$?
  end=$(date +%s.%N)
  if [ "$status" -ne 0 ]; then
    echo "skopeo ($phase) failed:" >&2
    tail -n 30 "$work/skopeo.$phase.err" >&2
    exit 1
  fi
  record skopeo "$phase" "$(awk -v s="$start" -v e="$end" 'BEGIN { printf "%.2f", e - s }')" \
    $(( $(count_requests) - before )) \
    $(( $(count_requests 'PUT|POST|PATCH|DELETE') - writes_before )) \
    "$(awk 'max < $2 { max = $2 } END { print max + 0 }' "$work/time.skopeo.$phase")" \
    "$(awk '{ cpu += $3 + $4 } END { printf "%.2f", cpu }' "$work/time.skopeo.$phase")"
}

# validate LIST SAMPLE DESTINATION_ROLE...
validate() {
  local list=$1 sample=$2
  shift 2
  for role in "$@"; do
    "$generator" validate --source "${host[source]}" --destination "${host[$role]}" \
      --list "$list" ${sample:+--sample "$sample"} >&2
  done
}

# drop ROLE...: stops those registries and deletes what they hold (the disk is not endless).
drop() {
  for role in "$@"; do
    kill "${pid[$role]}" 2>/dev/null || true
    wait "${pid[$role]}" 2>/dev/null || true
    rm -rf "$work/$role/storage"
  done
}

if $quick; then sample=; else sample=10; fi
if $have_hoist; then
  run_hoist cold "$corpus/promoter-manifest.yaml"
  validate "$corpus/images.txt" "$sample" hoist1 hoist2 hoist3
  run_hoist warm "$corpus/promoter-manifest.yaml"
fi
run_skopeo cold "$corpus/images.txt" skopeo1 skopeo2 skopeo3
validate "$corpus/images.txt" "$sample" skopeo1 skopeo2 skopeo3
run_skopeo warm "$corpus/images.txt" skopeo1 skopeo2 skopeo3
count_requests >/dev/null
drop hoist1 hoist2 hoist3 skopeo1 skopeo2 skopeo3

if $have_hoist; then
  run_hoist big "$corpus/big-manifest.yaml"
  validate "$corpus/big.txt" "" hoistbig
fi
run_skopeo big "$corpus/big.txt" skopeobig
validate "$corpus/big.txt" "" skopeobig
count_requests >/dev/null
drop hoistbig skopeobig

# --- fan-out: three registries and three blob mirrors at once (hoist only, loopback) ---------
fan_out=false
if $have_hoist && ! $wan && start_mirrors; then
  fan_out=true
  fan_corpus=$work/fan-corpus
  log "generating the fan-out corpus: $fan_images images (~$fan_total_mib MiB) in ${host[source]}/staging-fan"
  "$generator" generate --registry "${host[source]}" --repository-prefix staging-fan \
    --images "$fan_images" --total-mib "$fan_total_mib" --out "$fan_corpus" --seed 2 \
    --destination "${host[fan1]}/prod" --destination "${host[fan2]}/prod" \
    --destination "${host[fan3]}/prod" 2>>"$work/generate.err" | sed 's/^/fan-out /' | tee -a "$work/corpus.txt" >&2
  # The big image again, to the three fan-out registries.
  python3 -c '
import sys
text = open(sys.argv[1]).read()
old = "- name: %s/prod\n" % sys.argv[3]
assert old in text, "no destination %s in %s" % (sys.argv[3], sys.argv[1])
new = "".join("- name: %s/prod\n" % host for host in sys.argv[4:])
open(sys.argv[2], "w").write(text.replace(old, new))' \
    "$corpus/big-manifest.yaml" "$fan_corpus/big-manifest.yaml" "${route[hoistbig]}" \
    "${host[fan1]}" "${host[fan2]}" "${host[fan3]}"
  run_hoist fanout "$fan_corpus/promoter-manifest.yaml" "$fan_corpus/big-manifest.yaml" -- \
    --backends "$work/backends.yaml" --spool-dir "$work/spool"
  for role in fan1 fan2 fan3; do
    "$generator" validate --source "${host[source]}" --source-prefix staging-fan \
      --destination "${host[$role]}" --list "$fan_corpus/images.txt" >&2
  done
  validate "$corpus/big.txt" "" fan1 fan2 fan3
  check_mirrors "$work/hoist.fanout.out"
fi

# --- report -------------------------------------------------------------------------------
echo
echo "promotion benchmark ($(nproc) CPUs, parallelism $jobs, $(date -u +%Y-%m-%dT%H:%MZ))"
if $wan; then
  echo "wide-area link: every registry behind a proxy with $rtt_ms ms RTT and $link_mb MB/s per connection"
else
  echo "loopback: the tools talk to the registries directly"
fi
cat "$work/corpus.txt"
echo "destinations per tool: 3 (cold, warm); big phase: 1; hoist fanout: 3 registries + 3 mirrors"
echo
printf '%-7s %-6s %9s %9s %7s %9s %9s %11s %9s\n' tool phase "wall s" requests writes "RSS MiB" \
  "CPU s" "written MiB" "CPU s/GiB"
while read -r tool phase wall requests writes rss cpu written fetched; do
  if [ -n "${written:-}" ] && [ "$written" -gt 0 ]; then
    per_gib=$(awk -v c="$cpu" -v w="$written" 'BEGIN { printf "%.2f", c / (w / 1073741824) }')
    written_mib=$(( written >> 20 ))
  else
    per_gib=-; written_mib=-
  fi
  printf '%-7s %-6s %9.2f %9d %7d %9.1f %9.2f %11s %9s\n' "$tool" "$phase" "$wall" "$requests" \
    "$writes" "$(awk -v k="$rss" 'BEGIN { print k / 1024 }')" "$cpu" "$written_mib" "$per_gib"
done <"$results"
echo "(requests: lines added to all registries' access logs; writes: the PUT/POST/PATCH among them;"
echo " skopeo RSS: the largest of its processes; CPU: user + system of the tool's own processes;"
echo " written: bytes hoist uploaded to registries and mirrors; CPU s/GiB: hoist's CPU per GiB written)"
while read -r tool phase _ _ _ _ _ written fetched; do
  if [ "$tool" = hoist ] && [ -n "${fetched:-}" ] && [ "$fetched" -gt 0 ]; then
    echo "hoist $phase: read $(( fetched >> 20 )) MiB from the source for $(( written >> 20 )) MiB written"
  fi
done <"$results"

field() { awk -v t="$1" -v p="$2" -v c="$3" '$1 == t && $2 == p { print $c }' "$results"; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b == 0) print "inf"; else printf "%.1f", a / b }'; }
if $have_hoist; then
  echo
  echo "ratios (skopeo / hoist):"
  echo "  cold wall:          $(ratio "$(field skopeo cold 3)" "$(field hoist cold 3)")x   (target >= $($wan && echo '3x on the wide-area link' || echo '1.5x on loopback'))"
  echo "  cold CPU:           $(ratio "$(field skopeo cold 7)" "$(field hoist cold 7)")x"
  echo "  warm requests:      $(ratio "$(field skopeo warm 4)" "$(field hoist warm 4)")x   (hoist: $(field hoist warm 4) requests)"
  echo "  hoist CPU per GiB written, cold: $(awk -v c="$(field hoist cold 7)" -v b="$(field hoist cold 8)" 'BEGIN { if (b > 0) printf "%.2f", c / (b / 1073741824); else print "-" }') s   (target <= 1)"
  echo "  big-blob peak RSS:  $(ratio "$(field skopeo big 6)" "$(field hoist big 6)")x   (hoist: $(( $(field hoist big 6) / 1024 )) MiB, target <= 64 MiB for a $big_mib MiB blob)"
  if $fan_out; then
    echo "  fan-out peak RSS:   hoist $(( $(field hoist fanout 6) / 1024 )) MiB for 3 registries + 3 mirrors with a $big_mib MiB blob (target <= 64 MiB)"
  fi
  [ "$(field hoist warm 5)" -eq 0 ] || echo "  NOTE: hoist's warm run wrote to a registry; it should be a no-op"
fi
