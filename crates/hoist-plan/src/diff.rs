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

/// The facts of one edge set, keyed by destination text so two sets can be compared.
struct Facts<'a> {
    digests: HashMap<(&'a Destination, Digest), &'a Location>,
    tags: HashMap<(&'a Destination, &'a Tag), (Digest, &'a Location)>,
}

fn facts(edges: &EdgeSet) -> Facts<'_> {
    let mut digests = HashMap::new();
    let mut tags = HashMap::new();
    for edge in &edges.edges {
        let origin = &edges.origins[edge.origin as usize];
        let destination = &edges.destinations[edge.destination as usize];
        digests
            .entry((destination, origin.digest))
            .or_insert(&origin.location);
        if edge.tag != NO_TAG {
            let tag = &edges.tags[edge.tag as usize];
            tags.entry((destination, tag))
                .or_insert((origin.digest, &origin.location));
        }
    }
    Facts { digests, tags }
}

/// The changes that take `base` to `head`, sorted by destination, tag/digest and kind.
pub fn diff(base: &EdgeSet, head: &EdgeSet) -> Vec<Change> {
    let (old, new) = (facts(base), facts(head));
    let mut changes = Vec::new();
    let change =
        |kind, destination: &Destination, digest, tag: Option<&Tag>, location: &Location| Change {
            kind,
            destination: destination.clone(),
            digest,
            tag: tag.cloned(),
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
    let mut seen: HashSet<(&Destination, &Tag)> = HashSet::new();
    for (&(destination, tag), &(digest, location)) in &new.tags {
        seen.insert((destination, tag));
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
        if !seen.contains(&(destination, tag)) {
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
