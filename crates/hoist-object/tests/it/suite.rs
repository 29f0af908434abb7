//! One behaviour suite every backend must pass, and the hooks a backend gives it to break
//! objects behind the mirror's back.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use bytes::Bytes;
use futures::TryStreamExt;
use hoist_object::{
    BlobMirror, BlobStatus, ObjectErrorKind, PutOutcome, UploadSettings, audit_blobs, mirror_blobs,
};
use hoist_oci::Digest;
use hoist_registry::RegistryStore;
use hoist_testkit::{ImageBuilder, RegistryOptions, RegistryServer};

use crate::{random_blob, stream_of};

/// Small sizes so multipart runs in tests: 5 MiB parts, above 5 MiB is multipart.
pub fn test_uploads() -> UploadSettings {
    UploadSettings {
        multipart_threshold: 5 * 1024 * 1024,
        part_size: 5 * 1024 * 1024,
    }
}

/// The size of the multipart blobs: three parts, the last one short.
pub const LARGE: usize = 12 * 1024 * 1024;

type BoxFuture<'a> = Pin<Box<dyn Future<Output = ()> + Send + 'a>>;

/// Writes or deletes objects directly in the backend's storage, by object key.
pub trait Tamper: Send + Sync {
    /// Stores `content` under `key`, replacing what is there.
    fn plant<'a>(&'a self, key: &'a str, content: Bytes) -> BoxFuture<'a>;
    /// Deletes the object `key`.
    fn remove<'a>(&'a self, key: &'a str) -> BoxFuture<'a>;
    /// Whether an object `key` exists, seen from the storage itself.
    fn exists<'a>(&'a self, key: &'a str) -> Pin<Box<dyn Future<Output = bool> + Send + 'a>>;
}

pub async fn fetch_all(mirror: &dyn BlobMirror, digest: &Digest) -> Bytes {
    let chunks: Vec<Bytes> = mirror
        .fetch_blob(digest)
        .await
        .expect("fetch")
        .try_collect()
        .await
        .expect("read the stream");
    Bytes::from(chunks.concat())
}

/// Flips the last byte: same size, different digest.
fn corrupt(content: &Bytes) -> Bytes {
    let mut bad = content.to_vec();
    let last = bad.len() - 1;
    bad[last] ^= 0xff;
    Bytes::from(bad)
}

/// Put, HEAD, fetch, create-only, verification, wrong sizes, multipart and audit.
pub async fn run(mirror: Arc<dyn BlobMirror>, prefix: &str, tamper: &dyn Tamper) {
    let mirror = mirror.as_ref();
    let key = |digest: &Digest| hoist_object::blob_key(prefix, digest);

    // Round trip.
    let (small, small_digest) = random_blob(1, 300_000);
    assert_eq!(mirror.blob_size(&small_digest).await.unwrap(), None);
    let outcome = mirror
        .put_blob(&small_digest, small.len() as u64, stream_of(&small))
        .await
        .unwrap();
    assert_eq!(outcome, PutOutcome::Written);
    assert!(
        tamper.exists(&key(&small_digest)).await,
        "stored under the GCR layout key"
    );
    assert_eq!(
        mirror.blob_size(&small_digest).await.unwrap(),
        Some(small.len() as u64)
    );
    let fetched = fetch_all(mirror, &small_digest).await;
    assert_eq!(Digest::of(&fetched), small_digest);

    // A second put writes nothing: different bytes of the same size must not replace the object.
    let outcome = mirror
        .put_blob(
            &small_digest,
            small.len() as u64,
            stream_of(&corrupt(&small)),
        )
        .await
        .unwrap();
    assert_eq!(outcome, PutOutcome::AlreadyPresent);
    assert_eq!(fetch_all(mirror, &small_digest).await, small);

    // Bytes that do not hash to the digest: an error, and no object afterwards.
    let (other, other_digest) = random_blob(2, 200_000);
    let error = mirror
        .put_blob(
            &other_digest,
            other.len() as u64,
            stream_of(&corrupt(&other)),
        )
        .await
        .unwrap_err();
    assert_eq!(error.kind(), ObjectErrorKind::Corrupt, "{error}");
    assert!(
        error.to_string().contains(&other_digest.hex()),
        "names the blob: {error}"
    );
    assert_eq!(mirror.blob_size(&other_digest).await.unwrap(), None);
    assert!(!tamper.exists(&key(&other_digest)).await);
    // Too short a stream fails the same way.
    let error = mirror
        .put_blob(
            &other_digest,
            other.len() as u64,
            stream_of(&other.slice(..1000)),
        )
        .await
        .unwrap_err();
    assert_eq!(error.kind(), ObjectErrorKind::Corrupt, "{error}");
    assert_eq!(mirror.blob_size(&other_digest).await.unwrap(), None);

    // The same through the multipart path: parts go up, the upload is never completed.
    let (large, large_digest) = random_blob(3, LARGE);
    let error = mirror
        .put_blob(
            &large_digest,
            large.len() as u64,
            stream_of(&corrupt(&large)),
        )
        .await
        .unwrap_err();
    assert_eq!(error.kind(), ObjectErrorKind::Corrupt, "{error}");
    assert_eq!(mirror.blob_size(&large_digest).await.unwrap(), None);
    assert!(!tamper.exists(&key(&large_digest)).await);

    // A good large blob goes through multipart and reads back exactly.
    let outcome = mirror
        .put_blob(&large_digest, large.len() as u64, stream_of(&large))
        .await
        .unwrap();
    assert_eq!(outcome, PutOutcome::Written);
    assert_eq!(
        mirror.blob_size(&large_digest).await.unwrap(),
        Some(LARGE as u64)
    );
    let fetched = fetch_all(mirror, &large_digest).await;
    assert!(fetched == large, "the multipart blob reads back exactly");

    // An object of another size under the digest: Corrupt, not a skip, and left alone.
    let (planted, planted_digest) = random_blob(4, 50_000);
    tamper
        .plant(&key(&planted_digest), planted.slice(..10))
        .await;
    let error = mirror
        .put_blob(&planted_digest, planted.len() as u64, stream_of(&planted))
        .await
        .unwrap_err();
    assert_eq!(error.kind(), ObjectErrorKind::Corrupt, "{error}");
    assert_eq!(mirror.blob_size(&planted_digest).await.unwrap(), Some(10));

    // Audit: break one blob each way and find exactly those.
    let mut blobs = Vec::new();
    for seed in 10..16u64 {
        let (content, digest) = random_blob(seed, 20_000 + seed as usize);
        mirror
            .put_blob(&digest, content.len() as u64, stream_of(&content))
            .await
            .unwrap();
        blobs.push((digest, content));
    }
    let listed: Vec<(Digest, u64)> = blobs
        .iter()
        .map(|(digest, content)| (*digest, content.len() as u64))
        .collect();
    let findings = audit_blobs(mirror, &listed, true, 4).await;
    assert!(
        findings
            .iter()
            .all(|finding| finding.status == BlobStatus::Ok),
        "{findings:?}"
    );
    tamper.remove(&key(&blobs[1].0)).await;
    tamper
        .plant(&key(&blobs[2].0), blobs[2].1.slice(..100))
        .await;
    tamper.plant(&key(&blobs[3].0), corrupt(&blobs[3].1)).await;
    let shallow = audit_blobs(mirror, &listed, false, 4).await;
    let deep = audit_blobs(mirror, &listed, true, 4).await;
    for (index, (shallow, deep)) in shallow.iter().zip(&deep).enumerate() {
        assert_eq!(
            shallow.digest, blobs[index].0,
            "findings keep the input order"
        );
        let (expected_shallow, expected_deep) = match index {
            1 => (BlobStatus::Missing, BlobStatus::Missing),
            2 => (
                BlobStatus::SizeMismatch { found: 100 },
                BlobStatus::SizeMismatch { found: 100 },
            ),
            3 => (
                BlobStatus::Ok,
                BlobStatus::HashMismatch {
                    found: Digest::of(&corrupt(&blobs[3].1)),
                },
            ),
            _ => (BlobStatus::Ok, BlobStatus::Ok),
        };
        assert_eq!(
            shallow.status, expected_shallow,
            "blob {index} without rehash"
        );
        assert_eq!(deep.status, expected_deep, "blob {index} with rehash");
    }
    // The audit wrote nothing: the missing blob is still missing.
    assert_eq!(mirror.blob_size(&blobs[1].0).await.unwrap(), None);
}

/// Pushes an image to a real registry and mirrors its blobs: all arrive intact, and a re-run
/// writes nothing.
pub async fn mirror_from_registry(mirror: Arc<dyn BlobMirror>) {
    let registry = RegistryServer::start(RegistryOptions::plain()).expect("start docker-registry");
    let image = ImageBuilder::new(7)
        .layers(&[3_000, 400_000, 1_000])
        .build();
    let client = registry.client().unwrap();
    hoist_testkit::push(
        &client,
        &registry.endpoint(),
        "mirror/source",
        &image,
        &["v1"],
    )
    .await
    .expect("push");
    let source = RegistryStore::new(
        &registry.host(),
        hoist_registry::RegistryOptions {
            insecure: true,
            ..Default::default()
        },
    )
    .unwrap();
    let blobs: Vec<(Digest, u64)> = image
        .own_blobs()
        .map(|blob| (blob.digest(), blob.descriptor.size))
        .collect();
    assert_eq!(blobs.len(), 4);

    let report = mirror_blobs(&source, "mirror/source", &blobs, mirror.as_ref(), 3).await;
    assert!(report.is_complete(), "{:?}", report.failed);
    assert_eq!(report.written.len(), 4);
    for blob in image.own_blobs() {
        assert_eq!(
            fetch_all(mirror.as_ref(), &blob.digest()).await,
            blob.to_bytes()
        );
    }
    let findings = audit_blobs(mirror.as_ref(), &blobs, true, 2).await;
    assert!(
        findings
            .iter()
            .all(|finding| finding.status == BlobStatus::Ok),
        "{findings:?}"
    );

    let requests_before = source.requests_made();
    let again = mirror_blobs(&source, "mirror/source", &blobs, mirror.as_ref(), 3).await;
    assert!(again.is_complete(), "{:?}", again.failed);
    assert!(again.written.is_empty(), "a re-run writes nothing");
    assert_eq!(again.present.len(), 4);
    assert_eq!(
        source.requests_made(),
        requests_before,
        "a re-run reads nothing from the registry"
    );

    // A blob the source lacks fails alone, naming it.
    let (absent, absent_digest) = random_blob(99, 10);
    let report = mirror_blobs(
        &source,
        "mirror/source",
        &[(absent_digest, absent.len() as u64)],
        mirror.as_ref(),
        1,
    )
    .await;
    assert_eq!(report.failed.len(), 1);
    assert_eq!(
        report.failed[0].1.kind(),
        ObjectErrorKind::NotFound,
        "{}",
        report.failed[0].1
    );
}
