#!/usr/bin/env bash
# The main job on the embedded default: builds hoist, checks the example manifests shipped in
# manifests/example, then promotes them for real: the source is the OCI layout committed in
# manifests/example/layout, the destinations are OCI layouts created under target/hoist-demo/,
# and the blob mirrors of manifests/backends.yaml are directories there too (no server needed).
# Then it audits every destination and mirror. Running it again is a no-op;
# `rm -rf target/hoist-demo` starts afresh.
set -euo pipefail
cd "$(dirname "$0")/.."
# The binary's path as cargo reports it (CARGO_TARGET_DIR and build.target-dir are honoured).
hoist=$(cargo build --release --locked -p hoist --message-format=json-render-diagnostics |
  sed -n 's/.*"executable":"\([^"]*\)".*/\1/p' | tail -n 1)
[ -x "$hoist" ] || { echo "ci/demo.sh: cargo built no hoist executable" >&2; exit 1; }

echo "== hoist check (the presubmit)"
"$hoist" check --thin-manifest-dir manifests/example
echo
echo "== hoist promote --confirm (the postsubmit: registries, then blob mirrors)"
"$hoist" promote --thin-manifest-dir manifests/example --backends manifests/backends.yaml --confirm
echo
echo "== hoist audit --rehash (every destination and mirror, every byte)"
"$hoist" audit --thin-manifest-dir manifests/example --backends manifests/backends.yaml --rehash
echo
echo "== hoist snapshot of one destination"
"$hoist" snapshot oci:target/hoist-demo/prod-us/hello
