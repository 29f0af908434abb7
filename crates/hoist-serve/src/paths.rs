//! Request paths: what kind of request a path is, and the `Location`s built from it.
//!
//! The patterns and the joining rule are archeio's (kubernetes/registry.k8s.io,
//! `cmd/archeio/internal/app/handlers.go`), so both redirectors send a client to the same place:
//! `upstream + path.Join("/v2/", upstream_path, path without "/v2")`, where Go's `path.Join`
//! drops empty elements and cleans the result (`//`, `.` and `..` segments, trailing `/`).

use std::sync::LazyLock;

use percent_encoding::{AsciiSet, CONTROLS, utf8_percent_encode};
use regex::Regex;

/// `/v2/<name>/blobs/<algorithm>:<encoded>`. A `:` cannot be in a repository name and must be in a
/// digest, and a digest has no `/`, so this cheap pattern finds every blob request.
static BLOB: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"^/v2/.*/blobs/([^/]+:[a-zA-Z0-9=_-]+)$").unwrap_or_else(|error| {
        unreachable!("the blob pattern is valid: {error}");
    })
});

/// A digest alone, as the blob pattern captures it.
static DIGEST: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"^[^/]+:[a-zA-Z0-9=_-]+$").unwrap_or_else(|error| {
        unreachable!("the digest pattern is valid: {error}");
    })
});

/// A cosign signature or attestation tag: `/v2/<name>/manifests/sha256-<hex>.sig` (or `.att`).
static COSIGN_TAG: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"^/v2/.*/manifests/sha256-[a-f0-9]{64}\.(sig|att)$").unwrap_or_else(|error| {
        unreachable!("the cosign tag pattern is valid: {error}");
    })
});

/// Characters escaped when a decoded path goes back into a `Location`: controls, space, non-ASCII
/// (always), and what would end the path or start an escape.
const LOCATION_PATH: &AsciiSet = &CONTROLS
    .add(b' ')
    .add(b'"')
    .add(b'#')
    .add(b'%')
    .add(b'<')
    .add(b'>')
    .add(b'?')
    .add(b'`')
    .add(b'{')
    .add(b'}')
    .add(b'\\')
    .add(b'^')
    .add(b'|');

/// The digest of a blob request (`sha256:<hex>`, or any `<algorithm>:<encoded>`), if it is one.
pub fn blob_digest(path: &str) -> Option<&str> {
    BLOB.captures(path)
        .and_then(|captures| captures.get(1))
        .map(|digest| digest.as_str())
}

/// Whether `text` is a digest as blob requests carry it (`<algorithm>:<encoded>`, no `/`).
pub fn is_digest(text: &str) -> bool {
    DIGEST.is_match(text)
}

/// Whether `path` asks for a cosign `sha256-<hex>.sig` or `.att` tag.
pub fn is_cosign_tag(path: &str) -> bool {
    COSIGN_TAG.is_match(path)
}

/// Whether `path` is the registry API: `/v2` itself or below `/v2/`.
pub fn is_registry_api(path: &str) -> bool {
    path == "/v2" || path.starts_with("/v2/")
}

/// `base + path.Join("/v2/", upstream_path, path without its "/v2" prefix)`, then `?query`.
pub fn upstream_location(
    base: &str,
    upstream_path: &str,
    path: &str,
    query: Option<&str>,
) -> String {
    let rest = path.strip_prefix("/v2").unwrap_or(path);
    let joined = join(&["/v2/", upstream_path, rest]);
    let mut location = String::with_capacity(base.len() + joined.len() + 16);
    location.push_str(base);
    location.extend(utf8_percent_encode(&joined, LOCATION_PATH));
    if let Some(query) = query.filter(|query| !query.is_empty()) {
        location.push('?');
        location.push_str(query);
    }
    location
}

/// Go's `path.Join`: the non-empty elements joined with `/`, cleaned; `""` when all are empty.
pub fn join(elements: &[&str]) -> String {
    let joined = elements
        .iter()
        .filter(|element| !element.is_empty())
        .copied()
        .collect::<Vec<_>>()
        .join("/");
    if joined.is_empty() {
        String::new()
    } else {
        clean(&joined)
    }
}

/// Go's `path.Clean`: one `/` between segments, no `.` segments, `..` removes the segment before
/// it (never above the root), no trailing `/`; `"."` for an empty relative path.
pub fn clean(path: &str) -> String {
    let rooted = path.starts_with('/');
    let mut segments: Vec<&str> = Vec::new();
    for segment in path.split('/') {
        match segment {
            "" | "." => {}
            ".." => {
                if segments.last().is_some_and(|last| *last != "..") {
                    segments.pop();
                } else if !rooted {
                    segments.push("..");
                }
            }
            other => segments.push(other),
        }
    }
    let body = segments.join("/");
    match (rooted, body.is_empty()) {
        (true, _) => format!("/{body}"),
        (false, true) => ".".to_owned(),
        (false, false) => body,
    }
}

/// Escapes a decoded path segment (or several) for a URL.
pub fn encode_path(path: &str) -> String {
    utf8_percent_encode(path, LOCATION_PATH).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clean_matches_go() {
        // From Go's path.Clean tests.
        for (input, expected) in [
            ("", "."),
            ("abc", "abc"),
            ("abc/def", "abc/def"),
            ("a/b/c", "a/b/c"),
            (".", "."),
            ("..", ".."),
            ("../..", "../.."),
            ("../../abc", "../../abc"),
            ("/abc", "/abc"),
            ("/", "/"),
            ("abc/", "abc"),
            ("abc/def/", "abc/def"),
            ("/abc/", "/abc"),
            ("//abc", "/abc"),
            ("abc//def//ghi", "abc/def/ghi"),
            ("abc/./def", "abc/def"),
            ("/./abc/def", "/abc/def"),
            ("abc/.", "abc"),
            ("abc/def/ghi/../jkl", "abc/def/jkl"),
            ("abc/def/../ghi/../jkl", "abc/jkl"),
            ("abc/def/..", "abc"),
            ("abc/def/../..", "."),
            ("/abc/def/../..", "/"),
            ("abc/def/../../..", ".."),
            ("/abc/def/../../..", "/"),
            ("abc/def/../../../ghi/jkl/../../../mno", "../../mno"),
        ] {
            assert_eq!(clean(input), expected, "clean({input:?})");
        }
    }

    #[test]
    fn join_matches_go() {
        assert_eq!(join(&["", ""]), "");
        assert_eq!(join(&["a", ""]), "a");
        assert_eq!(join(&["", "b"]), "b");
        assert_eq!(join(&["/", "a"]), "/a");
        assert_eq!(
            join(&["/v2/", "", "/pause/tags/list"]),
            "/v2/pause/tags/list"
        );
        assert_eq!(
            join(&[
                "/v2/",
                "k8s-artifacts-prod/images",
                "/pause/manifests/latest"
            ]),
            "/v2/k8s-artifacts-prod/images/pause/manifests/latest"
        );
    }

    #[test]
    fn blob_pattern() {
        let hex = "da86e6ba6ca197bf6bc5e9d900febd906b133eaa4750e6bed647b0fbe50ed43e";
        let path = format!("/v2/pause/blobs/sha256:{hex}");
        assert_eq!(blob_digest(&path), Some(&path["/v2/pause/blobs/".len()..]));
        assert!(blob_digest("/v2/a/b/blobs/sha512:abc").is_some());
        assert!(blob_digest("/v2//blobs/sha256:abc").is_some());
        // Needs a name: "/v2/" then "/blobs/".
        assert_eq!(blob_digest("/v2/blobs/sha256:abc"), None);
        assert_eq!(blob_digest("/v2/pause/blobs/uploads/"), None);
        assert_eq!(blob_digest("/v2/pause/blobs/sha256:"), None);
        assert_eq!(blob_digest("/v2/pause/blobs/:abc"), None);
        assert_eq!(blob_digest("/v2/pause/manifests/sha256:abc"), None);
        assert_eq!(blob_digest("/v2/pause/blobs/sha256:abc/x"), None);
    }

    #[test]
    fn cosign_pattern() {
        let hex = "a".repeat(64);
        assert!(is_cosign_tag(&format!(
            "/v2/pause/manifests/sha256-{hex}.sig"
        )));
        assert!(is_cosign_tag(&format!(
            "/v2/a/b/manifests/sha256-{hex}.att"
        )));
        assert!(!is_cosign_tag(&format!(
            "/v2/pause/manifests/sha256-{hex}.sbom"
        )));
        assert!(!is_cosign_tag(&format!(
            "/v2/pause/manifests/sha256-{}.sig",
            "A".repeat(64)
        )));
        assert!(!is_cosign_tag("/v2/pause/manifests/latest"));
    }

    #[test]
    fn locations() {
        assert_eq!(
            upstream_location("https://k8s.gcr.io", "", "/v2/pause/tags/list", Some("n=0")),
            "https://k8s.gcr.io/v2/pause/tags/list?n=0"
        );
        assert_eq!(
            upstream_location("https://r.example", "p/q", "/v2/a b/manifests/x", None),
            "https://r.example/v2/p/q/a%20b/manifests/x"
        );
        assert_eq!(
            upstream_location("https://r.example", "", "/v2/a/../b/manifests/x/", Some("")),
            "https://r.example/v2/b/manifests/x"
        );
    }
}
