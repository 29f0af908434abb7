//! Integration tests for hoist-manifest: every rule with a passing and a failing fixture (from
//! the repository's `tests/fixtures/manifests/`), the real Kubernetes corpus, and snapshots.

mod corpus;
mod hostile;
mod plain;
mod snapshot;
mod support;
mod thin;
