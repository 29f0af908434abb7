//! `--shard I/N` and `--shards N` (with `JOB_COMPLETION_INDEX`) to the [`Shard`] a run does.

use hoist_plan::Shard;
use hoist_plan::shard::JOB_INDEX_VARIABLE;

use crate::cli::ShardArgs;

/// The shard the flags name; `None` does all the work. A missing or bad job index is a usage
/// error: a pod that guessed its shard would leave another part undone.
pub fn from_args(args: &ShardArgs) -> anyhow::Result<Option<Shard>> {
    let shard = match (args.shard, args.shards) {
        (Some(shard), _) => Some(shard),
        (None, Some(count)) => {
            let value = std::env::var(JOB_INDEX_VARIABLE).ok();
            Some(Shard::from_job_index(count, value.as_deref())?)
        }
        (None, None) => None,
    };
    if let Some(shard) = shard {
        crate::progress::set_label(format!("shard {shard}: "));
    }
    Ok(shard)
}

/// What a sharded run reports about its part, in JSON and in the text header.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ShardReport {
    /// Zero-based.
    pub index: u32,
    pub count: u32,
    /// Destination repositories this shard owns, of all the manifests name.
    pub repositories: usize,
    pub repositories_total: usize,
}

impl ShardReport {
    /// The report of `shard` over the destinations of `whole` that have edges.
    pub fn new(shard: &Shard, whole: &hoist_plan::EdgeSet) -> Self {
        let mut used = vec![false; whole.destinations.len()];
        for edge in &whole.edges {
            used[edge.destination as usize] = true;
        }
        let (repositories, repositories_total) = whole
            .destinations
            .iter()
            .zip(used)
            .filter(|(_, used)| *used)
            .fold((0, 0), |(owned, total), (destination, _)| {
                (
                    owned + usize::from(shard.owns_destination(destination)),
                    total + 1,
                )
            });
        Self {
            index: shard.index(),
            count: shard.count(),
            repositories,
            repositories_total,
        }
    }

    /// `shard 1/4: 5,012 of 20,311 destination repositories`.
    pub fn line(&self) -> String {
        format!(
            "shard {}/{}: {} of {} destination repositories",
            self.index, self.count, self.repositories, self.repositories_total
        )
    }
}

/// The edges `shard` owns (all of them without a shard), borrowed when nothing is left out.
pub fn select<'a>(
    shard: Option<&Shard>,
    edges: &'a hoist_plan::EdgeSet,
) -> std::borrow::Cow<'a, hoist_plan::EdgeSet> {
    match shard {
        Some(shard) => {
            let mut mine = edges.clone();
            mine.retain_shard(shard);
            std::borrow::Cow::Owned(mine)
        }
        None => std::borrow::Cow::Borrowed(edges),
    }
}
