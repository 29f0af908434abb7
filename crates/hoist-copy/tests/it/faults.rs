//! Copies that meet corrupt content or a dying registry.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use hoist_copy::{CopyErrorKind, ProgressEvent};
use hoist_testkit::{FaultProxy, Faults, ImageBuilder};

use crate::*;

#[tokio::test(flavor = "multi_thread")]
async fn a_corrupted_blob_fails_the_copy_without_retry_and_nothing_is_tagged() {
    let (source, destination) = (registry(), registry());
    let image = ImageBuilder::new(20).layers(&[4096, 200_000]).build();
    push_source(&source, &image).await;
    let corrupted = image.layers[1].digest();
    let proxy = FaultProxy::start(&source.host(), Faults::none().corrupt_blob(corrupted))
        .await
        .unwrap();

    let error = copier(&proxy.host(), &destination.host())
        .copy(&request(image.digest(), &["v1"]))
        .await
        .expect_err("corrupt content fails the copy");
    assert_eq!(error.kind(), CopyErrorKind::DigestMismatch, "{error}");
    assert!(
        error.to_string().contains(&corrupted.to_string()),
        "the error names the blob: {error}"
    );

    let fetches = proxy
        .requests()
        .iter()
        .filter(|request| request.method == "GET" && request.path.contains(&corrupted.hex()))
        .count();
    assert_eq!(fetches, 1, "a digest mismatch is not retried");
    assert!(
        !blob_exists(&destination, DESTINATION_REPOSITORY, corrupted).await,
        "the bad blob is absent"
    );
    assert!(
        !manifest_exists(&destination, DESTINATION_REPOSITORY, "v1").await,
        "nothing is tagged"
    );
    assert!(
        !manifest_exists(
            &destination,
            DESTINATION_REPOSITORY,
            &image.digest().to_string()
        )
        .await,
        "the manifest is not pushed"
    );

    // Once the source serves good bytes, the same copy completes.
    proxy.set_faults(Faults::none());
    copier(&proxy.host(), &destination.host())
        .copy(&request(image.digest(), &["v1"]))
        .await
        .expect("the re-run");
    validate(
        &source.endpoint(),
        &destination.endpoint(),
        image.digest(),
        &["v1"],
    )
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_registry_killed_mid_copy_converges_on_rerun() {
    let (source, mut destination) = (registry(), registry());
    let image = ImageBuilder::new(21)
        .layers(&[8 << 20, 8 << 20, 8 << 20])
        .build_multi_arch();
    push_source(&source, &image).await;

    // Kill the destination once a first megabyte went up.
    let copied = Arc::new(AtomicU64::new(0));
    let started = Arc::new(tokio::sync::Notify::new());
    let (counter, signal) = (Arc::clone(&copied), Arc::clone(&started));
    let progress: hoist_copy::Progress = Arc::new(move |event: &ProgressEvent| {
        if let ProgressEvent::BytesCopied { bytes, .. } = event {
            let before = counter.fetch_add(*bytes, Ordering::SeqCst);
            if before < (1 << 20) && before + bytes >= (1 << 20) {
                signal.notify_one();
            }
        }
    });
    let copier = copier(&source.host(), &destination.host()).with_progress(progress);
    let digest = image.digest();
    let copy = tokio::spawn(async move { copier.copy(&request(digest, &["v1"])).await });
    started.notified().await;
    destination.kill();
    let error = copy
        .await
        .unwrap()
        .expect_err("the copy fails with its destination gone");
    assert!(matches!(error.kind(), CopyErrorKind::Store(_)), "{error}");

    destination.restart().expect("restart the destination");
    assert!(
        !manifest_exists(&destination, DESTINATION_REPOSITORY, "v1").await,
        "nothing tagged after the failure"
    );
    let report = crate::copier(&source.host(), &destination.host())
        .copy(&request(digest, &["v1"]))
        .await
        .expect("the re-run completes");
    validate(&source.endpoint(), &destination.endpoint(), digest, &["v1"]).await;
    assert_eq!(report.tags_set, 1);
    assert!(report.blobs_uploaded > 0, "{report:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_blob_cut_mid_stream_is_copied_again_up_to_three_times() {
    let (source, destination) = (registry(), registry());
    let image = ImageBuilder::new(22).layer(300_000).build();
    push_source(&source, &image).await;
    let layer = image.layers[0].digest();
    let layer_reads = |proxy: &FaultProxy| {
        proxy
            .requests()
            .iter()
            .filter(|request| request.method == "GET" && request.path.contains(&layer.hex()))
            .count()
    };

    // Two cut responses: the third attempt gets through.
    let proxy = FaultProxy::start(&source.host(), Faults::none().kill_first_after(2, 50_000))
        .await
        .unwrap();
    let report = copier(&proxy.host(), &destination.host())
        .copy(&request(image.digest(), &["v1"]))
        .await
        .expect("the third attempt succeeds");
    validate(
        &source.endpoint(),
        &destination.endpoint(),
        image.digest(),
        &["v1"],
    )
    .await;
    assert_eq!(report.blobs_uploaded, 2);
    assert_eq!(layer_reads(&proxy), 3);

    // Every response cut: the copy gives up after three attempts, untagged.
    let other = ImageBuilder::new(23).layer(300_000).build();
    push_source(&source, &other).await;
    let proxy = FaultProxy::start(&source.host(), Faults::none().kill_after(50_000))
        .await
        .unwrap();
    let error = copier(&proxy.host(), &destination.host())
        .copy(&request(other.digest(), &["v2"]))
        .await
        .expect_err("a blob that never arrives whole fails the copy");
    assert!(error.is_retryable(), "{error}");
    let other_layer = other.layers[0].digest();
    let reads = proxy
        .requests()
        .iter()
        .filter(|request| request.method == "GET" && request.path.contains(&other_layer.hex()))
        .count();
    assert_eq!(reads, 3, "three attempts: {:#?}", proxy.requests());
    assert!(!manifest_exists(&destination, DESTINATION_REPOSITORY, "v2").await);
}
