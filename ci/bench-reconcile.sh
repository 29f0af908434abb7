#!/usr/bin/env bash
# Reconcile benchmark: a dry-run `hoist promote` of the whole real registry.k8s.io corpus against
# every production registry it names, served on 127.0.0.1 by the registry double of hoist-testkit
# (crates/hoist-testkit/examples/registry-double) in a process of its own.
#
# The double copies the thin tree with "twin" digests (each digest replaced by the digest of a small
# synthetic manifest whose bytes it can serve; names, tags and lines unchanged; projects the loader
# refuses left out) and serves every registry of it "already promoted": each destination
# repository holds every digest and tag the manifests promote there, with the GCR / Artifact
# Registry `manifest` map in its tag listing. hoist reaches the real host names through
# `--registry-endpoint HOST=http://127.0.0.1:PORT`.
#
# Scenarios, each printed as one row (requests by kind come from the double's own counts):
#   noop             everything present: the plan must be empty (no write)
#   noop+latency     the same with BENCH_LATENCY_MS on every answer
#   missing          ~1% of the manifests of one region (BENCH_REGION) taken out: the plan must
#                    copy exactly those (repository, digest) pairs, with their tags
#   missing+latency  the same with latency
#   quota+latency    noop with a per-host quota (BENCH_QUOTA requests per BENCH_QUOTA_WINDOW_MS);
#                    past it the double answers 429 + Retry-After: 429s counted, no failure
# and, as the peer, `skopeo list-tags` over a sample of the destination repositories against the
# same double with latency (BENCH_JOBS*4 at once, as many as hoist reads), extrapolated to all.
#
# Targets: requests <= one listing per destination repository plus one HEAD per missing digest;
# peak RSS <= 512 MiB; <= 60 s with 20 ms latency on 2 cores; under the quota, exit 0.
#
# Usage: ci/bench-reconcile.sh [CORPUS_DIR]    (default ../shared/corpus/k8s.io/registry.k8s.io)
# Environment: BENCH_LATENCY_MS (20), BENCH_REGION (europe-west1-docker.pkg.dev), BENCH_JOBS (8,
# hoist's --jobs), BENCH_QUOTA (25) and BENCH_QUOTA_WINDOW_MS (1000), BENCH_PEER_SAMPLE (300).
# Needs: /usr/bin/time (apt-get install time), python3; skopeo for the peer row.
set -euo pipefail
cd "$(dirname "$0")/.."

corpus=${1:-../shared/corpus/k8s.io/registry.k8s.io}
latency=${BENCH_LATENCY_MS:-20}
region=${BENCH_REGION:-europe-west1-docker.pkg.dev}
jobs=${BENCH_JOBS:-8}
quota=${BENCH_QUOTA:-25}
quota_window=${BENCH_QUOTA_WINDOW_MS:-1000}
peer_sample=${BENCH_PEER_SAMPLE:-300}

if [ ! -d "$corpus" ]; then
  echo "skipping: no manifest tree at $corpus" >&2
  exit 0
fi
for tool in /usr/bin/time python3; do
  command -v "$tool" >/dev/null || { echo "needs $tool (time: apt-get install time)" >&2; exit 2; }
done

work=$(mktemp -d -t hoist-reconcile-XXXXXX)
double_pid=
cleanup() {
  if [ -n "$double_pid" ]; then kill "$double_pid" 2>/dev/null || true; wait "$double_pid" 2>/dev/null || true; fi
  rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
log() { echo "== $*" >&2; }

log "building hoist and the registry double (release)"
cargo build --release -p hoist >&2
cargo build --release -p hoist-testkit --example registry-double >&2
target_dir=$(cargo metadata --format-version 1 --no-deps | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')
hoist=$target_dir/release/hoist
double=$target_dir/release/examples/registry-double

# Starts the double for scenario $1 with the double flags that follow; sets endpoint_args.
start_double() {
  local dir=$work/$1
  shift
  mkdir -p "$dir"
  "$double" --corpus "$corpus" --tree "$dir/tree" --endpoints "$dir/endpoints" \
    --summary "$dir/summary.json" --repositories "$dir/repositories.txt" "$@" \
    >"$dir/counts.json" 2>"$dir/double.log" &
  double_pid=$!
  for _ in $(seq 600); do
    [ -f "$dir/endpoints" ] && break
    kill -0 "$double_pid" 2>/dev/null || { cat "$dir/double.log" >&2; exit 1; }
    sleep 0.1
  done
  [ -f "$dir/endpoints" ] || { echo "the double did not start" >&2; exit 1; }
  endpoint_args=()
  while IFS= read -r line; do endpoint_args+=(--registry-endpoint "$line"); done <"$dir/endpoints"
}

stop_double() {
  kill -TERM "$double_pid"
  wait "$double_pid" || true
  double_pid=
}

# Runs one scenario: $1 name, $2 expectation (noop|missing), then double flags.
scenario() {
  local name=$1 expect=$2
  shift 2
  log "scenario $name"
  start_double "$name" "$@"
  local dir=$work/$name rc=0
  /usr/bin/time -f '%e %M %U %S' -o "$dir/time" \
    "$hoist" promote --thin-manifest-dir "$dir/tree" --output json --jobs "$jobs" --quiet \
    "${endpoint_args[@]}" >"$dir/plan.json" 2>"$dir/hoist.log" || rc=$?
  stop_double
  echo "$rc" >"$dir/rc"
  python3 - "$dir" "$name" "$expect" <<'EOF'
import json, sys
dir, name, expect = sys.argv[1:]
summary = json.load(open(f"{dir}/summary.json"))
counts = json.load(open(f"{dir}/counts.json"))
wall, rss_kib, user, system = open(f"{dir}/time").read().split()[-4:]
rc = int(open(f"{dir}/rc").read())
try:
    plan = json.load(open(f"{dir}/plan.json"))
except ValueError:
    plan = {"ok": False, "steps": [], "problems": ["no JSON plan"]}
kinds = counts["by_kind"]
repositories = summary["destination_repositories"]
destinations = set(open(f"{dir}/repositories.txt").read().split())
missing = {(m["repository"], m["digest"]) for m in summary["missing"]}
planned = {(f'{s["registry"]}/{s["image"]}', s["digest"]) for s in plan["steps"] if s["action"] == "copy"}
tags_ok = all(
    sorted(s["tags"]) == sorted(next(m["tags"] for m in summary["missing"]
                                     if (m["repository"], m["digest"]) == (f'{s["registry"]}/{s["image"]}', s["digest"])))
    for s in plan["steps"] if s["action"] == "copy" and (f'{s["registry"]}/{s["image"]}', s["digest"]) in missing)
if expect == "noop":
    verdict = "ok: no-op plan" if plan["ok"] and not plan["steps"] else "WRONG: expected a no-op plan"
else:
    verdict = (f"ok: exactly the {len(missing)} missing copies" if plan["ok"] and planned == missing
               and len(plan["steps"]) == len(missing) and tags_ok
               else f"WRONG: planned {len(planned)} copies, {len(missing)} missing")
destination_reads = kinds.get("tag-list", 0) + kinds.get("head-tag", 0) + kinds.get("head-digest", 0)
budget = repositories + len(missing)
row = {
    "scenario": name, "exit": rc, "wall_s": float(wall), "peak_rss_mib": round(int(rss_kib) / 1024),
    "cpu_s": round(float(user) + float(system), 2), "requests": counts["total"],
    "tag_list_pages": kinds.get("tag-list", 0), "head_tag": kinds.get("head-tag", 0),
    "head_digest": kinds.get("head-digest", 0), "get_digest (source)": kinds.get("get-digest", 0),
    "429s": counts["throttled"], "peak_per_window": counts["peak_per_window"],
    "repositories": repositories, "missing": len(missing),
    "destination_reads_vs_budget": f"{destination_reads} <= {budget}: {'ok' if destination_reads <= budget else 'OVER'}",
    "max_requests_per_repository": max((v for k, v in counts["by_repository"].items()
                                        if k in destinations), default=0),
    "plan": verdict, "problems": len(plan.get("problems", [])),
}
json.dump(row, open(f"{dir}/row.json", "w"))
print(json.dumps(row), file=sys.stderr)
EOF
}

scenario noop noop
scenario noop+latency noop --latency-ms "$latency"
scenario missing missing --missing-host "$region" --missing-one-in 100
scenario missing+latency missing --missing-host "$region" --missing-one-in 100 --latency-ms "$latency"
scenario quota+latency noop --latency-ms "$latency" --quota "$quota" --quota-window-ms "$quota_window"

# The peer: skopeo list-tags over a sample of the repositories, as many at once as hoist reads.
peer="skipped (no skopeo)"
if command -v skopeo >/dev/null; then
  log "peer: skopeo list-tags over $peer_sample repositories, $((jobs * 4)) at once, ${latency} ms latency"
  start_double peer --latency-ms "$latency"
  dir=$work/peer
  declare -A url
  while IFS='=' read -r host address; do url[$host]=${address#http://}; done <"$dir/endpoints"
  python3 -c '
import sys, random
lines = open(sys.argv[1]).read().split()
random.Random(7).shuffle(lines)
print("\n".join(lines[:int(sys.argv[2])]))' "$dir/repositories.txt" "$peer_sample" |
    while IFS= read -r repository; do echo "docker://${url[${repository%%/*}]}/${repository#*/}"; done >"$dir/sample"
  start=$(date +%s.%N)
  xargs -P "$((jobs * 4))" -n 1 skopeo list-tags --tls-verify=false <"$dir/sample" >/dev/null
  end=$(date +%s.%N)
  stop_double
  peer=$(python3 -c '
import json, sys
start, end, sample, dir = float(sys.argv[1]), float(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
counts = json.load(open(dir + "/counts.json"))
repositories = json.load(open(dir + "/summary.json"))["destination_repositories"]
estimate = (end - start) / sample * repositories
print(json.dumps({"sample": sample, "sample_wall_s": round(end - start, 2), "requests": counts["total"],
                  "estimated_wall_s_all": round(estimate, 1), "repositories": repositories}))' \
    "$start" "$end" "$(wc -l <"$dir/sample")" "$dir")
fi

echo
echo "hoist promote (dry run) of $corpus against its registries on 127.0.0.1 ($(nproc) cores, --jobs $jobs, latency ${latency} ms where named, quota $quota per ${quota_window} ms per host)"
python3 - "$work" "$peer" <<'EOF'
import json, sys
work, peer = sys.argv[1], sys.argv[2]
names = ["noop", "noop+latency", "missing", "missing+latency", "quota+latency"]
rows = [json.load(open(f"{work}/{name}/row.json")) for name in names]
columns = ["scenario", "exit", "wall_s", "peak_rss_mib", "cpu_s", "requests", "tag_list_pages",
           "head_tag", "head_digest", "get_digest (source)", "429s", "peak_per_window", "plan"]
print("| " + " | ".join(columns) + " |")
print("|" + "---|" * len(columns))
for row in rows:
    print("| " + " | ".join(str(row[c]) for c in columns) + " |")
print()
first = rows[0]
print(f"destination repositories: {first['repositories']}; missing in the 'missing' scenarios: {rows[2]['missing']}")
for row in rows:
    print(f"  {row['scenario']}: destination reads {row['destination_reads_vs_budget']}; "
          f"at most {row['max_requests_per_repository']} request(s) per destination repository; "
          f"{row['problems']} problem(s)")
worst_rss = max(row["peak_rss_mib"] for row in rows)
latency_wall = max(row["wall_s"] for row in rows if "latency" in row["scenario"])
print(f"targets: peak RSS {worst_rss} MiB <= 512: {'ok' if worst_rss <= 512 else 'MISSED'}; "
      f"wall with latency {latency_wall} s <= 60: {'ok' if latency_wall <= 60 else 'MISSED'}; "
      f"quota run exit {rows[4]['exit']} with {rows[4]['429s']} 429(s): {'ok' if rows[4]['exit'] == 0 else 'MISSED'}")
try:
    peer = json.loads(peer)
    ratio = peer["estimated_wall_s_all"] / rows[1]["wall_s"]
    print(f"peer: skopeo list-tags, {peer['sample']} repositories in {peer['sample_wall_s']} s "
          f"({peer['requests']} requests), so about {peer['estimated_wall_s_all']} s for all "
          f"{peer['repositories']}: hoist's whole reconcile (noop+latency) is {ratio:.1f}x faster")
except ValueError:
    print(f"peer: {peer}")
EOF
