//! Comparing the manifests with a base revision cheaply: only the projects a change touches are
//! loaded again, and only the destinations their edges reach are compared.
//!
//! The base is the head's unchanged manifests plus the changed ones as they were at the base. When
//! the set of destination registry names is the same on both sides (every change that does not
//! add or drop a registry), destinations are attributed alike, so the unchanged manifests have
//! the same edges on both sides and only the destinations the changed manifests reach (at the
//! base or at the head) can differ, and of them only the facts about the digests and tags of the
//! lines that changed (a line is one digest of one image with its tags; every line of a project
//! whose registries changed counts as changed). Otherwise the whole base is computed and
//! compared.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::path::Path;

use hoist_manifest::{Loaded, Manifest};
use hoist_oci::{Digest, RepositoryPath, Tag};
use hoist_plan::{Change, Conflict, EdgeSet, Manifests, Scope, Side};

/// A base revision, ready to compare with the head.
#[derive(Debug)]
pub struct Comparison {
    /// The head's manifests (by index) that the change touches.
    changed: HashSet<u32>,
    /// The changed manifests as they were (attributed like the head), or, when attribution
    /// differs, every manifest of the base.
    base_edges: EdgeSet,
    /// Whether `base_edges` is the whole base.
    whole: bool,
    /// What can differ.
    scope: Scope,
}

impl Comparison {
    /// Prepares the comparison of `head` (with its edges) with a base whose changed projects are
    /// `base` (loaded at the base revision) and whose other projects are the head's, except the
    /// `changed` ones.
    pub fn new(head: &Loaded, head_edges: &EdgeSet, base: &Loaded, changed: HashSet<u32>) -> Self {
        let unchanged = || {
            head.manifests
                .iter()
                .enumerate()
                .filter(|(index, _)| !changed.contains(&(*index as u32)))
                .map(|(_, manifest)| manifest)
        };
        let head_names = EdgeSet::registry_names(&head.manifests);
        let base_names: std::collections::BTreeSet<_> = unchanged()
            .flat_map(Manifest::destinations)
            .chain(base.manifests.iter().flat_map(Manifest::destinations))
            .map(|registry| &registry.name)
            .collect();
        if head_names == base_names {
            let base_edges = EdgeSet::compute_attributed(&base.manifests, &head.manifests);
            let reached = Side::all(&base_edges).with(head_edges, Manifests::Only(&changed));
            let scope = Scope {
                destinations: Some(hoist_plan::destinations_of(&reached)),
                facts: Some(changed_lines(head, &changed, base)),
            };
            Self {
                changed,
                base_edges,
                whole: false,
                scope,
            }
        } else {
            let everything: Vec<Manifest> = unchanged()
                .cloned()
                .chain(base.manifests.iter().cloned())
                .collect();
            Self {
                changed,
                base_edges: EdgeSet::compute(&everything),
                whole: true,
                scope: Scope::default(),
            }
        }
    }

    fn base_side<'a>(&'a self, head_edges: &'a EdgeSet) -> Side<'a> {
        let side = Side::all(&self.base_edges);
        if self.whole {
            side
        } else {
            side.with(head_edges, Manifests::Except(&self.changed))
        }
    }

    /// What the change adds, moves and removes.
    pub fn changes(&self, head_edges: &EdgeSet) -> Vec<Change> {
        hoist_plan::diff_sides(
            &self.base_side(head_edges),
            &Side::all(head_edges),
            &self.scope,
        )
    }

    /// The head's edges that the change adds (a new digest at a destination, a new or moved
    /// tag): what a run after the change must do, and nothing else.
    pub fn added(&self, head_edges: &EdgeSet) -> EdgeSet {
        hoist_plan::added(&self.base_side(head_edges), head_edges, &self.scope)
    }

    /// The conflicts of the whole base (computed on demand: only when the head has some).
    pub fn base_conflicts(&self, head: &Loaded, base: &Loaded) -> Vec<Conflict> {
        let everything: Vec<Manifest> = head
            .manifests
            .iter()
            .enumerate()
            .filter(|(index, _)| !self.changed.contains(&(*index as u32)))
            .map(|(_, manifest)| manifest.clone())
            .chain(base.manifests.iter().cloned())
            .collect();
        hoist_plan::find_conflicts(&EdgeSet::compute(&everything))
    }

    /// How many destinations the comparison looks at (`None`: all).
    pub fn compared_destinations(&self) -> Option<usize> {
        self.scope.destinations.as_ref().map(HashSet::len)
    }
}

/// Each line of a manifest: (image, digest) with its tags, entries of one image merged.
fn lines(manifest: &Manifest) -> BTreeMap<(&RepositoryPath, Digest), BTreeSet<&Tag>> {
    let mut lines: BTreeMap<(&RepositoryPath, Digest), BTreeSet<&Tag>> = BTreeMap::new();
    for image in &manifest.images {
        for entry in &image.dmap {
            lines
                .entry((&image.name, entry.digest))
                .or_default()
                .extend(&entry.tags);
        }
    }
    lines
}

/// The digests and tags of every line that differs between the head's `changed` manifests and
/// their base versions (`base`, matched by manifest file). A manifest on one side only, or whose
/// destination registries differ, changes every line.
fn changed_lines(
    head: &Loaded,
    changed: &HashSet<u32>,
    base: &Loaded,
) -> (HashSet<Digest>, HashSet<Tag>) {
    let mut digests = HashSet::new();
    let mut tags = HashSet::new();
    let mut take = |lines: &BTreeMap<(&RepositoryPath, Digest), BTreeSet<&Tag>>,
                    key: &(&RepositoryPath, Digest)| {
        digests.insert(key.1);
        if let Some(line_tags) = lines.get(key) {
            tags.extend(line_tags.iter().map(|tag| (*tag).clone()));
        }
    };
    let mut base_by_file: HashMap<&Path, &Manifest> = base
        .manifests
        .iter()
        .map(|manifest| (manifest.manifest_file.as_ref(), manifest))
        .collect();
    let destinations = |manifest: &Manifest| -> BTreeSet<String> {
        manifest
            .destinations()
            .map(|registry| registry.name.to_string())
            .collect()
    };
    for (index, manifest) in head.manifests.iter().enumerate() {
        if !changed.contains(&(index as u32)) {
            continue;
        }
        let now = lines(manifest);
        let before = base_by_file
            .remove(manifest.manifest_file.as_ref())
            .filter(|before| destinations(before) == destinations(manifest))
            .map(lines)
            .unwrap_or_default();
        for key in now.keys().chain(before.keys()) {
            if now.get(key) != before.get(key) {
                take(&now, key);
                take(&before, key);
            }
        }
    }
    // Base manifests with no head counterpart (a project removed, or no longer loading).
    for manifest in base_by_file.into_values() {
        let before = lines(manifest);
        for key in before.keys() {
            take(&before, key);
        }
    }
    (digests, tags)
}
