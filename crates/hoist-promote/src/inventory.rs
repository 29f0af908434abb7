//! Reading what the registries hold, and turning it into a [`Plan`].
//!
//! Only the repositories the edges touch are read, and only what the plan needs:
//!
//! - a **destination** repository: the digest of each wanted tag, then whether each wanted digest
//!   no tag resolved is there. Stores whose tag listing carries digests (GCR and Artifact Registry,
//!   OCI layouts) are listed once per repository; others get one `HEAD` per wanted tag, which on a
//!   registry without the `manifest` map costs fewer requests than a listing plus a `HEAD` per tag.
//! - a **source** repository: only for images that must be copied: their manifests (an index
//!   with its children) by digest, to find a lost digest and to count blobs and bytes.
//!
//! The policy gate runs here too (`hoist-gate`, the same judgement as `check`), so the plan
//! printed by a dry run already holds every refusal.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use chrono::NaiveDate;
use futures::{StreamExt as _, TryStreamExt as _};
use hoist_copy::manifest::references;
use hoist_gate::{Gate, Verdict};
use hoist_oci::{Digest, Reference, Tag};
use hoist_plan::EdgeSet;
use hoist_policy::PolicySet;
use hoist_store::{StoreError, StoreErrorKind};

use crate::plan::{
    Action, ImageSize, Plan, Problem, RepositoryState, SourceImage, Step, Wanted, classify,
};
use crate::stores::{Located, Stores};

/// Requests of one repository's inventory in flight at once (the host's own limit still applies).
const REQUESTS_PER_REPOSITORY: usize = 8;

/// How a plan is made.
#[derive(Debug, Clone)]
pub struct PlanOptions {
    /// Repositories read at once.
    pub concurrency: usize,
    /// The day freeze rules are evaluated for.
    pub date: NaiveDate,
}

/// A plan, with what it learned about the images to copy.
#[derive(Debug, Clone, Default)]
pub struct Planned {
    /// The plan.
    pub plan: Plan,
    /// For each image to copy: its distinct blobs (digest, size).
    pub blobs: HashMap<Digest, Vec<(Digest, u64)>>,
}

/// Reads the destinations and the sources the edges need and returns the plan, policy
/// refusals included. Never writes.
pub async fn plan(
    edges: &EdgeSet,
    stores: &Stores,
    policies: &PolicySet,
    options: &PlanOptions,
) -> Planned {
    let wanted = Wanted::collect(edges);
    let concurrency = options.concurrency.max(1);
    // The one gate, shared with `check`: the same rules decide the same way.
    let gate = Gate::new(policies, options.date);

    // Per destination: the tags and digests wanted there.
    let mut per_destination: BTreeMap<u32, (BTreeSet<Tag>, BTreeSet<Digest>)> = BTreeMap::new();
    for item in &wanted {
        let entry = per_destination.entry(item.destination).or_default();
        entry.0.extend(
            item.tags
                .iter()
                .map(|&tag| edges.tags[tag as usize].clone()),
        );
        entry.1.insert(item.digest);
    }
    let states: HashMap<u32, Result<RepositoryState, StoreError>> =
        futures::stream::iter(per_destination)
            .map(|(id, (tags, digests))| async move {
                let destination = &edges.destinations[id as usize];
                let state = async {
                    let located = stores
                        .locate(&destination.registry, &destination.image)
                        .await?;
                    read_state(&located, &tags, &digests).await
                }
                .await;
                (id, state)
            })
            .buffer_unordered(concurrency)
            .collect()
            .await;

    let mut planned = Planned::default();
    let mut problems = Vec::new();
    let mut copies: BTreeMap<(SourceImage, Digest), Vec<usize>> = BTreeMap::new();
    let mut reported_unreadable = BTreeSet::new();
    for item in &wanted {
        let destination = &edges.destinations[item.destination as usize];
        let origin = &edges.origins[item.origin as usize];
        let state = match &states[&item.destination] {
            Ok(state) => state,
            Err(error) => {
                if reported_unreadable.insert(item.destination) {
                    problems.push(Problem::Unreadable {
                        registry: destination.registry.clone(),
                        image: destination.image.clone(),
                        reason: error.to_string(),
                    });
                }
                continue;
            }
        };
        let tags: Vec<Tag> = item
            .tags
            .iter()
            .map(|&tag| edges.tags[tag as usize].clone())
            .collect();
        let classified = classify(item.digest, &tags, state);
        for (tag, current) in classified.moves {
            let allowed_by = match gate.tag_move(&format!("{destination}:{tag}")) {
                Verdict::Allowed { rule, .. } => Some(rule),
                Verdict::Refused => None,
            };
            problems.push(Problem::TagMove {
                registry: destination.registry.clone(),
                image: destination.image.clone(),
                tag,
                current,
                wanted: item.digest,
                location: origin.location.to_string(),
                allowed_by,
            });
        }
        let source = SourceImage {
            registry: origin.source.clone(),
            image: origin.image.clone(),
        };
        if classified.action == Action::Copy {
            copies
                .entry((source.clone(), item.digest))
                .or_default()
                .push(planned.plan.steps.len());
        }
        planned.plan.steps.push(Step {
            registry: destination.registry.clone(),
            image: destination.image.clone(),
            digest: item.digest,
            action: classified.action,
            tags: classified.tags,
            tags_present: classified.tags_present,
            source,
            size: None,
            location: origin.location.to_string(),
        });
    }

    // The sources, once per image to copy whatever the number of destinations.
    let sizes: Vec<(CopyKey, Result<Option<Measured>, StoreError>)> =
        futures::stream::iter(copies.keys().cloned())
            .map(|(source, digest)| async move {
                let size = async {
                    let located = stores.locate(&source.registry, &source.image).await?;
                    measure(&located, &digest).await
                }
                .await;
                ((source, digest), size)
            })
            .buffer_unordered(concurrency)
            .collect()
            .await;
    let mut sizes: BTreeMap<_, _> = sizes.into_iter().collect();
    for (key, steps) in &copies {
        let (source, digest) = key;
        let first = &planned.plan.steps[steps[0]];
        match sizes.remove(key).expect("every copy was measured") {
            Ok(Some(measured)) => {
                for &index in steps {
                    planned.plan.steps[index].size = Some(measured.size);
                }
                planned.blobs.insert(*digest, measured.blobs);
            }
            Ok(None) => problems.push(Problem::Lost {
                registry: source.registry.clone(),
                image: source.image.clone(),
                digest: *digest,
                location: first.location.clone(),
            }),
            Err(error) => problems.push(Problem::Unreadable {
                registry: source.registry.clone(),
                image: source.image.clone(),
                reason: format!("reading {digest}: {error}"),
            }),
        }
    }

    // The policy gate: every write is checked against every rule, before anything is written.
    for step in planned.plan.writes() {
        let destination = format!("{}/{}", step.registry, step.image);
        if let Some(refusal) = gate.write(&destination) {
            problems.push(Problem::Refused {
                registry: step.registry.clone(),
                image: step.image.clone(),
                digest: step.digest,
                rule: refusal.rule,
                reason: refusal.reason,
            });
        }
    }
    planned.plan.problems = problems;
    planned
}

/// Reads the wanted tags and digests of one destination repository.
async fn read_state(
    located: &Located,
    tags: &BTreeSet<Tag>,
    digests: &BTreeSet<Digest>,
) -> Result<RepositoryState, StoreError> {
    let store = &located.store;
    let repository = located.repository.as_str();
    let mut state = RepositoryState::default();

    let to_head: Vec<Tag> = if tags.is_empty() {
        Vec::new()
    } else if store.lists_tag_digests() {
        let listing = store.list_tags_with_digests(repository).await?;
        match listing.digests {
            Some(map) => {
                state.tags = map
                    .into_iter()
                    .filter(|(tag, _)| tags.contains(tag))
                    .collect();
                Vec::new()
            }
            None => listing
                .tags
                .into_iter()
                .filter(|tag| tags.contains(tag))
                .collect(),
        }
    } else {
        tags.iter().cloned().collect()
    };
    let heads: Vec<(Tag, Option<Digest>)> = futures::stream::iter(to_head)
        .map(|tag| async move {
            let head = store
                .head_manifest(repository, &Reference::Tag(tag.clone()))
                .await?;
            Ok::<_, StoreError>((tag, head.map(|head| head.digest)))
        })
        .buffer_unordered(REQUESTS_PER_REPOSITORY)
        .try_collect()
        .await?;
    state.tags.extend(
        heads
            .into_iter()
            .filter_map(|(tag, digest)| Some((tag, digest?))),
    );

    let unresolved: Vec<Digest> = digests
        .iter()
        .filter(|digest| !state.has(digest))
        .copied()
        .collect();
    let present: Vec<Digest> = futures::stream::iter(unresolved)
        .map(|digest| async move {
            let head = store
                .head_manifest(repository, &Reference::Digest(digest))
                .await?;
            Ok::<_, StoreError>(head.map(|_| digest))
        })
        .buffer_unordered(REQUESTS_PER_REPOSITORY)
        .try_filter_map(|digest| async move { Ok(digest) })
        .try_collect()
        .await?;
    state.digests.extend(present);
    Ok(state)
}

/// One image to copy: where from, which digest.
type CopyKey = (SourceImage, Digest);

/// What an image is made of, read from its manifests.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Measured {
    /// Its size.
    pub size: ImageSize,
    /// Every manifest digest: the root first, then the children of indexes.
    pub manifests: Vec<Digest>,
    /// Its distinct blobs (digest, size), sorted by digest.
    pub blobs: Vec<(Digest, u64)>,
}

/// Reads an image's manifests (an index with its children) from `located`, by digest, so every
/// byte read is verified; `None` when the store does not have the root. Blobs are not touched.
pub async fn measure(located: &Located, digest: &Digest) -> Result<Option<Measured>, StoreError> {
    let store = &located.store;
    let repository = located.repository.as_str();
    let Some(root) = store
        .fetch_manifest(repository, &Reference::Digest(*digest))
        .await?
    else {
        return Ok(None);
    };
    let invalid = |subject: Digest, message: String| {
        StoreError::new(
            StoreErrorKind::Rejected,
            format!("{}/{repository}@{subject}", store.describe()),
            format!("not a manifest hoist can read: {message}"),
        )
    };
    // A child listed twice (or by two indexes) is read once: a crafted index listing the same
    // nested index twice at every level would otherwise cost 2^depth requests.
    let mut seen: std::collections::HashSet<Digest> = std::collections::HashSet::from([*digest]);
    let mut manifests = vec![root];
    let mut digests = Vec::new();
    let mut size = ImageSize::default();
    let mut blobs: BTreeMap<Digest, u64> = BTreeMap::new();
    while let Some(manifest) = manifests.pop() {
        size.manifests += 1;
        digests.push(manifest.digest);
        let found = references(&manifest.media_type, &manifest.bytes)
            .map_err(|message| invalid(manifest.digest, message))?;
        for blob in found.blobs {
            blobs.insert(blob.digest, blob.size);
        }
        let unseen: Vec<_> = found
            .children
            .into_iter()
            .filter(|child| seen.insert(child.digest))
            .collect();
        let children: Vec<_> = futures::stream::iter(unseen)
            .map(|child| async move {
                store
                    .fetch_manifest(repository, &Reference::Digest(child.digest))
                    .await?
                    .ok_or_else(|| {
                        StoreError::new(
                            StoreErrorKind::NotFound,
                            format!("{}/{repository}@{}", store.describe(), child.digest),
                            "a child manifest of the index is missing from the source",
                        )
                    })
            })
            .buffer_unordered(REQUESTS_PER_REPOSITORY)
            .try_collect()
            .await?;
        manifests.extend(children);
    }
    size.blobs = blobs.len() as u64;
    size.bytes = blobs.values().sum();
    Ok(Some(Measured {
        size,
        manifests: digests,
        blobs: blobs.into_iter().collect(),
    }))
}
