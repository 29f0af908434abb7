//! hoist-rehearsal against the ConfigMaps real cluster tools write (`tests/fixtures/
//! local-registry-hosting/`) and against edges of real manifest text.

mod hosting;
mod purity;
mod redirect;

use std::path::PathBuf;

/// The repository's `tests/fixtures/local-registry-hosting/`.
pub fn fixture(name: &str) -> (String, String) {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/fixtures/local-registry-hosting")
        .join(name);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|error| panic!("{path:?}: {error}"));
    (text, path.display().to_string())
}
