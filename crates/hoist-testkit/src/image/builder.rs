//! [`ImageBuilder`]: random single- and multi-platform images, OCI or Docker flavoured, and
//! cosign-style signatures.

use bytes::Bytes;
use hoist_oci::media_types;
use rand::rngs::StdRng;
use rand::{RngCore, SeedableRng};
use serde::Serialize;

use super::layer_types::{
    COSIGN_SIMPLE_SIGNING, DOCKER_CONFIG, DOCKER_LAYER, OCI_CONFIG, OCI_LAYER,
};
use super::{Blob, Descriptor, Image, Layer, Platform};

/// Which family of media types an image uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Format {
    /// OCI image manifest and index.
    #[default]
    Oci,
    /// Docker schema 2 manifest and manifest list.
    Docker,
}

impl Format {
    fn manifest_type(self) -> &'static str {
        match self {
            Self::Oci => media_types::OCI_MANIFEST,
            Self::Docker => media_types::DOCKER_MANIFEST,
        }
    }

    fn index_type(self) -> &'static str {
        match self {
            Self::Oci => media_types::OCI_INDEX,
            Self::Docker => media_types::DOCKER_MANIFEST_LIST,
        }
    }

    fn config_type(self) -> &'static str {
        match self {
            Self::Oci => OCI_CONFIG,
            Self::Docker => DOCKER_CONFIG,
        }
    }

    fn layer_type(self) -> &'static str {
        match self {
            Self::Oci => OCI_LAYER,
            Self::Docker => DOCKER_LAYER,
        }
    }
}

#[derive(Debug, Clone)]
enum LayerChoice {
    Random(u64),
    Shared(Layer),
}

/// Builds random images from a seed: the same seed and settings give the same digests.
///
/// ```no_run
/// # use hoist_testkit::{ImageBuilder, Format, Layer};
/// let base = Layer::random(1, 4096);
/// let image = ImageBuilder::new(42)
///     .format(Format::Docker)
///     .shared_layer(&base)
///     .layer(1 << 20)
///     .build_multi_arch();
/// assert_eq!(image.children.len(), 2);
/// ```
#[derive(Debug, Clone)]
pub struct ImageBuilder {
    seed: u64,
    format: Format,
    layers: Vec<LayerChoice>,
}

impl ImageBuilder {
    /// A builder with no layers, OCI format.
    pub fn new(seed: u64) -> Self {
        Self {
            seed,
            format: Format::Oci,
            layers: Vec::new(),
        }
    }

    /// OCI (default) or Docker media types.
    pub fn format(mut self, format: Format) -> Self {
        self.format = format;
        self
    }

    /// Adds a random layer whose file holds `content_size` bytes (each platform gets its own).
    pub fn layer(mut self, content_size: u64) -> Self {
        self.layers.push(LayerChoice::Random(content_size));
        self
    }

    /// Adds random layers of these sizes.
    pub fn layers(mut self, content_sizes: &[u64]) -> Self {
        self.layers
            .extend(content_sizes.iter().copied().map(LayerChoice::Random));
        self
    }

    /// Adds an existing layer (the same blob in every image and platform that uses it).
    pub fn shared_layer(mut self, layer: &Layer) -> Self {
        self.layers.push(LayerChoice::Shared(layer.clone()));
        self
    }

    /// A single-platform (linux/amd64) image.
    pub fn build(&self) -> Image {
        self.build_platform(&Platform::linux_amd64(), 0)
    }

    /// An index (or manifest list) over linux/amd64 and linux/arm64.
    pub fn build_multi_arch(&self) -> Image {
        self.build_index(&[Platform::linux_amd64(), Platform::linux_arm64()])
    }

    /// An index (or manifest list) with one child per platform.
    pub fn build_index(&self, platforms: &[Platform]) -> Image {
        let children: Vec<Image> = platforms
            .iter()
            .enumerate()
            .map(|(position, platform)| self.build_platform(platform, position as u64 + 1))
            .collect();
        let manifests: Vec<serde_json::Value> = children
            .iter()
            .map(|child| {
                let mut entry = child.descriptor.to_json();
                if let Some(platform) = &child.platform {
                    entry["platform"] = platform.to_json();
                }
                entry
            })
            .collect();
        let media_type = self.format.index_type();
        let raw = render(&serde_json::json!({
            "schemaVersion": 2,
            "mediaType": media_type,
            "manifests": manifests,
        }));
        Image {
            descriptor: Descriptor::of(media_type, &raw),
            raw_manifest: raw,
            platform: None,
            config: None,
            layers: Vec::new(),
            children,
        }
    }

    fn build_platform(&self, platform: &Platform, salt: u64) -> Image {
        // Each platform draws its own layer seeds, so architectures share only shared layers.
        let mut seeds = StdRng::seed_from_u64(self.seed ^ salt.wrapping_mul(0x9e37_79b9_7f4a_7c15));
        let layers: Vec<Layer> = self
            .layers
            .iter()
            .map(|choice| match choice {
                LayerChoice::Random(size) => Layer::random(seeds.next_u64(), *size),
                LayerChoice::Shared(layer) => layer.clone(),
            })
            .collect();
        let diff_ids: Vec<String> = layers
            .iter()
            .map(|layer| layer.diff_id().to_string())
            .collect();
        let mut config = serde_json::json!({
            "architecture": platform.architecture,
            "os": platform.os,
            "created": "1970-01-01T00:00:00Z",
            // The seed makes configs (and so manifests) of different images differ even when
            // their layers are the same.
            "config": {"Labels": {"dev.hoist.testkit.seed": self.seed.to_string()}},
            "rootfs": {"type": "layers", "diff_ids": diff_ids},
        });
        if !platform.variant.is_empty() {
            config["variant"] = serde_json::Value::from(platform.variant.as_str());
        }
        let config = Blob::inline(self.format.config_type(), render(&config));
        let layer_type = self.format.layer_type();
        let layers: Vec<Blob> = layers
            .iter()
            .map(|layer| Blob::layer(layer_type, layer))
            .collect();
        manifest_image(
            self.format.manifest_type(),
            config,
            layers,
            Some(platform.clone()),
            None,
        )
    }
}

/// A cosign-style signature of `target`: an OCI manifest whose one layer is the simple-signing
/// payload naming `target`'s digest, with a (fake) signature annotation. Push it under
/// [`Image::signature_tag`] of the target.
pub fn signature_for(target: &Image, seed: u64) -> Image {
    let payload = render(&serde_json::json!({
        "critical": {
            "identity": {"docker-reference": "hoist.test/image"},
            "image": {"docker-manifest-digest": target.digest().to_string()},
            "type": "cosign container image signature",
        },
        "optional": {"seed": seed.to_string()},
    }));
    let mut signature = [0u8; 64];
    StdRng::seed_from_u64(seed).fill_bytes(&mut signature);
    let layer = Blob::inline(COSIGN_SIMPLE_SIGNING, payload);
    let config = Blob::inline(
        OCI_CONFIG,
        render(&serde_json::json!({
            "architecture": "",
            "os": "",
            "config": {},
            "rootfs": {"type": "layers", "diff_ids": [layer.digest().to_string()]},
        })),
    );
    let annotations = serde_json::json!({
        "dev.cosignproject.cosign/signature": base64(&signature),
    });
    manifest_image(
        media_types::OCI_MANIFEST,
        config,
        vec![layer],
        None,
        Some(annotations),
    )
}

fn manifest_image(
    media_type: &str,
    config: Blob,
    layers: Vec<Blob>,
    platform: Option<Platform>,
    layer_annotations: Option<serde_json::Value>,
) -> Image {
    let layer_entries: Vec<serde_json::Value> = layers
        .iter()
        .map(|blob| {
            let mut entry = blob.descriptor.to_json();
            if let Some(annotations) = &layer_annotations {
                entry["annotations"] = annotations.clone();
            }
            entry
        })
        .collect();
    let raw = render(&serde_json::json!({
        "schemaVersion": 2,
        "mediaType": media_type,
        "config": config.descriptor.to_json(),
        "layers": layer_entries,
    }));
    Image {
        descriptor: Descriptor::of(media_type, &raw),
        raw_manifest: raw,
        platform,
        config: Some(config),
        layers,
        children: Vec::new(),
    }
}

/// Serialises with a three-space indent: no tool writes JSON like that, so a copier that
/// re-serialises a manifest instead of copying its bytes changes its digest and fails tests.
fn render(value: &serde_json::Value) -> Bytes {
    let mut out = Vec::new();
    let formatter = serde_json::ser::PrettyFormatter::with_indent(b"   ");
    let mut serializer = serde_json::Serializer::with_formatter(&mut out, formatter);
    value
        .serialize(&mut serializer)
        .expect("serialising a JSON value into memory cannot fail");
    Bytes::from(out)
}

/// Standard base64 with padding (cosign's annotation encoding).
fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let group = chunk.iter().enumerate().fold(0u32, |group, (index, byte)| {
            group | u32::from(*byte) << (16 - 8 * index)
        });
        for position in 0..4 {
            if position <= chunk.len() {
                out.push(char::from(
                    ALPHABET[(group >> (18 - 6 * position) & 63) as usize],
                ));
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use hoist_oci::Digest;

    use super::*;

    #[test]
    fn encodes_base64() {
        assert_eq!(base64(b""), "");
        assert_eq!(base64(b"f"), "Zg==");
        assert_eq!(base64(b"fo"), "Zm8=");
        assert_eq!(base64(b"foobar"), "Zm9vYmFy");
    }

    #[test]
    fn builds_consistent_multi_arch_images() {
        let shared = Layer::random(99, 1000);
        let image = ImageBuilder::new(5)
            .shared_layer(&shared)
            .layer(2000)
            .format(Format::Docker)
            .build_multi_arch();
        assert_eq!(image.media_type(), media_types::DOCKER_MANIFEST_LIST);
        assert_eq!(image.digest(), Digest::of(&image.raw_manifest));
        let index: serde_json::Value = serde_json::from_slice(&image.raw_manifest).unwrap();
        assert_eq!(index["manifests"][1]["platform"]["architecture"], "arm64");
        let [amd64, arm64] = &image.children[..] else {
            panic!("two children expected")
        };
        assert_eq!(amd64.layers[0].digest(), shared.digest());
        assert_eq!(arm64.layers[0].digest(), shared.digest());
        assert_ne!(amd64.layers[1].digest(), arm64.layers[1].digest());
        // config x2, shared layer once, own layer x2.
        assert_eq!(image.blobs().len(), 5);
        assert_eq!(image.manifests().len(), 3);
        // Same seed, same digests.
        let again = ImageBuilder::new(5)
            .shared_layer(&shared)
            .layer(2000)
            .format(Format::Docker)
            .build_multi_arch();
        assert_eq!(again.digest(), image.digest());
    }

    #[test]
    fn signs_an_image() {
        let image = ImageBuilder::new(1).layer(10).build();
        let signature = signature_for(&image, 2);
        assert_eq!(
            image.signature_tag(),
            format!("sha256-{}.sig", image.digest().hex())
        );
        let payload = signature.layers[0].to_bytes();
        assert!(
            String::from_utf8_lossy(&payload).contains(&image.digest().to_string()),
            "the payload names the signed digest"
        );
    }
}
