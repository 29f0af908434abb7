//! Progress events, for the CLI's bars and for logs.

use std::sync::Arc;

use hoist_oci::{Digest, Tag};

/// Receives [`ProgressEvent`]s. Called from the copy tasks, so it must be quick and never block.
pub type Progress = Arc<dyn Fn(&ProgressEvent) + Send + Sync>;

/// How a blob ended up at the destination.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BlobOutcome {
    /// Its bytes were streamed from the source.
    Uploaded,
    /// The destination store linked it from the source repository without copying bytes.
    Mounted,
    /// The destination already had it.
    Skipped,
}

/// Something a copy did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProgressEvent {
    /// A blob upload starts (also on a retry: reset the bar).
    BlobStarted {
        /// The blob.
        digest: Digest,
        /// Its size in bytes.
        size: u64,
        /// 1 for the first attempt.
        attempt: u32,
    },
    /// `bytes` more bytes of a blob went to the destination.
    BytesCopied {
        /// The blob.
        digest: Digest,
        /// Bytes in this chunk.
        bytes: u64,
    },
    /// A blob is at the destination.
    BlobDone {
        /// The blob.
        digest: Digest,
        /// How it got there.
        outcome: BlobOutcome,
    },
    /// A manifest was pushed by digest.
    ManifestPushed {
        /// `repository` at the destination.
        repository: String,
        /// The manifest.
        digest: Digest,
    },
    /// A tag now points at `digest`.
    TagSet {
        /// `repository` at the destination.
        repository: String,
        /// The tag.
        tag: Tag,
        /// What it points at.
        digest: Digest,
    },
}
