//! [`CopyError`]: why one image copy failed, with its subject.

use std::sync::Arc;

use hoist_oci::Digest;
use hoist_store::{StoreError, StoreErrorKind};

/// What kind of failure a [`CopyError`] is; callers (the CLI's exit code, the summary) branch on it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CopyErrorKind {
    /// Bytes did not match their digest or size. Never retried: the content is corrupt somewhere.
    DigestMismatch,
    /// A destination tag already points at another digest; the copier never moves tags.
    TagMove,
    /// The manifest to copy does not exist in the source.
    NotFound,
    /// A manifest could not be understood.
    InvalidManifest,
    /// Any other store failure, by its own classification.
    Store(StoreErrorKind),
}

/// Why a copy failed. Cheap to clone (store errors are shared), so one failed blob copy can be
/// reported to every request that was waiting on it.
#[derive(Debug, Clone, thiserror::Error)]
pub enum CopyError {
    /// A store operation failed.
    #[error("{operation} {subject}")]
    Store {
        /// What was being done: `fetch manifest`, `copy blob`, ...
        operation: &'static str,
        /// `store/repository@digest` or `store/repository:tag`.
        subject: String,
        /// The store's error.
        #[source]
        source: Arc<StoreError>,
    },
    /// The manifest to copy is not in the source.
    #[error("manifest {subject} not found")]
    ManifestNotFound {
        /// `store/repository@digest`.
        subject: String,
    },
    /// A manifest's JSON is not what the OCI spec describes.
    #[error("manifest {subject} is invalid: {reason}")]
    InvalidManifest {
        /// `store/repository@digest`.
        subject: String,
        /// What is wrong.
        reason: String,
    },
    /// The destination already has the blob, with another size than the manifest names.
    #[error("blob {subject} exists with {actual} bytes, but the manifest says {expected}")]
    BlobSizeConflict {
        /// `store/repository@digest`.
        subject: String,
        /// The size the manifest names.
        expected: u64,
        /// The size the destination reports.
        actual: u64,
    },
    /// A destination tag points at another digest; moving it is refused.
    #[error("refusing to move tag {subject} from {current} to {wanted}")]
    TagMove {
        /// `store/repository:tag`.
        subject: String,
        /// What the tag points at now.
        current: Digest,
        /// What the copy would point it at.
        wanted: Digest,
    },
}

impl CopyError {
    pub fn store(operation: &'static str, subject: impl Into<String>, source: StoreError) -> Self {
        Self::Store {
            operation,
            subject: subject.into(),
            source: Arc::new(source),
        }
    }

    /// The kind of failure.
    pub fn kind(&self) -> CopyErrorKind {
        match self {
            Self::Store { source, .. } => match source.kind() {
                StoreErrorKind::DigestMismatch => CopyErrorKind::DigestMismatch,
                other => CopyErrorKind::Store(other),
            },
            Self::ManifestNotFound { .. } => CopyErrorKind::NotFound,
            Self::InvalidManifest { .. } => CopyErrorKind::InvalidManifest,
            Self::BlobSizeConflict { .. } => CopyErrorKind::DigestMismatch,
            Self::TagMove { .. } => CopyErrorKind::TagMove,
        }
    }

    /// Whether trying the same copy again may succeed (a store error that is retryable).
    pub fn is_retryable(&self) -> bool {
        matches!(self, Self::Store { source, .. } if source.is_retryable())
    }
}
