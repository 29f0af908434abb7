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
    /// Keys: the blob's URL (bucket) or file path (file mirror).
    found: moka::future::Cache<Arc<str>, ()>,
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
    /// A checker whose `HEAD`s give up after `timeout`, remembering up to `capacity` blobs.
    pub fn new(timeout: Duration, capacity: u64, metrics: Arc<Metrics>) -> Self {
        let client = reqwest::Client::builder()
            .timeout(timeout)
            .build()
            .unwrap_or_else(|_| reqwest::Client::new());
        Self {
            client,
            found: moka::future::Cache::new(capacity),
            metrics,
        }
    }

    /// Whether `mirror` has the blob whose client URL is `location` (a bucket) or whose file
    /// is under the mirror's root (a file mirror).
    pub async fn check(&self, mirror: &Mirror, digest: &str, location: &str) -> Presence {
        let key: Arc<str> = match &mirror.target {
            MirrorTarget::Http { .. } => Arc::from(location),
            MirrorTarget::File { root } => {
                Arc::from(Mirror::blob_file(root, digest).to_string_lossy().as_ref())
            }
        };
        if self.found.contains_key(&key) {
            self.metrics.cache(true);
            return Presence::Found;
        }
        self.metrics.cache(false);
        let found = self
            .found
            .optionally_get_with(Arc::clone(&key), async {
                let found = match &mirror.target {
                    MirrorTarget::Http { .. } => self.head(&mirror.name, location).await,
                    MirrorTarget::File { .. } => {
                        self.file_exists(&mirror.name, PathBuf::from(&*key)).await
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
