#!/usr/bin/env bash
# Benchmark of `hoist serve`, the redirector: redirects per second and p50/p99 latency at 64
# concurrent clients (oha, installed here by `cargo install` into target/bench-tools), for
#   1. blob redirects with a warm cache (the blob's existence in its mirror already known),
#   2. manifest redirects (to the upstream),
# with the access log on (written to a file, as in production) and, for comparison, off.
# Prints the figures, hoist's CPU seconds and peak RSS per run. Targets: >= 20,000 redirects/s,
# p99 < 5 ms. Everything runs on 127.0.0.1; the load generator shares the machine's cores.
#
#   ci/bench-serve.sh [SECONDS]     # seconds per run, default 10
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-10}
connections=64

# The binary's path as cargo reports it (CARGO_TARGET_DIR and build.target-dir are honoured).
hoist=$(ci/build-hoist.sh)

tools=$PWD/target/bench-tools
oha=$tools/bin/oha
if [ ! -x "$oha" ]; then
  echo "== installing oha (cargo install, a few minutes) into $tools"
  cargo install oha --locked --root "$tools"
fi

work=$(mktemp -d)
serve_pid=
cleanup() {
  [ -n "$serve_pid" ] && kill -TERM "$serve_pid" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

# A file: mirror holding one blob, real-format IP range files, a catalogue with a bucket per region.
digest=sha256:$(printf 'bench blob' | sha256sum | cut -d' ' -f1)
mkdir -p "$work/mirror/containers/images"
printf 'bench blob' >"$work/mirror/containers/images/$digest"
cat >"$work/backends.yaml" <<EOF
backends:
  - name: local
    url: file:$work/mirror
  - name: aws-eu-west-3
    url: s3://prod-registry-k8s-io-eu-west-3
    region: eu-west-3
    labels: {cloud: aws, region: eu-west-3}
EOF

# With two CPUs or more, hoist and the load generator get CPUs of their own (hoist the first, oha
# the others), so that neither measures the other's scheduling; hoist's runtime then has one
# worker thread.
if [ "$(nproc)" -ge 2 ] && command -v taskset >/dev/null; then
  pin_serve=(taskset -c 0)
  pin_load=(taskset -c "1-$(( $(nproc) - 1 ))")
  placement="hoist on CPU 0, oha on the other $(( $(nproc) - 1 ))"
else
  pin_serve=()
  pin_load=()
  placement="$(nproc) cores shared with the load generator"
fi

start_serve() { # LOG_FILTER
  HOIST_LOG=$1 "${pin_serve[@]}" "$hoist" serve --upstream https://us-central1-docker.pkg.dev \
    --upstream-path k8s-artifacts-prod/images --backends "$work/backends.yaml" \
    --ip-ranges tests/fixtures/ip-ranges/aws-ip-ranges.json \
    --ip-ranges tests/fixtures/ip-ranges/gcp-cloud.json \
    --listen 127.0.0.1:0 2>"$work/serve.log" &
  serve_pid=$!
  address=
  for _ in $(seq 100); do
    address=$(sed -n 's|^hoist serve: listening on http://||p' "$work/serve.log")
    [ -n "$address" ] && return 0
    sleep 0.1
  done
  cat "$work/serve.log" >&2
  exit 1
}

stop_serve() {
  kill -TERM "$serve_pid"
  wait "$serve_pid" || true
  serve_pid=
}

# CPU seconds (user + system) of a process, from /proc.
cpu_seconds() {
  awk -v ticks="$(getconf CLK_TCK)" '{ printf "%.2f", ($14 + $15) / ticks }' "/proc/$1/stat"
}

peak_rss_mib() {
  awk '/^VmHWM:/ { printf "%.0f", $2 / 1024 }' "/proc/$1/status"
}

run() { # NAME PATH
  local name=$1 path=$2 before after
  # Warm-up: fills the existence cache (and the connection pool of oha).
  "$oha" --no-tui --redirect 0 -n 200 -c 4 "http://$address$path" >/dev/null
  before=$(cpu_seconds "$serve_pid")
  "${pin_load[@]}" "$oha" --no-tui --redirect 0 -c "$connections" -z "${seconds}s" --output-format json \
    "http://$address$path" >"$work/oha.json"
  after=$(cpu_seconds "$serve_pid")
  python3 - "$work/oha.json" "$name" "$before" "$after" "$seconds" "$(peak_rss_mib "$serve_pid")" <<'PY'
import json, sys
path, name, before, after, seconds, rss = sys.argv[1:]
report = json.load(open(path))
summary = report["summary"]
percentiles = report["latencyPercentiles"]
statuses = report.get("statusCodeDistribution", {})
redirects = statuses.get("307", 0)
other = sum(count for code, count in statuses.items() if code != "307")
# Requests still in flight when the run's time is up are cut by oha, not failed by hoist.
errors = sum(count for kind, count in report.get("errorDistribution", {}).items()
             if kind != "aborted due to deadline")
print(f"| {name} | {summary['requestsPerSec']:,.0f} | {percentiles['p50'] * 1000:.2f} | "
      f"{percentiles['p99'] * 1000:.2f} | {redirects:,} | {other + errors} | "
      f"{float(after) - float(before):.1f} / {seconds} | {rss} |")
PY
}

echo
echo "hoist serve, $connections concurrent clients (oha), ${seconds}s per run, $placement"
echo
echo "| run | redirects/s | p50 ms | p99 ms | 307s | other answers or errors | hoist CPU s / wall s | hoist peak RSS MiB |"
echo "|---|---|---|---|---|---|---|---|"
for log in on off; do
  if [ "$log" = on ]; then filter="warn,hoist_serve=info"; else filter="warn"; fi
  start_serve "$filter"
  run "blob, warm cache, access log $log" "/v2/pause/blobs/$digest"
  run "manifest, access log $log" "/v2/pause/manifests/v1.0"
  stop_serve
  if [ "$log" = on ]; then
    lines=$(grep -c 'hoist_serve::access' "$work/serve.log" || true)
    echo "| (access log: $lines lines, $(du -h "$work/serve.log" | cut -f1)) | | | | | | | |"
  fi
done
