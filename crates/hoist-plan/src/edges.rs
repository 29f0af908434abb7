//! Promotion edges: for every (image, digest, tag) of a manifest and every destination registry,
//! one edge (tagless when the digest has no tags).
//!
//! The real Kubernetes corpus gives about a million edges, so an [`Edge`] is three `u32`s: the
//! [`Origin`] (one `dmap` line of one image of one manifest), the [`Destination`] and the tag.
//! Everything else is looked up in the tables of [`EdgeSet`].

use std::collections::HashMap;

use hoist_manifest::{Location, Manifest};
use hoist_oci::{Digest, RegistryName, RepositoryPath, Tag};
use rayon::prelude::*;

/// Index of a [`Destination`] in [`EdgeSet::destinations`].
pub type DestinationId = u32;
/// Index of an [`Origin`] in [`EdgeSet::origins`].
pub type OriginId = u32;
/// Index of a tag in [`EdgeSet::tags`].
pub type TagId = u32;

/// No tag: the edge promotes by digest only.
pub const NO_TAG: TagId = u32::MAX;

/// The most edges [`EdgeSet::try_compute`] makes. The real registry.k8s.io tree has about a
/// million; a manifest from a pull request naming thousands of registries for thousands of
/// digests must be refused before its cross product is built (12 bytes per edge).
pub const MAX_EDGES: u64 = 10_000_000;

/// The manifests would make more edges than the bound allows.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "the manifests promote {edges} (image, digest, tag) x destination edges, more than the \
     {limit} hoist accepts in one run; the largest manifest, {manifest}, makes {largest}"
)]
pub struct TooManyEdges {
    /// How many edges the manifests would make.
    pub edges: u64,
    /// The bound.
    pub limit: u64,
    /// The manifest (its registries file) that makes the most.
    pub manifest: String,
    /// How many it makes.
    pub largest: u64,
}

/// Where a digest comes from: one `"sha256:…": [tags]` line of one image of one manifest.
#[derive(Debug, Clone)]
pub struct Origin {
    /// Index of the manifest in the slice given to [`EdgeSet::compute`].
    pub manifest: u32,
    /// The source registry of that manifest.
    pub source: RegistryName,
    /// The image name, as written in the manifest.
    pub image: RepositoryPath,
    /// The digest.
    pub digest: Digest,
    /// Where the digest is written.
    pub location: Location,
}

/// A destination repository: a registry and an image below it.
///
/// When registry names nest (the Kubernetes manifests list both `…/images` and
/// `…/images/kubernetes`), the same repository can be written as `…/images` + `kubernetes/pause` or
/// as `…/images/kubernetes` + `pause`. It is attributed to the *longest* registry name that contains
/// it, so both spellings give one destination.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
pub struct Destination {
    /// The registry, by longest prefix among all destination registries of the run.
    pub registry: RegistryName,
    /// The repository below it.
    pub image: RepositoryPath,
}

impl std::fmt::Display for Destination {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.registry, self.image)
    }
}

/// One promotion edge: copy the origin's digest to the destination, and point the tag at it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Edge {
    /// What is promoted.
    pub origin: OriginId,
    /// Where to.
    pub destination: DestinationId,
    /// Which tag, or [`NO_TAG`].
    pub tag: TagId,
}

/// All edges of a run, with the tables they index into.
#[derive(Debug, Clone, Default)]
pub struct EdgeSet {
    /// One per `dmap` line of every manifest.
    pub origins: Vec<Origin>,
    /// Every destination repository, attributed by longest registry prefix.
    pub destinations: Vec<Destination>,
    /// Every tag named, interned.
    pub tags: Vec<Tag>,
    /// The edges, grouped by origin (in manifest order), then destination, then tag.
    pub edges: Vec<Edge>,
}

impl EdgeSet {
    /// How many edges [`EdgeSet::compute`] would make for each manifest, without making them.
    pub fn count(manifests: &[Manifest]) -> Vec<u64> {
        manifests
            .iter()
            .map(|manifest| {
                if manifest.source().is_none() {
                    return 0;
                }
                let destinations = manifest.destinations().count() as u64;
                let per_destination: u64 = manifest
                    .images
                    .iter()
                    .flat_map(|image| &image.dmap)
                    .map(|entry| entry.tags.len().max(1) as u64)
                    .sum();
                destinations.saturating_mul(per_destination)
            })
            .collect()
    }

    /// [`EdgeSet::compute`], unless the manifests would make more than `limit` edges.
    pub fn try_compute(manifests: &[Manifest], limit: u64) -> Result<Self, TooManyEdges> {
        let counts = Self::count(manifests);
        let edges = counts
            .iter()
            .fold(0u64, |sum, count| sum.saturating_add(*count));
        if edges > limit {
            let (index, largest) = counts
                .iter()
                .enumerate()
                .max_by_key(|(_, count)| **count)
                .map(|(index, count)| (index, *count))
                .unwrap_or_default();
            return Err(TooManyEdges {
                edges,
                limit,
                manifest: manifests
                    .get(index)
                    .map(|manifest| manifest.manifest_file.display().to_string())
                    .unwrap_or_default(),
                largest,
            });
        }
        Ok(Self::compute(manifests))
    }

    /// Computes the edges of `manifests`. Manifests without exactly one source registry give none
    /// (loading already reported them).
    pub fn compute(manifests: &[Manifest]) -> Self {
        Self::compute_attributed(manifests, manifests)
    }

    /// Computes the edges of `manifests`, attributing destinations by the registry names of
    /// `attribution` (a superset of `manifests`, such as every manifest of a run when only some
    /// are computed again), so that the edges are those `attribution` as a whole would give.
    pub fn compute_attributed(manifests: &[Manifest], attribution: &[Manifest]) -> Self {
        let attribution = Attribution::new(attribution.iter().chain(manifests));

        // Intern destinations: (registry written, image written) -> canonical destination id.
        let mut destinations: Vec<Destination> = Vec::new();
        let mut destination_ids: HashMap<Destination, DestinationId> = HashMap::new();
        let mut tags: Vec<Tag> = Vec::new();
        let mut tag_ids: HashMap<Tag, TagId> = HashMap::new();
        let mut origins: Vec<Origin> = Vec::new();

        // Per origin: the destination ids and tag ids to cross.
        struct Work {
            destinations: std::ops::Range<usize>,
            tags: Vec<TagId>,
        }
        let mut work: Vec<Work> = Vec::new();
        let mut destination_lists: Vec<DestinationId> = Vec::new();

        for (manifest_index, manifest) in manifests.iter().enumerate() {
            let Some(source) = manifest.source() else {
                continue;
            };
            for image in &manifest.images {
                let start = destination_lists.len();
                for registry in manifest.destinations() {
                    let destination = attribution.attribute(&registry.name, &image.name);
                    let next = destinations.len() as DestinationId;
                    let id = *destination_ids
                        .entry(destination.clone())
                        .or_insert_with(|| {
                            destinations.push(destination);
                            next
                        });
                    destination_lists.push(id);
                }
                let range = start..destination_lists.len();
                for entry in &image.dmap {
                    let entry_tags = entry
                        .tags
                        .iter()
                        .map(|tag| {
                            let next = tags.len() as TagId;
                            *tag_ids.entry(tag.clone()).or_insert_with(|| {
                                tags.push(tag.clone());
                                next
                            })
                        })
                        .collect();
                    origins.push(Origin {
                        manifest: manifest_index as u32,
                        source: source.name.clone(),
                        image: image.name.clone(),
                        digest: entry.digest,
                        location: entry.location.clone(),
                    });
                    work.push(Work {
                        destinations: range.clone(),
                        tags: entry_tags,
                    });
                }
            }
        }

        // The cross product is the bulk of the work (about a million edges on the real corpus).
        let edges = work
            .par_iter()
            .enumerate()
            .flat_map_iter(|(origin, work)| {
                let tag_list: &[TagId] = if work.tags.is_empty() {
                    &[NO_TAG]
                } else {
                    &work.tags
                };
                destination_lists[work.destinations.clone()]
                    .iter()
                    .flat_map(move |&destination| {
                        tag_list.iter().map(move |&tag| Edge {
                            origin: origin as OriginId,
                            destination,
                            tag,
                        })
                    })
            })
            .collect();

        Self {
            origins,
            destinations,
            tags,
            edges,
        }
    }

    /// The tag of an edge, if it has one.
    pub fn tag(&self, edge: &Edge) -> Option<&Tag> {
        (edge.tag != NO_TAG).then(|| &self.tags[edge.tag as usize])
    }

    /// The origin of an edge.
    pub fn origin(&self, edge: &Edge) -> &Origin {
        &self.origins[edge.origin as usize]
    }

    /// The destination of an edge.
    pub fn destination(&self, edge: &Edge) -> &Destination {
        &self.destinations[edge.destination as usize]
    }

    /// The same tables with only the edges `keep` accepts, in the same order. Selections (the
    /// edges a change adds, a shard of the destinations) are such filters, so they compose:
    /// `edges.select(a).select(b)`.
    pub fn select(&self, keep: impl Fn(&Edge) -> bool + Sync) -> EdgeSet {
        EdgeSet {
            origins: self.origins.clone(),
            destinations: self.destinations.clone(),
            tags: self.tags.clone(),
            edges: self
                .edges
                .par_iter()
                .filter(|edge| keep(edge))
                .copied()
                .collect(),
        }
    }

    /// Every registry name the edges' destinations were attributed to (for comparing two runs:
    /// equal names give equal attribution).
    pub fn registry_names(manifests: &[Manifest]) -> std::collections::BTreeSet<&RegistryName> {
        manifests
            .iter()
            .flat_map(|manifest| manifest.destinations())
            .map(|registry| &registry.name)
            .collect()
    }
}

/// Maps a (registry, image) pair to its [`Destination`] by the longest destination registry name
/// that contains `registry/image`.
#[derive(Debug)]
struct Attribution {
    /// Every destination registry name, by its text.
    registries: HashMap<String, RegistryName>,
}

impl Attribution {
    fn new<'a>(manifests: impl Iterator<Item = &'a Manifest>) -> Self {
        let registries = manifests
            .flat_map(|manifest| manifest.destinations())
            .map(|registry| (registry.name.as_str().to_owned(), registry.name.clone()))
            .collect();
        Self { registries }
    }

    fn attribute(&self, registry: &RegistryName, image: &RepositoryPath) -> Destination {
        let full = format!("{registry}/{image}");
        // Try the prefixes of `full` that end at a '/', longest first: the first one that is a
        // registry name wins, and the rest is the image. This is linear in the path, not in the
        // number of registries (thousands on the real corpus).
        for (slash, _) in full.rmatch_indices('/') {
            if let Some(candidate) = self.registries.get(&full[..slash])
                && let Ok(image) = RepositoryPath::parse(&full[slash + 1..])
            {
                return Destination {
                    registry: candidate.clone(),
                    image,
                };
            }
        }
        Destination {
            registry: registry.clone(),
            image: image.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{digest, manifest};

    #[test]
    fn one_edge_per_tag_and_destination_and_tagless_when_no_tags() {
        let m = manifest(
            "m.yaml",
            "gcr.io/staging",
            &["a.io/prod", "b.io/prod"],
            &[("foo", &[('a', &["v1", "v1.0"]), ('b', &[])])],
        );
        let set = EdgeSet::compute(&[m]);
        assert_eq!(set.edges.len(), 2 * 2 + 2);
        let described: Vec<String> = set
            .edges
            .iter()
            .map(|e| {
                let tag = set
                    .tag(e)
                    .map(ToString::to_string)
                    .unwrap_or_else(|| "-".into());
                format!(
                    "{} {} {tag}",
                    set.destination(e),
                    set.origin(e).digest.hex().chars().next().unwrap()
                )
            })
            .collect();
        assert_eq!(
            described,
            [
                "a.io/prod/foo a v1",
                "a.io/prod/foo a v1.0",
                "b.io/prod/foo a v1",
                "b.io/prod/foo a v1.0",
                "a.io/prod/foo b -",
                "b.io/prod/foo b -",
            ]
        );
        assert_eq!(set.origins[1].digest, digest('b'));
        assert_eq!(set.origins[1].source.as_str(), "gcr.io/staging");
    }

    #[test]
    fn nested_registries_are_attributed_to_the_longest_prefix() {
        let outer = manifest(
            "outer.yaml",
            "gcr.io/s1",
            &["r.io/images"],
            &[("kubernetes/pause", &[('a', &["3.9"])])],
        );
        let inner = manifest(
            "inner.yaml",
            "gcr.io/s2",
            &["r.io/images/kubernetes"],
            &[("pause", &[('a', &["3.9"])])],
        );
        let set = EdgeSet::compute(&[outer, inner]);
        assert_eq!(set.destinations.len(), 1, "{:?}", set.destinations);
        assert_eq!(
            set.destinations[0].registry.as_str(),
            "r.io/images/kubernetes"
        );
        assert_eq!(set.destinations[0].image.as_str(), "pause");
        // A sibling that merely shares a text prefix is not nested.
        let sibling = manifest(
            "s.yaml",
            "gcr.io/s3",
            &["r.io/images"],
            &[("kubernetesx/pause", &[('a', &[])])],
        );
        let inner = manifest(
            "inner.yaml",
            "gcr.io/s2",
            &["r.io/images/kubernetes"],
            &[("pause", &[('a', &[])])],
        );
        let set = EdgeSet::compute(&[sibling, inner]);
        assert_eq!(set.destinations.len(), 2);
        assert_eq!(
            set.destinations[0].to_string(),
            "r.io/images/kubernetesx/pause"
        );
        assert_eq!(set.destinations[0].registry.as_str(), "r.io/images");
    }

    #[test]
    fn manifests_without_one_source_give_no_edges() {
        let mut m = manifest(
            "m.yaml",
            "gcr.io/s",
            &["a.io/p"],
            &[("foo", &[('a', &["v1"])])],
        );
        m.registries[0].src = false;
        assert!(EdgeSet::compute(&[m]).edges.is_empty());
    }
}
