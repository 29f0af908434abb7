//! The storage contract of hoist: what the copier needs from any place that holds images.
//!
//! A [`Source`] can be read (tags, manifests, blobs); a [`Sink`] can also be written. OCI registries
//! (`hoist-registry`) and OCI image layouts on disk implement both, so the copier (`hoist-copy`) never
//! knows which concrete backend it drives.
//!
//! Manifests travel as [`RawManifest`]: the exact bytes, their media type and their digest, so a copy
//! pushes the bytes it fetched, unchanged, and digests are preserved. Blobs travel as a [`ByteStream`];
//! [`VerifyingStream`] wraps one and fails *at the end of the stream* when the size or sha256 differ from
//! what was expected, so a sink that reads to the end before committing can never commit bad bytes.
//!
//! Errors are [`StoreError`]s, classified so callers can tell a missing object from a refusal, a rate
//! limit (with its `Retry-After`) or a digest mismatch (which is never retried silently).
//!
//! Network backends time out on silence, never on duration: [`idle`] holds the pieces they share
//! ([`idle::Activity`], [`idle::watch`], [`idle::IdleStream`], the [`idle::IdleTimeout`] error).

mod error;
pub mod idle;
mod verify;

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Debug;
use std::pin::Pin;

use bytes::Bytes;
use futures::Stream;
use hoist_oci::{Digest, Reference, Tag};

pub use error::{StoreError, StoreErrorKind};
pub use verify::VerifyingStream;

/// A stream of blob bytes.
pub type ByteStream = Pin<Box<dyn Stream<Item = Result<Bytes, StoreError>> + Send>>;

/// A manifest exactly as stored: bytes, media type, digest of the bytes.
#[derive(Clone, PartialEq, Eq)]
pub struct RawManifest {
    /// The media type (the `Content-Type` a registry answered, or the `mediaType` field).
    pub media_type: String,
    /// The exact bytes; pushing them unchanged preserves the digest.
    pub bytes: Bytes,
    /// sha256 of `bytes`.
    pub digest: Digest,
}

impl RawManifest {
    /// Wraps bytes, computing their digest.
    pub fn new(media_type: impl Into<String>, bytes: impl Into<Bytes>) -> Self {
        let bytes = bytes.into();
        Self {
            media_type: media_type.into(),
            digest: Digest::of(&bytes),
            bytes,
        }
    }
}

impl RawManifest {
    /// Refuses (as an error of `kind` about `subject`) manifest `bytes` that could be read both as
    /// an image and as an index when they come with `media_type`: a `mediaType` field that
    /// contradicts it, or both `manifests` and `layers` (CVE-2021-41190, see
    /// [`hoist_oci::manifest_kind`]). Bytes that are not JSON are left for the reader to refuse.
    pub fn check_unambiguous(
        subject: &str,
        media_type: &str,
        bytes: &[u8],
        kind: StoreErrorKind,
    ) -> Result<(), StoreError> {
        match hoist_oci::manifest_kind(media_type, bytes) {
            Ok(_) | Err(hoist_oci::AmbiguousManifest::NotJson(_)) => Ok(()),
            Err(error) => {
                Err(
                    StoreError::new(kind, subject, format!("refusing the manifest: {error}"))
                        .with_source(error),
                )
            }
        }
    }
}

impl Debug for RawManifest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RawManifest")
            .field("media_type", &self.media_type)
            .field("digest", &self.digest)
            .field("len", &self.bytes.len())
            .finish()
    }
}

/// What a `HEAD` of a manifest tells: its digest, media type and size.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ManifestHead {
    /// The digest of the manifest bytes.
    pub digest: Digest,
    /// The media type.
    pub media_type: String,
    /// The size in bytes.
    pub size: u64,
}

/// The tags of a repository, and the digest each points at when the listing itself says so.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TagListing {
    /// Sorted, without duplicates.
    pub tags: Vec<Tag>,
    /// Each tag's manifest digest, when the store lists them (GCR and Artifact Registry send a
    /// `manifest` map, an OCI layout's `index.json` has them); `None` when it does not (registry:2
    /// and most others), and then tags must be resolved one by one.
    pub digests: Option<BTreeMap<Tag, Digest>>,
    /// The store said the repository does not exist (a registry's `tags/list` answered 404
    /// `NAME_UNKNOWN`; a layout has no `index.json`). `false` when it exists or the store cannot
    /// tell. A promotion treats a missing repository as empty; `snapshot` reports it.
    pub missing: bool,
    /// Manifests the listing names that no tag points at (GCR and Artifact Registry list
    /// untagged manifests in the same map); `None` when the store does not say. A digest named
    /// here or in `digests` is in the repository; one named nowhere may still be (a listing
    /// can be partial), so only a `HEAD` proves it absent.
    pub untagged: Option<BTreeSet<Digest>>,
}

/// A manifest that names another as its `subject`, as the OCI referrers API lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Referrer {
    /// The referrer's media type.
    pub media_type: String,
    /// The referrer's digest.
    pub digest: Digest,
    /// Its size in bytes.
    pub size: u64,
    /// What kind of artifact it is (a signature, an SBOM, ...), when the listing says.
    pub artifact_type: Option<String>,
}

/// Something images can be read from.
///
/// `repository` is always the full repository path inside the store (for a registry
/// `k8s-artifacts-prod/images/kubernetes/pause`, without the host).
#[async_trait::async_trait]
pub trait Source: Send + Sync + Debug {
    /// A short human name for messages (`127.0.0.1:5000`, `oci:layouts/prod`). Never holds a credential.
    fn describe(&self) -> String;

    /// The tags of `repository`, sorted and without duplicates. A repository that does not exist
    /// has no tags: `Ok(vec![])`, not an error.
    async fn list_tags(&self, repository: &str) -> Result<Vec<Tag>, StoreError>;

    /// The tags of `repository` with their digests when the store's listing carries them, in one
    /// round trip. The default lists tags without digests.
    async fn list_tags_with_digests(&self, repository: &str) -> Result<TagListing, StoreError> {
        Ok(TagListing {
            tags: self.list_tags(repository).await?,
            digests: None,
            missing: false,
            untagged: None,
        })
    }

    /// The manifests whose `subject` is `digest` (the OCI 1.1 referrers API), or `None` when the
    /// store has no referrers API, in which case referrers can only be found through the
    /// `sha256-<hex>` fallback tag. The default has no API.
    async fn referrers(
        &self,
        repository: &str,
        digest: &Digest,
    ) -> Result<Option<Vec<Referrer>>, StoreError> {
        let _ = (repository, digest);
        Ok(None)
    }

    /// Whether [`Source::list_tags_with_digests`] is expected to carry digests, so that listing a
    /// repository is cheaper than a `HEAD` per tag. A guess is fine: it only chooses between two
    /// correct ways of reading tags.
    fn lists_tag_digests(&self) -> bool {
        false
    }

    /// The digest, media type and size of a manifest, or `None` when there is none by that reference.
    async fn head_manifest(
        &self,
        repository: &str,
        reference: &Reference,
    ) -> Result<Option<ManifestHead>, StoreError>;

    /// The manifest's exact bytes, or `None` when there is none by that reference. When `reference`
    /// is a digest the implementation checks that the bytes hash to it
    /// ([`StoreErrorKind::DigestMismatch`] otherwise).
    async fn fetch_manifest(
        &self,
        repository: &str,
        reference: &Reference,
    ) -> Result<Option<RawManifest>, StoreError>;

    /// The size of a blob, or `None` when the store does not have it.
    async fn blob_size(&self, repository: &str, digest: &Digest)
    -> Result<Option<u64>, StoreError>;

    /// The blob's bytes as a stream, *not* verified: wrap it in a [`VerifyingStream`].
    /// A missing blob is [`StoreErrorKind::NotFound`].
    async fn fetch_blob(&self, repository: &str, digest: &Digest)
    -> Result<ByteStream, StoreError>;
}

/// Something images can be written to.
///
/// Contract for the copier: blobs first, then child manifests, then indexes, then tags. A sink never
/// makes content visible under `digest` unless the bytes it received hash to `digest`.
#[async_trait::async_trait]
pub trait Sink: Source {
    /// Stores a blob from `stream`, which must end up being exactly `size` bytes hashing to `digest`.
    /// The sink reads the stream to its end before committing; an error from the stream (such as a
    /// [`VerifyingStream`] mismatch) aborts the upload and is returned.
    async fn push_blob(
        &self,
        repository: &str,
        digest: &Digest,
        size: u64,
        stream: ByteStream,
    ) -> Result<(), StoreError>;

    /// Stores a blob from a stream the caller has already verified: one that ends (`None`) only
    /// after exactly `size` bytes hashing to `digest`, and yields an error *instead of* the end
    /// otherwise (a [`VerifyingStream`], or a reader of a verified local copy). The sink then
    /// hashes nothing again (one sha256 per byte of a copy); it still counts the bytes and commits
    /// only after the clean end, so a failed verification aborts the upload as in
    /// [`Sink::push_blob`]. The default verifies anyway, by calling [`Sink::push_blob`].
    async fn push_verified_blob(
        &self,
        repository: &str,
        digest: &Digest,
        size: u64,
        stream: ByteStream,
    ) -> Result<(), StoreError> {
        self.push_blob(repository, digest, size, stream).await
    }

    /// Tries to make a blob that already exists in `from_repository` of the *same* store available
    /// in `repository` without copying bytes. `Ok(false)` when the store refused or cannot mount
    /// (the caller then uploads); nothing is left behind either way.
    async fn mount_blob(
        &self,
        repository: &str,
        from_repository: &str,
        digest: &Digest,
    ) -> Result<bool, StoreError>;

    /// Stores a manifest under `reference` (its digest, or a tag). Everything it references must
    /// already be in the store.
    async fn push_manifest(
        &self,
        repository: &str,
        reference: &Reference,
        manifest: &RawManifest,
    ) -> Result<(), StoreError>;
}
