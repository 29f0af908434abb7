//! The layout's `index.json` and what hoist reads out of manifests.
//!
//! Spec: <https://github.com/opencontainers/image-spec/blob/main/image-layout.md#indexjson-file>.
//! Fields hoist does not know (platforms, other annotations, extra top-level keys) are kept as
//! they were, so rewriting the index for one tag never loses what another tool wrote.

use std::collections::BTreeMap;

use hoist_oci::{Digest, Tag, media_types};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// The annotation that names a manifest in a layout; `skopeo … oci:DIR:NAME` looks it up.
pub(crate) const REF_NAME: &str = "org.opencontainers.image.ref.name";

/// The `oci-layout` file's content.
pub(crate) const OCI_LAYOUT: &[u8] = br#"{"imageLayoutVersion":"1.0.0"}"#;

/// Registries refuse manifests above 4 MiB (distribution's default); a bigger blob is not read
/// whole to find out whether it is a manifest.
pub(crate) const MANIFEST_SIZE_LIMIT: u64 = 4 * 1024 * 1024;

/// `index.json`: an OCI image index whose entries are the layout's manifests.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct ImageIndex {
    #[serde(rename = "schemaVersion")]
    schema_version: u32,
    #[serde(rename = "mediaType", default, skip_serializing_if = "Option::is_none")]
    media_type: Option<String>,
    #[serde(default)]
    pub(crate) manifests: Vec<Descriptor>,
    #[serde(flatten)]
    rest: Map<String, Value>,
}

/// One entry of `index.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct Descriptor {
    #[serde(rename = "mediaType")]
    pub(crate) media_type: String,
    /// Kept as text: an entry with another algorithm must not make the whole index unreadable.
    pub(crate) digest: String,
    pub(crate) size: u64,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub(crate) annotations: BTreeMap<String, String>,
    #[serde(flatten)]
    rest: Map<String, Value>,
}

impl Descriptor {
    /// A descriptor for a manifest, named `tag` when given.
    pub(crate) fn new(media_type: &str, digest: &Digest, size: u64, tag: Option<&Tag>) -> Self {
        let mut annotations = BTreeMap::new();
        if let Some(tag) = tag {
            annotations.insert(REF_NAME.to_owned(), tag.to_string());
        }
        Self {
            media_type: media_type.to_owned(),
            digest: digest.to_string(),
            size,
            annotations,
            rest: Map::new(),
        }
    }

    /// The `ref.name` annotation.
    pub(crate) fn ref_name(&self) -> Option<&str> {
        self.annotations.get(REF_NAME).map(String::as_str)
    }

    /// The digest, when it is a valid sha256 digest.
    pub(crate) fn parsed_digest(&self) -> Option<Digest> {
        Digest::parse(&self.digest).ok()
    }
}

impl Default for ImageIndex {
    fn default() -> Self {
        Self {
            schema_version: 2,
            media_type: Some(media_types::OCI_INDEX.to_owned()),
            manifests: Vec::new(),
            rest: Map::new(),
        }
    }
}

impl ImageIndex {
    /// The tags: `ref.name` values that are valid tags, sorted, without duplicates. A `ref.name`
    /// may be a full reference (`example.com/app:v1`) written by another tool; that is no tag of
    /// this repository, so it is left out.
    pub(crate) fn tags(&self) -> Vec<Tag> {
        let mut tags: Vec<Tag> = self
            .manifests
            .iter()
            .filter_map(Descriptor::ref_name)
            .filter_map(|name| Tag::parse(name).ok())
            .collect();
        tags.sort();
        tags.dedup();
        tags
    }

    /// Each tag with the digest of its entry (the first entry when a tag is written twice).
    pub(crate) fn tag_digests(&self) -> BTreeMap<Tag, Digest> {
        let mut digests = BTreeMap::new();
        for descriptor in &self.manifests {
            let tag = descriptor.ref_name().and_then(|name| Tag::parse(name).ok());
            if let (Some(tag), Some(digest)) = (tag, descriptor.parsed_digest()) {
                digests.entry(tag).or_insert(digest);
            }
        }
        digests
    }

    /// The entry named `tag`.
    pub(crate) fn find_tag(&self, tag: &Tag) -> Option<&Descriptor> {
        self.manifests
            .iter()
            .find(|descriptor| descriptor.ref_name() == Some(tag.as_str()))
    }

    /// Some entry for `digest`, tagged or not.
    pub(crate) fn find_digest(&self, digest: &Digest) -> Option<&Descriptor> {
        self.manifests
            .iter()
            .find(|descriptor| descriptor.parsed_digest() == Some(*digest))
    }

    /// Points `tag` at `descriptor`: drops any entry with that name, and an untagged entry for the
    /// same digest (the tagged one now covers it).
    pub(crate) fn set_tag(&mut self, tag: &Tag, descriptor: Descriptor) {
        let digest = descriptor.digest.clone();
        self.manifests.retain(|entry| {
            let same_name = entry.ref_name() == Some(tag.as_str());
            let untagged_same_digest = entry.ref_name().is_none() && entry.digest == digest;
            !same_name && !untagged_same_digest
        });
        self.manifests.push(descriptor);
    }

    /// Adds an untagged entry for the descriptor's digest unless some entry already names it.
    /// Returns whether the index changed.
    pub(crate) fn add_untagged(&mut self, descriptor: Descriptor) -> bool {
        if self
            .manifests
            .iter()
            .any(|entry| entry.digest == descriptor.digest)
        {
            return false;
        }
        self.manifests.push(descriptor);
        true
    }
}

/// The media type a manifest declares, or, for an OCI manifest or index without the (optional)
/// `mediaType` field, the one its shape implies. `None` when the bytes are not a manifest.
pub(crate) fn sniff_media_type(bytes: &[u8]) -> Option<String> {
    let Ok(Value::Object(object)) = serde_json::from_slice::<Value>(bytes) else {
        return None;
    };
    if let Some(Value::String(media_type)) = object.get("mediaType") {
        return Some(media_type.clone());
    }
    if object.contains_key("manifests") {
        Some(media_types::OCI_INDEX.to_owned())
    } else if object.contains_key("config") && object.contains_key("layers") {
        Some(media_types::OCI_MANIFEST.to_owned())
    } else {
        None
    }
}

/// The digests a manifest needs to be present: config and layers, or an index's children.
/// Layers with `urls` (Windows foreign layers) live elsewhere, as on registries, and are skipped.
/// A `subject` is not required: registries accept referrers before their subject.
pub(crate) fn required_digests(bytes: &[u8]) -> Result<Vec<Digest>, String> {
    let value: Value = serde_json::from_slice(bytes)
        .map_err(|error| format!("the manifest is not JSON: {error}"))?;
    let Value::Object(object) = value else {
        return Err("the manifest is not a JSON object".to_owned());
    };
    let mut descriptors: Vec<&Value> = Vec::new();
    if let Some(config) = object.get("config") {
        descriptors.push(config);
    }
    for key in ["layers", "manifests"] {
        match object.get(key) {
            None => {}
            Some(Value::Array(items)) => descriptors.extend(items),
            Some(_) => return Err(format!("\"{key}\" is not an array")),
        }
    }
    let mut digests = Vec::new();
    for descriptor in descriptors {
        let has_urls =
            matches!(descriptor.get("urls"), Some(Value::Array(urls)) if !urls.is_empty());
        if has_urls {
            continue;
        }
        let Some(Value::String(text)) = descriptor.get("digest") else {
            return Err("a descriptor has no \"digest\" string".to_owned());
        };
        let digest = Digest::parse(text).map_err(|error| error.to_string())?;
        if !digests.contains(&digest) {
            digests.push(digest);
        }
    }
    Ok(digests)
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: &str = "sha256:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
    const B: &str = "sha256:bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb";

    fn tag(name: &str) -> Tag {
        Tag::parse(name).unwrap()
    }

    fn digest(text: &str) -> Digest {
        Digest::parse(text).unwrap()
    }

    #[test]
    fn keeps_unknown_fields_through_a_rewrite() {
        let text = format!(
            r#"{{"schemaVersion":2,"manifests":[{{"mediaType":"m","digest":"{A}","size":3,
            "platform":{{"os":"linux"}},"annotations":{{"{REF_NAME}":"v1","x":"y"}}}}],"extra":true}}"#
        );
        let mut index: ImageIndex = serde_json::from_str(&text).unwrap();
        index.set_tag(
            &tag("v2"),
            Descriptor::new("m", &digest(B), 4, Some(&tag("v2"))),
        );
        let value = serde_json::to_value(&index).unwrap();
        assert_eq!(value["extra"], true);
        assert_eq!(value["manifests"][0]["platform"]["os"], "linux");
        assert_eq!(value["manifests"][0]["annotations"]["x"], "y");
        assert_eq!(index.tags(), vec![tag("v1"), tag("v2")]);
    }

    #[test]
    fn set_tag_replaces_the_name_and_the_untagged_entry() {
        let mut index = ImageIndex::default();
        assert!(index.add_untagged(Descriptor::new("m", &digest(A), 1, None)));
        assert!(!index.add_untagged(Descriptor::new("m", &digest(A), 1, None)));
        index.set_tag(
            &tag("v1"),
            Descriptor::new("m", &digest(B), 2, Some(&tag("v1"))),
        );
        index.set_tag(
            &tag("v1"),
            Descriptor::new("m", &digest(A), 1, Some(&tag("v1"))),
        );
        assert_eq!(index.manifests.len(), 1, "{index:?}");
        assert_eq!(
            index.find_tag(&tag("v1")).unwrap().parsed_digest(),
            Some(digest(A))
        );
        assert!(index.find_digest(&digest(B)).is_none());
    }

    #[test]
    fn tags_skip_full_references_and_dedupe() {
        let mut index = ImageIndex::default();
        for (name, d) in [("b", A), ("a", B), ("b", B)] {
            index
                .manifests
                .push(Descriptor::new("m", &digest(d), 1, Some(&tag(name))));
        }
        let mut full = Descriptor::new("m", &digest(A), 1, None);
        full.annotations
            .insert(REF_NAME.to_owned(), "example.com/app:v1".to_owned());
        index.manifests.push(full);
        assert_eq!(index.tags(), vec![tag("a"), tag("b")]);
    }

    #[test]
    fn sniffs_media_types() {
        assert_eq!(
            sniff_media_type(br#"{"mediaType":"application/x","config":{}}"#).as_deref(),
            Some("application/x")
        );
        assert_eq!(
            sniff_media_type(br#"{"manifests":[]}"#).as_deref(),
            Some(media_types::OCI_INDEX)
        );
        assert_eq!(
            sniff_media_type(br#"{"config":{},"layers":[]}"#).as_deref(),
            Some(media_types::OCI_MANIFEST)
        );
        assert_eq!(sniff_media_type(b"\x1f\x8b not json"), None);
        assert_eq!(sniff_media_type(br#"{"architecture":"amd64"}"#), None);
    }

    #[test]
    fn required_digests_cover_config_layers_children_but_not_foreign_layers() {
        let manifest = format!(
            r#"{{"config":{{"digest":"{A}"}},"layers":[{{"digest":"{B}"}},{{"digest":"{A}"}},
            {{"digest":"sha256:{}","urls":["https://example.com/l"]}}],"subject":{{"digest":"{B}"}}}}"#,
            "c".repeat(64)
        );
        assert_eq!(
            required_digests(manifest.as_bytes()).unwrap(),
            vec![digest(A), digest(B)]
        );
        let index = format!(r#"{{"manifests":[{{"digest":"{B}"}}]}}"#);
        assert_eq!(required_digests(index.as_bytes()).unwrap(), vec![digest(B)]);
        assert!(required_digests(b"nope").is_err());
        assert!(required_digests(br#"{"layers":[{"digest":"md5:x"}]}"#).is_err());
        assert!(required_digests(br#"{"layers":{}}"#).is_err());
    }
}
