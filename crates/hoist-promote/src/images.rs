//! Every image the manifests promote, read once: its manifests and its distinct blobs.
//!
//! Mirroring and auditing need the blob list of *every* promoted image, not only of those a run
//! copies. Each digest is read from its source; when the source lost it, from any destination
//! that has it. Reading by digest verifies the bytes, so any copy is as good as the source's.
//!
//! The blobs of what is attached to an image travel with it: the cosign tags
//! `sha256-<hex>.sig/.att/.sbom` and the referrers fallback tag of its repository, and the
//! referrers the store's referrers API lists. registry.k8s.io redirects their blob requests to the
//! mirrors like any other, so mirrors hold (and audits check) them too.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;

use futures::StreamExt as _;
use hoist_oci::{Digest, Reference, RegistryName, RepositoryPath, Tag};
use hoist_plan::EdgeSet;
use hoist_store::StoreError;

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
    let tags = TagCache::default();
    let tags = &tags;
    let results: Vec<Result<PromotedImage, Problem>> = futures::stream::iter(candidates)
        .map(|(digest, candidates)| read_one(stores, digest, candidates, tags))
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

/// Tag listings by (store, repository), read once per run.
type TagCache = tokio::sync::Mutex<HashMap<String, Arc<BTreeSet<Tag>>>>;

/// Tag suffixes of things attached to `sha256-<hex>`: cosign's, and the referrers fallback tag.
const ATTACHED_SUFFIXES: [&str; 4] = [".sig", ".att", ".sbom", ""];

async fn read_one(
    stores: &Stores,
    digest: Digest,
    candidates: Candidates,
    tags: &TagCache,
) -> Result<PromotedImage, Problem> {
    let source = &candidates.source;
    let places = std::iter::once((source.registry.clone(), source.image.clone()))
        .chain(candidates.others.iter().cloned());
    let mut first_error = None;
    for (registry, image) in places {
        let attempt = async {
            let located = stores.locate(&registry, &image).await?;
            let Some(mut measured) = measure(&located, &digest).await? else {
                return Ok(None);
            };
            add_attached(&located, &digest, &mut measured, tags).await?;
            Ok::<_, StoreError>(Some((located, measured)))
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

/// Adds to `measured.blobs` the blobs of everything attached to `digest` in `located`.
async fn add_attached(
    located: &Located,
    digest: &Digest,
    measured: &mut Measured,
    cache: &TagCache,
) -> Result<(), StoreError> {
    let (store, repository) = (&located.store, located.repository.as_str());
    let listed = {
        let key = format!("{}/{repository}", store.describe());
        let mut cache = cache.lock().await;
        match cache.get(&key) {
            Some(tags) => tags.clone(),
            None => {
                let tags: Arc<BTreeSet<Tag>> =
                    Arc::new(store.list_tags(repository).await?.into_iter().collect());
                cache.insert(key, tags.clone());
                tags
            }
        }
    };
    let mut attached: BTreeSet<Digest> = BTreeSet::new();
    for suffix in ATTACHED_SUFFIXES {
        let Ok(tag) = Tag::parse(&format!("{}{suffix}", digest.tag_prefix())) else {
            continue;
        };
        if !listed.contains(&tag) {
            continue;
        }
        if let Some(head) = store
            .head_manifest(repository, &Reference::Tag(tag))
            .await?
        {
            attached.insert(head.digest);
        }
    }
    if let Some(referrers) = store.referrers(repository, digest).await? {
        attached.extend(referrers.into_iter().map(|referrer| referrer.digest));
    }
    let mut blobs: BTreeMap<Digest, u64> = measured.blobs.iter().copied().collect();
    for artifact in attached {
        // Deleted since the listing: nothing attached any more.
        if let Some(extra) = measure(located, &artifact).await? {
            blobs.extend(extra.blobs);
        }
    }
    measured.blobs = blobs.into_iter().collect();
    Ok(())
}
