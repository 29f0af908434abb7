//! Sharding: a deterministic partition of a run's work over N processes, such as the pods of a
//! Kubernetes Indexed Job (`JOB_COMPLETION_INDEX` is the index).
//!
//! Registry work is split by **destination repository**: the shard of a [`Destination`] is a
//! stable hash (sha256) of its text `registry/image`, where the registry is the one the
//! longest-prefix attribution chose, so both spellings of a nested repository land in one shard.
//! Every edge to a repository goes to the same shard, so no two shards ever list, tag or write
//! the same repository, and the union of the shards' edges is the whole set.
//!
//! Blob-mirror work is split by **blob digest** (a digest is already a uniform hash): every blob
//! is written or checked by exactly one shard, whatever the images that share it.
//!
//! The hash never depends on the process (no random hasher state), the platform or the order of
//! the manifests: any two processes given the same `I/N` and the same manifests agree.

use hoist_oci::Digest;
use sha2::{Digest as _, Sha256};

use crate::edges::{Destination, Edge, EdgeSet};

/// One part of N: `index` in `0..count`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
pub struct Shard {
    index: u32,
    count: u32,
}

/// A shard that cannot be.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ShardError {
    /// Not `I/N` with two numbers.
    #[error("a shard is I/N with 0 <= I < N (got {0:?})")]
    Syntax(String),
    /// `N` is 0 or `I >= N`.
    #[error("shard {index}/{count} does not exist: I/N needs N > 0 and 0 <= I < N")]
    OutOfRange { index: u64, count: u64 },
    /// The index the job should have given is missing or not a number.
    #[error("{variable} must hold this pod's shard index (0 <= index < {count}): {problem}")]
    JobIndex {
        variable: &'static str,
        count: u32,
        problem: String,
    },
}

/// The variable Kubernetes sets in every pod of an Indexed Job.
pub const JOB_INDEX_VARIABLE: &str = "JOB_COMPLETION_INDEX";

impl Shard {
    /// Shard `index` of `count`.
    pub fn new(index: u32, count: u32) -> Result<Self, ShardError> {
        if count == 0 || index >= count {
            return Err(ShardError::OutOfRange {
                index: index.into(),
                count: count.into(),
            });
        }
        Ok(Self { index, count })
    }

    /// `I/N`, zero-based like Kubernetes' completion index.
    pub fn parse(text: &str) -> Result<Self, ShardError> {
        let syntax = || ShardError::Syntax(text.to_owned());
        let (index, count) = text.trim().split_once('/').ok_or_else(syntax)?;
        let number = |part: &str| part.trim().parse::<u64>().map_err(|_| syntax());
        let (index, count) = (number(index)?, number(count)?);
        let out_of_range = ShardError::OutOfRange { index, count };
        match (u32::try_from(index), u32::try_from(count)) {
            (Ok(index), Ok(count)) => Self::new(index, count),
            _ => Err(out_of_range),
        }
    }

    /// Shard `value` of `count`, where `value` is the job's [`JOB_INDEX_VARIABLE`] (`None` when
    /// it is not set).
    pub fn from_job_index(count: u32, value: Option<&str>) -> Result<Self, ShardError> {
        let problem = |problem: String| ShardError::JobIndex {
            variable: JOB_INDEX_VARIABLE,
            count,
            problem,
        };
        let value = value.ok_or_else(|| {
            problem("it is not set (run in a Job with completionMode: Indexed)".into())
        })?;
        let index: u32 = value
            .trim()
            .parse()
            .map_err(|_| problem(format!("{value:?} is not a number")))?;
        Self::new(index, count)
    }

    /// The zero-based index.
    pub fn index(&self) -> u32 {
        self.index
    }

    /// How many shards there are.
    pub fn count(&self) -> u32 {
        self.count
    }

    /// The shard a destination repository belongs to.
    pub fn of_destination(destination: &Destination, count: u32) -> u32 {
        let text = destination.to_string();
        let hash = Sha256::digest(text.as_bytes());
        let head = u64::from_be_bytes(hash[..8].try_into().expect("a sha256 has 32 bytes"));
        (head % u64::from(count.max(1))) as u32
    }

    /// The shard a blob belongs to.
    pub fn of_blob(digest: &Digest, count: u32) -> u32 {
        let head = u64::from_be_bytes(
            digest.as_bytes()[..8]
                .try_into()
                .expect("a sha256 has 32 bytes"),
        );
        (head % u64::from(count.max(1))) as u32
    }

    /// Whether this shard does the work of `destination`.
    pub fn owns_destination(&self, destination: &Destination) -> bool {
        Self::of_destination(destination, self.count) == self.index
    }

    /// Whether this shard writes or checks `digest` in blob mirrors.
    pub fn owns_blob(&self, digest: &Digest) -> bool {
        Self::of_blob(digest, self.count) == self.index
    }
}

impl std::fmt::Display for Shard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.index, self.count)
    }
}

impl std::str::FromStr for Shard {
    type Err = ShardError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        Self::parse(text)
    }
}

impl EdgeSet {
    /// Keeps only the edges whose destination `keep` accepts. The tables (origins,
    /// destinations, tags) stay as they are, so ids stay valid and selections compose: a
    /// selection by change (`--since`) and one by shard can be applied one after the other, in
    /// either order.
    pub fn retain_destinations(&mut self, mut keep: impl FnMut(&Destination) -> bool) {
        let verdicts: Vec<bool> = self.destinations.iter().map(&mut keep).collect();
        self.edges
            .retain(|edge: &Edge| verdicts[edge.destination as usize]);
    }

    /// Keeps only the edges of the destination repositories `shard` owns.
    pub fn retain_shard(&mut self, shard: &Shard) {
        self.retain_destinations(|destination| shard.owns_destination(destination));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::manifest;

    #[test]
    fn parses_i_of_n() {
        assert_eq!(Shard::parse("0/1").unwrap(), Shard::new(0, 1).unwrap());
        assert_eq!(Shard::parse(" 3/8 ").unwrap().to_string(), "3/8");
        for bad in ["3", "a/b", "1/", "-1/4", "1/2/3"] {
            assert!(
                matches!(Shard::parse(bad), Err(ShardError::Syntax(_))),
                "{bad}"
            );
        }
        for bad in ["4/4", "0/0", "9/3", "1/99999999999"] {
            assert!(
                matches!(Shard::parse(bad), Err(ShardError::OutOfRange { .. })),
                "{bad}"
            );
        }
    }

    #[test]
    fn reads_the_job_index() {
        assert_eq!(
            Shard::from_job_index(4, Some("2")).unwrap(),
            Shard::new(2, 4).unwrap()
        );
        let unset = Shard::from_job_index(4, None).unwrap_err().to_string();
        assert!(unset.contains(JOB_INDEX_VARIABLE), "{unset}");
        assert!(Shard::from_job_index(4, Some("x")).is_err());
        assert!(Shard::from_job_index(4, Some("4")).is_err());
    }

    #[test]
    fn the_partition_is_stable() {
        // Fixed values: the hash must never change between processes, platforms or releases,
        // or pods of one job built from different binaries would disagree.
        let destination = Destination {
            registry: hoist_oci::RegistryName::parse(
                "us-west1-docker.pkg.dev/k8s-artifacts-prod/images",
            )
            .unwrap(),
            image: hoist_oci::RepositoryPath::parse("kubernetes/pause").unwrap(),
        };
        let shards: Vec<u32> = (1..=8)
            .map(|count| Shard::of_destination(&destination, count))
            .collect();
        assert_eq!(shards, STABLE_SHARDS);
        assert_eq!(Shard::of_blob(&Digest::from_sha256([0; 32]), 7), 0);
    }

    /// The shard of `us-west1-docker.pkg.dev/k8s-artifacts-prod/images/kubernetes/pause` for
    /// N = 1..=8, computed independently (Python: `int.from_bytes(sha256(text)[:8], "big") % n`).
    const STABLE_SHARDS: [u32; 8] = [0, 0, 0, 2, 3, 0, 5, 6];

    #[test]
    fn shards_partition_the_edges_by_destination() {
        let manifests = [
            manifest(
                "a.yaml",
                "gcr.io/s",
                &["a.io/prod", "b.io/prod", "c.io/x"],
                &[
                    ("foo", &[('a', &["v1"]), ('b', &[])]),
                    ("bar", &[('c', &["v2", "v3"])]),
                ],
            ),
            manifest(
                "b.yaml",
                "gcr.io/t",
                &["a.io/prod/nested"],
                &[("baz", &[('d', &["1"])])],
            ),
        ];
        let whole = EdgeSet::compute(&manifests);
        let count = 3;
        let mut union = Vec::new();
        for index in 0..count {
            let shard = Shard::new(index, count).unwrap();
            let mut part = whole.clone();
            part.retain_shard(&shard);
            for edge in &part.edges {
                assert!(shard.owns_destination(part.destination(edge)));
            }
            union.extend(part.edges);
        }
        union.sort_by_key(|edge| (edge.origin, edge.destination, edge.tag));
        let mut expected = whole.edges.clone();
        expected.sort_by_key(|edge| (edge.origin, edge.destination, edge.tag));
        assert_eq!(union, expected);
    }
}
