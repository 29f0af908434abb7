//! Copying one blob: skip when present, mount within one store (or from another repository of
//! the destination that holds it), else stream it through a
//! [`VerifyingStream`] (or read it from the [`Spool`](crate::Spool)) with retries; and the
//! in-flight map that merges identical blob copies.

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use futures::future::{BoxFuture, Shared};
use futures::{FutureExt as _, StreamExt as _};
use hoist_oci::Digest;
use hoist_store::{ByteStream, StoreError, VerifyingStream};

use crate::copier::Inner;
use crate::error::CopyError;
use crate::manifest::Descriptor;
use crate::progress::{BlobOutcome, ProgressEvent};

/// A blob copy that several requests may await together.
pub(crate) type SharedCopy = Shared<BoxFuture<'static, Result<BlobOutcome, CopyError>>>;

/// The longest wait between two attempts, whatever the server's `Retry-After` says.
const MAX_BACKOFF: Duration = Duration::from_secs(30);

pub(crate) fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // Nothing panics while holding these locks; a poisoned one still holds valid data.
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl Inner {
    /// Makes `blob` present in `destination_repository`. When another request is already copying
    /// the same digest into the same repository, waits for that copy instead of starting another;
    /// the waiter's outcome is then [`BlobOutcome::Skipped`]. A failed copy is forgotten, so a
    /// later request tries again; a successful one is remembered for the life of the copier.
    pub(crate) async fn ensure_blob(
        self: &Arc<Self>,
        source_repository: &str,
        destination_repository: &str,
        blob: &Descriptor,
    ) -> Result<BlobOutcome, CopyError> {
        let key = (destination_repository.to_owned(), blob.digest);
        let (copy, leader) = {
            let mut in_flight = lock(&self.in_flight);
            match in_flight.get(&key) {
                Some(copy) => (copy.clone(), false),
                None => {
                    let inner = Arc::clone(self);
                    let (source_repository, destination_repository) = (
                        source_repository.to_owned(),
                        destination_repository.to_owned(),
                    );
                    let blob = blob.clone();
                    let copy = async move {
                        inner
                            .copy_blob(&source_repository, &destination_repository, &blob)
                            .await
                    }
                    .boxed()
                    .shared();
                    in_flight.insert(key.clone(), copy.clone());
                    lock(&self.first_copy)
                        .entry(key.1)
                        .or_insert_with(|| key.0.clone());
                    (copy, true)
                }
            }
        };
        let result = copy.clone().await;
        if result.is_err() {
            let mut in_flight = lock(&self.in_flight);
            if in_flight
                .get(&key)
                .is_some_and(|current| current.ptr_eq(&copy))
            {
                in_flight.remove(&key);
            }
        }
        match result {
            Ok(_) if !leader => Ok(BlobOutcome::Skipped),
            other => other,
        }
    }

    async fn copy_blob(
        &self,
        source_repository: &str,
        destination_repository: &str,
        blob: &Descriptor,
    ) -> Result<BlobOutcome, CopyError> {
        let digest = blob.digest;
        let subject = format!(
            "{}/{destination_repository}@{digest}",
            self.destination.describe()
        );
        let outcome = self
            .place_blob(source_repository, destination_repository, blob, &subject)
            .await?;
        lock(&self.placed)
            .entry(digest)
            .or_insert_with(|| destination_repository.to_owned());
        self.emit(&ProgressEvent::BlobDone { digest, outcome });
        Ok(outcome)
    }

    async fn place_blob(
        &self,
        source_repository: &str,
        destination_repository: &str,
        blob: &Descriptor,
        subject: &str,
    ) -> Result<BlobOutcome, CopyError> {
        let digest = blob.digest;
        match self
            .destination
            .blob_size(destination_repository, &digest)
            .await
        {
            Ok(Some(size)) if size == blob.size => return Ok(BlobOutcome::Skipped),
            Ok(Some(actual)) => {
                return Err(CopyError::BlobSizeConflict {
                    subject: subject.to_owned(),
                    expected: blob.size,
                    actual,
                });
            }
            Ok(None) => {}
            Err(error) => return Err(CopyError::store("check blob", subject, error)),
        }
        // Within one store, mount from the source repository; else from another repository of
        // the destination that this copier saw holding the blob (images sharing base layers).
        let mount_from = if self.same_store {
            Some(source_repository.to_owned())
        } else {
            let placed = lock(&self.placed).get(&digest).cloned();
            match placed {
                Some(from) => Some(from),
                None => {
                    self.first_copy_elsewhere(destination_repository, digest)
                        .await
                }
            }
        };
        if let Some(from) = mount_from.filter(|from| from != destination_repository) {
            match self
                .destination
                .mount_blob(destination_repository, &from, &digest)
                .await
            {
                Ok(true) => return Ok(BlobOutcome::Mounted),
                Ok(false) => {}
                // A failed mount costs nothing but the upload it falls back to.
                Err(error) => tracing::debug!(%digest, %error, "mount failed; uploading instead"),
            }
        }
        let mut attempt = 1;
        loop {
            match self
                .upload_blob(source_repository, destination_repository, blob, attempt)
                .await
            {
                Ok(()) => return Ok(BlobOutcome::Uploaded),
                // A digest mismatch is not retryable: corrupt content does not heal by asking again.
                Err(error) if error.is_retryable() && attempt < self.options.attempts => {
                    let delay = error
                        .retry_after()
                        .unwrap_or(self.options.backoff * 2u32.saturating_pow(attempt - 1))
                        .min(MAX_BACKOFF);
                    tracing::warn!(%digest, %error, attempt, ?delay, "blob copy failed; retrying");
                    tokio::time::sleep(delay).await;
                    attempt += 1;
                }
                Err(error) => return Err(CopyError::store("copy blob", subject, error)),
            }
        }
    }

    /// When the first copy of `digest` into this destination went to another repository and is
    /// still running, waits for it: the repository that holds the blob once it succeeds, to
    /// mount from (images of several repositories sharing a base layer upload it once). The
    /// first copy never waits, so no two copies wait for each other.
    async fn first_copy_elsewhere(
        &self,
        destination_repository: &str,
        digest: Digest,
    ) -> Option<String> {
        let first = lock(&self.first_copy)
            .get(&digest)
            .filter(|first| *first != destination_repository)
            .cloned()?;
        let copy = lock(&self.in_flight)
            .get(&(first.clone(), digest))
            .cloned()?;
        copy.await.ok().map(|_| first)
    }

    /// Streams the blob from the source (or the spool) to the destination, verified once, never
    /// held whole.
    async fn upload_blob(
        &self,
        source_repository: &str,
        destination_repository: &str,
        blob: &Descriptor,
        attempt: u32,
    ) -> Result<(), StoreError> {
        let (digest, size) = (blob.digest, blob.size);
        let verified = match &self.spool {
            Some(spool) => {
                // Before the upload's first request, so that no request waits for it.
                let slot = spool.reserve_stream().await;
                spool
                    .read(slot, &self.source, source_repository, digest, size)
                    .await?
            }
            None => {
                let stream = self.source.fetch_blob(source_repository, &digest).await?;
                let subject = format!("{}/{source_repository}@{digest}", self.source.describe());
                VerifyingStream::new(stream, subject, digest, size).boxed()
            }
        };
        self.emit(&ProgressEvent::BlobStarted {
            digest,
            size,
            attempt,
        });
        self.destination
            .push_verified_blob(
                destination_repository,
                &digest,
                size,
                self.counted(digest, verified),
            )
            .await
    }

    /// Passes `stream` through, reporting each chunk as [`ProgressEvent::BytesCopied`].
    fn counted(&self, digest: Digest, stream: ByteStream) -> ByteStream {
        match &self.progress {
            None => stream,
            Some(progress) => {
                let progress = Arc::clone(progress);
                Box::pin(stream.inspect(move |item| {
                    if let Ok(chunk) = item {
                        progress(&ProgressEvent::BytesCopied {
                            digest,
                            bytes: chunk.len() as u64,
                        });
                    }
                }))
            }
        }
    }
}
