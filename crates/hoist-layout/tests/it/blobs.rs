//! Blobs: streaming round trips, refusal of bad content, mounts, path safety.

use bytes::Bytes;
use futures::StreamExt;
use hoist_oci::Digest;
use hoist_store::{ByteStream, Sink, Source, StoreError, StoreErrorKind};
use hoist_testkit::Layer;

use crate::{all_files, collect, leftovers, stream_of, temp_store};

#[tokio::test]
async fn a_large_streamed_blob_reads_back_identical_in_small_chunks() {
    let (directory, store) = temp_store();
    let layer = Layer::random(7, 12 << 20);
    assert!(
        layer.size() > 10 << 20,
        "the layer must be over 10 MiB, is {}",
        layer.size()
    );
    let stream: ByteStream = Box::pin(
        layer
            .stream()
            .map(|chunk| chunk.map_err(|error| StoreError::io("layer", error))),
    );
    store
        .push_blob("big/blob", &layer.digest(), layer.size(), stream)
        .await
        .unwrap();

    let path = directory
        .path()
        .join("big/blob/blobs/sha256")
        .join(layer.digest().hex());
    assert_eq!(std::fs::metadata(&path).unwrap().len(), layer.size());
    assert_eq!(
        store.blob_size("big/blob", &layer.digest()).await.unwrap(),
        Some(layer.size())
    );

    let mut stream = store.fetch_blob("big/blob", &layer.digest()).await.unwrap();
    let mut content = Vec::new();
    let mut chunks = 0;
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.unwrap();
        assert!(chunk.len() <= 64 * 1024, "chunk of {} bytes", chunk.len());
        content.extend_from_slice(&chunk);
        chunks += 1;
    }
    assert!(chunks >= 160, "{chunks} chunks");
    assert_eq!(Digest::of(&content), layer.digest());
    assert_eq!(content, layer.to_bytes());
    assert!(leftovers(directory.path()).is_empty());
}

#[tokio::test]
async fn corrupted_content_is_refused_and_leaves_nothing() {
    let (directory, store) = temp_store();
    let good = Bytes::from_static(b"hello layout world");
    let digest = Digest::of(&good);
    let size = good.len() as u64;
    let cases: Vec<(&str, ByteStream)> = vec![
        (
            "flipped byte",
            stream_of(vec![
                Ok(Bytes::from_static(b"hello layout")),
                Ok(Bytes::from_static(b" World")),
            ]),
        ),
        ("too short", stream_of(vec![Ok(good.slice(..10))])),
        (
            "too long",
            stream_of(vec![Ok(good.clone()), Ok(Bytes::from_static(b"!"))]),
        ),
    ];
    for (case, stream) in cases {
        let error = store
            .push_blob("repo", &digest, size, stream)
            .await
            .unwrap_err();
        assert_eq!(
            error.kind(),
            StoreErrorKind::DigestMismatch,
            "{case}: {error}"
        );
        assert_eq!(
            store.blob_size("repo", &digest).await.unwrap(),
            None,
            "{case}"
        );
        assert!(
            leftovers(directory.path()).is_empty(),
            "{case}: {:?}",
            leftovers(directory.path())
        );
    }

    // An error from the stream itself (a network failure upstream) is returned as it was.
    let failing = stream_of(vec![
        Ok(good.slice(..5)),
        Err(StoreError::new(
            StoreErrorKind::Network,
            "upstream",
            "connection reset",
        )),
    ]);
    let error = store
        .push_blob("repo", &digest, size, failing)
        .await
        .unwrap_err();
    assert_eq!(error.kind(), StoreErrorKind::Network);
    assert_eq!(error.subject(), "upstream");
    assert!(leftovers(directory.path()).is_empty());
    let blob_files: Vec<_> = all_files(&directory.path().join("repo/blobs"))
        .into_iter()
        .collect();
    assert!(blob_files.is_empty(), "{blob_files:?}");

    // The right content then goes in.
    store
        .push_blob("repo", &digest, size, stream_of(vec![Ok(good.clone())]))
        .await
        .unwrap();
    assert_eq!(
        collect(store.fetch_blob("repo", &digest).await.unwrap()).await,
        good
    );
}

#[tokio::test]
async fn an_existing_blob_is_not_written_again() {
    let (_directory, store) = temp_store();
    let content = Bytes::from_static(b"content");
    let digest = Digest::of(&content);
    store
        .push_blob("repo", &digest, 7, stream_of(vec![Ok(content.clone())]))
        .await
        .unwrap();
    // This stream would fail if read: the push must not read it.
    let poisoned = stream_of(vec![Err(StoreError::new(
        StoreErrorKind::Network,
        "x",
        "read",
    ))]);
    store.push_blob("repo", &digest, 7, poisoned).await.unwrap();
    assert_eq!(
        collect(store.fetch_blob("repo", &digest).await.unwrap()).await,
        content
    );
}

#[tokio::test]
async fn missing_things_are_absent_not_errors() {
    let (_directory, store) = temp_store();
    let digest = Digest::of(b"nothing");
    assert_eq!(store.list_tags("no/such").await.unwrap(), vec![]);
    assert_eq!(store.blob_size("no/such", &digest).await.unwrap(), None);
    let error = store.fetch_blob("no/such", &digest).await.err().unwrap();
    assert_eq!(error.kind(), StoreErrorKind::NotFound);
}

#[tokio::test]
async fn mounts_link_within_the_root() {
    let (directory, store) = temp_store();
    let content = Bytes::from_static(b"shared base layer");
    let digest = Digest::of(&content);
    store
        .push_blob(
            "a",
            &digest,
            content.len() as u64,
            stream_of(vec![Ok(content.clone())]),
        )
        .await
        .unwrap();

    assert!(store.mount_blob("b/c", "a", &digest).await.unwrap());
    assert_eq!(
        collect(store.fetch_blob("b/c", &digest).await.unwrap()).await,
        content
    );
    assert!(
        directory.path().join("b/c/oci-layout").is_file(),
        "the mount created a full layout"
    );
    // Mounting again is fine.
    assert!(store.mount_blob("b/c", "a", &digest).await.unwrap());

    let absent = Digest::of(b"absent");
    assert!(!store.mount_blob("d", "a", &absent).await.unwrap());
    assert!(
        !directory.path().join("d").exists(),
        "a failed mount leaves nothing behind"
    );
}

#[tokio::test]
async fn names_that_leave_the_root_are_refused() {
    let parent = tempfile::tempdir().unwrap();
    let root = parent.path().join("root");
    let store = hoist_layout::LayoutStore::open(&root);
    let content = Bytes::from_static(b"escape");
    let digest = Digest::of(&content);
    for bad in [
        "../escape",
        "a/../../escape",
        "/tmp/escape",
        "a//b",
        "UPPER",
        "",
    ] {
        let error = store
            .push_blob(bad, &digest, 6, stream_of(vec![Ok(content.clone())]))
            .await
            .unwrap_err();
        assert_eq!(error.kind(), StoreErrorKind::Rejected, "{bad}: {error}");
        assert_eq!(
            store.list_tags(bad).await.unwrap_err().kind(),
            StoreErrorKind::Rejected,
            "{bad}"
        );
        assert_eq!(
            store
                .mount_blob("ok", bad, &digest)
                .await
                .unwrap_err()
                .kind(),
            StoreErrorKind::Rejected
        );
    }
    assert!(
        all_files(parent.path()).is_empty(),
        "{:?}",
        all_files(parent.path())
    );
}
