//! The little the copier reads from a manifest: which blobs and child manifests it references.
//!
//! Only `config`, `layers`, `manifests` and `subject` are parsed; everything else is ignored, and the
//! bytes are always pushed unchanged, so unknown fields survive the copy.

use hoist_oci::Digest;
use serde::Deserialize;

/// Layers that registries do not hold (their bytes live at the `urls` they name), so they are not
/// copied: Docker foreign layers and OCI non-distributable layers (any compression).
const DOCKER_FOREIGN_LAYER: &str = "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip";
const OCI_NONDISTRIBUTABLE_PREFIX: &str = "application/vnd.oci.image.layer.nondistributable.";

/// A descriptor: what a manifest says about a blob or another manifest.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Descriptor {
    #[serde(default)]
    pub media_type: String,
    pub digest: Digest,
    pub size: u64,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Fields {
    #[serde(default)]
    media_type: Option<String>,
    #[serde(default)]
    config: Option<Descriptor>,
    #[serde(default)]
    layers: Vec<Descriptor>,
    #[serde(default)]
    manifests: Option<Vec<Descriptor>>,
    #[serde(default)]
    subject: Option<Descriptor>,
}

/// What a manifest references.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct References {
    /// Config and distributable layers, to copy before the manifest.
    pub blobs: Vec<Descriptor>,
    /// Foreign and non-distributable layers, skipped.
    pub foreign: Vec<Descriptor>,
    /// Child manifests of an index, to copy before the index.
    pub children: Vec<Descriptor>,
    /// The manifest this one is attached to (OCI 1.1 referrers); not copied, only reported.
    pub subject: Option<Descriptor>,
}

/// Whether registries refuse to (or need not) store a layer of this media type.
pub fn is_foreign(media_type: &str) -> bool {
    media_type == DOCKER_FOREIGN_LAYER || media_type.starts_with(OCI_NONDISTRIBUTABLE_PREFIX)
}

/// Parses `bytes`, whose media type the store reported as `media_type`. A document that could be
/// read as both an image and an index is refused ([`hoist_oci::manifest_kind`]).
pub fn references(media_type: &str, bytes: &[u8]) -> Result<References, String> {
    let kind = hoist_oci::manifest_kind(media_type, bytes).map_err(|error| error.to_string())?;
    let fields: Fields = serde_json::from_slice(bytes).map_err(|error| error.to_string())?;
    let media_type = fields.media_type.as_deref().unwrap_or(media_type);
    let mut references = References {
        subject: fields.subject,
        ..References::default()
    };
    if kind == hoist_oci::ManifestKind::Index {
        references.children = fields.manifests.unwrap_or_default();
        return Ok(references);
    }
    // An OCI artifact manifest may omit layers, but an image manifest always has a config.
    let config = fields
        .config
        .ok_or_else(|| format!("a {media_type} manifest without config"))?;
    references.blobs.push(config);
    for layer in fields.layers {
        if is_foreign(&layer.media_type) {
            references.foreign.push(layer);
        } else {
            references.blobs.push(layer);
        }
    }
    Ok(references)
}

#[cfg(test)]
mod tests {
    use hoist_oci::media_types;

    use super::*;

    const A: &str = "sha256:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
    const B: &str = "sha256:bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb";
    const C: &str = "sha256:cccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccc";

    #[test]
    fn reads_config_and_layers_and_skips_foreign_ones() {
        let json = format!(
            r#"{{"schemaVersion":2,"mediaType":"{}",
               "config":{{"mediaType":"x","digest":"{A}","size":3}},
               "layers":[{{"mediaType":"{DOCKER_FOREIGN_LAYER}","digest":"{B}","size":9,"urls":["u"]}},
                         {{"mediaType":"application/vnd.docker.image.rootfs.diff.tar.gzip","digest":"{C}","size":7}}]}}"#,
            media_types::DOCKER_MANIFEST
        );
        let references = references(media_types::DOCKER_MANIFEST, json.as_bytes()).unwrap();
        let digests: Vec<String> = references
            .blobs
            .iter()
            .map(|blob| blob.digest.to_string())
            .collect();
        assert_eq!(digests, [A, C]);
        assert_eq!(references.foreign.len(), 1);
        assert_eq!(references.foreign[0].digest.to_string(), B);
        assert!(references.children.is_empty());
    }

    #[test]
    fn reads_index_children_even_without_media_type_field() {
        let json = format!(r#"{{"schemaVersion":2,"manifests":[{{"digest":"{A}","size":10}}]}}"#);
        let references = references(media_types::OCI_INDEX, json.as_bytes()).unwrap();
        assert_eq!(references.children.len(), 1);
        assert_eq!(references.children[0].size, 10);
        assert!(references.blobs.is_empty());
    }

    #[test]
    fn refuses_an_image_manifest_that_lists_manifests() {
        // CVE-2021-41190: served as an image, read as an index by whoever looks at `manifests`.
        let json = format!(r#"{{"schemaVersion":2,"manifests":[{{"digest":"{A}","size":10}}]}}"#);
        let error = references(media_types::OCI_MANIFEST, json.as_bytes()).unwrap_err();
        assert!(error.contains("CVE-2021-41190"), "{error}");
    }

    #[test]
    fn keeps_the_subject() {
        let json = format!(
            r#"{{"config":{{"digest":"{A}","size":1}},"layers":[],"subject":{{"digest":"{B}","size":2}}}}"#
        );
        let references = references(media_types::OCI_MANIFEST, json.as_bytes()).unwrap();
        assert_eq!(references.subject.unwrap().digest.to_string(), B);
    }

    #[test]
    fn nondistributable_layers_of_any_compression_are_foreign() {
        assert!(is_foreign(
            "application/vnd.oci.image.layer.nondistributable.v1.tar+zstd"
        ));
        assert!(!is_foreign("application/vnd.oci.image.layer.v1.tar+gzip"));
    }

    #[test]
    fn rejects_bad_json_and_manifests_without_config() {
        assert!(references(media_types::OCI_MANIFEST, b"not json").is_err());
        assert!(references(media_types::OCI_MANIFEST, br#"{"layers":[]}"#).is_err());
        let bad_digest = r#"{"config":{"digest":"md5:00","size":1}}"#;
        assert!(references(media_types::OCI_MANIFEST, bad_digest.as_bytes()).is_err());
    }
}
