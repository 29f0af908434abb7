//! Comparing the manifests with a base revision cheaply: only the projects a change touches are
//! loaded again, and only the destinations their edges reach are compared.
//!
//! The base is the head's unchanged manifests plus the changed ones as they were at the base. When
//! the set of destination registry names is the same on both sides (every change that does not
//! add or drop a registry), destinations are attributed alike, so the unchanged manifests have
//! the same edges on both sides and only the destinations the changed manifests reach (at the
//! base or at the head) can differ. Otherwise the whole base is computed and compared.

use std::collections::HashSet;

use hoist_manifest::{Loaded, Manifest};
use hoist_plan::{Change, Conflict, EdgeSet, Manifests, Side};

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
    /// The destinations that can differ, as text; `None`: all of them.
    only: Option<HashSet<String>>,
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
            let only = Some(hoist_plan::destinations_of(&reached));
            Self {
                changed,
                base_edges,
                whole: false,
                only,
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
                only: None,
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
            self.only.as_ref(),
        )
    }

    /// The head's edges that the change adds (a new digest at a destination, a new or moved
    /// tag): what a run after the change must do, and nothing else.
    pub fn added(&self, head_edges: &EdgeSet) -> EdgeSet {
        hoist_plan::added(&self.base_side(head_edges), head_edges, self.only.as_ref())
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
        self.only.as_ref().map(HashSet::len)
    }
}
