//! Copies that succeed: formats, re-runs, mounts, merged uploads.

use hoist_copy::{BlobOutcome, Copier, CopyRequest, ProgressEvent};
use hoist_testkit::{Format, Image, ImageBuilder, Layer, RegistryServer};

use crate::*;

#[tokio::test(flavor = "multi_thread")]
async fn copies_a_single_arch_oci_image_with_progress() {
    let (source, destination) = (registry(), registry());
    let image = ImageBuilder::new(1).layers(&[4096, 300_000]).build();
    push_source(&source, &image).await;

    let recorder = Recorder::default();
    let copier = copier(&source.host(), &destination.host()).with_progress(recorder.hook());
    let report = copier
        .copy(&request(image.digest(), &["v1"]))
        .await
        .expect("the copy succeeds");
    validate(
        &source.endpoint(),
        &destination.endpoint(),
        image.digest(),
        &["v1"],
    )
    .await;

    assert_eq!(
        report.blobs_uploaded, 3,
        "config and two layers: {report:?}"
    );
    assert_eq!(report.manifests_pushed, 1);
    assert_eq!(report.tags_set, 1);
    let blob_bytes: u64 = image.blobs().iter().map(|blob| blob.descriptor.size).sum();
    assert_eq!(report.bytes_uploaded, blob_bytes);

    let events = recorder.events();
    let copied: u64 = events
        .iter()
        .map(|event| match event {
            ProgressEvent::BytesCopied { bytes, .. } => *bytes,
            _ => 0,
        })
        .sum();
    assert_eq!(copied, blob_bytes, "every uploaded byte is reported once");
    let uploaded = events
        .iter()
        .filter(|event| {
            matches!(
                event,
                ProgressEvent::BlobDone {
                    outcome: BlobOutcome::Uploaded,
                    ..
                }
            )
        })
        .count();
    assert_eq!(uploaded, 3);
    assert!(
        matches!(events.last(), Some(ProgressEvent::TagSet { digest, .. }) if *digest == image.digest())
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn copies_a_multi_arch_oci_index_with_its_children() {
    let (source, destination) = (registry(), registry());
    let image = ImageBuilder::new(2)
        .layers(&[2048, 5000])
        .build_multi_arch();
    push_source(&source, &image).await;

    let report = copy_and_validate(&source, &destination, &image, &["v2"]).await;
    assert_eq!(report.manifests_pushed, 3, "two children and the index");
    assert_eq!(report.blobs_uploaded, image.blobs().len());
}

#[tokio::test(flavor = "multi_thread")]
async fn copies_a_docker_manifest_list() {
    let (source, destination) = (registry(), registry());
    let image = ImageBuilder::new(3)
        .format(Format::Docker)
        .layers(&[1000, 3000])
        .build_multi_arch();
    push_source(&source, &image).await;

    let report = copy_and_validate(&source, &destination, &image, &["v3"]).await;
    assert_eq!(report.manifests_pushed, 3);
    let copied = hoist_testkit::fetch_manifest(
        &destination.client().unwrap(),
        &destination.endpoint(),
        DESTINATION_REPOSITORY,
        "v3",
    )
    .await
    .unwrap();
    assert_eq!(
        copied.media_type,
        hoist_oci::media_types::DOCKER_MANIFEST_LIST
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_rerun_of_a_finished_copy_only_reads() {
    let (source, destination) = (registry(), registry());
    let base = Layer::random(40, 2048);
    let image = ImageBuilder::new(4)
        .shared_layer(&base)
        .layer(4096)
        .build_multi_arch();
    push_source(&source, &image).await;
    copy_and_validate(&source, &destination, &image, &["v4"]).await;

    let before = destination.access_log().len();
    let report = copier(&source.host(), &destination.host())
        .copy(&request(image.digest(), &["v4"]))
        .await
        .expect("the re-run succeeds");
    let rerun: Vec<_> = destination.access_log().into_iter().skip(before).collect();
    assert!(!rerun.is_empty(), "the re-run checked the destination");
    for entry in &rerun {
        assert!(
            entry.method == "HEAD" || entry.method == "GET",
            "the re-run wrote: {entry:?}"
        );
    }
    assert_eq!(report.manifests_pushed, 0);
    assert_eq!(
        report.manifests_skipped, 1,
        "the index is there, so its tree is skipped"
    );
    assert_eq!(
        report.blobs_uploaded + report.blobs_mounted + report.blobs_skipped,
        0
    );
    assert_eq!((report.tags_set, report.tags_skipped), (0, 1));
    validate(
        &source.endpoint(),
        &destination.endpoint(),
        image.digest(),
        &["v4"],
    )
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn within_one_registry_blobs_are_mounted() {
    let server = registry();
    let image = ImageBuilder::new(5).layers(&[4096, 8192]).build();
    push_source(&server, &image).await;

    let report = copier(&server.host(), &server.host())
        .copy(&request(image.digest(), &["v5"]))
        .await
        .expect("the copy succeeds");
    let blob_reads = server
        .access_log()
        .iter()
        .filter(|entry| entry.method == "GET" && entry.path.contains("/blobs/"))
        .count();
    assert_eq!(blob_reads, 0, "mounting reads no blob");
    assert_eq!(report.blobs_mounted, 3, "{report:?}");
    assert_eq!(report.blobs_uploaded, 0);
    validate(
        &server.endpoint(),
        &server.endpoint(),
        image.digest(),
        &["v5"],
    )
    .await;
}

/// Requests `server` served with `method` whose path holds `part` and names `blob`.
fn requests_naming(server: &RegistryServer, method: &str, part: &str, blob: Digest) -> usize {
    let hex = blob.hex();
    server
        .access_log()
        .iter()
        .filter(|entry| {
            entry.method == method && entry.path.contains(part) && entry.path.contains(&hex)
        })
        .count()
}

/// A source and a destination registry, and two images in the source sharing a layer of `size`
/// bytes (each with a small layer of its own).
async fn sharing_a_layer(
    layer_seed: u64,
    size: u64,
    image_seeds: [u64; 2],
) -> (RegistryServer, RegistryServer, Layer, [Image; 2]) {
    let (source, destination) = (registry(), registry());
    let shared = Layer::random(layer_seed, size);
    let images = image_seeds.map(|seed| {
        ImageBuilder::new(seed)
            .shared_layer(&shared)
            .layer(1024)
            .build()
    });
    for image in &images {
        push_source(&source, image).await;
    }
    (source, destination, shared, images)
}

#[tokio::test(flavor = "multi_thread")]
async fn concurrent_requests_sharing_a_layer_upload_it_once() {
    // Large enough that both requests reach it while the first upload still runs.
    let (source, destination, shared, [first, second]) = sharing_a_layer(60, 6 << 20, [6, 7]).await;
    let copier: Copier = copier(&source.host(), &destination.host());
    let (first_request, second_request) = (
        request(first.digest(), &["first"]),
        request(second.digest(), &["second"]),
    );
    let (one, two) = tokio::join!(copier.copy(&first_request), copier.copy(&second_request));
    let (one, two) = (one.expect("first copy"), two.expect("second copy"));
    validate(
        &source.endpoint(),
        &destination.endpoint(),
        first.digest(),
        &["first"],
    )
    .await;
    validate(
        &source.endpoint(),
        &destination.endpoint(),
        second.digest(),
        &["second"],
    )
    .await;

    let layer = shared.digest();
    let uploads = requests_naming(&destination, "PUT", "/blobs/uploads/", layer);
    assert_eq!(uploads, 1, "the shared layer is uploaded once");
    assert_eq!(
        one.blobs_uploaded + two.blobs_uploaded,
        5,
        "two configs, two own layers, one shared: {one:?} {two:?}"
    );
    let head_checks = requests_naming(&destination, "HEAD", "/blobs/sha256", layer);
    assert_eq!(
        head_checks, 1,
        "the second request waited on the first copy instead of checking again"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_layer_shared_by_two_repositories_is_uploaded_once_and_mounted() {
    // Large enough that the second copy reaches it while the first upload still runs.
    let (source, destination, shared, [first, second]) =
        sharing_a_layer(61, 16 << 20, [8, 9]).await;
    let copier: Copier = copier(&source.host(), &destination.host());
    let into = |image: &Image, repository: &str, tag: &str| CopyRequest {
        destination_repository: repository.to_owned(),
        ..request(image.digest(), &[tag])
    };
    let (first_request, second_request) = (
        into(&first, "prod/one", "first"),
        into(&second, "prod/two", "second"),
    );
    let (one, two) = tokio::join!(copier.copy(&first_request), copier.copy(&second_request));
    let (one, two) = (one.expect("first copy"), two.expect("second copy"));
    for (image, repository, tag) in [
        (&first, "prod/one", "first"),
        (&second, "prod/two", "second"),
    ] {
        let report = hoist_testkit::validate_copy(
            &source.endpoint(),
            SOURCE_REPOSITORY,
            &destination.endpoint(),
            repository,
            image.digest(),
        )
        .await
        .expect("the copy is complete and byte-exact");
        assert_eq!(report.blobs.len(), 3, "{report:?}");
        hoist_testkit::validate_tag(&destination.endpoint(), repository, tag, image.digest())
            .await
            .expect("the tag points at the copy");
    }

    let layer = shared.digest();
    let uploads = requests_naming(&destination, "PUT", "/blobs/uploads/", layer);
    let mounts = requests_naming(&destination, "POST", "mount=", layer);
    assert_eq!(uploads, 1, "the shared layer's bytes travel once");
    assert_eq!(mounts, 1, "the other repository mounts it");
    assert_eq!(one.blobs_mounted + two.blobs_mounted, 1, "{one:?} {two:?}");
    assert_eq!(
        one.blobs_uploaded + two.blobs_uploaded,
        5,
        "two configs, two own layers, one shared: {one:?} {two:?}"
    );
}
