//! Random images pushed to real registries, validated, and cross-checked with skopeo.

use hoist_oci::media_types;
use hoist_testkit::{
    Error, Format, ImageBuilder, Layer, RegistryOptions, RegistryServer, delete_blob,
    fetch_manifest, push, signature_for, skopeo_inspect_raw, validate_copy, validate_tag,
};

use crate::registry;

#[tokio::test]
async fn multi_arch_images_validate_against_themselves() {
    let server = registry();
    let endpoint = server.endpoint();
    let client = server.client().unwrap();
    let shared = Layer::random(3, 10_000);
    for (format, index_type) in [
        (Format::Oci, media_types::OCI_INDEX),
        (Format::Docker, media_types::DOCKER_MANIFEST_LIST),
    ] {
        let image = ImageBuilder::new(21)
            .format(format)
            .shared_layer(&shared)
            .layers(&[2_000, 300_000])
            .build_multi_arch();
        assert_eq!(image.media_type(), index_type);
        let summary = push(&client, &endpoint, "multi/arch", &image, &["latest"])
            .await
            .unwrap();
        assert_eq!(summary.manifests, 3);

        let report = validate_copy(
            &endpoint,
            "multi/arch",
            &endpoint,
            "multi/arch",
            image.digest(),
        )
        .await
        .unwrap();
        assert_eq!(report.manifests.len(), 3);
        // Two configs, the shared layer once, two own layers per platform.
        assert_eq!(report.blobs.len(), 7);
        let expected_bytes: u64 = image.blobs().iter().map(|blob| blob.descriptor.size).sum();
        assert_eq!(report.blob_bytes, expected_bytes);
        validate_tag(&endpoint, "multi/arch", "latest", image.digest())
            .await
            .unwrap();

        let served = fetch_manifest(
            &client,
            &endpoint,
            "multi/arch",
            &image.digest().to_string(),
        )
        .await
        .unwrap();
        assert_eq!(served.bytes, image.raw_manifest);
        assert_eq!(served.media_type, index_type);
    }
}

#[tokio::test]
async fn a_copy_missing_a_blob_fails_naming_it() {
    let source = registry();
    let destination = registry();
    let client = source.client().unwrap();
    let image = ImageBuilder::new(8).layers(&[500, 600]).build_multi_arch();
    push(&client, &source.endpoint(), "src/app", &image, &[])
        .await
        .unwrap();
    push(&client, &destination.endpoint(), "dst/app", &image, &[])
        .await
        .unwrap();
    validate_copy(
        &source.endpoint(),
        "src/app",
        &destination.endpoint(),
        "dst/app",
        image.digest(),
    )
    .await
    .expect("a full copy validates");

    // Registries refuse manifests whose blobs are missing, so break the copy afterwards.
    let victim = image.children[1].layers[1].digest();
    delete_blob(&client, &destination.endpoint(), "dst/app", victim)
        .await
        .unwrap();
    let error = validate_copy(
        &source.endpoint(),
        "src/app",
        &destination.endpoint(),
        "dst/app",
        image.digest(),
    )
    .await
    .unwrap_err();
    assert!(
        matches!(error, Error::MissingBlob { digest, .. } if digest == victim),
        "{error}"
    );
    let message = error.to_string();
    assert!(message.contains(&victim.to_string()), "{message}");
    assert!(
        message.contains(&image.children[1].digest().to_string()),
        "{message}"
    );
}

#[tokio::test]
async fn a_manifest_missing_at_the_destination_is_named() {
    let source = registry();
    let destination = registry();
    let client = source.client().unwrap();
    let image = ImageBuilder::new(9)
        .layer(100)
        .format(Format::Docker)
        .build();
    push(&client, &source.endpoint(), "only/here", &image, &[])
        .await
        .unwrap();
    let error = validate_copy(
        &source.endpoint(),
        "only/here",
        &destination.endpoint(),
        "only/here",
        image.digest(),
    )
    .await
    .unwrap_err();
    assert!(matches!(error, Error::MissingManifest { .. }), "{error}");
    assert!(error.to_string().contains(&destination.host()), "{error}");
}

#[tokio::test]
async fn a_tag_pointing_elsewhere_is_reported() {
    let server = registry();
    let client = server.client().unwrap();
    let first = ImageBuilder::new(1).layer(10).build();
    let second = ImageBuilder::new(2).layer(10).build();
    push(&client, &server.endpoint(), "tags", &first, &["v1"])
        .await
        .unwrap();
    let error = validate_tag(&server.endpoint(), "tags", "v1", second.digest())
        .await
        .unwrap_err();
    assert!(
        matches!(error, Error::TagMismatch { actual, .. } if actual == first.digest()),
        "{error}"
    );
}

#[tokio::test]
async fn signatures_push_under_the_cosign_tag() {
    let server = registry();
    let client = server.client().unwrap();
    let image = ImageBuilder::new(4).layer(100).build();
    let signature = signature_for(&image, 5);
    push(&client, &server.endpoint(), "signed", &image, &["v1"])
        .await
        .unwrap();
    let tag = image.signature_tag();
    push(&client, &server.endpoint(), "signed", &signature, &[&tag])
        .await
        .unwrap();
    validate_tag(&server.endpoint(), "signed", &tag, signature.digest())
        .await
        .unwrap();
    validate_copy(
        &server.endpoint(),
        "signed",
        &server.endpoint(),
        "signed",
        signature.digest(),
    )
    .await
    .unwrap();
}

#[tokio::test]
async fn skopeo_sees_the_same_manifest_bytes() {
    let server = registry();
    let client = server.client().unwrap();
    let image = ImageBuilder::new(6).layer(1000).build_multi_arch();
    push(&client, &server.endpoint(), "skopeo/check", &image, &["v1"])
        .await
        .unwrap();
    let by_tag = skopeo_inspect_raw(&server.endpoint(), "skopeo/check", "v1")
        .await
        .unwrap();
    assert_eq!(by_tag, image.raw_manifest);
    let child = &image.children[0];
    let by_digest = skopeo_inspect_raw(
        &server.endpoint(),
        "skopeo/check",
        &child.digest().to_string(),
    )
    .await
    .unwrap();
    assert_eq!(by_digest, child.raw_manifest);
}

#[tokio::test]
async fn pushes_over_tls_with_basic_auth() {
    let server = RegistryServer::start(
        RegistryOptions::plain()
            .with_tls()
            .with_basic_auth("pusher", "hunter2"),
    )
    .unwrap();
    let endpoint = server.endpoint();
    let client = server.client().unwrap();
    let image = ImageBuilder::new(7)
        .layer(5000)
        .format(Format::Docker)
        .build();

    let anonymous = push(
        &client,
        &endpoint.clone().without_credentials(),
        "private",
        &image,
        &[],
    )
    .await
    .unwrap_err();
    assert!(
        matches!(anonymous, Error::Status { status: 401, .. }),
        "{anonymous}"
    );

    push(&client, &endpoint, "private", &image, &["v1"])
        .await
        .unwrap();
    validate_copy(&endpoint, "private", &endpoint, "private", image.digest())
        .await
        .unwrap();
    let raw = skopeo_inspect_raw(&endpoint, "private", "v1")
        .await
        .unwrap();
    assert_eq!(raw, image.raw_manifest);
}
