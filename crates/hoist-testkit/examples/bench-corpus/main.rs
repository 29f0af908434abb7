//! The corpus generator of `ci/bench-promote.sh`: pushes seeded random images to a local registry
//! and writes the promoter manifest and image list that hoist and skopeo then copy.
//!
//! - `generate`: about `--images` images totalling about `--total-mib` unique bytes: multi-arch
//!   OCI indexes (2 and 3 platforms), Docker manifest lists, single-platform OCI and Docker
//!   images, base layers shared between many images, and cosign `.sig` tags for some.
//! - `big`: one image whose single layer holds `--size-mib` bytes (an uncompressed tar, so making
//!   2 GiB costs seconds, not minutes of gzip), for the peak-RSS phase.
//! - `validate`: checks that every image of a list was copied faithfully to a destination (the
//!   testkit validator: identical manifest bytes, every blob present with the right sha256) and
//!   that its tags point at it.
//! - `proxy`: the fault proxy in front of one registry, playing a wide-area link (`--wan`).
//!
//! Each mode writes `NAME DIGEST TAG...` lines (the skopeo side reads them) and, for `generate`
//! and `big`, a plain hoist manifest naming the source and the destinations.

mod big;
mod corpus;
mod listing;
mod proxy;

use std::path::PathBuf;

use anyhow::Context as _;
use clap::{Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(about = "Generates and checks the promotion benchmark corpus")]
struct Arguments {
    #[command(subcommand)]
    mode: Mode,
}

#[derive(Debug, Subcommand)]
enum Mode {
    /// Pushes the multi-image corpus and writes promoter-manifest.yaml and images.txt.
    Generate(corpus::GenerateArguments),
    /// Pushes one image with a single large layer and writes big-manifest.yaml and big.txt.
    Big(big::BigArguments),
    /// Validates the copies of every image listed in a file at one destination.
    Validate(ValidateArguments),
    /// Plays a wide-area link in front of one registry until killed.
    Proxy(proxy::ProxyArguments),
}

/// Where the copies are and which images to check.
#[derive(Debug, clap::Args)]
struct ValidateArguments {
    /// The source registry, `127.0.0.1:PORT`.
    #[arg(long)]
    source: String,
    /// Repository prefix at the source.
    #[arg(long, default_value = "staging")]
    source_prefix: String,
    /// The destination registry, `127.0.0.1:PORT`.
    #[arg(long)]
    destination: String,
    /// Repository prefix at the destination.
    #[arg(long, default_value = "prod")]
    destination_prefix: String,
    /// The image list (`NAME DIGEST TAG...` lines) that `generate` or `big` wrote.
    #[arg(long)]
    list: PathBuf,
    /// Check only this many images, spread evenly over the list (all when absent).
    #[arg(long)]
    sample: Option<usize>,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    match Arguments::parse().mode {
        Mode::Generate(arguments) => corpus::generate(arguments).await,
        Mode::Big(arguments) => big::generate(arguments).await,
        Mode::Validate(arguments) => validate(arguments).await,
        Mode::Proxy(arguments) => proxy::run(arguments).await,
    }
}

async fn validate(arguments: ValidateArguments) -> anyhow::Result<()> {
    let entries = listing::read(&arguments.list)?;
    let chosen: Vec<&listing::Entry> = match arguments.sample {
        Some(count) if count > 0 && count < entries.len() => (0..count)
            .map(|position| &entries[position * entries.len() / count])
            .collect(),
        _ => entries.iter().collect(),
    };
    let source = hoist_testkit::Endpoint::http(&arguments.source);
    let destination = hoist_testkit::Endpoint::http(&arguments.destination);
    let (mut manifests, mut blob_bytes) = (0, 0);
    for entry in &chosen {
        let source_repository = format!("{}/{}", arguments.source_prefix, entry.name);
        let destination_repository = format!("{}/{}", arguments.destination_prefix, entry.name);
        let report = hoist_testkit::validate_copy(
            &source,
            &source_repository,
            &destination,
            &destination_repository,
            entry.digest,
        )
        .await
        .with_context(|| {
            format!(
                "{}/{destination_repository}@{} is not a faithful copy",
                arguments.destination, entry.digest
            )
        })?;
        for tag in &entry.tags {
            hoist_testkit::validate_tag(&destination, &destination_repository, tag, entry.digest)
                .await
                .with_context(|| {
                    format!("{}/{destination_repository}:{tag}", arguments.destination)
                })?;
        }
        manifests += report.manifests.len();
        blob_bytes += report.blob_bytes;
    }
    println!(
        "valid: {} images at {}/{} ({manifests} manifests, {} MiB of blobs hashed)",
        chosen.len(),
        arguments.destination,
        arguments.destination_prefix,
        blob_bytes >> 20
    );
    Ok(())
}
