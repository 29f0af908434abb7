//! Blob push, fetch, size and mount against a real registry:2.

use bytes::Bytes;
use hoist_oci::Digest;
use hoist_registry::{RegistryOptions, RegistryStore};
use hoist_store::{ByteStream, Sink as _, Source as _, StoreError, StoreErrorKind};

use crate::servers::Registry;
use crate::{collect, digest_of, generated, stream_of};

#[tokio::test]
async fn small_blob_round_trips_in_two_requests() {
    let registry = Registry::start();
    let store = registry.store();
    let content = b"a small layer".to_vec();
    let digest = Digest::of(&content);
    store
        .push_blob(
            "team/app",
            &digest,
            content.len() as u64,
            stream_of(&content, 4),
        )
        .await
        .unwrap();
    // POST and PUT: no probing of /v2/ on an anonymous registry, no PATCH for a small blob.
    assert_eq!(store.requests_made(), 2);
    assert_eq!(
        store.blob_size("team/app", &digest).await.unwrap(),
        Some(content.len() as u64)
    );
    assert_eq!(
        collect(store.fetch_blob("team/app", &digest).await.unwrap()).await,
        content
    );
    assert_eq!(registry.open_uploads("team/app"), 0);
}

#[tokio::test]
async fn large_blob_streams_in_one_patch() {
    let registry = Registry::start();
    let store = registry.store();
    let size = 40 * 1024 * 1024 + 123;
    let (digest, stream) = generated(7, size);
    store.push_blob("big", &digest, size, stream).await.unwrap();
    // POST, one PATCH streaming the 64 KiB items as they come, an empty PUT.
    assert_eq!(store.requests_made(), 3);
    assert_eq!(store.blob_size("big", &digest).await.unwrap(), Some(size));
    let fetched = digest_of(store.fetch_blob("big", &digest).await.unwrap())
        .await
        .unwrap();
    assert_eq!(fetched, (digest, size));
}

/// A stream that yields `good` items of 1 MiB and then fails.
fn failing_stream(good: usize) -> ByteStream {
    let mut items: Vec<Result<Bytes, StoreError>> = (0..good)
        .map(|_| Ok(Bytes::from(vec![7u8; 1 << 20])))
        .collect();
    items.push(Err(StoreError::new(
        StoreErrorKind::Io,
        "source-blob",
        "the source broke",
    )));
    Box::pin(futures::stream::iter(items))
}

#[tokio::test]
async fn stream_error_cancels_the_upload() {
    let registry = Registry::start();
    let options = RegistryOptions {
        upload_chunk_size: 1 << 20,
        ..registry.options()
    };
    let store = RegistryStore::new(&registry.host, options).unwrap();
    let digest = Digest::of(&vec![7u8; 4 << 20]);
    let error = store
        .push_blob("app", &digest, 4 << 20, failing_stream(3))
        .await
        .unwrap_err();
    assert_eq!(error.kind(), StoreErrorKind::Io);
    assert_eq!(
        error.subject(),
        "source-blob",
        "the stream's own error comes back"
    );
    // POST, the PATCH ended early by the broken stream, then DELETE instead of PUT.
    assert_eq!(store.requests_made(), 3);
    assert_eq!(
        store.blob_size("app", &digest).await.unwrap(),
        None,
        "nothing committed"
    );
    assert_eq!(registry.open_uploads("app"), 0, "the session was cancelled");
}

#[tokio::test]
async fn wrong_size_or_content_commits_nothing() {
    let registry = Registry::start();
    let store = registry.store();
    let content = b"0123456789".to_vec();
    let digest = Digest::of(&content);

    let short = store
        .push_blob("app", &digest, 20, stream_of(&content, 3))
        .await
        .unwrap_err();
    assert_eq!(short.kind(), StoreErrorKind::DigestMismatch);
    let long = store
        .push_blob("app", &digest, 5, stream_of(&content, 3))
        .await
        .unwrap_err();
    assert_eq!(long.kind(), StoreErrorKind::DigestMismatch);
    // Right size, other bytes: the registry refuses the digest at the PUT.
    let other = store
        .push_blob("app", &digest, 10, stream_of(b"9876543210", 3))
        .await
        .unwrap_err();
    assert_eq!(other.kind(), StoreErrorKind::DigestMismatch, "{other}");
    assert!(!other.is_retryable());

    assert_eq!(store.blob_size("app", &digest).await.unwrap(), None);
    assert_eq!(
        store
            .blob_size("app", &Digest::of(b"9876543210"))
            .await
            .unwrap(),
        None
    );
    assert_eq!(registry.open_uploads("app"), 0);
}

#[tokio::test]
async fn missing_blob_is_not_found() {
    let registry = Registry::start();
    let store = registry.store();
    let digest = Digest::of(b"absent");
    assert_eq!(store.blob_size("app", &digest).await.unwrap(), None);
    let error = store
        .fetch_blob("app", &digest)
        .await
        .err()
        .expect("an error");
    assert_eq!(error.kind(), StoreErrorKind::NotFound);
    assert!(
        error.subject().contains("app@sha256:"),
        "{}",
        error.subject()
    );
}

#[tokio::test]
async fn mount_across_repositories() {
    let registry = Registry::start();
    let store = registry.store();
    let content = b"shared base layer".to_vec();
    let digest = Digest::of(&content);
    store
        .push_blob(
            "staging/app",
            &digest,
            content.len() as u64,
            stream_of(&content, 5),
        )
        .await
        .unwrap();

    assert!(
        store
            .mount_blob("prod/app", "staging/app", &digest)
            .await
            .unwrap()
    );
    assert_eq!(
        store.blob_size("prod/app", &digest).await.unwrap(),
        Some(content.len() as u64)
    );
    assert_eq!(
        collect(store.fetch_blob("prod/app", &digest).await.unwrap()).await,
        content
    );
}

#[tokio::test]
async fn refused_mount_leaves_no_session() {
    let registry = Registry::start();
    let store = registry.store();
    let absent = Digest::of(b"not in the source repository");
    let seed = b"x".to_vec();
    // The source repository exists, but without this blob: registry:2 opens a session (202).
    store
        .push_blob("staging/app", &Digest::of(&seed), 1, stream_of(&seed, 1))
        .await
        .unwrap();
    let before = store.requests_made();
    assert!(
        !store
            .mount_blob("prod/app", "staging/app", &absent)
            .await
            .unwrap()
    );
    assert_eq!(
        store.requests_made() - before,
        2,
        "the POST and the DELETE of its session"
    );
    assert_eq!(registry.open_uploads("prod/app"), 0);
    assert_eq!(store.blob_size("prod/app", &absent).await.unwrap(), None);
}
