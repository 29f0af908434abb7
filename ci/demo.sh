#!/usr/bin/env bash
# The main job on the embedded default: builds hoist and checks the example manifests shipped in
# manifests/example (registries are OCI layouts on disk, so no server is needed).
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --locked -p hoist
target/release/hoist check --thin-manifest-dir manifests/example
