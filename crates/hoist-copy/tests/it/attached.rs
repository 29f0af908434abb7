//! Attached artifacts: cosign signatures copied along with their image.

use hoist_oci::Tag;
use hoist_testkit::{ImageBuilder, signature_for};

use crate::*;

#[tokio::test(flavor = "multi_thread")]
async fn a_cosign_signature_is_copied_along() {
    let (source, destination) = (registry(), registry());
    let image = ImageBuilder::new(30).layer(4096).build_multi_arch();
    let signature = signature_for(&image, 31);
    let signature_tag = image.signature_tag();
    push_source(&source, &image).await;
    push_tagged(&source, SOURCE_REPOSITORY, &signature, &[&signature_tag]).await;
    // A signature of another digest must not come along.
    let other = ImageBuilder::new(32).layer(100).build();
    push_tagged(
        &source,
        SOURCE_REPOSITORY,
        &signature_for(&other, 33),
        &[&other.signature_tag()],
    )
    .await;

    let report = copy_and_validate(&source, &destination, &image, &["v1"]).await;
    assert_eq!(
        report.attached,
        [hoist_copy::AttachedArtifact {
            tag: Tag::parse(&signature_tag).unwrap(),
            digest: signature.digest()
        }]
    );
    validate(
        &source.endpoint(),
        &destination.endpoint(),
        signature.digest(),
        &[&signature_tag],
    )
    .await;
    assert!(!manifest_exists(&destination, DESTINATION_REPOSITORY, &other.signature_tag()).await);
}

#[tokio::test(flavor = "multi_thread")]
async fn attached_artifacts_stay_behind_when_disabled() {
    let (source, destination) = (registry(), registry());
    let image = ImageBuilder::new(34).layer(4096).build();
    let signature = signature_for(&image, 35);
    push_source(&source, &image).await;
    push_tagged(
        &source,
        SOURCE_REPOSITORY,
        &signature,
        &[&image.signature_tag()],
    )
    .await;

    let options = hoist_copy::CopyOptions {
        attached: false,
        ..options()
    };
    let report =
        hoist_copy::Copier::new(store(&source.host()), store(&destination.host()), options)
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
    assert!(report.attached.is_empty());
    assert!(!manifest_exists(&destination, DESTINATION_REPOSITORY, &image.signature_tag()).await);
}
