//! [`RegistryOptions`]: how one registry host is reached.

use std::path::PathBuf;
use std::time::Duration;

pub use hoist_store::idle::Timeouts;
use url::Url;

use crate::credentials::RegistryCredentials;

/// How requests to one registry host are made. `Default` gives verified TLS, anonymous access,
/// adaptive concurrency (8 requests per kind at first, at most 32 at once), no rate cap, no request
/// budget, 5 attempts per request, a 30 s connect timeout and a 60 s idle timeout.
#[derive(Debug, Clone)]
pub struct RegistryOptions {
    /// Speak plain HTTP to this host instead of HTTPS. Only when the user asked for it: a registry
    /// on a developer machine or in a test.
    pub insecure: bool,
    /// PEM files with extra CA certificates to trust, on top of the system roots.
    pub ca_files: Vec<PathBuf>,
    /// Username and password (or token) for Basic auth and for the bearer token service.
    /// `None` is anonymous.
    pub credentials: Option<RegistryCredentials>,
    /// At most this many requests to the host are waiting for their response headers at once,
    /// whatever their kind: the ceiling the adaptive windows grow to.
    pub max_concurrent_requests: usize,
    /// How many requests of each kind may wait for their response at once, and whether that
    /// adapts to the registry's 429s.
    pub concurrency: Concurrency,
    /// At most this many requests per second to the host, all kinds together (`--max-rps`);
    /// `None` for no cap.
    pub max_requests_per_second: Option<f64>,
    /// At most this many HTTP requests in the life of this store (token requests and redirects
    /// count); past it every request fails. `None` is unlimited.
    pub max_requests: Option<u64>,
    /// How failed idempotent requests are retried.
    pub retry: RetryPolicy,
    /// Connection and idle timeouts.
    pub timeouts: Timeouts,
    /// The `User-Agent` header.
    pub user_agent: String,
    /// A blob no larger than this is gathered in memory and sent in one `PUT` (two requests); a
    /// larger one streams through one `PATCH` (three requests) and is never held whole. Bounds the
    /// memory one upload holds.
    pub upload_chunk_size: usize,
    /// Where the registry is really reached: `http(s)://HOST[:PORT]` standing in for the host
    /// the store is named after (a mirror, a local double, a port-forward). Requests go there,
    /// its scheme decides TLS (so `http://` is an explicit, per-registry choice of plain HTTP),
    /// and credentials go with them only to its origin; the store is still described, and
    /// still behaves (tag listings with digests for GCR and Artifact Registry names), as the
    /// named host. `None` is the named host itself.
    pub endpoint: Option<Url>,
}

impl Default for RegistryOptions {
    fn default() -> Self {
        Self {
            insecure: false,
            ca_files: Vec::new(),
            credentials: None,
            max_concurrent_requests: 32,
            concurrency: Concurrency::default(),
            max_requests_per_second: None,
            max_requests: None,
            retry: RetryPolicy::default(),
            timeouts: Timeouts::default(),
            user_agent: format!("hoist/{}", env!("CARGO_PKG_VERSION")),
            upload_chunk_size: 1024 * 1024,
            endpoint: None,
        }
    }
}

/// Exponential backoff with jitter for requests that failed with 429, 5xx, a timeout or a
/// connection error. A `Retry-After` from the server replaces the computed delay.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Attempts per request, the first included; 1 disables retries.
    pub max_attempts: u32,
    /// The delay before the second attempt; it doubles for each later one.
    pub base_delay: Duration,
    /// No single wait is longer. A `Retry-After` beyond it ends the retries at once: the error
    /// carries the `Retry-After` so the caller can schedule the work later instead of blocking.
    pub max_delay: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            max_attempts: 5,
            base_delay: Duration::from_millis(500),
            max_delay: Duration::from_secs(60),
        }
    }
}

/// Per (host, kind of request) concurrency: a window of requests that may wait for their response
/// at once. Adaptive windows follow AIMD, like TCP's congestion window: each success adds
/// `1/window`, a 429 halves the window (at most once per window of requests: 429s answering
/// requests sent before the last decrease are the same congestion event), and a `Retry-After`
/// pauses the kind until it passes. Kinds: manifest and blob `HEAD`s, reads (`GET`), blob uploads
/// (sessions, chunks, mounts), manifest writes, tag listings, token requests.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Concurrency {
    /// Adapt the windows to 429s. `false` keeps every window at `initial` (a fixed limit).
    pub adaptive: bool,
    /// The window each kind starts with; never above `max_concurrent_requests`.
    pub initial: usize,
}

impl Default for Concurrency {
    fn default() -> Self {
        Self {
            adaptive: true,
            initial: 8,
        }
    }
}
