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
# Usage: ci/bench-promote.sh [--quick] [--wan]
#   full:    40 images, ~1.2 GiB of unique blobs, a 2 GiB blob
#   --quick: 12 images, ~120 MiB, a 256 MiB blob
#   --wan:   every registry behind the test kit's fault proxy playing a wide-area link (BENCH_RTT_MS
#            round trip, default 40, half each way; BENCH_LINK_MB MB/s per connection and
#            direction, default 25), for hoist and skopeo alike; 16 images, ~240 MiB, a 512 MiB
#            blob unless --quick. Prints hoist's CPU-seconds per GiB written too.
# Environment: BENCH_JOBS (default 8) is the parallelism of both tools: `hoist promote --jobs N`,
# and N skopeo processes at once (xargs -P N over (image, destination) pairs; each pair copies
# the digest to its first tag, then once more per extra tag, as `skopeo copy` has no multi-tag
# form). BENCH_IMAGES, BENCH_TOTAL_MIB and BENCH_BIG_MIB override the corpus size.
# Needs: /usr/bin/time (apt-get install time), skopeo, docker-registry, curl, python3.
#
# Targets: cold wall >= 3x faster than skopeo; warm no-op >= 20x fewer requests; hoist's peak
# RSS <= 64 MiB while copying the big blob.
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
if $quick; then defaults=(12 120 256); elif $wan; then defaults=(16 240 512); else defaults=(40 1200 2048); fi
rtt_ms=${BENCH_RTT_MS:-40}
link_mb=${BENCH_LINK_MB:-25}
images=${BENCH_IMAGES:-${defaults[0]}}
total_mib=${BENCH_TOTAL_MIB:-${defaults[1]}}
big_mib=${BENCH_BIG_MIB:-${defaults[2]}}
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
roles=(source hoist1 hoist2 hoist3 skopeo1 skopeo2 skopeo3 hoistbig skopeobig)
# All ports are picked while every socket is still open, so no two roles get the same one (and,
# with --wan, no two proxies).
read -r -a ports <<<"$(python3 -c '
import socket, sys
sockets = [socket.socket() for _ in range(int(sys.argv[1]))]
for s in sockets: s.bind(("127.0.0.1", 0))
print(" ".join(str(s.getsockname()[1]) for s in sockets))' "$(( ${#roles[@]} * 2 ))")"
declare -A host route
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
# record TOOL PHASE WALL_S REQUESTS WRITES RSS_KIB CPU_S BYTES_WRITTEN
record() { echo "$*" >>"$results"; }

insecure=()
for role in "${roles[@]}"; do insecure+=(--insecure-registry "${route[$role]}"); done

# run_hoist PHASE MANIFEST
run_hoist() {
  local phase=$1 manifest=$2 before writes_before status=0
  before=$(count_requests); writes_before=$(count_requests 'PUT|POST|PATCH|DELETE')
  log "hoist $phase"
  /usr/bin/time -f '%e %M %U %S' -o "$work/time.hoist.$phase" \
    "$hoist" promote --manifest "$manifest" --confirm --jobs "$jobs" "${insecure[@]}" --quiet \
    --output json >"$work/hoist.$phase.out" 2>"$work/hoist.$phase.err" || status=$?
  if [ "$status" -ne 0 ]; then
    echo "hoist promote ($phase) exited $status:" >&2
    tail -n 30 "$work/hoist.$phase.err" >&2
    exit 1
  fi
  read -r wall rss user system <"$work/time.hoist.$phase"
  local written
  written=$(python3 -c '
import json, sys
try:
    print(json.load(open(sys.argv[1]))["execution"]["bytes_uploaded"])
except Exception:
    print(0)' "$work/hoist.$phase.out")
  record hoist "$phase" "$wall" $(( $(count_requests) - before )) \
    $(( $(count_requests 'PUT|POST|PATCH|DELETE') - writes_before )) "$rss" \
    "$(awk -v u="$user" -v s="$system" 'BEGIN { printf "%.2f", u + s }')" "$written"
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
    "$(awk '{ cpu += $3 + $4 } END { printf "%.2f", cpu }' "$work/time.skopeo.$phase")" 0
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

if $quick; then sample=; else sample=10; fi
if $have_hoist; then
  run_hoist cold "$corpus/promoter-manifest.yaml"
  validate "$corpus/images.txt" "$sample" hoist1 hoist2 hoist3
  run_hoist warm "$corpus/promoter-manifest.yaml"
fi
run_skopeo cold "$corpus/images.txt" skopeo1 skopeo2 skopeo3
validate "$corpus/images.txt" "$sample" skopeo1 skopeo2 skopeo3
run_skopeo warm "$corpus/images.txt" skopeo1 skopeo2 skopeo3

if $have_hoist; then
  run_hoist big "$corpus/big-manifest.yaml"
  validate "$corpus/big.txt" "" hoistbig
fi
run_skopeo big "$corpus/big.txt" skopeobig
validate "$corpus/big.txt" "" skopeobig

# --- report -------------------------------------------------------------------------------
echo
echo "promotion benchmark ($(nproc) CPUs, parallelism $jobs, $(date -u +%Y-%m-%dT%H:%MZ))"
if $wan; then
  echo "wide-area link: every registry behind a proxy with $rtt_ms ms RTT and $link_mb MB/s per connection"
else
  echo "loopback: the tools talk to the registries directly"
fi
cat "$work/corpus.txt"
echo "destinations per tool: 3 (cold, warm); big phase: 1"
echo
printf '%-7s %-5s %9s %9s %7s %9s %9s %10s\n' tool phase "wall s" requests writes "RSS MiB" "CPU s" "CPU s/GiB"
while read -r tool phase wall requests writes rss cpu written; do
  per_gib=$(awk -v c="$cpu" -v b="$written" 'BEGIN { if (b > 0) printf "%.2f", c / (b / 1073741824); else print "-" }')
  printf '%-7s %-5s %9.2f %9d %7d %9.1f %9.2f %10s\n' "$tool" "$phase" "$wall" "$requests" "$writes" \
    "$(awk -v k="$rss" 'BEGIN { print k / 1024 }')" "$cpu" "$per_gib"
done <"$results"
echo "(requests: lines added to all registries' access logs; writes: the PUT/POST/PATCH among them;"
echo " skopeo RSS: the largest of its processes; CPU: user + system of the tool's own processes;"
echo " CPU s/GiB: hoist's CPU per GiB it wrote to destinations, from its JSON report)"

field() { awk -v t="$1" -v p="$2" -v c="$3" '$1 == t && $2 == p { print $c }' "$results"; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b == 0) print "inf"; else printf "%.1f", a / b }'; }
if $have_hoist; then
  echo
  echo "ratios (skopeo / hoist):"
  echo "  cold wall:          $(ratio "$(field skopeo cold 3)" "$(field hoist cold 3)")x   (target >= 3x$($wan && echo ' on the wide-area link'))"
  echo "  warm requests:      $(ratio "$(field skopeo warm 4)" "$(field hoist warm 4)")x   (target >= 20x)"
  echo "  hoist CPU per GiB written, cold: $(awk -v c="$(field hoist cold 7)" -v b="$(field hoist cold 8)" 'BEGIN { if (b > 0) printf "%.2f", c / (b / 1073741824); else print "-" }') s   (target <= 1)"
  echo "  big-blob peak RSS:  $(ratio "$(field skopeo big 6)" "$(field hoist big 6)")x   (hoist: $(( $(field hoist big 6) / 1024 )) MiB, target <= 64 MiB for a $big_mib MiB blob)"
  [ "$(field hoist warm 5)" -eq 0 ] || echo "  NOTE: hoist's warm run wrote to a registry; it should be a no-op"
fi
