//! Conflicts found offline: two edges that send *different* digests to the same
//! `registry/image:tag`, wherever they come from (other images, other manifests).

use std::collections::HashMap;

use hoist_manifest::Location;
use hoist_oci::Digest;

use crate::edges::{DestinationId, EdgeSet, NO_TAG, OriginId, TagId};

/// One tag that two origins want to point at different digests.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Conflict {
    /// `registry/image:tag`.
    pub reference: String,
    /// The first digest and where it is written.
    pub first: (Digest, Location),
    /// The other digest and where it is written.
    pub second: (Digest, Location),
    /// The origins of the two digests (their manifests are the projects in conflict).
    pub origins: (OriginId, OriginId),
}

impl std::fmt::Display for Conflict {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} is promoted to two different digests: {} ({}) and {} ({})",
            self.reference, self.first.0, self.first.1, self.second.0, self.second.1
        )
    }
}

/// Every conflict among `edges`, one per (destination, tag, pair of digests), sorted by reference.
pub fn find_conflicts(edges: &EdgeSet) -> Vec<Conflict> {
    // (destination, tag) -> the first origin seen. A million edges hash in well under a second.
    let mut first_seen: HashMap<(DestinationId, TagId), u32> = HashMap::new();
    let mut conflicts: HashMap<(DestinationId, TagId, Digest, Digest), Conflict> = HashMap::new();
    for edge in &edges.edges {
        if edge.tag == NO_TAG {
            continue;
        }
        let origin = *first_seen
            .entry((edge.destination, edge.tag))
            .or_insert(edge.origin);
        let first = &edges.origins[origin as usize];
        let second = &edges.origins[edge.origin as usize];
        if first.digest != second.digest {
            let key = (edge.destination, edge.tag, first.digest, second.digest);
            conflicts.entry(key).or_insert_with(|| Conflict {
                reference: format!(
                    "{}:{}",
                    edges.destination(edge),
                    edges.tags[edge.tag as usize]
                ),
                first: (first.digest, first.location.clone()),
                second: (second.digest, second.location.clone()),
                origins: (origin, edge.origin),
            });
        }
    }
    let mut conflicts: Vec<Conflict> = conflicts.into_values().collect();
    conflicts.sort_by(|a, b| {
        a.reference
            .cmp(&b.reference)
            .then_with(|| a.second.1.cmp(&b.second.1))
    });
    conflicts
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::manifest;

    #[test]
    fn different_digests_for_one_tag_conflict_across_manifests() {
        let a = manifest(
            "a.yaml",
            "gcr.io/s1",
            &["r.io/images"],
            &[("kubernetes/pause", &[('a', &["3.9"])])],
        );
        let b = manifest(
            "b.yaml",
            "gcr.io/s2",
            &["r.io/images/kubernetes"],
            &[("pause", &[('b', &["3.9"])])],
        );
        let conflicts = find_conflicts(&EdgeSet::compute(&[a, b]));
        assert_eq!(conflicts.len(), 1);
        assert_eq!(conflicts[0].reference, "r.io/images/kubernetes/pause:3.9");
        let message = conflicts[0].to_string();
        assert!(
            message.contains("a.yaml:11:1") && message.contains("b.yaml:11:1"),
            "{message}"
        );
    }

    #[test]
    fn same_digest_twice_or_different_tags_do_not_conflict() {
        let a = manifest(
            "a.yaml",
            "gcr.io/s1",
            &["r.io/p"],
            &[("foo", &[('a', &["v1"]), ('b', &["v2"])])],
        );
        let b = manifest(
            "b.yaml",
            "gcr.io/s2",
            &["r.io/p"],
            &[("foo", &[('a', &["v1"])])],
        );
        assert!(find_conflicts(&EdgeSet::compute(&[a, b])).is_empty());
    }

    #[test]
    fn conflicts_within_one_image_list() {
        let a = manifest(
            "a.yaml",
            "gcr.io/s1",
            &["r.io/p", "q.io/p"],
            &[("foo", &[('a', &["v1"]), ('b', &["v1"])])],
        );
        let conflicts = find_conflicts(&EdgeSet::compute(&[a]));
        let references: Vec<&str> = conflicts.iter().map(|c| c.reference.as_str()).collect();
        assert_eq!(references, ["q.io/p/foo:v1", "r.io/p/foo:v1"]);
    }
}
