//! Integration tests for hoist-policy: loading real files (fixtures and the shipped `policies/`
//! directory), evaluating every rule kind, and the crate's promise to stay pure.

mod evaluation;
mod hostile;
mod loading;
mod purity;
mod shipped;

use std::path::{Path, PathBuf};

/// The repository root (this crate lives in `crates/hoist-policy`).
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// `tests/fixtures/policies/<name>` at the repository root.
pub fn fixture(name: &str) -> PathBuf {
    repo_root().join("tests/fixtures/policies").join(name)
}
