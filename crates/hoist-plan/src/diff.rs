//! What a change of manifests does, compared with the manifests at a base revision: which digests
//! and tags it adds, which tags it moves to another digest, and what it removes.

use std::collections::{HashMap, HashSet};
use std::hash::BuildHasherDefault;

use hoist_manifest::Location;
use hoist_oci::{Digest, Tag};
use rustc_hash::FxHasher;

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

/// What a comparison looks at. When two sides differ only in some manifests (and attribute
/// destinations alike), only the destinations those manifests reach can differ, and only the facts
/// about the digests and tags of their changed lines: everything else is the same on both sides
/// by construction, so it is left out (a change of one project in a tree of a million edges then
/// compares a handful).
#[derive(Debug, Clone, Default)]
pub struct Scope {
    /// Only these destinations (as text); `None`: all.
    pub destinations: Option<HashSet<String>>,
    /// Only whether these digests are at a destination, and only what these tags name; `None`:
    /// every digest and tag.
    pub facts: Option<(HashSet<Digest>, HashSet<Tag>)>,
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
}

/// Which origins of `set` `manifests` takes, by origin id (one lookup per origin, not per edge).
fn taken(set: &EdgeSet, manifests: Manifests<'_>) -> Vec<bool> {
    set.origins
        .iter()
        .map(|origin| manifests.takes(origin.manifest))
        .collect()
}

/// Keys by an edge set's own ids (`None`: not compared).
type KeyTable = Vec<Option<u32>>;

/// Destinations and tags of several edge sets, by their text, so that sets computed apart (or
/// attributed differently) can be compared.
struct Keys<'a> {
    destinations: HashMap<String, u32>,
    /// For each key, the destination it names (the first set's spelling).
    named: Vec<&'a Destination>,
    tags: HashMap<&'a Tag, u32>,
    tag_names: Vec<&'a Tag>,
    /// Per registered edge set: the set, each destination id's key (`None` when not compared),
    /// and each tag id's key (`None` when its facts are not compared).
    sets: Vec<(&'a EdgeSet, KeyTable, KeyTable)>,
    /// Per registered edge set: whether each origin's digest is compared.
    digests: Vec<Vec<bool>>,
}

impl<'a> Keys<'a> {
    fn new() -> Self {
        Self {
            destinations: HashMap::new(),
            named: Vec::new(),
            tags: HashMap::new(),
            tag_names: Vec::new(),
            sets: Vec::new(),
            digests: Vec::new(),
        }
    }

    /// Registers the destinations of `set` that `only` keeps (all without it), and its tags.
    fn register(&mut self, set: &'a EdgeSet, scope: &Scope) {
        let only = scope.destinations.as_ref();
        if self
            .sets
            .iter()
            .any(|(known, ..)| std::ptr::eq(*known, set))
        {
            return;
        }
        let destinations = set
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
        let focus = scope.facts.as_ref();
        let tags = set
            .tags
            .iter()
            .map(|tag| {
                if focus.is_some_and(|(_, tags)| !tags.contains(tag)) {
                    return None;
                }
                let next = self.tag_names.len() as u32;
                let id = *self.tags.entry(tag).or_insert(next);
                if id == next {
                    self.tag_names.push(tag);
                }
                Some(id)
            })
            .collect();
        let digests = set
            .origins
            .iter()
            .map(|origin| focus.is_none_or(|(digests, _)| digests.contains(&origin.digest)))
            .collect();
        self.sets.push((set, destinations, tags));
        self.digests.push(digests);
    }

    /// The keys of a registered set: destination ids, tag ids, and which origins' digests count.
    fn of(&self, set: &EdgeSet) -> (&[Option<u32>], &[Option<u32>], &[bool]) {
        let index = self
            .sets
            .iter()
            .position(|(known, ..)| std::ptr::eq(*known, set))
            .expect("every set of a side is registered");
        let (_, destinations, tags) = &self.sets[index];
        (destinations, tags, &self.digests[index])
    }
}

type FastMap<K, V> = HashMap<K, V, BuildHasherDefault<FxHasher>>;

/// The facts of one side: which digests are at which destinations, and what each tag names.
struct Facts<'a> {
    digests: FastMap<(u32, Digest), &'a Location>,
    tags: FastMap<(u32, u32), (Digest, &'a Location)>,
}

fn facts<'a>(side: &Side<'a>, keys: &Keys<'a>) -> Facts<'a> {
    let mut facts = Facts {
        digests: FastMap::default(),
        tags: FastMap::default(),
    };
    for &(set, manifests) in &side.parts {
        let (destinations, tags, digests) = keys.of(set);
        let taken = taken(set, manifests);
        for edge in &set.edges {
            let Some(destination) = destinations[edge.destination as usize] else {
                continue;
            };
            if !taken[edge.origin as usize] {
                continue;
            }
            let origin = &set.origins[edge.origin as usize];
            if digests[edge.origin as usize] {
                facts
                    .digests
                    .entry((destination, origin.digest))
                    .or_insert(&origin.location);
            }
            if edge.tag != NO_TAG
                && let Some(tag) = tags[edge.tag as usize]
            {
                facts
                    .tags
                    .entry((destination, tag))
                    .or_insert((origin.digest, &origin.location));
            }
        }
    }
    facts
}

/// The destinations (as text) that the edges of `side` reach: what a comparison must look at
/// when only those edges differ.
pub fn destinations_of(side: &Side<'_>) -> HashSet<String> {
    let mut texts = HashSet::new();
    for &(set, manifests) in &side.parts {
        let taken = taken(set, manifests);
        let mut reached = vec![false; set.destinations.len()];
        for edge in &set.edges {
            if taken[edge.origin as usize] {
                reached[edge.destination as usize] = true;
            }
        }
        texts.extend(
            set.destinations
                .iter()
                .zip(reached)
                .filter(|(_, reached)| *reached)
                .map(|(destination, _)| destination.to_string()),
        );
    }
    texts
}

fn registered<'a>(base: &Side<'a>, head: &Side<'a>, scope: &Scope) -> Keys<'a> {
    let mut keys = Keys::new();
    // The head first: a destination is named as the head spells it.
    for &(set, _) in head.parts.iter().chain(&base.parts) {
        keys.register(set, scope);
    }
    keys
}

/// The changes that take `base` to `head`, sorted by destination, tag/digest and kind.
pub fn diff(base: &EdgeSet, head: &EdgeSet) -> Vec<Change> {
    diff_sides(&Side::all(base), &Side::all(head), &Scope::default())
}

/// The changes that take `base` to `head`, looking only at what `scope` names: when the two
/// sides differ only in some manifests, the destinations their edges reach on either side
/// ([`destinations_of`]) and the digests and tags of their changed lines are the only ones that
/// can change. Destinations are compared by their text, so two sides attributed differently
/// still compare equal where they name the same repository.
pub fn diff_sides(base: &Side<'_>, head: &Side<'_>, scope: &Scope) -> Vec<Change> {
    let keys = registered(base, head, scope);
    let old = facts(base, &keys);
    let new = facts(head, &keys);
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
/// change added. Outside `scope`, nothing is added: its facts are the same on both sides.
pub fn added(base: &Side<'_>, head: &EdgeSet, scope: &Scope) -> EdgeSet {
    let head_side = Side::all(head);
    let keys = registered(base, &head_side, scope);
    let old = facts(base, &keys);
    let (destinations, tags, digests) = keys.of(head);
    head.select(|edge| {
        let Some(destination) = destinations[edge.destination as usize] else {
            return false;
        };
        let digest = head.origins[edge.origin as usize].digest;
        if digests[edge.origin as usize] && !old.digests.contains_key(&(destination, digest)) {
            return true;
        }
        if edge.tag == NO_TAG {
            return false;
        }
        let Some(tag) = tags[edge.tag as usize] else {
            return false;
        };
        old.tags
            .get(&(destination, tag))
            .is_none_or(|&(from, _)| from != digest)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{digest, manifest};

    fn tag(name: &str) -> Tag {
        Tag::parse(name).unwrap()
    }

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
        let selected = added(&Side::all(&base), &head, &Scope::default());
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
        assert!(
            added(&Side::all(&head), &head, &Scope::default())
                .edges
                .is_empty()
        );
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
        let scope = Scope {
            destinations: Some(touched),
            facts: None,
        };
        let changes = diff_sides(&base, &Side::all(&head), &scope);
        assert_eq!(
            kinds(&changes),
            ["add-digest r.io/p/foo@D b", "add-tag r.io/p/foo:v2 b"]
        );
        // Focused on the changed line's digest and tags: the same answer.
        let focused = Scope {
            facts: Some((HashSet::from([digest('b')]), HashSet::from([tag("v2")]))),
            ..scope
        };
        assert_eq!(diff_sides(&base, &Side::all(&head), &focused), changes);
        let selected = added(&base, &head, &focused);
        assert_eq!(selected.edges.len(), 1);
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
