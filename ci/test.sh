#!/usr/bin/env bash
# The test command: every crate's unit and integration tests, against real local servers.
# Tests that read the real Kubernetes manifests in ../shared/corpus skip, saying so, when it is absent.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo test --workspace --locked
