//! [`ObjectError`]: every failure of a mirror, classified, naming its subject.

use hoist_store::{StoreError, StoreErrorKind};

/// What kind of failure an [`ObjectError`] is; callers branch on this.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ObjectErrorKind {
    /// The object (or bucket) does not exist.
    NotFound,
    /// Content is not what its digest says: bytes that do not hash to it, or an object of the
    /// wrong size already stored under it. Never retried silently.
    Corrupt,
    /// A create-only write found the object already there (it was written concurrently).
    AlreadyExists,
    /// The server refused: credentials missing or wrong, access denied, or an invalid request.
    Refused,
    /// A network failure, a timeout, throttling or a server error: trying again may succeed.
    Transient,
    /// A catalogue, URL, selector or client set-up problem: fix the input.
    Config,
    /// A local file system error (the `file://` backend).
    Io,
}

/// A failure of a mirror operation. The subject always names the backend and the object
/// (`s3://bucket/prefix/containers/images/sha256:…`, a file path, `backends.yaml:3:5`), and never
/// holds a credential.
#[derive(Debug, thiserror::Error)]
#[error("{subject}: {message}")]
pub struct ObjectError {
    kind: ObjectErrorKind,
    subject: String,
    message: String,
    #[source]
    source: Option<Box<dyn std::error::Error + Send + Sync>>,
}

impl ObjectError {
    /// A new error of `kind` about `subject`.
    pub fn new(
        kind: ObjectErrorKind,
        subject: impl Into<String>,
        message: impl Into<String>,
    ) -> Self {
        Self {
            kind,
            subject: subject.into(),
            message: message.into(),
            source: None,
        }
    }

    /// Attaches the underlying cause.
    pub fn with_source(mut self, source: impl std::error::Error + Send + Sync + 'static) -> Self {
        self.source = Some(Box::new(source));
        self
    }

    /// A configuration problem.
    pub(crate) fn config(subject: impl Into<String>, message: impl Into<String>) -> Self {
        Self::new(ObjectErrorKind::Config, subject, message)
    }

    /// An object of the wrong size stored under a digest.
    pub(crate) fn wrong_size(subject: impl Into<String>, expected: u64, found: u64) -> Self {
        Self::new(
            ObjectErrorKind::Corrupt,
            subject,
            format!("an object of {found} bytes is already stored here, expected {expected} bytes"),
        )
    }

    /// A local I/O failure.
    pub(crate) fn io(subject: impl Into<String>, source: std::io::Error) -> Self {
        let kind = match source.kind() {
            std::io::ErrorKind::NotFound => ObjectErrorKind::NotFound,
            std::io::ErrorKind::AlreadyExists => ObjectErrorKind::AlreadyExists,
            _ => ObjectErrorKind::Io,
        };
        // The I/O error's text is the message; kept as a source too it would be printed twice.
        Self::new(kind, subject, source.to_string())
    }

    /// The stream feeding an upload failed: a digest mismatch is [`ObjectErrorKind::Corrupt`],
    /// the rest keeps its retryability.
    pub(crate) fn from_stream(subject: impl Into<String>, error: StoreError) -> Self {
        let kind = match error.kind() {
            StoreErrorKind::DigestMismatch => ObjectErrorKind::Corrupt,
            StoreErrorKind::NotFound => ObjectErrorKind::NotFound,
            StoreErrorKind::Io => ObjectErrorKind::Io,
            _ if error.is_retryable() => ObjectErrorKind::Transient,
            _ => ObjectErrorKind::Refused,
        };
        Self::new(kind, subject, format!("reading the blob failed: {error}")).with_source(error)
    }

    /// The kind of failure.
    pub fn kind(&self) -> ObjectErrorKind {
        self.kind
    }

    /// What failed: backend and key, path, or catalogue position.
    pub fn subject(&self) -> &str {
        &self.subject
    }

    /// The message without the subject.
    pub fn message(&self) -> &str {
        &self.message
    }

    /// Whether trying again may succeed.
    pub fn is_retryable(&self) -> bool {
        self.kind == ObjectErrorKind::Transient
    }
}
