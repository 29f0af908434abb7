//! Random images: layers, config blobs, manifests, indexes and signatures, with their descriptors.
//!
//! An [`Image`] is a tree: an index has children (one [`Image`] per platform) and no blobs; a
//! single-platform manifest has a config blob and layers. Every node keeps its raw manifest bytes
//! and [`Descriptor`], so tests can assert digests and sizes without parsing anything.

mod builder;
mod layer;

use bytes::Bytes;
use hoist_oci::{Digest, media_types};

pub use builder::{Format, ImageBuilder, signature_for};
pub use layer::Layer;

/// Layer media types, by manifest format.
pub mod layer_types {
    /// OCI gzip'd layer.
    pub const OCI_LAYER: &str = "application/vnd.oci.image.layer.v1.tar+gzip";
    /// OCI image config.
    pub const OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
    /// Docker gzip'd layer.
    pub const DOCKER_LAYER: &str = "application/vnd.docker.image.rootfs.diff.tar.gzip";
    /// Docker image config.
    pub const DOCKER_CONFIG: &str = "application/vnd.docker.container.image.v1+json";
    /// Docker layer that registries do not store (its `urls` say where it lives).
    pub const DOCKER_FOREIGN_LAYER: &str =
        "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip";
    /// OCI layer that registries may not store.
    pub const OCI_NONDISTRIBUTABLE_LAYER: &str =
        "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip";
    /// The payload layer of a cosign signature.
    pub const COSIGN_SIMPLE_SIGNING: &str = "application/vnd.dev.cosign.simplesigning.v1+json";
}

/// What a manifest says about a blob or child manifest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Descriptor {
    /// Its media type.
    pub media_type: String,
    /// The sha256 of its bytes.
    pub digest: Digest,
    /// Its length in bytes.
    pub size: u64,
}

impl Descriptor {
    /// The descriptor of `bytes`.
    pub fn of(media_type: &str, bytes: &[u8]) -> Self {
        Self {
            media_type: media_type.to_owned(),
            digest: Digest::of(bytes),
            size: bytes.len() as u64,
        }
    }

    pub(crate) fn to_json(&self) -> serde_json::Value {
        serde_json::json!({
            "mediaType": self.media_type,
            "digest": self.digest.to_string(),
            "size": self.size,
        })
    }
}

/// An OS and CPU architecture (and variant) an image runs on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Platform {
    /// `linux`.
    pub os: String,
    /// `amd64`, `arm64`, ...
    pub architecture: String,
    /// `v8` for arm64, empty when none.
    pub variant: String,
}

impl Platform {
    /// `linux/amd64`.
    pub fn linux_amd64() -> Self {
        Self::linux("amd64", "")
    }

    /// `linux/arm64/v8`.
    pub fn linux_arm64() -> Self {
        Self::linux("arm64", "v8")
    }

    /// `linux/ARCHITECTURE[/VARIANT]`.
    pub fn linux(architecture: &str, variant: &str) -> Self {
        Self {
            os: "linux".to_owned(),
            architecture: architecture.to_owned(),
            variant: variant.to_owned(),
        }
    }

    pub(crate) fn to_json(&self) -> serde_json::Value {
        let mut value = serde_json::json!({
            "architecture": self.architecture,
            "os": self.os,
        });
        if !self.variant.is_empty() {
            value["variant"] = serde_json::Value::from(self.variant.as_str());
        }
        value
    }
}

/// A blob's bytes: small ones in memory, random layers regenerated on demand.
#[derive(Debug, Clone)]
pub enum BlobContent {
    /// Bytes held in memory (configs, signature payloads).
    Inline(Bytes),
    /// A generated layer.
    Generated(Layer),
}

/// A blob and its descriptor.
#[derive(Debug, Clone)]
pub struct Blob {
    /// What manifests say about it.
    pub descriptor: Descriptor,
    /// Where its bytes come from.
    pub content: BlobContent,
}

impl Blob {
    /// An in-memory blob.
    pub fn inline(media_type: &str, bytes: impl Into<Bytes>) -> Self {
        let bytes = bytes.into();
        Self {
            descriptor: Descriptor::of(media_type, &bytes),
            content: BlobContent::Inline(bytes),
        }
    }

    /// A generated layer under `media_type`.
    pub fn layer(media_type: &str, layer: &Layer) -> Self {
        Self {
            descriptor: Descriptor {
                media_type: media_type.to_owned(),
                digest: layer.digest(),
                size: layer.size(),
            },
            content: BlobContent::Generated(layer.clone()),
        }
    }

    /// The digest.
    pub fn digest(&self) -> Digest {
        self.descriptor.digest
    }

    /// The whole content in memory (generates layers; mind their size).
    pub fn to_bytes(&self) -> Bytes {
        match &self.content {
            BlobContent::Inline(bytes) => bytes.clone(),
            BlobContent::Generated(layer) => layer.to_bytes(),
        }
    }
}

/// A manifest (with its config and layers) or an index (with its children).
#[derive(Debug, Clone)]
pub struct Image {
    /// The manifest's own descriptor: media type, digest and size of [`Image::raw_manifest`].
    pub descriptor: Descriptor,
    /// The exact manifest bytes that are pushed.
    pub raw_manifest: Bytes,
    /// The platform, for a single-platform image.
    pub platform: Option<Platform>,
    /// The config blob (`None` for an index).
    pub config: Option<Blob>,
    /// The layers, in manifest order (empty for an index).
    pub layers: Vec<Blob>,
    /// The per-platform manifests of an index (empty for a single manifest).
    pub children: Vec<Image>,
}

impl Image {
    /// The manifest digest.
    pub fn digest(&self) -> Digest {
        self.descriptor.digest
    }

    /// The manifest media type.
    pub fn media_type(&self) -> &str {
        &self.descriptor.media_type
    }

    /// Whether this is an index or manifest list.
    pub fn is_index(&self) -> bool {
        media_types::is_index(&self.descriptor.media_type)
    }

    /// This node's own blobs: config, then layers.
    pub fn own_blobs(&self) -> impl Iterator<Item = &Blob> {
        self.config.iter().chain(&self.layers)
    }

    /// Every blob of the tree, each digest once, in push order (children first).
    pub fn blobs(&self) -> Vec<&Blob> {
        let mut seen = std::collections::HashSet::new();
        self.manifests()
            .into_iter()
            .flat_map(Image::own_blobs)
            .filter(|blob| seen.insert(blob.digest()))
            .collect()
    }

    /// Every manifest of the tree in push order: children before their index.
    pub fn manifests(&self) -> Vec<&Image> {
        let mut all: Vec<&Image> = self.children.iter().flat_map(Image::manifests).collect();
        all.push(self);
        all
    }

    /// The cosign tag for a signature of this image: `sha256-<hex>.sig`.
    pub fn signature_tag(&self) -> String {
        format!("{}.sig", self.digest().tag_prefix())
    }
}
