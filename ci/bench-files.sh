#!/usr/bin/env bash
# File-promotion benchmark: `hoist promote-files` against kpromo's way of copying a file, done with
# standard tools in the same run (kpromo itself is a Go program we do not build here).
#
# kpromo's copy (promoter/file/file.go): download the source object to a temporary file, hash it,
# compare with the manifest, then upload the file to each destination. The peer below does exactly
# that with curl (SigV4) and sha256sum: GET -> temp file -> sha256sum -> PUT to S3, cp to a
# directory. hoist streams the source into each destination through its sha256 check instead.
#
# Starts its own s3s-fs on 127.0.0.1, generates FILES random files in a staging bucket, and
# promotes them to an S3 bucket and a directory: hoist cold, hoist warm (a no-op re-run, which
# hashes every destination object), hoist audit, then the peer. Prints wall time, CPU seconds and
# peak RSS per run, and the ratios. A script that prints figures, not a timed test.
#
# Usage: ci/bench-files.sh [--quick]
#   full:    8 files of 128 MiB (1 GiB)
#   --quick: 4 files of 32 MiB
# Environment: BENCH_JOBS (default 4) files at once for both; BENCH_FILES, BENCH_FILE_MIB.
# Needs: /usr/bin/time (apt-get install time), s3s-fs (ci/install-mirror-servers.sh), curl >= 7.75,
# python3, sha256sum.
set -euo pipefail
cd "$(dirname "$0")/.."

quick=false
for argument in "$@"; do
  case $argument in
    --quick) quick=true ;;
    *) echo "usage: $0 [--quick]" >&2; exit 2 ;;
  esac
done
if $quick; then defaults=(4 32); else defaults=(8 128); fi
files=${BENCH_FILES:-${defaults[0]}}
file_mib=${BENCH_FILE_MIB:-${defaults[1]}}
jobs=${BENCH_JOBS:-4}

s3s=$(command -v s3s-fs || echo "${CARGO_HOME:-$HOME/.cargo}/bin/s3s-fs")
for tool in /usr/bin/time "$s3s" curl python3 sha256sum; do
  command -v "$tool" >/dev/null || { echo "needs $tool" >&2; exit 2; }
done

work=$(mktemp -d -t hoist-bench-files-XXXXXX)
server_pid=
cleanup() {
  if [ -n "$server_pid" ]; then kill "$server_pid" 2>/dev/null || true; wait "$server_pid" 2>/dev/null || true; fi
  rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
log() { echo "== $*" >&2; }

log "building hoist (release)"
cargo build --release -p hoist >&2
target_dir=$(cargo metadata --format-version 1 --no-deps | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')
hoist=$target_dir/release/hoist

port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
key=bench$RANDOM
secret=$(python3 -c 'import secrets; print(secrets.token_hex(20))')
mkdir -p "$work/s3/staging/releases" "$work/s3/prod-hoist" "$work/s3/prod-peer"
"$s3s" --host 127.0.0.1 --port "$port" --access-key "$key" --secret-key "$secret" "$work/s3" \
  >"$work/s3s.log" 2>&1 &
server_pid=$!
for _ in $(seq 100); do curl -s -o /dev/null "http://127.0.0.1:$port/" && break; sleep 0.1; done
endpoint=http://127.0.0.1:$port

log "generating $files files of $file_mib MiB"
{
  echo "files:"
  for index in $(seq "$files"); do
    path=$work/s3/staging/releases/v1.0/bin/file-$index.tar.gz
    mkdir -p "$(dirname "$path")"
    head -c "$((file_mib * 1024 * 1024))" /dev/urandom >"$path"
    echo "- name: v1.0/bin/file-$index.tar.gz"
    echo "  sha256: $(sha256sum "$path" | cut -d' ' -f1)"
  done
} >"$work/files.yaml"
cat >"$work/filestores.yaml" <<EOF
filestores:
- base: s3://staging/releases
  src: true
  endpoint: $endpoint
  pathStyle: true
- base: s3://prod-hoist/binaries
  endpoint: $endpoint
  pathStyle: true
- base: file:$work/dir-hoist
EOF

export AWS_ACCESS_KEY_ID=$key AWS_SECRET_ACCESS_KEY=$secret AWS_REGION=us-east-1 AWS_EC2_METADATA_DISABLED=true
results=()
# run NAME COMMAND...: times the command, keeps "name wall cpu rss".
run() {
  local name=$1; shift
  local stats=$work/$name.time
  /usr/bin/time -f '%e %U %S %M' -o "$stats" "$@" >"$work/$name.out" 2>"$work/$name.err" || {
    echo "$name failed:" >&2; cat "$work/$name.out" "$work/$name.err" >&2; exit 1; }
  read -r wall user system rss <"$stats"
  results+=("$name $wall $(python3 -c "print(round($user+$system,2))") $((rss / 1024))")
  log "$name: ${wall}s"
}

promote=("$hoist" promote-files --filestores "$work/filestores.yaml" --files "$work/files.yaml" --jobs "$jobs" --quiet)
run hoist-cold "${promote[@]}" --confirm
run hoist-warm "${promote[@]}" --confirm
run hoist-audit "$hoist" audit --filestores "$work/filestores.yaml" --files "$work/files.yaml" --jobs "$jobs"
grep -q "done: $((files * 2)) file(s) written" "$work/hoist-cold.out" || { cat "$work/hoist-cold.out"; exit 1; }
grep -q "done: 0 file(s) written" "$work/hoist-warm.out" || { cat "$work/hoist-warm.out"; exit 1; }

# The peer: kpromo's algorithm with curl and sha256sum, JOBS files at once.
cat >"$work/peer.sh" <<'EOF'
#!/usr/bin/env bash
# peer.sh NAME SHA256: download, hash, compare, upload to S3, copy to a directory.
set -euo pipefail
name=$1 expected=$2
temporary=$(mktemp -p "$WORK")
trap 'rm -f "$temporary"' EXIT
sign=(--aws-sigv4 "aws:amz:us-east-1:s3" --user "$AWS_ACCESS_KEY_ID:$AWS_SECRET_ACCESS_KEY")
curl -sSf "${sign[@]}" -H "x-amz-content-sha256: UNSIGNED-PAYLOAD" -o "$temporary" "$ENDPOINT/staging/releases/$name"
actual=$(sha256sum "$temporary" | cut -d' ' -f1)
[ "$actual" = "$expected" ] || { echo "sha256 mismatch for $name" >&2; exit 1; }
curl -sSf "${sign[@]}" -H "x-amz-content-sha256: $actual" -T "$temporary" "$ENDPOINT/prod-peer/binaries/$name" >/dev/null
mkdir -p "$(dirname "$WORK/dir-peer/$name")"
cp "$temporary" "$WORK/dir-peer/$name"
EOF
chmod +x "$work/peer.sh"
python3 -c '
import sys
lines = open(sys.argv[1]).read().split("\n")
names = [l[len("- name: "):] for l in lines if l.startswith("- name: ")]
shas = [l[len("  sha256: "):] for l in lines if l.startswith("  sha256: ")]
for n, s in zip(names, shas): print(n, s)' "$work/files.yaml" >"$work/pairs"
export WORK=$work ENDPOINT=$endpoint
run peer xargs -P "$jobs" -L 1 "$work/peer.sh" <"$work/pairs"

# The copies are byte-identical.
for index in $(seq "$files"); do
  name=v1.0/bin/file-$index.tar.gz
  cmp -s "$work/s3/staging/releases/$name" "$work/s3/prod-hoist/binaries/$name"
  cmp -s "$work/s3/staging/releases/$name" "$work/dir-hoist/$name"
  cmp -s "$work/s3/staging/releases/$name" "$work/s3/prod-peer/binaries/$name"
done

echo
echo "file promotion: $files files x $file_mib MiB = $((files * file_mib)) MiB, to an S3 bucket (s3s-fs) and a directory, $jobs at once"
printf '%-12s %8s %8s %8s\n' run "wall s" "cpu s" "rss MiB"
for line in "${results[@]}"; do
  # shellcheck disable=SC2086
  printf '%-12s %8s %8s %8s\n' $line
done
python3 - "${results[@]}" <<'EOF'
import sys
rows = {line.split()[0]: [float(x) for x in line.split()[1:]] for line in sys.argv[1:]}
cold, peer = rows["hoist-cold"], rows["peer"]
print(f"hoist cold vs peer: {peer[0] / cold[0]:.2f}x wall, {peer[1] / max(cold[1], 0.01):.2f}x cpu (peer / hoist)")
EOF
