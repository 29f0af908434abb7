//! Blob mirrors: buckets that hold image blobs (never manifests) for registry.k8s.io, which
//! redirects clients to them.
//!
//! Blobs live under `[prefix/]containers/images/sha256:<hex>`, the layout GCR used in GCS.
//!
//! - A [`Catalogue`] (`backends.yaml`, decoded strictly) names the [`Backend`]s: S3 buckets,
//!   GCS buckets and local directories, with labels a [`Selector`] picks them by.
//! - [`open`] turns a backend into a [`BlobMirror`]: `S3Mirror` (AWS SDK), `GcsMirror` (the GCS
//!   JSON API over reqwest; `object_store` only supplies application default credentials, since
//!   its own client writes through the XML API, which the fake-gcs-server emulator refuses) or
//!   `FileMirror`. Every write is create-only and verified: nothing is ever overwritten, and no
//!   object becomes visible under a digest unless its bytes hash to that digest.
//! - [`mirror_blobs`] copies blobs from any [`hoist_store::Source`] into a mirror, skipping what is
//!   already there; [`audit_blobs`] proves, without writing, that a mirror holds exactly the
//!   expected bytes. [`BlobMirror::put_verified_blob`] takes a stream verified by the caller (the
//!   copier's spool, which reads each source blob once for every registry and mirror), so a byte
//!   is hashed with sha256 once on its way from the source to every destination.
//! - [`Bucket`] is the same three backends seen as objects at arbitrary keys (release files
//!   rather than blobs), opened with [`open_bucket`]: [`copy_object`] streams one object from a
//!   source bucket into a destination through a sha256 check, [`hash_object`] proves what an
//!   object holds. File promotion (`hoist-files`) is built on it.
//!
//! S3 and GCS requests time out on silence (no byte moved for [`Timeouts::idle`]), never on the
//! length of a transfer (module `network`).
//!
//! Credentials never live in the catalogue: S3 uses the standard AWS chain (environment, profile,
//! web identity), GCS application default credentials (none when an emulator endpoint is set).
//! Neither is ever printed: [`BlobMirror::describe`] and every error name only bucket and key.

mod bucket;
mod catalogue;
mod error;
mod file;
mod gcs;
mod network;
mod parts;
mod s3;
mod selector;
mod transfer;

use std::fmt::Debug;
use std::sync::Arc;

use hoist_oci::Digest;
use hoist_store::{ByteStream, VerifyingStream};

pub use bucket::{Bucket, check_key, copy_object, hash_object, open_bucket};
pub use catalogue::{Backend, BackendOptions, BackendUrl, Catalogue};
pub use error::{ObjectError, ObjectErrorKind};
pub use file::FileMirror;
pub use gcs::GcsMirror;
pub use network::Timeouts;
pub use s3::{S3Credentials, S3Mirror};
pub use selector::Selector;
pub use transfer::{BlobFinding, BlobStatus, MirrorReport, audit_blobs, mirror_blobs};

/// What [`BlobMirror::put_blob`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PutOutcome {
    /// The blob was uploaded.
    Written,
    /// An object of the right size was already there; nothing was written.
    AlreadyPresent,
}

/// A bucket of blobs.
///
/// Contract: writes are create-only (an existing object is never replaced) and an object becomes
/// visible under a digest only after its bytes were checked to hash to it.
#[async_trait::async_trait]
pub trait BlobMirror: Send + Sync + Debug {
    /// `s3://bucket/prefix`, `gs://bucket`, `file:dir`: never a credential.
    fn describe(&self) -> String;

    /// The size of the blob's object (a `HEAD`), or `None` when there is none.
    async fn blob_size(&self, digest: &Digest) -> Result<Option<u64>, ObjectError>;

    /// Stores `stream`, which must be exactly `size` bytes hashing to `digest`.
    ///
    /// Returns [`PutOutcome::AlreadyPresent`] without reading the stream when an object of `size`
    /// bytes is already there; an object of another size is an [`ObjectErrorKind::Corrupt`] error,
    /// never a skip and never replaced. The stream is verified while it is read; a mismatch fails
    /// with [`ObjectErrorKind::Corrupt`] and leaves no object behind. The default wraps the stream
    /// in a [`VerifyingStream`] and calls [`BlobMirror::put_verified_blob`].
    async fn put_blob(
        &self,
        digest: &Digest,
        size: u64,
        stream: ByteStream,
    ) -> Result<PutOutcome, ObjectError> {
        let subject = format!("{} {digest}", self.describe());
        let verified = VerifyingStream::new(stream, subject, *digest, size).boxed();
        self.put_verified_blob(digest, size, verified).await
    }

    /// [`BlobMirror::put_blob`] for a stream the caller verified already: one that yields an
    /// error *instead of* its end unless it held exactly `size` bytes hashing to `digest` (a
    /// [`VerifyingStream`], or a reader of the copier's spool). Nothing is hashed again with
    /// sha256; the bytes are counted, and the object is committed only after the verified end,
    /// so a mismatch still fails with [`ObjectErrorKind::Corrupt`] and leaves nothing behind.
    async fn put_verified_blob(
        &self,
        digest: &Digest,
        size: u64,
        stream: ByteStream,
    ) -> Result<PutOutcome, ObjectError>;

    /// The stored bytes, *not* verified (audits hash them to find corruption). A missing object
    /// is [`ObjectErrorKind::NotFound`].
    async fn fetch_blob(&self, digest: &Digest) -> Result<ByteStream, ObjectError>;
}

/// Settings for uploads: when to switch to multipart, and the part size.
///
/// Up to `multipart_threshold` a blob goes up in one streamed request (S3 `PutObject` with the
/// blob's sha256 as its checksum, so S3 itself verifies the digest; a GCS media upload): nothing
/// is buffered. Above it, a multipart (S3) or resumable (GCS) upload holds one part in memory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UploadSettings {
    /// Blobs larger than this go through multipart uploads.
    pub multipart_threshold: u64,
    /// Bytes per part (S3 wants at least 5 MiB for all parts but the last).
    pub part_size: u64,
}

impl Default for UploadSettings {
    fn default() -> Self {
        Self {
            // S3's limit for one PutObject.
            multipart_threshold: 5 << 30,
            part_size: 16 * 1024 * 1024,
        }
    }
}

/// How to open a backend beyond what the catalogue says.
#[derive(Debug, Clone, Default)]
pub struct OpenOptions {
    /// Upload sizes.
    pub uploads: UploadSettings,
    /// Connect and idle timeouts of S3 and GCS requests.
    pub timeouts: Timeouts,
    /// Static S3 credentials instead of the AWS chain (tests against a local server).
    pub s3_credentials: Option<S3Credentials>,
}

/// Opens a backend with default settings and credentials from the environment.
pub async fn open(backend: &Backend) -> Result<Arc<dyn BlobMirror>, ObjectError> {
    open_with(backend, &OpenOptions::default()).await
}

/// Opens a backend with `options`. Makes no request.
pub async fn open_with(
    backend: &Backend,
    options: &OpenOptions,
) -> Result<Arc<dyn BlobMirror>, ObjectError> {
    Ok(match bucket::Opened::open(backend, options).await? {
        bucket::Opened::S3(store) => Arc::new(store),
        bucket::Opened::Gcs(store) => Arc::new(store),
        bucket::Opened::File(store) => Arc::new(store),
    })
}

/// The object key of a blob under `prefix` (empty for none):
/// `prefix/containers/images/sha256:<hex>`.
pub fn blob_key(prefix: &str, digest: &Digest) -> String {
    if prefix.is_empty() {
        format!("containers/images/{digest}")
    } else {
        format!("{prefix}/containers/images/{digest}")
    }
}
