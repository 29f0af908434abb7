//! One image with a single large layer, for measuring a copier's peak memory on a big blob.
//!
//! The layer is an uncompressed tar (`application/vnd.oci.image.layer.v1.tar`) of random bytes:
//! a valid layer whose diff id is its digest, made in seconds where gzip of 2 GiB would take
//! minutes. It is built in memory once (this generator's memory is not what is measured) and
//! pushed with the testkit's `push`.

use std::path::PathBuf;

use anyhow::Context as _;
use bytes::Bytes;
use hoist_oci::media_types;
use hoist_testkit::{Blob, Descriptor, Endpoint, Image, Platform, layer_types, push};
use rand::rngs::StdRng;
use rand::{RngCore as _, SeedableRng as _};

use crate::listing::{self, Entry};

/// The OCI media type of an uncompressed layer.
const UNCOMPRESSED_LAYER: &str = "application/vnd.oci.image.layer.v1.tar";
/// Tar archives are made of 512-byte blocks.
const BLOCK: usize = 512;

/// What to push and where.
#[derive(Debug, clap::Args)]
pub struct BigArguments {
    /// The source registry, `127.0.0.1:PORT`.
    #[arg(long)]
    registry: String,
    /// The repository is `PREFIX/NAME` at the source.
    #[arg(long, default_value = "staging")]
    repository_prefix: String,
    /// The image name.
    #[arg(long, default_value = "big")]
    name: String,
    /// Its tag.
    #[arg(long, default_value = "v1")]
    tag: String,
    /// MiB of random content in the layer.
    #[arg(long, default_value_t = 2048)]
    size_mib: usize,
    /// A destination of the manifest, `HOST:PORT/PREFIX`; repeat for each.
    #[arg(long = "destination", required = true)]
    destinations: Vec<String>,
    /// Where big-manifest.yaml and big.txt go.
    #[arg(long)]
    out: PathBuf,
    /// Same seed, same digest.
    #[arg(long, default_value_t = 7)]
    seed: u64,
}

/// Pushes the big image and writes its files.
pub async fn generate(arguments: BigArguments) -> anyhow::Result<()> {
    std::fs::create_dir_all(&arguments.out)
        .with_context(|| format!("creating {}", arguments.out.display()))?;
    let content_size = arguments.size_mib << 20;
    let seed = arguments.seed;
    let layer = tokio::task::spawn_blocking(move || {
        Blob::inline(UNCOMPRESSED_LAYER, tar_of_random(seed, content_size))
    })
    .await?;
    let config = Blob::inline(
        layer_types::OCI_CONFIG,
        serde_json::to_vec_pretty(&serde_json::json!({
            "architecture": "amd64",
            "os": "linux",
            "created": "1970-01-01T00:00:00Z",
            // Uncompressed, so the diff id is the blob digest.
            "rootfs": {"type": "layers", "diff_ids": [layer.digest().to_string()]},
        }))?,
    );
    let descriptor = |blob: &Blob| {
        serde_json::json!({
            "mediaType": blob.descriptor.media_type,
            "digest": blob.digest().to_string(),
            "size": blob.descriptor.size,
        })
    };
    let raw_manifest = Bytes::from(serde_json::to_vec_pretty(&serde_json::json!({
        "schemaVersion": 2,
        "mediaType": media_types::OCI_MANIFEST,
        "config": descriptor(&config),
        "layers": [descriptor(&layer)],
    }))?);
    let layer_size = layer.descriptor.size;
    let image = Image {
        descriptor: Descriptor::of(media_types::OCI_MANIFEST, &raw_manifest),
        raw_manifest,
        platform: Some(Platform::linux_amd64()),
        config: Some(config),
        layers: vec![layer],
        children: Vec::new(),
    };

    let endpoint = Endpoint::http(&arguments.registry);
    let repository = format!("{}/{}", arguments.repository_prefix, arguments.name);
    push(
        &endpoint.client()?,
        &endpoint,
        &repository,
        &image,
        &[arguments.tag.as_str()],
    )
    .await
    .with_context(|| format!("pushing {repository}"))?;

    let entries = [Entry {
        name: arguments.name.clone(),
        digest: image.digest(),
        tags: vec![arguments.tag.clone()],
    }];
    let source = format!("{}/{}", arguments.registry, arguments.repository_prefix);
    listing::write_manifest(
        &arguments.out.join("big-manifest.yaml"),
        &source,
        &arguments.destinations,
        &entries,
    )?;
    listing::write(&arguments.out.join("big.txt"), &entries)?;
    println!(
        "big: {repository}@{} with one layer of {} MiB",
        image.digest(),
        layer_size >> 20
    );
    Ok(())
}

/// A tar archive holding one file of `content_size` seeded random bytes, built in place.
fn tar_of_random(seed: u64, content_size: usize) -> Bytes {
    let mut header = tar::Header::new_ustar();
    header
        .set_path("hoist-big/content.bin")
        .expect("a short relative path fits a ustar header");
    header.set_size(content_size as u64);
    header.set_mode(0o644);
    header.set_mtime(0);
    header.set_entry_type(tar::EntryType::Regular);
    header.set_cksum();
    let padded = content_size.div_ceil(BLOCK) * BLOCK;
    // Header, content padded to whole blocks, and the two zero blocks that end an archive.
    let mut archive = Vec::with_capacity(BLOCK + padded + 2 * BLOCK);
    archive.extend_from_slice(header.as_bytes());
    archive.resize(BLOCK + content_size, 0);
    StdRng::seed_from_u64(seed).fill_bytes(&mut archive[BLOCK..]);
    archive.resize(BLOCK + padded + 2 * BLOCK, 0);
    Bytes::from(archive)
}
