//! Tags: added to an existing copy, never moved.

use hoist_copy::CopyErrorKind;
use hoist_testkit::ImageBuilder;

use crate::*;

#[tokio::test(flavor = "multi_thread")]
async fn a_tag_is_added_to_an_existing_copy() {
    let (source, destination) = (registry(), registry());
    let image = ImageBuilder::new(10).layer(4096).build();
    push_source(&source, &image).await;
    copy_and_validate(&source, &destination, &image, &["v1"]).await;

    let report = copy_and_validate(&source, &destination, &image, &["v1", "stable"]).await;
    assert_eq!((report.tags_set, report.tags_skipped), (1, 1), "{report:?}");
    assert_eq!(report.manifests_pushed, 0);
    assert_eq!(report.blobs_uploaded, 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_tag_pointing_elsewhere_is_not_moved() {
    let (source, destination) = (registry(), registry());
    let old = ImageBuilder::new(11).layer(4096).build();
    let new = ImageBuilder::new(12).layer(4096).build();
    push_source(&source, &old).await;
    push_source(&source, &new).await;
    copy_and_validate(&source, &destination, &old, &["v1"]).await;

    let error = copier(&source.host(), &destination.host())
        .copy(&request(new.digest(), &["v2", "v1"]))
        .await
        .expect_err("moving v1 is refused");
    assert_eq!(error.kind(), CopyErrorKind::TagMove, "{error}");
    assert!(
        error.to_string().contains("v1"),
        "the error names the tag: {error}"
    );
    hoist_testkit::validate_tag(
        &destination.endpoint(),
        DESTINATION_REPOSITORY,
        "v1",
        old.digest(),
    )
    .await
    .expect("v1 still points at the old image");
    assert!(
        !manifest_exists(&destination, DESTINATION_REPOSITORY, "v2").await,
        "no tag of the refused request is written"
    );
}
