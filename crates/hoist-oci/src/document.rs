//! Is a manifest an image or an index? Decided so that no document can be both.
//!
//! CVE-2021-41190 (the "ambiguous manifest" advisory of the OCI image and distribution specs): a
//! document holding both `manifests` and `layers`, or whose `mediaType` field disagrees with the
//! `Content-Type` it is served with, is read as an index by one client and as an image by another,
//! so the same digest means different content to each. The specs since require that the field, when
//! present, equals the descriptor's or response's media type, and that an image manifest has no
//! `manifests` and an index no `config` or `layers`. [`manifest_kind`] refuses every document that
//! breaks those rules, and the registry, layout and copier all decide through it.

use serde::Deserialize;
use serde::de::IgnoredAny;

use crate::media_types;

/// What a manifest is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ManifestKind {
    /// It lists other manifests (an OCI index or a Docker manifest list).
    Index,
    /// It names a config and layers (an image manifest, or an artifact).
    Image,
}

/// Why a document is not unambiguously one kind of manifest.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AmbiguousManifest {
    /// The bytes are not a JSON object.
    #[error("not a JSON object: {0}")]
    NotJson(String),
    /// The `mediaType` field and the type the document came with differ.
    #[error(
        "it was served as {declared} but its mediaType field says {field} (an ambiguous manifest, CVE-2021-41190)"
    )]
    MediaTypeMismatch {
        /// The `Content-Type` or descriptor media type.
        declared: String,
        /// The document's own `mediaType`.
        field: String,
    },
    /// An index with `config` or `layers`.
    #[error(
        "an index ({media_type}) with config or layers (an ambiguous manifest, CVE-2021-41190)"
    )]
    IndexWithLayers {
        /// Its media type.
        media_type: String,
    },
    /// An image manifest with `manifests`.
    #[error(
        "an image manifest ({media_type}) with a manifests list (an ambiguous manifest, CVE-2021-41190)"
    )]
    ImageWithManifests {
        /// Its media type.
        media_type: String,
    },
    /// No media type says which, and the document has fields of both.
    #[error(
        "no media type, and both a manifests list and config or layers (an ambiguous manifest, CVE-2021-41190)"
    )]
    Both,
}

/// Types that say nothing about the document (what some registries answer for any manifest).
fn is_generic(media_type: &str) -> bool {
    matches!(
        media_type,
        "" | "application/json" | "text/plain" | "application/octet-stream"
    )
}

/// Only whether each field is present; values are read elsewhere.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Fields {
    #[serde(default)]
    media_type: Option<String>,
    #[serde(default)]
    manifests: Option<IgnoredAny>,
    #[serde(default)]
    config: Option<IgnoredAny>,
    #[serde(default)]
    layers: Option<IgnoredAny>,
    /// Docker schema 1's layers.
    #[serde(default)]
    fs_layers: Option<IgnoredAny>,
}

/// The kind of the manifest `bytes`, which came with `declared` as its media type (a response's
/// `Content-Type` without parameters, or a descriptor's `mediaType`; empty when unknown).
///
/// The type is the document's `mediaType` field, else `declared`; when neither says anything a
/// document with only `manifests` is an index and anything else an image. Refused: a `mediaType`
/// field that differs from a specific `declared` type, an index with `config` or `layers`, an
/// image manifest (any type that is not an index) with `manifests`, and a document without a type
/// that has both.
pub fn manifest_kind(declared: &str, bytes: &[u8]) -> Result<ManifestKind, AmbiguousManifest> {
    let fields: Fields = serde_json::from_slice(bytes)
        .map_err(|error| AmbiguousManifest::NotJson(error.to_string()))?;
    let declared = declared.trim();
    let field = fields
        .media_type
        .as_deref()
        .filter(|field| !field.is_empty());
    if let Some(field) = field
        && !is_generic(declared)
        && field != declared
    {
        return Err(AmbiguousManifest::MediaTypeMismatch {
            declared: declared.to_owned(),
            field: field.to_owned(),
        });
    }
    let has_manifests = fields.manifests.is_some();
    let has_image_fields =
        fields.config.is_some() || fields.layers.is_some() || fields.fs_layers.is_some();
    let media_type = field.or((!is_generic(declared)).then_some(declared));
    match media_type {
        Some(media_type) if media_types::is_index(media_type) => {
            if has_image_fields {
                return Err(AmbiguousManifest::IndexWithLayers {
                    media_type: media_type.to_owned(),
                });
            }
            Ok(ManifestKind::Index)
        }
        Some(media_type) => {
            if has_manifests {
                return Err(AmbiguousManifest::ImageWithManifests {
                    media_type: media_type.to_owned(),
                });
            }
            Ok(ManifestKind::Image)
        }
        None => match (has_manifests, has_image_fields) {
            (true, true) => Err(AmbiguousManifest::Both),
            (true, false) => Ok(ManifestKind::Index),
            (false, _) => Ok(ManifestKind::Image),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::media_types::{DOCKER_MANIFEST, DOCKER_MANIFEST_LIST, OCI_INDEX, OCI_MANIFEST};

    const CONFIG: &str = r#""config":{"mediaType":"x","digest":"sha256:aa","size":1}"#;

    #[test]
    fn plain_documents_are_what_they_say() {
        let index = format!(r#"{{"mediaType":"{OCI_INDEX}","manifests":[]}}"#);
        assert_eq!(
            manifest_kind(OCI_INDEX, index.as_bytes()),
            Ok(ManifestKind::Index)
        );
        assert_eq!(
            manifest_kind("application/json", index.as_bytes()),
            Ok(ManifestKind::Index)
        );
        let image = format!(r#"{{"mediaType":"{DOCKER_MANIFEST}",{CONFIG},"layers":[]}}"#);
        assert_eq!(
            manifest_kind(DOCKER_MANIFEST, image.as_bytes()),
            Ok(ManifestKind::Image)
        );
        // No field: the declared type decides, or the fields when it says nothing.
        let bare_index = br#"{"schemaVersion":2,"manifests":[]}"#;
        assert_eq!(
            manifest_kind(DOCKER_MANIFEST_LIST, bare_index),
            Ok(ManifestKind::Index)
        );
        assert_eq!(manifest_kind("", bare_index), Ok(ManifestKind::Index));
        let bare_image = format!(r#"{{{CONFIG},"layers":[]}}"#);
        assert_eq!(
            manifest_kind("", bare_image.as_bytes()),
            Ok(ManifestKind::Image)
        );
    }

    #[test]
    fn refuses_a_media_type_field_that_contradicts_the_content_type() {
        let index = format!(r#"{{"mediaType":"{OCI_INDEX}","manifests":[]}}"#);
        assert!(matches!(
            manifest_kind(OCI_MANIFEST, index.as_bytes()),
            Err(AmbiguousManifest::MediaTypeMismatch { .. })
        ));
    }

    #[test]
    fn refuses_documents_that_are_both() {
        let both =
            format!(r#"{{"mediaType":"{OCI_MANIFEST}",{CONFIG},"layers":[],"manifests":[]}}"#);
        assert!(matches!(
            manifest_kind(OCI_MANIFEST, both.as_bytes()),
            Err(AmbiguousManifest::ImageWithManifests { .. })
        ));
        // Served as an image without a field, but listing manifests: the CVE's case.
        let listed = br#"{"schemaVersion":2,"manifests":[]}"#;
        assert!(matches!(
            manifest_kind(OCI_MANIFEST, listed),
            Err(AmbiguousManifest::ImageWithManifests { .. })
        ));
        let layered_index = format!(r#"{{"mediaType":"{OCI_INDEX}","manifests":[],"layers":[]}}"#);
        assert!(matches!(
            manifest_kind(OCI_INDEX, layered_index.as_bytes()),
            Err(AmbiguousManifest::IndexWithLayers { .. })
        ));
        let untyped = format!(r#"{{{CONFIG},"manifests":[]}}"#);
        assert_eq!(
            manifest_kind("application/json", untyped.as_bytes()),
            Err(AmbiguousManifest::Both)
        );
        assert!(matches!(
            manifest_kind(OCI_MANIFEST, b"[1]"),
            Err(AmbiguousManifest::NotJson(_))
        ));
    }
}
