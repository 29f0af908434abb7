//! [`Snapshot`]: images written back out, in a form that is the same byte for byte whatever order
//! they were read or inserted in.
//!
//! YAML in the style of a thin `images.yaml` (so a snapshot can be loaded back with
//! [`crate::load`]), and CSV with one line per (image, digest, tag), as `kpromo cip --snapshot`
//! prints them. Both are sorted by image name, then digest, then tag.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;

use hoist_oci::{Digest, RepositoryPath, Tag};

use crate::model::Image;

/// Images, each with its digests and each digest's tags, merged and sorted.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Snapshot {
    // Digest orders by its bytes, which is the order of its hex text.
    images: BTreeMap<RepositoryPath, BTreeMap<Digest, BTreeSet<Tag>>>,
}

impl Snapshot {
    /// An empty snapshot.
    pub fn new() -> Self {
        Self::default()
    }

    /// All digests and tags of `images`; entries with the same name are merged.
    pub fn from_images<'a>(images: impl IntoIterator<Item = &'a Image>) -> Self {
        let mut snapshot = Self::new();
        for image in images {
            for entry in &image.dmap {
                snapshot.insert(image.name.clone(), entry.digest, entry.tags.iter().cloned());
            }
        }
        snapshot
    }

    /// Adds `digest` under `name` with `tags` (none: the digest is kept, untagged).
    pub fn insert(
        &mut self,
        name: RepositoryPath,
        digest: Digest,
        tags: impl IntoIterator<Item = Tag>,
    ) {
        self.images
            .entry(name)
            .or_default()
            .entry(digest)
            .or_default()
            .extend(tags);
    }

    /// Whether the snapshot holds no image.
    pub fn is_empty(&self) -> bool {
        self.images.is_empty()
    }

    /// The images in order, each with its digests (in order) and their sorted tags.
    pub fn images(
        &self,
    ) -> impl Iterator<Item = (&RepositoryPath, &BTreeMap<Digest, BTreeSet<Tag>>)> {
        self.images.iter()
    }

    /// The snapshot as a thin `images.yaml`:
    ///
    /// ```yaml
    /// - name: foo
    ///   dmap:
    ///     "sha256:0000…": ["v1.0.0", "v1.0.1"]
    ///     "sha256:1111…": []
    /// ```
    ///
    /// An empty snapshot is `[]`. Names, digests and tags are validated types whose grammar has no
    /// character YAML would need to escape, so nothing is escaped.
    pub fn to_yaml(&self) -> String {
        if self.images.is_empty() {
            return "[]\n".to_owned();
        }
        let mut out = String::new();
        for (name, digests) in &self.images {
            // Writing to a String cannot fail.
            let _ = writeln!(out, "- name: {name}\n  dmap:");
            for (digest, tags) in digests {
                let _ = write!(out, "    \"{digest}\": [");
                for (index, tag) in tags.iter().enumerate() {
                    let separator = if index == 0 { "" } else { ", " };
                    let _ = write!(out, "{separator}\"{tag}\"");
                }
                out.push_str("]\n");
            }
        }
        out
    }

    /// The snapshot as CSV, one line per (image, digest, tag): `name@digest,name:tag`, or
    /// `name@digest,-` for a digest without tags. No header.
    pub fn to_csv(&self) -> String {
        let mut out = String::new();
        for (name, digests) in &self.images {
            for (digest, tags) in digests {
                if tags.is_empty() {
                    let _ = writeln!(out, "{name}@{digest},-");
                }
                for tag in tags {
                    let _ = writeln!(out, "{name}@{digest},{name}:{tag}");
                }
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn digest(fill: char) -> Digest {
        Digest::parse(&format!("sha256:{}", fill.to_string().repeat(64))).unwrap()
    }

    fn name(text: &str) -> RepositoryPath {
        RepositoryPath::parse(text).unwrap()
    }

    fn tags(list: &[&str]) -> Vec<Tag> {
        list.iter().map(|tag| Tag::parse(tag).unwrap()).collect()
    }

    fn sample() -> Snapshot {
        // Inserted out of order, with a repeated tag and a repeated digest.
        let mut snapshot = Snapshot::new();
        snapshot.insert(name("foo"), digest('1'), tags(&[]));
        snapshot.insert(name("foo"), digest('0'), tags(&["v1.0.1", "v1.0.0"]));
        snapshot.insert(name("bar/baz"), digest('a'), tags(&["latest"]));
        snapshot.insert(name("foo"), digest('0'), tags(&["v1.0.0"]));
        snapshot
    }

    #[test]
    fn writes_sorted_yaml() {
        let zeros = "0".repeat(64);
        let ones = "1".repeat(64);
        let a = "a".repeat(64);
        assert_eq!(
            sample().to_yaml(),
            format!(
                "- name: bar/baz\n  dmap:\n    \"sha256:{a}\": [\"latest\"]\n\
                 - name: foo\n  dmap:\n    \"sha256:{zeros}\": [\"v1.0.0\", \"v1.0.1\"]\n    \
                 \"sha256:{ones}\": []\n"
            )
        );
        assert_eq!(Snapshot::new().to_yaml(), "[]\n");
    }

    #[test]
    fn writes_sorted_csv() {
        let zeros = "0".repeat(64);
        let ones = "1".repeat(64);
        let a = "a".repeat(64);
        assert_eq!(
            sample().to_csv(),
            format!(
                "bar/baz@sha256:{a},bar/baz:latest\n\
                 foo@sha256:{zeros},foo:v1.0.0\n\
                 foo@sha256:{zeros},foo:v1.0.1\n\
                 foo@sha256:{ones},-\n"
            )
        );
        assert_eq!(Snapshot::new().to_csv(), "");
    }

    #[test]
    fn insertion_order_does_not_matter() {
        let mut reversed = Snapshot::new();
        reversed.insert(name("foo"), digest('0'), tags(&["v1.0.0", "v1.0.1"]));
        reversed.insert(name("bar/baz"), digest('a'), tags(&["latest"]));
        reversed.insert(name("foo"), digest('1'), tags(&[]));
        assert_eq!(reversed, sample());
        assert_eq!(reversed.to_yaml(), sample().to_yaml());
    }
}
