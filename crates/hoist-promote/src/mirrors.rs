//! Blob mirrors in a promotion: every blob of every promoted image goes to every selected mirror.
//!
//! [`survey`] is the dry run (one `HEAD` per blob: what would be written); [`fill`] writes what is
//! missing, streamed from where the image was read and verified ([`hoist_object::mirror_blobs`]).
//! Both skip what is there, so a re-run over full mirrors reads nothing from the registries.

use std::collections::BTreeMap;
use std::sync::Arc;

use futures::StreamExt as _;
use hoist_object::{Backend, BlobMirror, ObjectError};
use hoist_oci::Digest;
use serde::Serialize;

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

fn summary(mirror: &Mirror, blobs: &BTreeMap<Digest, (u64, &PromotedImage)>) -> MirrorSummary {
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
    let mut summary = summary(mirror, &blobs);
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

/// Writes every missing blob, `concurrency` at a time, each streamed from the store its image was
/// read from and verified against its digest. Failures are collected; the rest goes on.
pub async fn fill(images: &[PromotedImage], mirror: &Mirror, concurrency: usize) -> MirrorSummary {
    let blobs = distinct_blobs(images);
    let mut summary = summary(mirror, &blobs);
    let reports: Vec<_> = futures::stream::iter(&blobs)
        .map(|(digest, &(size, image))| async move {
            let report = hoist_object::mirror_blobs(
                image.from.store.as_ref(),
                &image.from.repository,
                &[(*digest, size)],
                mirror.mirror.as_ref(),
                1,
            )
            .await;
            (size, image, report)
        })
        .buffer_unordered(concurrency.max(1))
        .collect()
        .await;
    for (size, image, report) in reports {
        summary.to_write += report.written.len() as u64;
        summary.bytes_to_write += size * report.written.len() as u64;
        summary.present += report.present.len() as u64;
        for (digest, error) in report.failed {
            summary.failures.push(BlobFailure {
                digest,
                image: image_name(image),
                error: error.to_string(),
            });
        }
    }
    summary.failures.sort_by_key(|failure| failure.digest);
    summary
}
