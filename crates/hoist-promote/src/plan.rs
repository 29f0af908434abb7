//! The promotion plan: for every (destination repository, digest) the manifests promote, what must
//! happen there, decided from what the destination really holds.
//!
//! This module is pure: [`Wanted::collect`] groups the edges, [`classify`] compares one group with
//! a [`RepositoryState`]. Reading the registries is [`crate::inventory`]'s job.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;

use hoist_oci::{Digest, RegistryName, RepositoryPath, Tag};
use hoist_plan::EdgeSet;
use hoist_plan::edges::{DestinationId, OriginId, TagId};
use serde::Serialize;

/// What a [`Step`] does at its destination.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Action {
    /// The destination has the digest and every tag: nothing to do.
    Skip,
    /// The destination has the digest; tags must be pointed at it.
    Tag,
    /// The image must be copied, then tagged.
    Copy,
}

impl Action {
    /// Whether the step writes anything.
    pub fn writes(self) -> bool {
        self != Action::Skip
    }
}

/// What an image holds, counted from its manifests (an index counts its children and all their
/// blobs; a blob shared by two children counts once).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct ImageSize {
    /// Manifests, the index included.
    pub manifests: u64,
    /// Distinct blobs (configs and layers; foreign layers are not copied and not counted).
    pub blobs: u64,
    /// Their total size in bytes.
    pub bytes: u64,
}

/// Where a step's image comes from.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub struct SourceImage {
    /// The source registry of the manifest.
    pub registry: RegistryName,
    /// The image below it.
    pub image: RepositoryPath,
}

/// One digest at one destination repository.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Step {
    /// The destination registry (longest-prefix attribution, see [`hoist_plan::Destination`]).
    pub registry: RegistryName,
    /// The repository below it.
    pub image: RepositoryPath,
    /// The image (manifest or index).
    pub digest: Digest,
    /// What happens.
    pub action: Action,
    /// Tags to point at the digest, sorted (empty when skipped).
    pub tags: Vec<Tag>,
    /// Tags that already point at the digest, sorted.
    pub tags_present: Vec<Tag>,
    /// Where it is copied from.
    pub source: SourceImage,
    /// What a copy transfers at most (known from the source manifests); `None` unless copied.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub size: Option<ImageSize>,
    /// The manifest line that promotes it (`file:line:column`), shared by the steps of every
    /// destination of that line (a reconcile holds hundreds of thousands of steps).
    pub location: Arc<str>,
}

/// Why (part of) a plan must not run. Any problem stops the whole run before it writes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum Problem {
    /// A destination tag points at another digest. Tags are never moved by a promotion.
    TagMove {
        registry: RegistryName,
        image: RepositoryPath,
        tag: Tag,
        /// What the tag points at now.
        current: Digest,
        /// What the manifests want it to point at.
        wanted: Digest,
        location: String,
        /// The `allow` rule that lets `check` accept this move; promotion still never moves a
        /// tag in a registry.
        #[serde(skip_serializing_if = "Option::is_none")]
        allowed_by: Option<String>,
    },
    /// The digest must be copied but the source does not have it.
    Lost {
        /// The source registry.
        registry: RegistryName,
        image: RepositoryPath,
        digest: Digest,
        location: String,
    },
    /// A policy refuses the write.
    Refused {
        registry: RegistryName,
        image: RepositoryPath,
        digest: Digest,
        /// The rule, as `file: name`.
        rule: String,
        reason: String,
    },
    /// A repository could not be read, so what it needs is unknown.
    Unreadable {
        registry: RegistryName,
        image: RepositoryPath,
        reason: String,
    },
}

impl Problem {
    /// Whether the problem is operational (a store could not be read) rather than a refusal of
    /// the input: the former may pass on a re-run, the latter needs a change of manifests.
    pub fn is_operational(&self) -> bool {
        matches!(self, Problem::Unreadable { .. })
    }
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Problem::TagMove {
                registry,
                image,
                tag,
                current,
                wanted,
                location,
                allowed_by,
            } => {
                write!(
                    f,
                    "{location}: tag move refused: {registry}/{image}:{tag} points at {current}, \
                     the manifests want {wanted}; tags are never moved"
                )?;
                if let Some(rule) = allowed_by {
                    write!(
                        f,
                        " by a promotion (the allow rule {rule} accepts the change; move the tag \
                         in the registry by hand, then run again)"
                    )?;
                }
                Ok(())
            }
            Problem::Lost {
                registry,
                image,
                digest,
                location,
            } => write!(
                f,
                "{location}: lost: {registry}/{image}@{digest} is not in the source, \
                 so it cannot be copied"
            ),
            Problem::Refused {
                registry,
                image,
                digest,
                rule,
                reason,
            } => write!(
                f,
                "refused by policy {rule}: writing {image}@{digest} to {registry}: {reason}"
            ),
            Problem::Unreadable {
                registry,
                image,
                reason,
            } => write!(f, "cannot read {registry}/{image}: {reason}"),
        }
    }
}

/// The plan of a run: every step (skips included), sorted by destination and digest, and every
/// problem. The dry run prints it; `--confirm` executes exactly its steps.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Plan {
    /// Every (destination repository, digest), in (registry, image, digest) order.
    pub steps: Vec<Step>,
    /// Refusals and unreadable repositories, in the same order.
    pub problems: Vec<Problem>,
}

/// Totals of one destination registry.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct RegistryTotals {
    /// Images to copy.
    pub copies: u64,
    /// Images that only get tags.
    pub tag_only: u64,
    /// Images already complete.
    pub skips: u64,
    /// Tags to add.
    pub tags: u64,
    /// Manifests, blobs and bytes the copies transfer at most (blobs shared by images of one
    /// repository count once).
    pub manifests: u64,
    pub blobs: u64,
    pub bytes: u64,
}

impl Plan {
    /// Whether executing it writes nothing.
    pub fn is_noop(&self) -> bool {
        self.steps.iter().all(|step| !step.action.writes())
    }

    /// Steps that write, in plan order.
    pub fn writes(&self) -> impl Iterator<Item = &Step> {
        self.steps.iter().filter(|step| step.action.writes())
    }

    /// Per destination registry, what the plan does there. `blobs` (digest → size) of the copied
    /// images let shared blobs count once per repository; without them each image counts whole.
    pub fn totals(
        &self,
        blobs: &HashMap<Digest, Vec<(Digest, u64)>>,
    ) -> BTreeMap<RegistryName, RegistryTotals> {
        let mut totals: BTreeMap<RegistryName, RegistryTotals> = BTreeMap::new();
        let mut seen: HashSet<(RegistryName, RepositoryPath, Digest)> = HashSet::new();
        for step in &self.steps {
            let total = totals.entry(step.registry.clone()).or_default();
            total.tags += step.tags.len() as u64;
            match step.action {
                Action::Skip => total.skips += 1,
                Action::Tag => total.tag_only += 1,
                Action::Copy => {
                    total.copies += 1;
                    let size = step.size.unwrap_or_default();
                    total.manifests += size.manifests;
                    match blobs.get(&step.digest) {
                        Some(list) => {
                            for &(blob, bytes) in list {
                                let key = (step.registry.clone(), step.image.clone(), blob);
                                if seen.insert(key) {
                                    total.blobs += 1;
                                    total.bytes += bytes;
                                }
                            }
                        }
                        None => {
                            total.blobs += size.blobs;
                            total.bytes += size.bytes;
                        }
                    }
                }
            }
        }
        totals
    }
}

/// One (destination, digest) the manifests promote, with all the tags they want for it there.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Wanted {
    /// Index into [`EdgeSet::destinations`].
    pub destination: DestinationId,
    /// The digest.
    pub digest: Digest,
    /// Tags (indexes into [`EdgeSet::tags`]), sorted by tag text, no duplicates.
    pub tags: Vec<TagId>,
    /// The first origin that promotes it (for its source and location).
    pub origin: OriginId,
}

impl Wanted {
    /// Groups the edges by (destination, digest), in the order of the destinations' text and
    /// then the digest.
    ///
    /// A reconcile has about a million edges: they are sorted as compact keys (48 bytes each)
    /// and grouped in one pass, rather than gathered in a map of sets.
    pub fn collect(edges: &EdgeSet) -> Vec<Wanted> {
        // Each destination's rank in text order.
        let mut by_text: Vec<DestinationId> =
            (0..edges.destinations.len() as DestinationId).collect();
        by_text.sort_unstable_by(|a, b| {
            edges.destinations[*a as usize].cmp(&edges.destinations[*b as usize])
        });
        let mut rank = vec![0u32; edges.destinations.len()];
        for (position, destination) in by_text.iter().enumerate() {
            rank[*destination as usize] = position as u32;
        }
        // (rank, digest, edge index): sorting puts each group together, in output order, with
        // its first edge (in edge order, which gives the origin) first.
        let mut keys: Vec<(u32, Digest, u32)> = edges
            .edges
            .iter()
            .enumerate()
            .map(|(index, edge)| {
                (
                    rank[edge.destination as usize],
                    edges.origin(edge).digest,
                    index as u32,
                )
            })
            .collect();
        keys.sort_unstable();
        let mut wanted: Vec<Wanted> = Vec::new();
        let mut start = 0;
        while start < keys.len() {
            let (group_rank, digest, first) = keys[start];
            let mut end = start;
            let mut tags: Vec<TagId> = Vec::new();
            while end < keys.len() && keys[end].0 == group_rank && keys[end].1 == digest {
                let edge = &edges.edges[keys[end].2 as usize];
                if edges.tag(edge).is_some() {
                    tags.push(edge.tag);
                }
                end += 1;
            }
            tags.sort_unstable_by(|a, b| edges.tags[*a as usize].cmp(&edges.tags[*b as usize]));
            tags.dedup();
            let edge = &edges.edges[first as usize];
            wanted.push(Wanted {
                destination: edge.destination,
                digest,
                tags,
                origin: edge.origin,
            });
            start = end;
        }
        wanted
    }
}

/// What a destination repository holds, as far as the plan needs to know.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RepositoryState {
    /// The digest of every tag read (at least the wanted tags that exist).
    pub tags: HashMap<Tag, Digest>,
    /// Manifests known to be present (the targets of `tags` count).
    pub digests: HashSet<Digest>,
}

impl RepositoryState {
    /// Whether the repository has the manifest.
    pub fn has(&self, digest: &Digest) -> bool {
        self.digests.contains(digest) || self.tags.values().any(|held| held == digest)
    }
}

/// How one wanted (destination, digest) compares with the destination.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Classified {
    /// What to do.
    pub action: Action,
    /// Tags to add.
    pub tags: Vec<Tag>,
    /// Tags already pointing at the digest.
    pub tags_present: Vec<Tag>,
    /// Tags pointing elsewhere: (tag, current digest). Never moved.
    pub moves: Vec<(Tag, Digest)>,
}

/// Compares `digest` with `tags` against the destination's state.
pub fn classify(digest: Digest, tags: &[Tag], state: &RepositoryState) -> Classified {
    let mut classified = Classified {
        action: Action::Skip,
        tags: Vec::new(),
        tags_present: Vec::new(),
        moves: Vec::new(),
    };
    for tag in tags {
        match state.tags.get(tag) {
            Some(current) if *current == digest => classified.tags_present.push(tag.clone()),
            Some(current) => classified.moves.push((tag.clone(), *current)),
            None => classified.tags.push(tag.clone()),
        }
    }
    classified.action = if !state.has(&digest) {
        Action::Copy
    } else if classified.tags.is_empty() {
        Action::Skip
    } else {
        Action::Tag
    };
    classified
}

#[cfg(test)]
mod tests {
    use super::*;

    fn digest(byte: u8) -> Digest {
        Digest::from_sha256([byte; 32])
    }

    fn tag(name: &str) -> Tag {
        Tag::parse(name).unwrap()
    }

    #[test]
    fn wanted_groups_edges_by_destination_text_and_digest() {
        use hoist_oci::{RegistryName, RepositoryPath};
        use hoist_plan::edges::{Destination, Edge, NO_TAG, Origin};
        let location = hoist_manifest::Location {
            file: std::sync::Arc::from(std::path::Path::new("m.yaml")),
            line: 1,
            column: 1,
        };
        let origin = |byte: u8| Origin {
            manifest: 0,
            source: RegistryName::parse("gcr.io/s").unwrap(),
            image: RepositoryPath::parse("app").unwrap(),
            digest: digest(byte),
            location: location.clone(),
        };
        let destination = |registry: &str| Destination {
            registry: RegistryName::parse(registry).unwrap(),
            image: RepositoryPath::parse("app").unwrap(),
        };
        let edges = EdgeSet {
            // Origins 0 and 2 promote the same digest (two manifests).
            origins: vec![origin(2), origin(1), origin(2)],
            // Ids in the opposite order of their text.
            destinations: vec![destination("z.io/p"), destination("a.io/p")],
            tags: vec![tag("v2"), tag("latest"), tag("v1")],
            edges: [
                (1, 0, 0),
                (0, 0, 0),
                (0, 0, 2),
                (2, 0, 1),
                (2, 0, 2),
                (0, 1, NO_TAG),
                (1, 1, 1),
            ]
            .into_iter()
            .map(|(origin, destination, tag)| Edge {
                origin,
                destination,
                tag,
            })
            .collect(),
        };
        let got: Vec<(u32, u8, Vec<&str>, u32)> = Wanted::collect(&edges)
            .iter()
            .map(|wanted| {
                (
                    wanted.destination,
                    wanted.digest.as_bytes()[0],
                    wanted
                        .tags
                        .iter()
                        .map(|&tag| edges.tags[tag as usize].as_str())
                        .collect(),
                    wanted.origin,
                )
            })
            .collect();
        assert_eq!(
            got,
            [
                (1, 1, vec!["latest"], 1),
                (1, 2, vec![], 0),
                (0, 1, vec!["v2"], 1),
                (0, 2, vec!["latest", "v1", "v2"], 0),
            ],
            "a.io before z.io; tags by text, once; the origin of the first edge"
        );
    }

    #[test]
    fn an_empty_repository_needs_a_copy_with_every_tag() {
        let got = classify(
            digest(1),
            &[tag("v1"), tag("latest")],
            &RepositoryState::default(),
        );
        assert_eq!(got.action, Action::Copy);
        assert_eq!(got.tags, vec![tag("v1"), tag("latest")]);
        assert!(got.moves.is_empty() && got.tags_present.is_empty());
    }

    #[test]
    fn a_present_digest_with_its_tags_is_skipped() {
        let mut state = RepositoryState::default();
        state.tags.insert(tag("v1"), digest(1));
        let got = classify(digest(1), &[tag("v1")], &state);
        assert_eq!(got.action, Action::Skip);
        assert_eq!(got.tags_present, vec![tag("v1")]);
    }

    #[test]
    fn a_present_digest_missing_a_tag_gets_the_tag_only() {
        let mut state = RepositoryState::default();
        state.digests.insert(digest(1));
        let got = classify(digest(1), &[tag("v2")], &state);
        assert_eq!(got.action, Action::Tag);
        assert_eq!(got.tags, vec![tag("v2")]);
    }

    #[test]
    fn a_tag_pointing_elsewhere_is_a_move_and_is_not_added() {
        let mut state = RepositoryState::default();
        state.tags.insert(tag("v1"), digest(2));
        let got = classify(digest(1), &[tag("v1")], &state);
        assert_eq!(got.action, Action::Copy);
        assert_eq!(got.moves, vec![(tag("v1"), digest(2))]);
        assert!(got.tags.is_empty());
    }

    #[test]
    fn an_untagged_digest_that_is_present_is_skipped() {
        let mut state = RepositoryState::default();
        state.digests.insert(digest(3));
        assert_eq!(classify(digest(3), &[], &state).action, Action::Skip);
        assert_eq!(
            classify(digest(4), &[], &state).action,
            Action::Copy,
            "another digest is not there"
        );
    }
}
