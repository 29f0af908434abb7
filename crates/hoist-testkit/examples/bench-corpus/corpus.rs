//! The multi-image corpus: a deterministic mix of image shapes over a few shared base layers.

use std::collections::HashMap;
use std::path::PathBuf;

use anyhow::Context as _;
use futures::{StreamExt as _, TryStreamExt as _};
use hoist_oci::Digest;
use hoist_testkit::{Endpoint, Format, Image, ImageBuilder, Layer, Platform, push, signature_for};
use rand::rngs::StdRng;
use rand::{Rng as _, SeedableRng as _};

use crate::listing::{self, Entry};

/// Base layers shared between images (each image uses one or two).
const BASE_LAYERS: u64 = 4;
/// Percent of the total size each base layer takes.
const BASE_PERCENT: u64 = 3;

/// What to generate and where to push it.
#[derive(Debug, clap::Args)]
pub struct GenerateArguments {
    /// The source registry, `127.0.0.1:PORT`.
    #[arg(long)]
    registry: String,
    /// Repositories are `PREFIX/NAME` at the source.
    #[arg(long, default_value = "staging")]
    repository_prefix: String,
    /// How many images (not counting signatures).
    #[arg(long, default_value_t = 40)]
    images: usize,
    /// About how many MiB of unique blobs the corpus holds.
    #[arg(long, default_value_t = 1200)]
    total_mib: u64,
    /// A destination of the manifest, `HOST:PORT/PREFIX`; repeat for each.
    #[arg(long = "destination", required = true)]
    destinations: Vec<String>,
    /// Where promoter-manifest.yaml and images.txt go.
    #[arg(long)]
    out: PathBuf,
    /// Same seed, same digests.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Images built and pushed at once.
    #[arg(long, default_value_t = 4)]
    jobs: usize,
}

/// One image of the corpus before it is built.
#[derive(Debug, Clone)]
struct Plan {
    position: usize,
    name: String,
    tags: Vec<String>,
    format: Format,
    /// Empty for a single-platform image.
    platforms: Vec<Platform>,
    shared: Vec<Layer>,
    /// Content size of each of the image's own layers, per platform.
    own_layers: Vec<u64>,
    signed: bool,
}

/// Pushes the corpus and writes its files.
pub async fn generate(arguments: GenerateArguments) -> anyhow::Result<()> {
    std::fs::create_dir_all(&arguments.out)
        .with_context(|| format!("creating {}", arguments.out.display()))?;
    let total = arguments.total_mib << 20;
    let seed = arguments.seed;
    let bases: Vec<Layer> = futures::future::try_join_all((0..BASE_LAYERS).map(|number| {
        tokio::task::spawn_blocking(move || {
            Layer::random(seed * 1000 + 900 + number, total * BASE_PERCENT / 100)
        })
    }))
    .await?;
    let plans = plan(&arguments, &bases);

    let endpoint = Endpoint::http(&arguments.registry);
    let client = endpoint.client()?;
    let prefix = arguments.repository_prefix.as_str();
    let mut built: Vec<(usize, Image, Option<Image>)> = futures::stream::iter(plans.clone())
        .map(|plan| {
            let (client, endpoint) = (&client, &endpoint);
            async move {
                let position = plan.position;
                let image = tokio::task::spawn_blocking({
                    let plan = plan.clone();
                    move || build(&plan, seed)
                })
                .await?;
                let repository = format!("{prefix}/{}", plan.name);
                let tags: Vec<&str> = plan.tags.iter().map(String::as_str).collect();
                push(client, endpoint, &repository, &image, &tags)
                    .await
                    .with_context(|| format!("pushing {repository}"))?;
                let signature = if plan.signed {
                    let signature = signature_for(&image, seed * 1000 + position as u64);
                    let tag = image.signature_tag();
                    push(client, endpoint, &repository, &signature, &[tag.as_str()])
                        .await
                        .with_context(|| format!("pushing {repository}:{tag}"))?;
                    Some(signature)
                } else {
                    None
                };
                eprintln!("pushed {repository}@{}", image.digest());
                anyhow::Ok((position, image, signature))
            }
        })
        .buffer_unordered(arguments.jobs.max(1))
        .try_collect()
        .await?;
    built.sort_by_key(|(position, _, _)| *position);

    let mut entries = Vec::new();
    let mut blobs: HashMap<Digest, u64> = HashMap::new();
    let mut manifests = 0;
    for (position, image, signature) in &built {
        let plan = &plans[*position];
        entries.push(Entry {
            name: plan.name.clone(),
            digest: image.digest(),
            tags: plan.tags.clone(),
        });
        if let Some(signature) = signature {
            entries.push(Entry {
                name: plan.name.clone(),
                digest: signature.digest(),
                tags: vec![image.signature_tag()],
            });
        }
        for tree in std::iter::once(image).chain(signature) {
            manifests += tree.manifests().len();
            for blob in tree.blobs() {
                blobs.insert(blob.digest(), blob.descriptor.size);
            }
        }
    }
    let source = format!("{}/{prefix}", arguments.registry);
    listing::write_manifest(
        &arguments.out.join("promoter-manifest.yaml"),
        &source,
        &arguments.destinations,
        &entries,
    )?;
    listing::write(&arguments.out.join("images.txt"), &entries)?;
    println!(
        "corpus: {} images ({} entries with signatures), {manifests} manifests, {} unique blobs, {} MiB",
        built.len(),
        entries.len(),
        blobs.len(),
        blobs.values().sum::<u64>() >> 20
    );
    Ok(())
}

/// Decides every image's shape and sizes; deterministic for a seed.
fn plan(arguments: &GenerateArguments, bases: &[Layer]) -> Vec<Plan> {
    let mut random = StdRng::seed_from_u64(arguments.seed);
    let count = arguments.images.max(1);
    // Images differ in size (weights 50..=150) like real ones do.
    let weights: Vec<u64> = (0..count).map(|_| random.random_range(50..=150)).collect();
    let weight_sum: u64 = weights.iter().sum();
    let total = arguments.total_mib << 20;
    let own_total = total.saturating_sub(BASE_LAYERS * total * BASE_PERCENT / 100);
    (0..count)
        .map(|position| {
            let (format, platforms) = match position % 5 {
                0 => (Format::Docker, two_platforms()),
                1 => (Format::Oci, {
                    let mut platforms = two_platforms();
                    platforms.push(Platform::linux("ppc64le", ""));
                    platforms
                }),
                2 => (Format::Oci, two_platforms()),
                3 => (Format::Oci, Vec::new()),
                _ => (Format::Docker, Vec::new()),
            };
            let name = if position % 7 == 6 {
                format!("tools/tool-{position:02}")
            } else {
                format!("app-{position:02}")
            };
            let mut tags = vec![format!("v1.{position}.0")];
            if position % 3 == 0 {
                tags.push(format!("v1.{position}"));
            }
            let mut shared = vec![bases[position % bases.len()].clone()];
            if position % 3 == 0 {
                shared.push(bases[(position + 1) % bases.len()].clone());
            }
            let budget = own_total * weights[position] / weight_sum;
            let per_platform = budget / platforms.len().max(1) as u64;
            let own_layers = vec![
                (per_platform * 7 / 10).max(1024),
                (per_platform * 3 / 10).max(1024),
            ];
            Plan {
                position,
                name,
                tags,
                format,
                platforms,
                shared,
                own_layers,
                signed: position % 8 == 3,
            }
        })
        .collect()
}

fn two_platforms() -> Vec<Platform> {
    vec![Platform::linux_amd64(), Platform::linux_arm64()]
}

/// Generates (and hashes) the image's layers; CPU-bound, so it runs on a blocking thread.
fn build(plan: &Plan, seed: u64) -> Image {
    let mut builder = ImageBuilder::new(seed * 1000 + plan.position as u64).format(plan.format);
    for layer in &plan.shared {
        builder = builder.shared_layer(layer);
    }
    builder = builder.layers(&plan.own_layers);
    if plan.platforms.is_empty() {
        builder.build()
    } else {
        builder.build_index(&plan.platforms)
    }
}
