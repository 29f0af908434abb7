//! From manifests to what must happen.
//!
//! - [`edges`]: every (image, digest, tag) × destination registry of the manifests, as a compact
//!   [`EdgeSet`], with nested registry names attributed by longest prefix.
//! - [`conflicts`]: tags that two origins send to different digests, found offline.
//! - [`diff`]: what a change of manifests adds, moves or removes against a base, and the edges
//!   it adds ([`added`]), comparing only the destinations the changed manifests reach.
//! - [`shard`]: a stable partition of the work over N processes (by destination repository,
//!   and by blob digest for mirrors), applied to an [`EdgeSet`] as a selection.
//!
//! Selections of edges (the edges a change adds; a shard) are [`EdgeSet::select`] filters over
//! the same tables, so they compose.

pub mod conflicts;
pub mod diff;
pub mod edges;
pub mod shard;

pub use conflicts::{Conflict, find_conflicts};
pub use diff::{
    Change, ChangeKind, Manifests, Scope, Side, added, destinations_of, diff, diff_sides,
};
pub use edges::{Destination, Edge, EdgeSet, MAX_EDGES, NO_TAG, Origin, TooManyEdges};
pub use shard::{Shard, ShardError};

#[cfg(test)]
mod testing;
