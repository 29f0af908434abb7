//! The one error type of the kit.

use std::path::PathBuf;

use hoist_oci::Digest;

/// Shorthand for results of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong while starting servers, pushing images or validating copies.
///
/// Each variant names its subject (a path, a URL, a digest) so a failing test says *what* differs.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A file or directory of the kit could not be read or written.
    #[error("I/O error on {path}: {source}")]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// A helper program (docker-registry, skopeo) could not be started.
    #[error("cannot run {program}: {source}")]
    Spawn {
        /// The program name.
        program: String,
        /// The underlying error.
        source: std::io::Error,
    },
    /// A server process did not report that it listens in time, or exited early.
    #[error("{program} did not start: {reason}\n--- its log ---\n{log}")]
    ServerStart {
        /// The program name.
        program: String,
        /// Why we gave up.
        reason: String,
        /// Everything the server printed.
        log: String,
    },
    /// A test certificate or password hash could not be made.
    #[error("cannot make {what}: {reason}")]
    Credentials {
        /// What was being made (CA certificate, htpasswd file, ...).
        what: &'static str,
        /// The underlying error, as text (the sources do not share a type).
        reason: String,
    },
    /// An HTTP request failed before a response arrived, or its body broke off.
    #[error("{method} {url}: {source}")]
    Http {
        /// The request method.
        method: String,
        /// The request URL.
        url: String,
        /// The underlying error.
        source: reqwest::Error,
    },
    /// A registry answered with a status we did not expect.
    #[error("{method} {url}: unexpected status {status}: {body}")]
    Status {
        /// The request method.
        method: String,
        /// The request URL.
        url: String,
        /// The status received.
        status: u16,
        /// The start of the response body (registries explain errors there).
        body: String,
    },
    /// A blob referenced by a manifest is missing at a registry.
    #[error("blob {digest} is missing at {host}/{repository}{referenced_by}")]
    MissingBlob {
        /// The missing blob.
        digest: Digest,
        /// The registry host.
        host: String,
        /// The repository.
        repository: String,
        /// ` (referenced by manifest sha256:...)`, or empty when asked for directly.
        referenced_by: String,
    },
    /// A manifest is missing at a registry.
    #[error("manifest {reference} is missing at {host}/{repository}")]
    MissingManifest {
        /// The digest or tag asked for.
        reference: String,
        /// The registry host.
        host: String,
        /// The repository.
        repository: String,
    },
    /// Content does not hash to the digest it was asked for under.
    #[error("{subject}: expected digest {expected}, got {actual}")]
    DigestMismatch {
        /// What was fetched (URL or description).
        subject: String,
        /// The digest asked for.
        expected: Digest,
        /// The digest of the bytes received.
        actual: Digest,
    },
    /// Content has the wrong length.
    #[error("{subject}: expected {expected} bytes, got {actual}")]
    SizeMismatch {
        /// What was fetched (URL or description).
        subject: String,
        /// The size in the descriptor.
        expected: u64,
        /// The bytes received.
        actual: u64,
    },
    /// The same manifest digest has different bytes (or media type) at source and destination.
    #[error("manifest {digest} differs: source {source_side}, destination {destination_side}")]
    ManifestDiffers {
        /// The manifest digest asked for.
        digest: Digest,
        /// `HOST/REPOSITORY: N bytes (MEDIA TYPE)` at the source.
        source_side: String,
        /// The same, at the destination.
        destination_side: String,
    },
    /// A tag points at another digest than expected.
    #[error("tag {image} points at {actual}, expected {expected}")]
    TagMismatch {
        /// `HOST/REPOSITORY:TAG`.
        image: String,
        /// The digest we expected.
        expected: Digest,
        /// The digest the tag resolves to.
        actual: Digest,
    },
    /// A manifest could not be understood.
    #[error("manifest {digest} is not valid: {reason}")]
    InvalidManifest {
        /// The manifest digest.
        digest: Digest,
        /// What is wrong.
        reason: String,
    },
    /// A response header is missing or malformed.
    #[error("{url}: bad or missing {header} header")]
    BadHeader {
        /// The request URL.
        url: String,
        /// The header name.
        header: &'static str,
    },
    /// skopeo failed.
    #[error("skopeo {command} failed ({status}): {stderr}")]
    Skopeo {
        /// The subcommand and image reference (never credentials).
        command: String,
        /// Its exit status.
        status: String,
        /// What it printed on stderr.
        stderr: String,
    },
    /// A manifest tree could not be turned into a registry double's population.
    #[error("{path}: {reason}")]
    Corpus {
        /// The tree, or the file at fault.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
}

impl Error {
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Self::Io {
            path: path.into(),
            source,
        }
    }

    pub(crate) fn http(method: &str, url: &str, source: reqwest::Error) -> Self {
        Self::Http {
            method: method.to_owned(),
            url: url.to_owned(),
            source,
        }
    }
}
