//! Reading what the registries hold, and turning it into a [`Plan`].
//!
//! Only the repositories the edges touch are read, and only what the plan needs:
//!
//! - a **destination** repository: the digest of each wanted tag, then whether each wanted digest
//!   no tag resolved is there. Stores whose tag listing carries digests (GCR and Artifact Registry,
//!   OCI layouts) are listed once per repository, and the listing's untagged manifests count as
//!   present too, so a reconcile where everything is there costs one listing per repository;
//!   others get one `HEAD` per wanted tag, which on a registry without the `manifest` map costs
//!   fewer requests than a listing plus a `HEAD` per tag. A wanted digest nothing resolved gets a
//!   `HEAD` (a listing can be partial; only a `HEAD` proves a manifest absent).
//! - a **source** repository: only for images that must be copied: their manifests (an index
//!   with its children) by digest, to find a lost digest and to count blobs and bytes.
//!
//! The policy gate runs here too (`hoist-gate`, the same judgement as `check`), so the plan
//! printed by a dry run already holds every refusal.

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::sync::Arc;

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

/// Told (repositories read, repositories to read) as the inventory of the destinations goes.
pub type InventoryProgress = Arc<dyn Fn(usize, usize) + Send + Sync>;

/// How a plan is made.
#[derive(Clone)]
pub struct PlanOptions {
    /// Repositories read at once.
    pub concurrency: usize,
    /// The day freeze rules are evaluated for.
    pub date: NaiveDate,
    /// Called after each destination repository is read.
    pub progress: Option<InventoryProgress>,
}

impl std::fmt::Debug for PlanOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PlanOptions")
            .field("concurrency", &self.concurrency)
            .field("date", &self.date)
            .field("progress", &self.progress.is_some())
            .finish()
    }
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

    // `wanted` is sorted by destination: each destination's items are one contiguous range.
    // Repositories are read host by host in turn, so that every registry works at once (each
    // host has its own concurrency limit and, on Artifact Registry, its own quota), and each is
    // classified as soon as its state arrives, so that the states of thousands of repositories
    // are never all held at once.
    let ranges = destination_ranges(&wanted);
    let total = ranges.len();
    let order = interleave(
        ranges.into_iter().enumerate().collect(),
        |(_, range): &(usize, std::ops::Range<usize>)| {
            let registry = &edges.destinations[wanted[range.start].destination as usize].registry;
            registry.host().unwrap_or(registry.as_str()).to_owned()
        },
    );
    let mut done = 0;
    let mut locations: Vec<Option<Arc<str>>> = vec![None; edges.origins.len()];
    let mut steps: Vec<Step> = Vec::with_capacity(wanted.len());
    let mut problem_parts: Vec<(usize, Vec<Problem>)> = Vec::new();
    futures::stream::iter(order)
        .map(|(slot, range)| {
            let items = &wanted[range];
            async move {
                let destination = &edges.destinations[items[0].destination as usize];
                let tags: BTreeSet<Tag> = items
                    .iter()
                    .flat_map(|item| &item.tags)
                    .map(|&tag| edges.tags[tag as usize].clone())
                    .collect();
                let digests: BTreeSet<Digest> = items.iter().map(|item| item.digest).collect();
                let state = async {
                    let located = stores
                        .locate(&destination.registry, &destination.image)
                        .await?;
                    read_state(&located, &tags, &digests).await
                }
                .await;
                (slot, items, state)
            }
        })
        .buffer_unordered(concurrency)
        .for_each(|(slot, items, state)| {
            done += 1;
            if let Some(progress) = &options.progress {
                progress(done, total);
            }
            let problems =
                classify_repository(edges, &gate, items, state, &mut locations, &mut steps);
            if !problems.is_empty() {
                problem_parts.push((slot, problems));
            }
            futures::future::ready(())
        })
        .await;
    // Back to plan order: (registry, image, digest), unique per step.
    steps.sort_unstable_by(|a, b| {
        (&a.registry, &a.image, a.digest).cmp(&(&b.registry, &b.image, b.digest))
    });
    problem_parts.sort_unstable_by_key(|(slot, _)| *slot);

    let mut planned = Planned::default();
    planned.plan.steps = steps;
    let mut problems: Vec<Problem> = problem_parts
        .into_iter()
        .flat_map(|(_, problems)| problems)
        .collect();
    let mut copies: BTreeMap<(SourceImage, Digest), Vec<usize>> = BTreeMap::new();
    for (index, step) in planned.plan.steps.iter().enumerate() {
        if step.action == Action::Copy {
            copies
                .entry((step.source.clone(), step.digest))
                .or_default()
                .push(index);
        }
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
                location: first.location.to_string(),
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

/// The ranges of `wanted` (sorted by destination) that hold one destination each, in order.
fn destination_ranges(wanted: &[Wanted]) -> Vec<std::ops::Range<usize>> {
    let mut ranges = Vec::new();
    let mut start = 0;
    for index in 1..=wanted.len() {
        if index == wanted.len() || wanted[index].destination != wanted[start].destination {
            if start < index {
                ranges.push(start..index);
            }
            start = index;
        }
    }
    ranges
}

/// `items` reordered to take one of each `key` in turn (round robin, keys in order of first
/// appearance, each key's items in their order).
fn interleave<T, K: std::hash::Hash + Eq>(items: Vec<T>, key: impl Fn(&T) -> K) -> Vec<T> {
    let count = items.len();
    let mut queues: Vec<VecDeque<T>> = Vec::new();
    let mut queue_of: HashMap<K, usize> = HashMap::new();
    for item in items {
        let queue = *queue_of.entry(key(&item)).or_insert_with(|| {
            queues.push(VecDeque::new());
            queues.len() - 1
        });
        queues[queue].push_back(item);
    }
    let mut order = Vec::with_capacity(count);
    while order.len() < count {
        for queue in &mut queues {
            order.extend(queue.pop_front());
        }
    }
    order
}

/// Adds to `steps` the steps of one destination repository (`items`, all of one destination),
/// given what it holds, and returns its problems. `locations` shares each origin's location
/// text between its steps.
fn classify_repository(
    edges: &EdgeSet,
    gate: &Gate<'_>,
    items: &[Wanted],
    state: Result<RepositoryState, StoreError>,
    locations: &mut [Option<Arc<str>>],
    steps: &mut Vec<Step>,
) -> Vec<Problem> {
    let destination = &edges.destinations[items[0].destination as usize];
    let state = match state {
        Ok(state) => state,
        Err(error) => {
            let problem = Problem::Unreadable {
                registry: destination.registry.clone(),
                image: destination.image.clone(),
                reason: error.to_string(),
            };
            return vec![problem];
        }
    };
    let mut problems = Vec::new();
    for item in items {
        let origin = &edges.origins[item.origin as usize];
        let tags: Vec<Tag> = item
            .tags
            .iter()
            .map(|&tag| edges.tags[tag as usize].clone())
            .collect();
        let classified = classify(item.digest, &tags, &state);
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
        steps.push(Step {
            registry: destination.registry.clone(),
            image: destination.image.clone(),
            digest: item.digest,
            action: classified.action,
            tags: classified.tags,
            tags_present: classified.tags_present,
            source: SourceImage {
                registry: origin.source.clone(),
                image: origin.image.clone(),
            },
            size: None,
            location: locations[item.origin as usize]
                .get_or_insert_with(|| origin.location.to_string().into())
                .clone(),
        });
    }
    problems
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

    // One listing answers everything where it carries digests (GCR, Artifact Registry,
    // layouts): every tag's digest and the untagged manifests. Elsewhere a HEAD per wanted tag
    // costs fewer requests than a listing followed by a HEAD per listed tag.
    let to_head: Vec<Tag> = if store.lists_tag_digests() {
        let listing = store.list_tags_with_digests(repository).await?;
        match listing.digests {
            Some(map) => {
                state.digests.extend(
                    map.values()
                        .chain(listing.untagged.iter().flatten())
                        .filter(|digest| digests.contains(digest)),
                );
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

#[cfg(test)]
mod tests {
    use super::*;

    fn wanted(destination: u32, byte: u8) -> Wanted {
        Wanted {
            destination,
            digest: Digest::from_sha256([byte; 32]),
            tags: Vec::new(),
            origin: 0,
        }
    }

    #[test]
    fn finds_each_destination_range() {
        let items = [
            wanted(3, 1),
            wanted(3, 2),
            wanted(1, 1),
            wanted(7, 1),
            wanted(7, 2),
        ];
        assert_eq!(destination_ranges(&items), [0..2, 2..3, 3..5]);
        assert!(destination_ranges(&[]).is_empty());
    }

    #[test]
    fn interleaves_by_key_keeping_each_keys_order() {
        let items = vec!["a1", "a2", "a3", "b1", "c1", "c2"];
        let order = interleave(items, |item| item.as_bytes()[0]);
        assert_eq!(order, ["a1", "b1", "c1", "a2", "c2", "a3"]);
    }
}
