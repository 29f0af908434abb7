//! Whether a mirror has a blob, asked the way a client would get it, with a cache of the answers
//! that are yes.
//!
//! A bucket is asked with an anonymous `HEAD` on the very URL the client would be sent to: only a
//! `200` within the timeout (5 s by default) is a yes. Errors, timeouts and every other status
//! are a no, and the client goes to the upstream, which has every blob. A `file:` mirror is asked
//! on disk. Yes is cached (a blob under its digest never changes, and mirrors are create-only),
//! in a bounded cache; no is not, so a blob mirrored later is found on the next request.
//! Concurrent first requests for one blob share one check.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use crate::metrics::Metrics;
use crate::mirrors::{Mirror, MirrorTarget};

/// How long a bucket has to answer a `HEAD`.
pub const DEFAULT_CHECK_TIMEOUT: Duration = Duration::from_secs(5);
/// How many positive answers are kept (about 200 bytes each).
pub const DEFAULT_CACHE_CAPACITY: u64 = 100_000;

/// Checks and remembers which blobs mirrors have.
#[derive(Debug, Clone)]
pub struct BlobChecker {
    client: reqwest::Client,
    /// Per mirror (by index), the digests it has: a hit is a lookup by `&str`, no allocation.
    found: Arc<[moka::future::Cache<Arc<str>, ()>]>,
    metrics: Arc<Metrics>,
}

/// What one check found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Presence {
    /// The mirror has the blob.
    Found,
    /// It does not, or did not answer `200` in time.
    Missing,
}

impl BlobChecker {
    /// A checker for `mirrors` mirrors whose `HEAD`s give up after `timeout`, remembering up to
    /// `capacity` blobs in all (shared equally between the mirrors).
    pub fn new(timeout: Duration, capacity: u64, mirrors: usize, metrics: Arc<Metrics>) -> Self {
        let client = reqwest::Client::builder()
            .timeout(timeout)
            .build()
            .unwrap_or_else(|_| reqwest::Client::new());
        let each = (capacity / mirrors.max(1) as u64).max(1);
        Self {
            client,
            found: (0..mirrors)
                .map(|_| moka::future::Cache::new(each))
                .collect(),
            metrics,
        }
    }

    /// Whether mirror number `index` has the blob: a bucket is asked at `location`, the URL the
    /// client would get; a file mirror on disk.
    pub async fn check(
        &self,
        index: usize,
        mirror: &Mirror,
        digest: &str,
        location: &str,
    ) -> Presence {
        let Some(found) = self.found.get(index) else {
            return Presence::Missing;
        };
        if found.contains_key(digest) {
            self.metrics.cache(true);
            return Presence::Found;
        }
        self.metrics.cache(false);
        let found = found
            .optionally_get_with(Arc::from(digest), async {
                let found = match &mirror.target {
                    MirrorTarget::Http { .. } => self.head(&mirror.name, location).await,
                    MirrorTarget::File { root } => {
                        self.file_exists(&mirror.name, Mirror::blob_file(root, digest))
                            .await
                    }
                };
                found.then_some(())
            })
            .await;
        if found.is_some() {
            Presence::Found
        } else {
            Presence::Missing
        }
    }

    async fn head(&self, backend: &str, url: &str) -> bool {
        match self.client.head(url).send().await {
            Ok(response) if response.status() == reqwest::StatusCode::OK => {
                self.metrics.check(backend, "found");
                true
            }
            Ok(response) => {
                tracing::debug!(
                    backend,
                    url,
                    status = response.status().as_u16(),
                    "blob not in the mirror"
                );
                self.metrics.check(backend, "missing");
                false
            }
            Err(error) => {
                tracing::warn!(backend, url, error = %error, "could not ask the mirror for a blob; sending the client upstream");
                self.metrics.check(backend, "error");
                false
            }
        }
    }

    async fn file_exists(&self, backend: &str, path: PathBuf) -> bool {
        match tokio::fs::metadata(&path).await {
            Ok(metadata) if metadata.is_file() => {
                self.metrics.check(backend, "found");
                true
            }
            Ok(_) => {
                self.metrics.check(backend, "missing");
                false
            }
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
                self.metrics.check(backend, "missing");
                false
            }
            Err(error) => {
                tracing::warn!(backend, path = %path.display(), error = %error, "could not look for a blob; sending the client upstream");
                self.metrics.check(backend, "error");
                false
            }
        }
    }
}
