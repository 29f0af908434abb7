//! Filling mirrors from a registry ([`mirror_blobs`]) and proving what they hold ([`audit_blobs`]).

use futures::StreamExt;
use hoist_oci::Digest;
use hoist_store::{Source, VerifyingStream};

use crate::error::{ObjectError, ObjectErrorKind};
use crate::{BlobMirror, PutOutcome};

/// What [`mirror_blobs`] did, blob by blob.
#[derive(Debug, Default)]
pub struct MirrorReport {
    /// Uploaded now.
    pub written: Vec<Digest>,
    /// Already in the mirror with the right size.
    pub present: Vec<Digest>,
    /// Failed; the rest went on.
    pub failed: Vec<(Digest, ObjectError)>,
}

impl MirrorReport {
    /// Whether every blob is now in the mirror.
    pub fn is_complete(&self) -> bool {
        self.failed.is_empty()
    }
}

/// Copies blobs from `repository` of a registry or layout into `mirror`, at most `concurrency` at
/// a time: blobs already there (right size) are skipped after a `HEAD` without touching the
/// source; the others stream from the source through a [`VerifyingStream`] into the mirror.
/// Each blob is attempted once; failures are collected, not retried.
pub async fn mirror_blobs(
    source: &dyn Source,
    repository: &str,
    blobs: &[(Digest, u64)],
    mirror: &dyn BlobMirror,
    concurrency: usize,
) -> MirrorReport {
    let outcomes: Vec<(Digest, Result<PutOutcome, ObjectError>)> =
        futures::stream::iter(unique(blobs))
            .map(|(digest, size)| async move {
                (
                    digest,
                    mirror_one(source, repository, &digest, size, mirror).await,
                )
            })
            .buffer_unordered(concurrency.max(1))
            .collect()
            .await;
    let mut report = MirrorReport::default();
    for (digest, outcome) in outcomes {
        match outcome {
            Ok(PutOutcome::Written) => report.written.push(digest),
            Ok(PutOutcome::AlreadyPresent) => report.present.push(digest),
            Err(error) => report.failed.push((digest, error)),
        }
    }
    report.written.sort();
    report.present.sort();
    report.failed.sort_by_key(|failure| failure.0);
    report
}

async fn mirror_one(
    source: &dyn Source,
    repository: &str,
    digest: &Digest,
    size: u64,
    mirror: &dyn BlobMirror,
) -> Result<PutOutcome, ObjectError> {
    // Skip before opening the source: a re-run over a full mirror reads nothing from the registry.
    if let Some(found) = mirror.blob_size(digest).await? {
        return crate::file::existing(&format!("{} {digest}", mirror.describe()), size, found);
    }
    let subject = format!("{}/{repository}@{digest}", source.describe());
    let stream = source
        .fetch_blob(repository, digest)
        .await
        .map_err(|error| ObjectError::from_stream(&subject, error))?;
    let verified = VerifyingStream::new(stream, subject, *digest, size).boxed();
    mirror.put_verified_blob(digest, size, verified).await
}

/// What [`audit_blobs`] found for one blob.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BlobStatus {
    /// Present with the right size (and, when re-hashed, the right sha256).
    Ok,
    /// No object.
    Missing,
    /// An object of another size.
    SizeMismatch {
        /// Its size.
        found: u64,
    },
    /// The right size, but the bytes hash to something else (only found with `rehash`).
    HashMismatch {
        /// The digest of the stored bytes.
        found: Digest,
    },
    /// The mirror could not be asked.
    Error {
        /// Why.
        message: String,
        /// The kind of failure.
        kind: ObjectErrorKind,
    },
}

/// One audited blob.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlobFinding {
    /// The blob.
    pub digest: Digest,
    /// Its expected size.
    pub size: u64,
    /// What the mirror holds.
    pub status: BlobStatus,
}

/// Checks, without writing, that `mirror` holds every blob with the right size, and with
/// `rehash` also the right sha256 (streamed: memory does not grow with blob size). Findings come
/// in the order of `blobs`, duplicates removed.
pub async fn audit_blobs(
    mirror: &dyn BlobMirror,
    blobs: &[(Digest, u64)],
    rehash: bool,
    concurrency: usize,
) -> Vec<BlobFinding> {
    futures::stream::iter(unique(blobs))
        .map(|(digest, size)| async move {
            let status = audit_one(mirror, &digest, size, rehash)
                .await
                .unwrap_or_else(|error| BlobStatus::Error {
                    kind: error.kind(),
                    message: error.to_string(),
                });
            BlobFinding {
                digest,
                size,
                status,
            }
        })
        .buffered(concurrency.max(1))
        .collect()
        .await
}

async fn audit_one(
    mirror: &dyn BlobMirror,
    digest: &Digest,
    size: u64,
    rehash: bool,
) -> Result<BlobStatus, ObjectError> {
    let Some(found) = mirror.blob_size(digest).await? else {
        return Ok(BlobStatus::Missing);
    };
    if found != size {
        return Ok(BlobStatus::SizeMismatch { found });
    }
    if !rehash {
        return Ok(BlobStatus::Ok);
    }
    let subject = format!("{} {digest}", mirror.describe());
    let stream = mirror.fetch_blob(digest).await?;
    let (read, actual) = crate::bucket::hash_stream(stream, &subject).await?;
    if read != size {
        // Changed between HEAD and GET.
        return Ok(BlobStatus::SizeMismatch { found: read });
    }
    Ok(if actual == *digest {
        BlobStatus::Ok
    } else {
        BlobStatus::HashMismatch { found: actual }
    })
}

/// `blobs` without repeated digests, in first-seen order.
fn unique(blobs: &[(Digest, u64)]) -> Vec<(Digest, u64)> {
    let mut seen = std::collections::HashSet::new();
    blobs
        .iter()
        .filter(|(digest, _)| seen.insert(*digest))
        .copied()
        .collect()
}
