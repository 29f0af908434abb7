//! From manifests to what must happen.
//!
//! - [`edges`]: every (image, digest, tag) × destination registry of the manifests, as a compact
//!   [`EdgeSet`], with nested registry names attributed by longest prefix.
//! - [`conflicts`]: tags that two origins send to different digests, found offline.
//! - [`diff`]: what a change of manifests adds, moves or removes against a base.
//! - [`shard`]: a stable partition of the work over N processes (by destination repository,
//!   and by blob digest for mirrors), applied to an [`EdgeSet`] as a selection.

pub mod conflicts;
pub mod diff;
pub mod edges;
pub mod shard;

pub use conflicts::{Conflict, find_conflicts};
pub use diff::{Change, ChangeKind, diff};
pub use edges::{Destination, Edge, EdgeSet, NO_TAG, Origin};
pub use shard::{Shard, ShardError};

#[cfg(test)]
mod testing;
