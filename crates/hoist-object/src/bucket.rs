//! [`Bucket`]: objects at arbitrary keys below a backend's prefix, for promoting files (release
//! binaries, tarballs) rather than blobs. The same three backends, with the same guarantees as
//! [`crate::BlobMirror`]: create-only writes, verified before they become visible.
//!
//! [`copy_object`] streams one object from a source bucket into a destination bucket through a
//! sha256 check; [`hash_object`] reads an object and hashes it, for the proof that a destination
//! holds the right bytes.

use std::fmt::Debug;
use std::sync::Arc;

use futures::TryStreamExt as _;
use hoist_oci::Digest;
use hoist_store::{ByteStream, VerifyingStream};
use sha2::{Digest as _, Sha256};

use crate::catalogue::{Backend, BackendUrl};
use crate::error::{ObjectError, ObjectErrorKind};
use crate::file::existing;
use crate::{FileMirror, GcsMirror, OpenOptions, PutOutcome, S3Mirror};

/// A bucket (or directory) of objects under keys relative to its prefix.
///
/// Contract, as for [`crate::BlobMirror`]: writes are create-only (an existing object is never
/// replaced) and an object becomes visible only after its bytes were checked to hash to the
/// expected sha256. Keys are relative paths (`v1.2.3/bin/linux/amd64/tool`): an empty key, an
/// absolute one, or one with an empty, `.` or `..` segment is a [`ObjectErrorKind::Config`](crate::ObjectErrorKind::Config)
/// error, never an object outside the prefix.
#[async_trait::async_trait]
pub trait Bucket: Send + Sync + Debug {
    /// `s3://bucket/prefix`, `gs://bucket`, `file:dir`: never a credential.
    fn describe(&self) -> String;

    /// The URL of the object at `key`: `s3://bucket/prefix/key`, `file:dir/key`.
    fn url_of(&self, key: &str) -> String;

    /// The size of the object at `key` (a `HEAD`), or `None` when there is none.
    async fn object_size(&self, key: &str) -> Result<Option<u64>, ObjectError>;

    /// Stores `stream`, which must be exactly `size` bytes hashing to `digest`, at `key`.
    ///
    /// Returns [`PutOutcome::AlreadyPresent`] without reading the stream when an object of `size`
    /// bytes is already there (its *content* is not checked: callers that must know hash it with
    /// [`hash_object`]); an object of another size is an [`ObjectErrorKind::Corrupt`](crate::ObjectErrorKind::Corrupt) error,
    /// never replaced. A stream that does not hash to `digest` fails with
    /// [`ObjectErrorKind::Corrupt`](crate::ObjectErrorKind::Corrupt) and leaves no object behind.
    async fn put_object(
        &self,
        key: &str,
        digest: &Digest,
        size: u64,
        stream: ByteStream,
    ) -> Result<PutOutcome, ObjectError>;

    /// [`Bucket::put_object`] for a stream the caller verified already (a [`VerifyingStream`]:
    /// one that fails instead of ending unless its bytes hash to `digest`): nothing is hashed
    /// again, and the object is still committed only after the verified end.
    async fn put_verified_object(
        &self,
        key: &str,
        digest: &Digest,
        size: u64,
        stream: ByteStream,
    ) -> Result<PutOutcome, ObjectError>;

    /// The stored bytes at `key`, *not* verified. A missing object is
    /// [`ObjectErrorKind::NotFound`](crate::ObjectErrorKind::NotFound).
    async fn fetch_object(&self, key: &str) -> Result<ByteStream, ObjectError>;
}

/// What a backend gives to be a [`Bucket`]: where a (checked) key is stored, and the three
/// operations on that place. The same operations serve its [`crate::BlobMirror`] side.
#[async_trait::async_trait]
pub(crate) trait Keyed: Send + Sync + Debug {
    /// Where an object is stored: a full key (prefix included) or a file path.
    type Place: Send + Sync;

    /// `s3://bucket/prefix`, `gs://bucket`, `file:dir`.
    fn base(&self) -> String;

    /// The place of `key`, which [`check_key`] accepted.
    fn place(&self, key: &str) -> Self::Place;

    /// The URL of `key` (for messages, even when `key` is invalid).
    fn url(&self, key: &str) -> String;

    /// The size of the object at `place`, `None` when there is none.
    async fn size_at(&self, place: &Self::Place) -> Result<Option<u64>, ObjectError>;

    /// `place` as the subject of messages.
    fn subject_of(&self, place: &Self::Place) -> String;

    /// Writes a new object at `place` from `stream`, a *verified* stream of `size` bytes (one
    /// that fails instead of ending unless its bytes hash to `digest`), making the object
    /// visible only after the stream's verified end. An object created meanwhile by someone else
    /// is an [`ObjectErrorKind::AlreadyExists`](crate::ObjectErrorKind::AlreadyExists) error.
    async fn write_new(
        &self,
        place: &Self::Place,
        digest: &Digest,
        size: u64,
        stream: ByteStream,
    ) -> Result<(), ObjectError>;

    /// Stores the verified `stream` (see [`Keyed::write_new`]) at `place`, create-only: an
    /// object already there is a skip when its size is right, corruption otherwise.
    async fn put_verified_at(
        &self,
        place: &Self::Place,
        digest: &Digest,
        size: u64,
        stream: ByteStream,
    ) -> Result<PutOutcome, ObjectError> {
        let subject = self.subject_of(place);
        if let Some(found) = self.size_at(place).await? {
            return existing(&subject, size, found);
        }
        match self.write_new(place, digest, size, stream).await {
            Ok(()) => Ok(PutOutcome::Written),
            // Someone else created it between our HEAD and our write.
            Err(error) if error.kind() == ObjectErrorKind::AlreadyExists => {
                let found = self.size_at(place).await?.unwrap_or(0);
                existing(&subject, size, found)
            }
            Err(error) => Err(error),
        }
    }

    /// The bytes at `place`, not verified.
    async fn fetch_at(&self, place: &Self::Place) -> Result<ByteStream, ObjectError>;
}

/// The place of `key` after checking that it stays below the backend's prefix.
fn checked<T: Keyed>(store: &T, key: &str) -> Result<T::Place, ObjectError> {
    check_key(key).map_err(|message| ObjectError::config(store.url(key), message))?;
    Ok(store.place(key))
}

#[async_trait::async_trait]
impl<T: Keyed> Bucket for T {
    fn describe(&self) -> String {
        self.base()
    }

    fn url_of(&self, key: &str) -> String {
        self.url(key)
    }

    async fn object_size(&self, key: &str) -> Result<Option<u64>, ObjectError> {
        self.size_at(&checked(self, key)?).await
    }

    async fn put_object(
        &self,
        key: &str,
        digest: &Digest,
        size: u64,
        stream: ByteStream,
    ) -> Result<PutOutcome, ObjectError> {
        let place = checked(self, key)?;
        let subject = self.subject_of(&place);
        let verified = VerifyingStream::new(stream, subject, *digest, size).boxed();
        self.put_verified_at(&place, digest, size, verified).await
    }

    async fn put_verified_object(
        &self,
        key: &str,
        digest: &Digest,
        size: u64,
        stream: ByteStream,
    ) -> Result<PutOutcome, ObjectError> {
        self.put_verified_at(&checked(self, key)?, digest, size, stream)
            .await
    }

    async fn fetch_object(&self, key: &str) -> Result<ByteStream, ObjectError> {
        self.fetch_at(&checked(self, key)?).await
    }
}

/// Opens a backend as a [`Bucket`]. Makes no request.
pub async fn open_bucket(
    backend: &Backend,
    options: &OpenOptions,
) -> Result<Arc<dyn Bucket>, ObjectError> {
    Ok(match Opened::open(backend, options).await? {
        Opened::S3(store) => Arc::new(store),
        Opened::Gcs(store) => Arc::new(store),
        Opened::File(store) => Arc::new(store),
    })
}

/// A backend's client, before it is seen as a [`Bucket`] or a [`crate::BlobMirror`].
pub(crate) enum Opened {
    S3(S3Mirror),
    Gcs(GcsMirror),
    File(FileMirror),
}

impl Opened {
    /// Opens `backend` with `options`. Makes no request.
    pub(crate) async fn open(
        backend: &Backend,
        options: &OpenOptions,
    ) -> Result<Self, ObjectError> {
        if options.uploads.part_size == 0 || options.uploads.multipart_threshold == 0 {
            return Err(ObjectError::config(
                &backend.name,
                "the part size and multipart threshold must be positive",
            ));
        }
        Ok(match &backend.url {
            BackendUrl::S3 { .. } => Self::S3(S3Mirror::open(backend, options).await?),
            BackendUrl::Gcs { .. } => Self::Gcs(GcsMirror::open(backend, options)?),
            BackendUrl::File { path } => Self::File(FileMirror::new(path)),
        })
    }
}

/// Copies the object at `source_key` of `source` to `destination_key` of `destination`,
/// streamed (never held whole) and verified against `digest` and `size` on the way: bytes that
/// do not hash to `digest` fail with [`ObjectErrorKind::Corrupt`](crate::ObjectErrorKind::Corrupt) and nothing is written.
/// An object already at the destination is handled as [`Bucket::put_object`] says.
pub async fn copy_object(
    source: &dyn Bucket,
    source_key: &str,
    destination: &dyn Bucket,
    destination_key: &str,
    digest: &Digest,
    size: u64,
) -> Result<PutOutcome, ObjectError> {
    let subject = source.url_of(source_key);
    let stream = source.fetch_object(source_key).await?;
    // Verified here (once) with the source as subject, so a mismatch names where the bad bytes
    // came from; the destination commits only after the verified end.
    let verified = VerifyingStream::new(stream, subject, *digest, size).boxed();
    destination
        .put_verified_object(destination_key, digest, size, verified)
        .await
}

/// Reads the object at `key` to its end and returns its size and sha256 (streamed: memory does
/// not grow with the object).
pub async fn hash_object(bucket: &dyn Bucket, key: &str) -> Result<(u64, Digest), ObjectError> {
    let stream = bucket.fetch_object(key).await?;
    hash_stream(stream, &bucket.url_of(key)).await
}

/// Reads `stream` to its end: its size and sha256. `subject` names it in errors.
pub(crate) async fn hash_stream(
    mut stream: ByteStream,
    subject: &str,
) -> Result<(u64, Digest), ObjectError> {
    let mut hasher = Sha256::new();
    let mut read = 0u64;
    while let Some(chunk) = stream
        .try_next()
        .await
        .map_err(|error| ObjectError::from_stream(subject, error))?
    {
        read += chunk.len() as u64;
        hasher.update(&chunk);
    }
    Ok((read, Digest::from_sha256(hasher.finalize().into())))
}

/// `prefix/key`, or `key` without a prefix.
pub(crate) fn join_prefix(prefix: &str, key: &str) -> String {
    if prefix.is_empty() {
        key.to_owned()
    } else {
        format!("{prefix}/{key}")
    }
}

/// Why `key` is not a relative object path below a prefix (empty, absolute, with an empty, `.` or
/// `..` segment, a backslash or a control character), if it is not.
pub fn check_key(key: &str) -> Result<(), &'static str> {
    if key.is_empty() {
        return Err("the object key is empty");
    }
    if key.starts_with('/') || key.contains('\\') {
        return Err("the object key must be a relative path with '/' separators");
    }
    if key
        .split('/')
        .any(|segment| segment.is_empty() || segment == "." || segment == "..")
    {
        return Err("the object key has an empty, '.' or '..' segment");
    }
    if key.chars().any(char::is_control) {
        return Err("the object key has a control character");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_stay_below_the_prefix() {
        for good in ["a", "v1.0/bin/linux/amd64/kubectl", "a-b_c.tar.gz"] {
            assert_eq!(check_key(good), Ok(()), "{good}");
        }
        for bad in [
            "", "/abs", "a//b", "a/../b", "..", "./a", "a/", "a\\b", "a\nb",
        ] {
            assert!(check_key(bad).is_err(), "{bad:?}");
        }
        assert_eq!(join_prefix("", "a/b"), "a/b");
        assert_eq!(join_prefix("p/q", "a/b"), "p/q/a/b");
    }
}
