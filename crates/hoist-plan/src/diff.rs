//! What a change of manifests does, compared with the manifests at a base revision: which digests
//! and tags it adds, which tags it moves to another digest, and what it removes.

use std::collections::{HashMap, HashSet};

use hoist_manifest::Location;
use hoist_oci::{Digest, Tag};

use crate::edges::{Destination, EdgeSet, NO_TAG};

/// What kind of change.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum ChangeKind {
    /// A digest newly promoted to a destination.
    AddDigest,
    /// A tag newly pointed at a digest.
    AddTag,
    /// A tag that pointed at `from` and now points at the change's digest.
    MoveTag {
        /// The digest the tag pointed at in the base.
        from: Digest,
    },
    /// A digest promoted in the base and no longer listed.
    RemoveDigest,
    /// A tag listed in the base and no longer listed.
    RemoveTag,
}

/// One change at one destination.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Change {
    /// What happens.
    pub kind: ChangeKind,
    /// The destination repository.
    pub destination: Destination,
    /// The digest added, moved to, or removed.
    pub digest: Digest,
    /// The tag, for tag changes.
    pub tag: Option<Tag>,
    /// Where it is written: in the change for additions and moves, in the base for removals.
    #[serde(skip)]
    pub location: Location,
}

impl Change {
    /// The reference the change is about: `registry/image:tag` or `registry/image@digest`.
    pub fn reference(&self) -> String {
        match &self.tag {
            Some(tag) => format!("{}:{tag}", self.destination),
            None => format!("{}@{}", self.destination, self.digest),
        }
    }
}

/// Which origins of an edge set a [`Side`] takes, by the index of their manifest.
#[derive(Debug, Clone, Copy)]
pub enum Manifests<'a> {
    /// Every origin.
    All,
    /// Only the origins of these manifests.
    Only(&'a HashSet<u32>),
    /// Every origin except those of these manifests.
    Except(&'a HashSet<u32>),
}

impl Manifests<'_> {
    fn takes(self, manifest: u32) -> bool {
        match self {
            Manifests::All => true,
            Manifests::Only(set) => set.contains(&manifest),
            Manifests::Except(set) => !set.contains(&manifest),
        }
    }
}

/// One side of a comparison: the edges of one or more edge sets, each limited to some manifests.
///
/// A change that touches a few projects need not load or cross the others again: the base is
/// the head's edges of the unchanged manifests plus the changed manifests as they were.
#[derive(Debug, Clone)]
pub struct Side<'a> {
    parts: Vec<(&'a EdgeSet, Manifests<'a>)>,
}

impl<'a> Side<'a> {
    /// Every edge of `edges`.
    pub fn all(edges: &'a EdgeSet) -> Self {
        Self {
            parts: vec![(edges, Manifests::All)],
        }
    }

    /// Adds the edges of `edges` whose origin's manifest `manifests` takes.
    pub fn with(mut self, edges: &'a EdgeSet, manifests: Manifests<'a>) -> Self {
        self.parts.push((edges, manifests));
        self
    }

    fn edges(&self) -> impl Iterator<Item = (&'a EdgeSet, &'a crate::Edge)> + '_ {
        self.parts.iter().flat_map(|&(set, manifests)| {
            set.edges
                .iter()
                .filter(move |edge| manifests.takes(set.origins[edge.origin as usize].manifest))
                .map(move |edge| (set, edge))
        })
    }
}

/// Destinations and tags of several edge sets, by their text, so that sets computed apart (or
/// attributed differently) can be compared.
struct Keys<'a> {
    destinations: HashMap<String, u32>,
    /// For each key, the destination it names (the first set's spelling).
    named: Vec<&'a Destination>,
    tags: HashMap<&'a Tag, u32>,
    tag_names: Vec<&'a Tag>,
    /// Per edge set (by address): each destination id's key, `None` when not compared.
    per_set: HashMap<*const EdgeSet, Vec<Option<u32>>>,
}

impl<'a> Keys<'a> {
    fn new() -> Self {
        Self {
            destinations: HashMap::new(),
            named: Vec::new(),
            tags: HashMap::new(),
            tag_names: Vec::new(),
            per_set: HashMap::new(),
        }
    }

    /// Registers the destinations of `set` that `only` keeps (all without it).
    fn register(&mut self, set: &'a EdgeSet, only: Option<&HashSet<String>>) {
        let key = std::ptr::from_ref(set);
        if self.per_set.contains_key(&key) {
            return;
        }
        let ids = set
            .destinations
            .iter()
            .map(|destination| {
                let text = destination.to_string();
                if only.is_some_and(|only| !only.contains(&text)) {
                    return None;
                }
                let next = self.named.len() as u32;
                let id = *self.destinations.entry(text).or_insert(next);
                if id == next {
                    self.named.push(destination);
                }
                Some(id)
            })
            .collect();
        self.per_set.insert(key, ids);
    }

    fn destination(&self, set: &EdgeSet, edge: &crate::Edge) -> Option<u32> {
        self.per_set[&std::ptr::from_ref(set)][edge.destination as usize]
    }

    fn tag(&mut self, tag: &'a Tag) -> u32 {
        let next = self.tag_names.len() as u32;
        let id = *self.tags.entry(tag).or_insert(next);
        if id == next {
            self.tag_names.push(tag);
        }
        id
    }
}

/// The facts of one side: which digests are at which destinations, and what each tag names.
struct Facts<'a> {
    digests: HashMap<(u32, Digest), &'a Location>,
    tags: HashMap<(u32, u32), (Digest, &'a Location)>,
}

fn facts<'a>(side: &Side<'a>, keys: &mut Keys<'a>) -> Facts<'a> {
    let mut digests = HashMap::new();
    let mut tags = HashMap::new();
    for (set, edge) in side.edges() {
        let Some(destination) = keys.destination(set, edge) else {
            continue;
        };
        let origin = &set.origins[edge.origin as usize];
        digests
            .entry((destination, origin.digest))
            .or_insert(&origin.location);
        if edge.tag != NO_TAG {
            let tag = keys.tag(&set.tags[edge.tag as usize]);
            tags.entry((destination, tag))
                .or_insert((origin.digest, &origin.location));
        }
    }
    Facts { digests, tags }
}

/// The destinations (as text) that the edges of `side` reach: what a comparison must look at
/// when only those edges differ.
pub fn destinations_of(side: &Side<'_>) -> HashSet<String> {
    let mut seen: HashSet<(*const EdgeSet, u32)> = HashSet::new();
    let mut texts = HashSet::new();
    for (set, edge) in side.edges() {
        if seen.insert((std::ptr::from_ref(set), edge.destination)) {
            texts.insert(set.destinations[edge.destination as usize].to_string());
        }
    }
    texts
}

fn registered<'a>(base: &Side<'a>, head: &Side<'a>, only: Option<&HashSet<String>>) -> Keys<'a> {
    let mut keys = Keys::new();
    // The head first: a destination is named as the head spells it.
    for &(set, _) in head.parts.iter().chain(&base.parts) {
        keys.register(set, only);
    }
    keys
}

/// The changes that take `base` to `head`, sorted by destination, tag/digest and kind.
pub fn diff(base: &EdgeSet, head: &EdgeSet) -> Vec<Change> {
    diff_sides(&Side::all(base), &Side::all(head), None)
}

/// The changes that take `base` to `head`, looking only at the destinations in `only` (all
/// without it): when the two sides differ only in some manifests, the destinations their edges
/// reach on either side ([`destinations_of`]) are the only ones that can change. Destinations
/// are compared by their text, so two sides attributed differently still compare equal where
/// they name the same repository.
pub fn diff_sides(base: &Side<'_>, head: &Side<'_>, only: Option<&HashSet<String>>) -> Vec<Change> {
    let mut keys = registered(base, head, only);
    let old = facts(base, &mut keys);
    let new = facts(head, &mut keys);
    let mut changes = Vec::new();
    let change = |kind, destination: u32, digest, tag: Option<u32>, location: &Location| Change {
        kind,
        destination: keys.named[destination as usize].clone(),
        digest,
        tag: tag.map(|tag| keys.tag_names[tag as usize].clone()),
        location: location.clone(),
    };

    for (&(destination, digest), location) in &new.digests {
        if !old.digests.contains_key(&(destination, digest)) {
            changes.push(change(
                ChangeKind::AddDigest,
                destination,
                digest,
                None,
                location,
            ));
        }
    }
    for (&(destination, digest), location) in &old.digests {
        if !new.digests.contains_key(&(destination, digest)) {
            changes.push(change(
                ChangeKind::RemoveDigest,
                destination,
                digest,
                None,
                location,
            ));
        }
    }
    for (&(destination, tag), &(digest, location)) in &new.tags {
        match old.tags.get(&(destination, tag)) {
            None => changes.push(change(
                ChangeKind::AddTag,
                destination,
                digest,
                Some(tag),
                location,
            )),
            Some(&(from, _)) if from != digest => {
                changes.push(change(
                    ChangeKind::MoveTag { from },
                    destination,
                    digest,
                    Some(tag),
                    location,
                ));
            }
            Some(_) => {}
        }
    }
    for (&(destination, tag), &(digest, location)) in &old.tags {
        if !new.tags.contains_key(&(destination, tag)) {
            changes.push(change(
                ChangeKind::RemoveTag,
                destination,
                digest,
                Some(tag),
                location,
            ));
        }
    }
    changes.sort_by(|a, b| {
        (&a.destination, &a.tag, a.digest, &a.kind).cmp(&(
            &b.destination,
            &b.tag,
            b.digest,
            &b.kind,
        ))
    });
    changes
}

/// The edges of `head` that `base` does not already have: a digest new at its destination, or
/// a tag that is new there or named another digest (a move). This is the diff of
/// [`diff_sides`] seen from the edges: a run over the result reads and writes only what the
/// change added. Destinations outside `only` have nothing added.
pub fn added(base: &Side<'_>, head: &EdgeSet, only: Option<&HashSet<String>>) -> EdgeSet {
    let head_side = Side::all(head);
    let mut keys = registered(base, &head_side, only);
    let old = facts(base, &mut keys);
    // Every tag the head names, keyed once, so that the filter below only reads.
    let tag_keys: Vec<Option<u32>> = head
        .tags
        .iter()
        .map(|tag| keys.tags.get(tag).copied())
        .collect();
    let destinations = &keys.per_set[&std::ptr::from_ref(head)];
    head.select(|edge| {
        let Some(destination) = destinations[edge.destination as usize] else {
            return false;
        };
        let digest = head.origins[edge.origin as usize].digest;
        if !old.digests.contains_key(&(destination, digest)) {
            return true;
        }
        if edge.tag == NO_TAG {
            return false;
        }
        let held = tag_keys[edge.tag as usize].and_then(|tag| old.tags.get(&(destination, tag)));
        held.is_none_or(|&(from, _)| from != digest)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::manifest;

    fn kinds(changes: &[Change]) -> Vec<String> {
        changes
            .iter()
            .map(|c| {
                let kind = match &c.kind {
                    ChangeKind::MoveTag { from } => format!("move-tag from {}", &from.hex()[..1]),
                    other => serde_json::to_string(other)
                        .unwrap()
                        .trim_matches('"')
                        .to_owned(),
                };
                let short = &c.digest.hex()[..1];
                format!(
                    "{kind} {} {short}",
                    c.reference().replace(&c.digest.to_string(), "D")
                )
            })
            .collect()
    }

    #[test]
    fn additions_moves_and_removals() {
        let base = manifest(
            "m.yaml",
            "gcr.io/s",
            &["r.io/p"],
            &[("foo", &[('a', &["v1", "old"]), ('b', &["v2"])])],
        );
        let head = manifest(
            "m.yaml",
            "gcr.io/s",
            &["r.io/p"],
            &[("foo", &[('a', &["v1"]), ('c', &["v2", "v3"])])],
        );
        let changes = diff(&EdgeSet::compute(&[base]), &EdgeSet::compute(&[head]));
        assert_eq!(
            kinds(&changes),
            [
                "remove-digest r.io/p/foo@D b",
                "add-digest r.io/p/foo@D c",
                "remove-tag r.io/p/foo:old a",
                "move-tag from b r.io/p/foo:v2 c",
                "add-tag r.io/p/foo:v3 c",
            ]
        );
    }

    #[test]
    fn only_the_added_edges_are_selected() {
        let base = manifest(
            "m.yaml",
            "gcr.io/s",
            &["r.io/p"],
            &[("foo", &[('a', &["v1"]), ('b', &["v2"])])],
        );
        let head = manifest(
            "m.yaml",
            "gcr.io/s",
            &["r.io/p"],
            &[("foo", &[('a', &["v1", "new"]), ('c', &["v2"]), ('d', &[])])],
        );
        let (base, head) = (EdgeSet::compute(&[base]), EdgeSet::compute(&[head]));
        let selected = added(&Side::all(&base), &head, None);
        let described: Vec<String> = selected
            .edges
            .iter()
            .map(|edge| {
                let tag = selected.tag(edge).map_or("-".into(), ToString::to_string);
                format!("{}:{tag}", &selected.origin(edge).digest.hex()[..1])
            })
            .collect();
        // a:v1 was there; a:new is a new tag, c:v2 a move, d a new digest.
        assert_eq!(described, ["a:new", "c:v2", "d:-"]);
        // Nothing is added against itself.
        assert!(added(&Side::all(&head), &head, None).edges.is_empty());
    }

    #[test]
    fn a_side_made_of_parts_compares_like_the_whole() {
        let unchanged = manifest(
            "u.yaml",
            "gcr.io/u",
            &["r.io/p"],
            &[("bar", &[('e', &["v1"])])],
        );
        let before = manifest(
            "c.yaml",
            "gcr.io/c",
            &["r.io/p"],
            &[("foo", &[('a', &["v1"])])],
        );
        let after = manifest(
            "c.yaml",
            "gcr.io/c",
            &["r.io/p"],
            &[("foo", &[('a', &["v1"]), ('b', &["v2"])])],
        );
        let head = EdgeSet::compute(&[unchanged.clone(), after]);
        let changed_base = EdgeSet::compute_attributed(std::slice::from_ref(&before), &[unchanged]);
        let changed: HashSet<u32> = [1].into();
        let base = Side::all(&changed_base).with(&head, Manifests::Except(&changed));
        let touched =
            destinations_of(&Side::all(&changed_base).with(&head, Manifests::Only(&changed)));
        assert_eq!(touched, HashSet::from(["r.io/p/foo".to_owned()]));
        let changes = diff_sides(&base, &Side::all(&head), Some(&touched));
        assert_eq!(
            kinds(&changes),
            ["add-digest r.io/p/foo@D b", "add-tag r.io/p/foo:v2 b"]
        );
    }

    #[test]
    fn identical_manifests_have_no_changes() {
        let m = manifest(
            "m.yaml",
            "gcr.io/s",
            &["r.io/p"],
            &[("foo", &[('a', &["v1"])])],
        );
        assert!(
            diff(
                &EdgeSet::compute(std::slice::from_ref(&m)),
                &EdgeSet::compute(&[m])
            )
            .is_empty()
        );
    }
}
