#!/usr/bin/env bash
# Builds hoist (release) and prints the path of its executable as cargo reports it, so that
# CARGO_TARGET_DIR and build.target-dir are honoured. Build output goes to stderr.
#   hoist=$(ci/build-hoist.sh)
set -euo pipefail
cd "$(dirname "$0")/.."
hoist=$(cargo build --release --locked -p hoist --message-format=json-render-diagnostics |
  sed -n 's/.*"executable":"\([^"]*\)".*/\1/p' | tail -n 1)
[ -x "$hoist" ] || { echo "ci/build-hoist.sh: cargo built no hoist executable" >&2; exit 1; }
echo "$hoist"
