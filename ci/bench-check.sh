#!/usr/bin/env bash
# Benchmark of `hoist check` over the whole real registry.k8s.io corpus: parse, validate, compute
# every edge and conflict, apply policies. Prints wall time and peak RSS of each run, and the best.
# Usage: ci/bench-check.sh [CORPUS_DIR] [RUNS]   (default: ../shared/corpus/k8s.io/registry.k8s.io, 5)
# Targets on a 2-core machine: under 2 s and under 512 MiB.
set -euo pipefail
cd "$(dirname "$0")/.."
corpus=${1:-../shared/corpus/k8s.io/registry.k8s.io}
runs=${2:-5}
[ -d "$corpus" ] || { echo "no corpus at $corpus" >&2; exit 2; }
command -v /usr/bin/time >/dev/null || { echo "needs /usr/bin/time (apt-get install time)" >&2; exit 2; }

cargo build --release --locked -p hoist >&2
bin=target/release/hoist

report=$("$bin" check --thin-manifest-dir "$corpus" --output json || true)
echo "corpus: $corpus"
echo "$report" | python3 -c 'import json,sys; c=json.load(sys.stdin)["counts"]; print("counts: " + ", ".join(f"{k}={v}" for k,v in c.items()))'

best_wall=999999; worst_rss=0
for run in $(seq 1 "$runs"); do
  # check exits 1 on the corpus's known data problems; that is not a benchmark failure.
  stats=$( { /usr/bin/time -f '%e %M' "$bin" check --thin-manifest-dir "$corpus" --output json >/dev/null || true; } 2>&1 | tail -n1 )
  wall=${stats% *}; rss_kib=${stats#* }
  echo "run $run: wall ${wall} s, peak RSS $((rss_kib / 1024)) MiB"
  best_wall=$(python3 -c "print(min($best_wall, $wall))")
  worst_rss=$(( rss_kib > worst_rss ? rss_kib : worst_rss ))
done
echo "best wall: ${best_wall} s (target < 2 s); peak RSS (max over runs): $((worst_rss / 1024)) MiB (target < 512 MiB)"
