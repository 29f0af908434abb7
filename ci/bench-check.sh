#!/usr/bin/env bash
# Benchmark of `hoist check` over the whole real registry.k8s.io corpus: parse, validate, compute
# every edge and conflict, apply policies. Then `check --base HEAD` on a git copy of the corpus:
# with no change (the presubmit of a pull request that touches nothing the check reads), and with
# one digest added to the largest project (k8s-staging-kubernetes, a third of the corpus).
# Prints wall time, CPU and peak RSS of each run, and the best.
# Usage: ci/bench-check.sh [CORPUS_DIR] [RUNS]   (default: ../shared/corpus/k8s.io/registry.k8s.io, 5)
# Targets on a 2-core machine: check under 2 s and 512 MiB; check --base under 1 s and 128 MiB.
set -euo pipefail
cd "$(dirname "$0")/.."
corpus=${1:-../shared/corpus/k8s.io/registry.k8s.io}
runs=${2:-5}
[ -d "$corpus" ] || { echo "no corpus at $corpus" >&2; exit 2; }
command -v /usr/bin/time >/dev/null || { echo "needs /usr/bin/time (apt-get install time)" >&2; exit 2; }

# The binary's path as cargo reports it (CARGO_TARGET_DIR and build.target-dir are honoured).
bin=$(ci/build-hoist.sh)

report=$("$bin" check --thin-manifest-dir "$corpus" --output json || true)
echo "corpus: $corpus"
echo "$report" | python3 -c 'import json,sys; c=json.load(sys.stdin)["counts"]; print("counts: " + ", ".join(f"{k}={v}" for k,v in c.items()))'

# measure LABEL TARGET_S TARGET_MIB DIR ARGS...: RUNS runs of `hoist ARGS` in DIR.
measure() {
  local label=$1 target_s=$2 target_mib=$3 dir=$4; shift 4
  local best_wall=999999 worst_rss=0 stats wall rest cpu rss_kib
  echo "== $label"
  for run in $(seq 1 "$runs"); do
    # check exits 1 on findings that count; that is not a benchmark failure.
    stats=$( { (cd "$dir" && /usr/bin/time -f '%e %U %S %M' "$bin" "$@" --output json >/dev/null) || true; } 2>&1 | tail -n1 )
    read -r wall user system rss_kib <<<"$stats"
    cpu=$(python3 -c "print(round($user + $system, 2))")
    echo "run $run: wall ${wall} s, CPU ${cpu} s, peak RSS $((rss_kib / 1024)) MiB"
    best_wall=$(python3 -c "print(min($best_wall, $wall))")
    worst_rss=$(( rss_kib > worst_rss ? rss_kib : worst_rss ))
  done
  echo "best wall: ${best_wall} s (target < ${target_s} s); peak RSS (max over runs): $((worst_rss / 1024)) MiB (target < ${target_mib} MiB)"
}

measure "check" 2 512 . check --thin-manifest-dir "$corpus"

# A git copy of the corpus, deleted on exit.
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cp -r "$corpus" "$work/registry.k8s.io"
git -C "$work" init -q
git -C "$work" add -A
git -C "$work" -c user.name=bench -c user.email=bench@example.invalid -c commit.gpgsign=false commit -qm corpus

verdict=$( (cd "$work" && "$bin" check --thin-manifest-dir registry.k8s.io --base HEAD --output json || true) \
  | python3 -c 'import json,sys; r=json.load(sys.stdin); print("ok=%s errors=%d pre_existing=%d changes=%d" % (r["ok"], len(r["errors"]), len(r["pre_existing"]), len(r["changes"])))')
echo "check --base HEAD, no change: $verdict"
measure "check --base HEAD, no change" 1 128 "$work" check --thin-manifest-dir registry.k8s.io --base HEAD

images="$work/registry.k8s.io/images/k8s-staging-kubernetes/images.yaml"
if [ -f "$images" ]; then
  python3 - "$images" <<'EOF'
import sys
path = sys.argv[1]
text = open(path).read()
line = '  dmap:\n    "sha256:' + 'f' * 64 + '": ["v99.0.0"]\n'
open(path, "w").write(text.replace("  dmap:\n", line, 1))
EOF
  measure "check --base HEAD, one digest added to k8s-staging-kubernetes" 1 128 "$work" check --thin-manifest-dir registry.k8s.io --base HEAD
fi
