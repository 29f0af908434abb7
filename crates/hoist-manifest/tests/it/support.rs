//! Helpers shared by the integration tests.

use std::path::{Path, PathBuf};

use hoist_manifest::{Input, Loaded, Manifest, Severity, load};

/// The repository's `tests/fixtures/manifests`, as a path relative to this crate.
pub fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/manifests")
}

/// Loads one plain manifest from `fixtures/plain/`.
pub fn load_plain(name: &str) -> Loaded {
    load(&[Input::Plain(fixtures().join("plain").join(name))])
}

/// Loads one thin layout from `fixtures/thin/`.
pub fn load_thin(name: &str) -> Loaded {
    load(&[Input::Thin(fixtures().join("thin").join(name))])
}

/// `sha256:` and 64 times `fill`.
pub fn digest(fill: char) -> String {
    format!("sha256:{}", fill.to_string().repeat(64))
}

/// Each diagnostic as `FILE:LINE:COL SEVERITY KEY_PATH`, FILE relative to [`fixtures`].
pub fn findings(loaded: &Loaded) -> Vec<String> {
    loaded
        .diagnostics
        .iter()
        .map(|diagnostic| {
            let file = diagnostic
                .file
                .strip_prefix(fixtures())
                .unwrap_or(&diagnostic.file);
            let severity = match diagnostic.severity {
                Severity::Error => "error",
                Severity::Warning => "warning",
            };
            format!(
                "{}:{}:{} {severity} {}",
                file.display(),
                diagnostic.line,
                diagnostic.column,
                diagnostic.key_path
            )
            .trim_end()
            .to_owned()
        })
        .collect()
}

/// The message of the only diagnostic at `line:column` of any file.
pub fn message_at(loaded: &Loaded, line: u32, column: u32) -> &str {
    let mut matching = loaded
        .diagnostics
        .iter()
        .filter(|diagnostic| (diagnostic.line, diagnostic.column) == (line, column));
    let diagnostic = matching.next().unwrap_or_else(|| {
        panic!(
            "no diagnostic at {line}:{column}: {:#?}",
            loaded.diagnostics
        )
    });
    assert!(
        matching.next().is_none(),
        "several diagnostics at {line}:{column}"
    );
    &diagnostic.message
}

/// An image as plain text: its name, and each digest with its tags, in file order.
pub type ImageRow = (String, Vec<(String, Vec<String>)>);

/// The images of `manifest` as [`ImageRow`]s, for comparing whole lists at once.
pub fn image_rows(manifest: &Manifest) -> Vec<ImageRow> {
    manifest
        .images
        .iter()
        .map(|image| {
            let dmap = image
                .dmap
                .iter()
                .map(|entry| {
                    let tags = entry.tags.iter().map(ToString::to_string).collect();
                    (entry.digest.to_string(), tags)
                })
                .collect();
            (image.name.to_string(), dmap)
        })
        .collect()
}

/// An [`ImageRow`] from string slices.
pub fn row(name: &str, dmap: &[(&str, &[&str])]) -> ImageRow {
    let dmap = dmap
        .iter()
        .map(|(digest, tags)| {
            let tags = tags.iter().map(ToString::to_string).collect();
            (digest.to_string(), tags)
        })
        .collect();
    (name.to_owned(), dmap)
}
