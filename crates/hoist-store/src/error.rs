//! [`StoreError`]: every failure of a store, classified.

use std::time::Duration;

use hoist_oci::Digest;

/// What kind of failure a [`StoreError`] is; callers branch on this.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum StoreErrorKind {
    /// The object does not exist.
    NotFound,
    /// Credentials missing or wrong (HTTP 401).
    Unauthorized,
    /// Credentials valid but not allowed (HTTP 403).
    Denied,
    /// Too many requests (HTTP 429); retryable, maybe after `retry_after`.
    RateLimited,
    /// The server failed (HTTP 5xx); retryable.
    Server,
    /// The connection failed or timed out; retryable.
    Network,
    /// Bytes did not match their digest or size. Never retried silently.
    DigestMismatch,
    /// The server answered something that breaks the protocol.
    Protocol,
    /// A local file system error.
    Io,
    /// The store cannot do this at all.
    Unsupported,
    /// The request was refused as invalid by the server (other 4xx).
    Rejected,
}

/// A failure of a store operation. Always names its subject (a URL without credentials, a path, a
/// reference), so a message can be acted on.
#[derive(Debug, thiserror::Error)]
#[error("{subject}: {message}")]
pub struct StoreError {
    kind: StoreErrorKind,
    subject: String,
    message: String,
    retry_after: Option<Duration>,
    #[source]
    source: Option<Box<dyn std::error::Error + Send + Sync>>,
}

impl StoreError {
    /// A new error of `kind` about `subject`.
    pub fn new(
        kind: StoreErrorKind,
        subject: impl Into<String>,
        message: impl Into<String>,
    ) -> Self {
        Self {
            kind,
            subject: subject.into(),
            message: message.into(),
            retry_after: None,
            source: None,
        }
    }

    /// Attaches the underlying cause.
    pub fn with_source(mut self, source: impl std::error::Error + Send + Sync + 'static) -> Self {
        self.source = Some(Box::new(source));
        self
    }

    /// Attaches the server's `Retry-After`.
    pub fn with_retry_after(mut self, retry_after: Option<Duration>) -> Self {
        self.retry_after = retry_after;
        self
    }

    /// A missing object.
    pub fn not_found(subject: impl Into<String>) -> Self {
        Self::new(StoreErrorKind::NotFound, subject, "not found")
    }

    /// A size or digest mismatch.
    pub fn digest_mismatch(
        subject: impl Into<String>,
        expected: &Digest,
        expected_size: u64,
        actual: &Digest,
        actual_size: u64,
    ) -> Self {
        Self::new(
            StoreErrorKind::DigestMismatch,
            subject,
            format!(
                "content does not match its digest: expected {expected} ({expected_size} bytes), \
                 got {actual} ({actual_size} bytes)"
            ),
        )
    }

    /// A local I/O failure on `path`. The I/O error's text is the message and is not kept as a
    /// source too, so a report of the whole chain (`{:#}`) says it once.
    pub fn io(path: impl Into<String>, source: std::io::Error) -> Self {
        Self::new(StoreErrorKind::Io, path, source.to_string())
    }

    /// The kind of failure.
    pub fn kind(&self) -> StoreErrorKind {
        self.kind
    }

    /// What failed (URL without credentials, path, reference).
    pub fn subject(&self) -> &str {
        &self.subject
    }

    /// What went wrong, without the subject.
    pub fn message(&self) -> &str {
        &self.message
    }

    /// The server's `Retry-After`, if it sent one.
    pub fn retry_after(&self) -> Option<Duration> {
        self.retry_after
    }

    /// Whether trying again may succeed: rate limits, server errors, network failures.
    /// A digest mismatch is *not* retryable: it means corrupted content somewhere.
    pub fn is_retryable(&self) -> bool {
        matches!(
            self.kind,
            StoreErrorKind::RateLimited | StoreErrorKind::Server | StoreErrorKind::Network
        )
    }
}
