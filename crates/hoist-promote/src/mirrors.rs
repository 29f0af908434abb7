//! Blob mirrors in a promotion: every blob of every promoted image goes to every selected mirror.
//!
//! [`survey`] is the dry run (one `HEAD` per blob: what would be written). Writing happens in the
//! same pass as the registry copies ([`crate::execute()`] with a [`crate::MirrorWork`]): each blob
//! a mirror lacks is read through the run's spool, so the source is read once for every registry
//! and mirror, and streamed, verified, into the mirror. What is there is skipped after a `HEAD`,
//! before anything is read, so a re-run over full mirrors reads nothing from the registries.

use std::collections::BTreeMap;
use std::sync::Arc;

use futures::{StreamExt as _, TryStreamExt as _};
use hoist_copy::{CopyOptions, Spool, StreamSlot};
use hoist_object::{Backend, BlobMirror, ObjectError, PutOutcome};
use hoist_oci::Digest;
use hoist_store::{ByteStream, Source, VerifyingStream};
use serde::Serialize;

use crate::execute::MAX_BACKOFF;
use crate::images::PromotedImage;

/// A selected backend, opened.
#[derive(Debug, Clone)]
pub struct Mirror {
    /// Its name in the catalogue.
    pub name: String,
    /// Its URL (`s3://bucket/prefix`): never a credential.
    pub url: String,
    /// The mirror.
    pub mirror: Arc<dyn BlobMirror>,
}

impl Mirror {
    /// Opens `backend` with credentials from each cloud's standard chain.
    pub async fn open(backend: &Backend) -> Result<Self, ObjectError> {
        Self::open_with(backend, &hoist_object::OpenOptions::default()).await
    }

    /// Opens `backend` with `options` (timeouts, upload sizes).
    pub async fn open_with(
        backend: &Backend,
        options: &hoist_object::OpenOptions,
    ) -> Result<Self, ObjectError> {
        Ok(Self {
            name: backend.name.clone(),
            url: backend.url.to_string(),
            mirror: hoist_object::open_with(backend, options).await?,
        })
    }
}

/// One blob that could not be mirrored (or, in a survey, is there with the wrong size).
#[derive(Debug, Clone, Serialize)]
pub struct BlobFailure {
    /// The blob.
    pub digest: Digest,
    /// An image it belongs to (`source/image@digest`).
    pub image: String,
    /// What went wrong.
    pub error: String,
}

/// What a mirror needs (a survey) or what was done to it (a fill).
#[derive(Debug, Clone, Default, Serialize)]
pub struct MirrorSummary {
    /// The backend's name.
    pub name: String,
    /// Its URL.
    pub url: String,
    /// Distinct blobs of the promoted images, and their bytes.
    pub blobs: u64,
    pub bytes: u64,
    /// Blobs missing from the mirror (a survey: what `--confirm` would write), or written (a fill).
    pub to_write: u64,
    pub bytes_to_write: u64,
    /// Blobs already there with the right size.
    pub present: u64,
    /// Blobs that failed, or are there with the wrong size; never overwritten.
    pub failures: Vec<BlobFailure>,
}

impl MirrorSummary {
    /// Whether every blob is (or, in a survey, can be made) present.
    pub fn is_complete(&self) -> bool {
        self.failures.is_empty()
    }
}

/// Every distinct blob with its size and the first image that has it.
fn distinct_blobs(images: &[PromotedImage]) -> BTreeMap<Digest, (u64, &PromotedImage)> {
    let mut blobs = BTreeMap::new();
    for image in images {
        for &(digest, size) in &image.measured.blobs {
            blobs.entry(digest).or_insert((size, image));
        }
    }
    blobs
}

fn image_name(image: &PromotedImage) -> String {
    format!(
        "{}/{}@{}",
        image.source.registry, image.source.image, image.digest
    )
}

/// The totals of `mirror` for every blob of `images`, nothing done yet.
pub(crate) fn summary(mirror: &Mirror, images: &[PromotedImage]) -> MirrorSummary {
    totals(mirror, &distinct_blobs(images))
}

fn totals(mirror: &Mirror, blobs: &BTreeMap<Digest, (u64, &PromotedImage)>) -> MirrorSummary {
    MirrorSummary {
        name: mirror.name.clone(),
        url: mirror.url.clone(),
        blobs: blobs.len() as u64,
        bytes: blobs.values().map(|(size, _)| size).sum(),
        ..MirrorSummary::default()
    }
}

/// The dry run: asks the mirror (`HEAD`) which blobs it lacks. Writes nothing.
pub async fn survey(
    images: &[PromotedImage],
    mirror: &Mirror,
    concurrency: usize,
) -> MirrorSummary {
    let blobs = distinct_blobs(images);
    let mut summary = totals(mirror, &blobs);
    let found: Vec<_> = futures::stream::iter(&blobs)
        .map(|(digest, &(size, image))| async move {
            (*digest, size, image, mirror.mirror.blob_size(digest).await)
        })
        .buffered(concurrency.max(1))
        .collect()
        .await;
    for (digest, size, image, result) in found {
        match result {
            Ok(None) => {
                summary.to_write += 1;
                summary.bytes_to_write += size;
            }
            Ok(Some(found)) if found == size => summary.present += 1,
            Ok(Some(found)) => summary.failures.push(BlobFailure {
                digest,
                image: image_name(image),
                error: format!(
                    "{} holds {found} bytes, not {size}: corrupt, and never overwritten",
                    mirror.url
                ),
            }),
            Err(error) => summary.failures.push(BlobFailure {
                digest,
                image: image_name(image),
                error: error.to_string(),
            }),
        }
    }
    summary
}

/// What filling a mirror with some blobs of one image did.
#[derive(Debug, Default)]
pub(crate) struct Filled {
    written: Vec<(Digest, u64)>,
    present: u64,
    failures: Vec<BlobFailure>,
}

impl Filled {
    pub(crate) fn add_to(self, summary: &mut MirrorSummary) {
        summary.to_write += self.written.len() as u64;
        summary.bytes_to_write += self.written.iter().map(|(_, size)| size).sum::<u64>();
        summary.present += self.present;
        summary.failures.extend(self.failures);
    }
}

/// Writes `blobs` of `image` that `mirror` lacks, `options.concurrency` at a time, each read
/// through `spool` (or straight from the store the image was read from) and verified, with
/// `options.attempts` attempts for retryable failures: a retry reads the spool again, not the
/// source. Each blob is [released](Spool::release) from the spool when done. Failures are
/// collected; the rest goes on.
pub(crate) async fn fill_image(
    image: &PromotedImage,
    blobs: &[(Digest, u64)],
    mirror: &Mirror,
    spool: Option<&Spool>,
    options: &CopyOptions,
) -> Filled {
    let outcomes: Vec<_> = futures::stream::iter(blobs)
        .map(|&(digest, size)| async move {
            let outcome = put_one(image, digest, size, mirror, spool, options).await;
            if let Some(spool) = spool {
                spool.release(&digest);
            }
            (digest, size, outcome)
        })
        .buffer_unordered(options.concurrency.max(1))
        .collect()
        .await;
    let mut filled = Filled::default();
    for (digest, size, outcome) in outcomes {
        match outcome {
            Ok(PutOutcome::Written) => filled.written.push((digest, size)),
            Ok(PutOutcome::AlreadyPresent) => filled.present += 1,
            Err(error) => filled.failures.push(BlobFailure {
                digest,
                image: image_name(image),
                error: error.to_string(),
            }),
        }
    }
    filled
}

async fn put_one(
    image: &PromotedImage,
    digest: Digest,
    size: u64,
    mirror: &Mirror,
    spool: Option<&Spool>,
    options: &CopyOptions,
) -> Result<PutOutcome, ObjectError> {
    let mut attempt = 1;
    loop {
        // Read only once the mirror asks for the bytes: a blob already there (the mirror's own
        // `HEAD`) costs the source nothing.
        // A place among the spool's streams first: the mirror's request must not wait for one.
        let spool = match spool {
            Some(spool) => Some((spool.clone(), spool.reserve_stream().await)),
            None => None,
        };
        let stream = lazy_read(image, digest, size, spool);
        match mirror.mirror.put_verified_blob(&digest, size, stream).await {
            Err(error) if error.is_retryable() && attempt < options.attempts => {
                let delay = (options.backoff * 2u32.saturating_pow(attempt - 1)).min(MAX_BACKOFF);
                tracing::warn!(dst = %mirror.url, %digest, %error, attempt, ?delay, "mirror upload failed; retrying");
                tokio::time::sleep(delay).await;
                attempt += 1;
            }
            other => return other,
        }
    }
}

/// A verified stream of the blob that starts reading (the spool, or the source) when first polled.
fn lazy_read(
    image: &PromotedImage,
    digest: Digest,
    size: u64,
    spool: Option<(Spool, StreamSlot)>,
) -> ByteStream {
    let source: Arc<dyn Source> = image.from.store.clone();
    let repository = image.from.repository.clone();
    let opened = async move {
        match spool {
            Some((spool, slot)) => spool.read(slot, &source, &repository, digest, size).await,
            None => {
                let stream = source.fetch_blob(&repository, &digest).await?;
                let subject = format!("{}/{repository}@{digest}", source.describe());
                Ok(VerifyingStream::new(stream, subject, digest, size).boxed())
            }
        }
    };
    Box::pin(futures::stream::once(opened).try_flatten())
}
