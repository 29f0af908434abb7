//! Every image the manifests promote, read once: its manifests and its distinct blobs.
//!
//! Mirroring and auditing need the blob list of *every* promoted image, not only of those a run
//! copies. Each digest is read from its source; when the source lost it, from any destination
//! that has it. Reading by digest verifies the bytes, so any copy is as good as the source's.

use std::collections::BTreeMap;

use futures::StreamExt as _;
use hoist_oci::{Digest, RegistryName, RepositoryPath};
use hoist_plan::EdgeSet;

use crate::inventory::{Measured, measure};
use crate::plan::{Problem, SourceImage};
use crate::stores::{Located, Stores};

/// One promoted image (a digest, whatever the number of destinations and tags).
#[derive(Debug, Clone)]
pub struct PromotedImage {
    /// Where the manifests promote it from (the first origin naming the digest).
    pub source: SourceImage,
    /// The image (manifest or index).
    pub digest: Digest,
    /// Where it was read, and where its blobs stream from: the source, or a destination when the
    /// source lost it.
    pub from: Located,
    /// Its manifests and blobs.
    pub measured: Measured,
    /// The manifest line that promotes it (`file:line:column`).
    pub location: String,
}

/// Where one digest could be read from: its source first, then its destinations.
struct Candidates {
    source: SourceImage,
    location: String,
    others: Vec<(RegistryName, RepositoryPath)>,
}

/// Reads every image the edges promote, `concurrency` at a time, sorted by source image and
/// digest. A digest no store has is a [`Problem::Lost`]; an unreadable one [`Problem::Unreadable`].
pub async fn read_images(
    edges: &EdgeSet,
    stores: &Stores,
    concurrency: usize,
) -> (Vec<PromotedImage>, Vec<Problem>) {
    let mut candidates: BTreeMap<Digest, Candidates> = BTreeMap::new();
    for edge in &edges.edges {
        let origin = edges.origin(edge);
        let destination = edges.destination(edge);
        let entry = candidates
            .entry(origin.digest)
            .or_insert_with(|| Candidates {
                source: SourceImage {
                    registry: origin.source.clone(),
                    image: origin.image.clone(),
                },
                location: origin.location.to_string(),
                others: Vec::new(),
            });
        let other = (destination.registry.clone(), destination.image.clone());
        if !entry.others.contains(&other) {
            entry.others.push(other);
        }
    }
    let results: Vec<Result<PromotedImage, Problem>> = futures::stream::iter(candidates)
        .map(|(digest, candidates)| read_one(stores, digest, candidates))
        .buffer_unordered(concurrency.max(1))
        .collect()
        .await;
    let mut images = Vec::new();
    let mut problems = Vec::new();
    for result in results {
        match result {
            Ok(image) => images.push(image),
            Err(problem) => problems.push(problem),
        }
    }
    images.sort_by(|a, b| (&a.source, a.digest).cmp(&(&b.source, b.digest)));
    problems.sort_by_key(ToString::to_string);
    (images, problems)
}

async fn read_one(
    stores: &Stores,
    digest: Digest,
    candidates: Candidates,
) -> Result<PromotedImage, Problem> {
    let source = &candidates.source;
    let places = std::iter::once((source.registry.clone(), source.image.clone()))
        .chain(candidates.others.iter().cloned());
    let mut first_error = None;
    for (registry, image) in places {
        let attempt = async {
            let located = stores.locate(&registry, &image).await?;
            let measured = measure(&located, &digest).await?;
            Ok::<_, hoist_store::StoreError>(measured.map(|measured| (located, measured)))
        }
        .await;
        match attempt {
            Ok(Some((from, measured))) => {
                return Ok(PromotedImage {
                    source: source.clone(),
                    digest,
                    from,
                    measured,
                    location: candidates.location.clone(),
                });
            }
            Ok(None) => {}
            Err(error) => {
                tracing::warn!(%registry, %image, %digest, "cannot read: {error}");
                first_error.get_or_insert((registry, image, error.to_string()));
            }
        }
    }
    Err(match first_error {
        Some((registry, image, reason)) => Problem::Unreadable {
            registry,
            image,
            reason: format!("reading {digest}: {reason}"),
        },
        None => Problem::Lost {
            registry: source.registry.clone(),
            image: source.image.clone(),
            digest,
            location: candidates.location.clone(),
        },
    })
}
