//! Manifests and tags: indexes with children, media types, referential checks, concurrency.

use std::sync::Arc;

use hoist_layout::LayoutStore;
use hoist_oci::{Reference, Tag, media_types};
use hoist_store::{RawManifest, Sink, Source, StoreErrorKind};
use hoist_testkit::{Format, ImageBuilder};

use crate::{push_image, raw, tag, temp_store};

fn index_json(directory: &std::path::Path, repository: &str) -> serde_json::Value {
    let bytes = std::fs::read(directory.join(repository).join("index.json")).unwrap();
    serde_json::from_slice(&bytes).unwrap()
}

#[tokio::test]
async fn an_index_with_children_reads_back_identical() {
    let (directory, store) = temp_store();
    let image = ImageBuilder::new(3)
        .layers(&[1000, 2000])
        .build_multi_arch();
    push_image(&store, "team/app", &image, "v1").await;

    assert_eq!(
        store.list_tags("team/app").await.unwrap(),
        vec![Tag::parse("v1").unwrap()]
    );
    let fetched = store
        .fetch_manifest("team/app", &tag("v1"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(fetched, raw(&image));
    assert_eq!(fetched.media_type, media_types::OCI_INDEX);
    let head = store
        .head_manifest("team/app", &tag("v1"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (head.digest, head.size),
        (image.digest(), image.raw_manifest.len() as u64)
    );

    for child in &image.children {
        let reference = Reference::Digest(child.digest());
        let fetched = store
            .fetch_manifest("team/app", &reference)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(fetched, raw(child));
        let head = store
            .head_manifest("team/app", &reference)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(head.media_type, media_types::OCI_MANIFEST);
    }
    // A layer is a blob, not a manifest.
    let layer = image.children[0].layers[0].digest();
    assert_eq!(
        store
            .head_manifest("team/app", &Reference::Digest(layer))
            .await
            .unwrap(),
        None
    );
    assert_eq!(
        store.fetch_manifest("team/app", &tag("v2")).await.unwrap(),
        None
    );

    // The layout on disk follows the spec.
    let layout = directory.path().join("team/app");
    assert_eq!(
        std::fs::read(layout.join("oci-layout")).unwrap(),
        br#"{"imageLayoutVersion":"1.0.0"}"#
    );
    let index = index_json(directory.path(), "team/app");
    assert_eq!(index["schemaVersion"], 2);
    let entries = index["manifests"].as_array().unwrap();
    assert_eq!(
        entries.len(),
        3,
        "two untagged children and the tagged index: {index}"
    );
    let tagged: Vec<_> = entries
        .iter()
        .filter(|entry| entry["annotations"]["org.opencontainers.image.ref.name"] == "v1")
        .collect();
    assert_eq!(tagged.len(), 1);
    assert_eq!(tagged[0]["digest"], image.digest().to_string());
    assert_eq!(tagged[0]["size"], image.raw_manifest.len());
}

#[tokio::test]
async fn docker_media_types_are_kept() {
    let (_directory, store) = temp_store();
    let image = ImageBuilder::new(4)
        .format(Format::Docker)
        .layer(500)
        .build();
    push_image(&store, "app", &image, "latest").await;
    let fetched = store
        .fetch_manifest("app", &tag("latest"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(fetched.media_type, media_types::DOCKER_MANIFEST);
    let by_digest = Reference::Digest(image.digest());
    let head = store
        .head_manifest("app", &by_digest)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(head.media_type, media_types::DOCKER_MANIFEST);
}

#[tokio::test]
async fn manifests_with_missing_content_are_rejected() {
    let (directory, store) = temp_store();
    let image = ImageBuilder::new(5).layer(100).build_multi_arch();
    // The index before its children.
    let error = store
        .push_manifest("app", &tag("v1"), &raw(&image))
        .await
        .unwrap_err();
    assert_eq!(error.kind(), StoreErrorKind::Rejected, "{error}");
    assert!(
        error
            .to_string()
            .contains(&image.children[0].digest().to_string()),
        "{error}"
    );
    // A child before its layers.
    let child = &image.children[0];
    let error = store
        .push_manifest("app", &Reference::Digest(child.digest()), &raw(child))
        .await
        .unwrap_err();
    assert_eq!(error.kind(), StoreErrorKind::Rejected);
    assert_eq!(store.list_tags("app").await.unwrap(), vec![]);
    assert!(!directory.path().join("app/index.json").exists());
}

#[tokio::test]
async fn mismatched_digests_are_refused() {
    let (_directory, store) = temp_store();
    let image = ImageBuilder::new(6).layer(100).build();
    push_image(&store, "app", &image, "v1").await;
    let other = ImageBuilder::new(7).layer(100).build();
    let error = store
        .push_manifest("app", &Reference::Digest(other.digest()), &raw(&image))
        .await
        .unwrap_err();
    assert_eq!(error.kind(), StoreErrorKind::DigestMismatch);
    let lying = RawManifest {
        digest: other.digest(),
        ..raw(&image)
    };
    let error = store
        .push_manifest("app", &tag("v2"), &lying)
        .await
        .unwrap_err();
    assert_eq!(error.kind(), StoreErrorKind::DigestMismatch);
    assert_eq!(
        store.list_tags("app").await.unwrap(),
        vec![Tag::parse("v1").unwrap()]
    );
}

#[tokio::test]
async fn corrupted_manifest_files_are_detected() {
    let (directory, store) = temp_store();
    let image = ImageBuilder::new(8).layer(100).build();
    push_image(&store, "app", &image, "v1").await;
    let path = directory
        .path()
        .join("app/blobs/sha256")
        .join(image.digest().hex());
    let mut bytes = std::fs::read(&path).unwrap();
    bytes[10] ^= 1;
    std::fs::write(&path, bytes).unwrap();
    for reference in [tag("v1"), Reference::Digest(image.digest())] {
        let error = store.fetch_manifest("app", &reference).await.unwrap_err();
        assert_eq!(error.kind(), StoreErrorKind::DigestMismatch, "{reference}");
    }
}

#[tokio::test]
async fn retagging_moves_the_tag() {
    let (directory, store) = temp_store();
    let first = ImageBuilder::new(9).layer(100).build();
    let second = ImageBuilder::new(10).layer(100).build();
    push_image(&store, "app", &first, "v1").await;
    push_image(&store, "app", &second, "v1").await;
    let head = store
        .head_manifest("app", &tag("v1"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(head.digest, second.digest());
    assert_eq!(
        index_json(directory.path(), "app")["manifests"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
    // The old manifest stays reachable by digest.
    assert!(
        store
            .fetch_manifest("app", &Reference::Digest(first.digest()))
            .await
            .unwrap()
            .is_some()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_tag_pushes_keep_every_tag() {
    let (_directory, store) = temp_store();
    let store = Arc::new(store);
    let image = ImageBuilder::new(11).layer(100).build();
    push_image(&store, "app", &image, "base").await;
    let manifest = raw(&image);
    let mut tasks = Vec::new();
    for number in 0..40 {
        let store = Arc::clone(&store);
        let manifest = manifest.clone();
        tasks.push(tokio::spawn(async move {
            store
                .push_manifest("app", &tag(&format!("t{number}")), &manifest)
                .await
        }));
    }
    for task in tasks {
        task.await.unwrap().unwrap();
    }
    let tags = store.list_tags("app").await.unwrap();
    assert_eq!(tags.len(), 41, "{tags:?}");
    let mut expected: Vec<Tag> = (0..40)
        .map(|n| Tag::parse(&format!("t{n}")).unwrap())
        .collect();
    expected.push(Tag::parse("base").unwrap());
    expected.sort();
    assert_eq!(tags, expected);
}

#[tokio::test]
async fn two_stores_on_one_root_see_the_same_layout() {
    let (directory, store) = temp_store();
    let image = ImageBuilder::new(12).layer(100).build();
    push_image(&store, "app", &image, "v1").await;
    let reopened = LayoutStore::open(directory.path());
    assert_eq!(
        reopened
            .fetch_manifest("app", &tag("v1"))
            .await
            .unwrap()
            .unwrap(),
        raw(&image)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_spellings_of_one_layout_share_one_index_lock() {
    let directory = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(directory.path().join("out")).unwrap();
    let plain = Arc::new(LayoutStore::open(&directory.path().join("out/prod")));
    let dotted = Arc::new(LayoutStore::open(
        &directory.path().join("./out/../out/prod"),
    ));
    assert_eq!(plain.canonical_root(), dotted.canonical_root());
    let image = ImageBuilder::new(13).layer(100).build();
    push_image(&plain, "app", &image, "base").await;
    let manifest = raw(&image);
    let mut tasks = Vec::new();
    for number in 0..40 {
        // Alternate spellings: without one lock per directory, index.json updates are lost.
        let store = Arc::clone(if number % 2 == 0 { &plain } else { &dotted });
        let manifest = manifest.clone();
        tasks.push(tokio::spawn(async move {
            store
                .push_manifest("app", &tag(&format!("t{number}")), &manifest)
                .await
        }));
    }
    for task in tasks {
        task.await.unwrap().unwrap();
    }
    assert_eq!(plain.list_tags("app").await.unwrap().len(), 41);
}

#[tokio::test]
async fn repositories_that_would_land_inside_another_layout_are_refused() {
    let (directory, store) = temp_store();
    let image = ImageBuilder::new(14).layer(100).build();
    push_image(&store, "foo", &image, "v1").await;
    for reserved in [
        "foo/blobs",
        "foo/index.json",
        "foo/oci-layout",
        "foo/blobs/sha256",
    ] {
        let error = store
            .push_manifest(reserved, &tag("v1"), &raw(&image))
            .await
            .unwrap_err();
        assert_eq!(error.kind(), StoreErrorKind::Rejected, "{reserved}");
        assert!(error.to_string().contains("keeps for itself"), "{error}");
        let error = store.list_tags(reserved).await.unwrap_err();
        assert_eq!(error.kind(), StoreErrorKind::Rejected, "{reserved}");
    }
    // foo's layout is intact: nothing was written inside it.
    let blobs = directory.path().join("foo/blobs");
    let entries: Vec<_> = std::fs::read_dir(&blobs)
        .unwrap()
        .map(|entry| entry.unwrap().file_name())
        .collect();
    assert_eq!(entries, ["sha256"], "{entries:?}");
    assert_eq!(store.list_tags("foo").await.unwrap().len(), 1);
}

#[tokio::test]
async fn an_index_entry_whose_type_contradicts_the_manifest_is_refused() {
    let (directory, store) = temp_store();
    let image = ImageBuilder::new(15).layer(100).build();
    push_image(&store, "app", &image, "v1").await;
    // Rewrite index.json so that the image manifest is listed as an index (CVE-2021-41190).
    let path = directory.path().join("app/index.json");
    let text = std::fs::read_to_string(&path).unwrap();
    let listed = text.replace(
        &format!("\"{}\"", image.media_type()),
        &format!("\"{}\"", media_types::OCI_INDEX),
    );
    assert_ne!(listed, text);
    std::fs::write(&path, listed).unwrap();
    let error = store.fetch_manifest("app", &tag("v1")).await.unwrap_err();
    assert_eq!(error.kind(), StoreErrorKind::Protocol);
    assert!(error.to_string().contains("CVE-2021-41190"), "{error}");
}
