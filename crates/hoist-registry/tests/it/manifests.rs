//! Manifest push, fetch and head against a real registry:2, for the four manifest types.

use hoist_oci::{Digest, Reference, Tag, media_types};
use hoist_registry::{RegistryOptions, RegistryStore};
use hoist_store::{RawManifest, Sink as _, Source as _, StoreErrorKind};

use crate::servers::Registry;
use crate::stream_of;

fn tag(name: &str) -> Reference {
    Reference::Tag(Tag::parse(name).unwrap())
}

/// Pushes a config and a layer blob; returns their descriptors' digests and sizes.
async fn push_blobs(store: &RegistryStore, repository: &str) -> [(Digest, usize); 2] {
    let config =
        br#"{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}"#
            .to_vec();
    let layer = b"not really a tarball, registries do not look".to_vec();
    let mut out = Vec::new();
    for content in [config, layer] {
        let digest = Digest::of(&content);
        store
            .push_blob(
                repository,
                &digest,
                content.len() as u64,
                stream_of(&content, 7),
            )
            .await
            .unwrap();
        out.push((digest, content.len()));
    }
    [out[0], out[1]]
}

/// An image manifest in the Docker or OCI flavour. Pretty-printed with a trailing newline, so that
/// a client that re-serialised it would change its digest.
fn image_manifest(
    media_type: &str,
    [(config, config_size), (layer, layer_size)]: [(Digest, usize); 2],
) -> RawManifest {
    let (config_type, layer_type) = if media_type == media_types::OCI_MANIFEST {
        (
            "application/vnd.oci.image.config.v1+json",
            "application/vnd.oci.image.layer.v1.tar+gzip",
        )
    } else {
        (
            "application/vnd.docker.container.image.v1+json",
            "application/vnd.docker.image.rootfs.diff.tar.gzip",
        )
    };
    let value = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": media_type,
        "config": {"mediaType": config_type, "digest": config.to_string(), "size": config_size},
        "layers": [{"mediaType": layer_type, "digest": layer.to_string(), "size": layer_size}],
    });
    RawManifest::new(
        media_type,
        format!("{}\n", serde_json::to_string_pretty(&value).unwrap()),
    )
}

fn index(media_type: &str, child: &RawManifest) -> RawManifest {
    let value = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": media_type,
        "manifests": [{
            "mediaType": child.media_type,
            "digest": child.digest.to_string(),
            "size": child.bytes.len(),
            "platform": {"architecture": "amd64", "os": "linux"},
        }],
    });
    RawManifest::new(media_type, serde_json::to_vec_pretty(&value).unwrap())
}

#[tokio::test]
async fn four_manifest_types_round_trip_with_their_content_type() {
    let registry = Registry::start();
    let store = registry.store();
    let blobs = push_blobs(&store, "app").await;
    let oci = image_manifest(media_types::OCI_MANIFEST, blobs);
    let docker = image_manifest(media_types::DOCKER_MANIFEST, blobs);
    // Children before indexes, each index pushed by digest and by tag.
    let cases = [
        ("oci", oci.clone()),
        ("docker", docker.clone()),
        ("oci-index", index(media_types::OCI_INDEX, &oci)),
        (
            "docker-list",
            index(media_types::DOCKER_MANIFEST_LIST, &docker),
        ),
    ];
    for (name, manifest) in &cases {
        store
            .push_manifest("app", &Reference::Digest(manifest.digest), manifest)
            .await
            .unwrap();
        store
            .push_manifest("app", &tag(name), manifest)
            .await
            .unwrap();
    }
    for (name, manifest) in &cases {
        for reference in [tag(name), Reference::Digest(manifest.digest)] {
            let fetched = store
                .fetch_manifest("app", &reference)
                .await
                .unwrap()
                .expect("present");
            assert_eq!(&fetched, manifest, "{name} by {reference}");
            assert_eq!(fetched.media_type, manifest.media_type, "{name}");

            let before = store.requests_made();
            let head = store
                .head_manifest("app", &reference)
                .await
                .unwrap()
                .expect("present");
            assert_eq!(
                store.requests_made() - before,
                1,
                "registry:2 answers HEAD with the digest"
            );
            assert_eq!(head.digest, manifest.digest);
            assert_eq!(head.media_type, manifest.media_type);
            assert_eq!(head.size, manifest.bytes.len() as u64);
        }
    }
}

#[tokio::test]
async fn missing_manifests_are_none() {
    let registry = Registry::start();
    let store = registry.store();
    let blobs = push_blobs(&store, "app").await;
    let manifest = image_manifest(media_types::OCI_MANIFEST, blobs);
    store
        .push_manifest("app", &tag("v1"), &manifest)
        .await
        .unwrap();

    assert_eq!(store.fetch_manifest("app", &tag("v2")).await.unwrap(), None);
    assert_eq!(store.head_manifest("app", &tag("v2")).await.unwrap(), None);
    assert_eq!(
        store
            .fetch_manifest("nothing/here", &tag("v1"))
            .await
            .unwrap(),
        None
    );
    let absent = Reference::Digest(Digest::of(b"no such manifest"));
    assert_eq!(store.head_manifest("app", &absent).await.unwrap(), None);
}

#[tokio::test]
async fn manifest_needs_its_blobs_and_its_digest() {
    let registry = Registry::start();
    let store = registry.store();
    let missing = [(Digest::of(b"config"), 6), (Digest::of(b"layer"), 5)];
    let manifest = image_manifest(media_types::OCI_MANIFEST, missing);
    let error = store
        .push_manifest("app", &tag("v1"), &manifest)
        .await
        .unwrap_err();
    assert_eq!(error.kind(), StoreErrorKind::Rejected, "{error}");
    assert!(
        error.to_string().contains("MANIFEST_BLOB_UNKNOWN"),
        "{error}"
    );

    let before = store.requests_made();
    let wrong = Reference::Digest(Digest::of(b"other bytes"));
    let error = store
        .push_manifest("app", &wrong, &manifest)
        .await
        .unwrap_err();
    assert_eq!(error.kind(), StoreErrorKind::DigestMismatch);
    assert_eq!(store.requests_made(), before, "refused before sending");
}

#[tokio::test]
async fn invalid_repository_names_are_refused_locally() {
    let registry = Registry::start();
    let store = registry.store();
    let error = store.list_tags("../etc").await.unwrap_err();
    assert_eq!(error.kind(), StoreErrorKind::Rejected);
    assert_eq!(store.requests_made(), 0);
}

#[tokio::test]
async fn ambiguous_manifests_are_refused_both_ways() {
    use crate::servers::{Answer, Fake};
    // Served as an image manifest, but its own mediaType says index (CVE-2021-41190).
    let document = format!(
        r#"{{"schemaVersion":2,"mediaType":"{}","manifests":[]}}"#,
        media_types::OCI_INDEX
    );
    let digest = Digest::of(document.as_bytes());
    let fake = {
        let document = document.clone();
        Fake::start("127.0.0.1", move |_, _| {
            Answer::new(200)
                .header("Content-Type", media_types::OCI_MANIFEST)
                .header(
                    "Docker-Content-Digest",
                    &Digest::of(document.as_bytes()).to_string(),
                )
                .body(document.clone())
        })
        .await
    };
    let store = RegistryStore::new(
        &fake.host,
        RegistryOptions {
            insecure: true,
            ..RegistryOptions::default()
        },
    )
    .unwrap();
    let error = store
        .fetch_manifest("app", &Reference::Digest(digest))
        .await
        .unwrap_err();
    assert_eq!(error.kind(), StoreErrorKind::Protocol);
    assert!(error.to_string().contains("CVE-2021-41190"), "{error}");

    // Nor is one pushed: a document with both layers and manifests.
    let registry = Registry::start();
    let both = format!(
        r#"{{"schemaVersion":2,"mediaType":"{}","config":{{"mediaType":"x","digest":"{digest}","size":1}},"layers":[],"manifests":[]}}"#,
        media_types::OCI_MANIFEST
    );
    let manifest = RawManifest::new(media_types::OCI_MANIFEST, both.into_bytes());
    let store = registry.store();
    let error = store
        .push_manifest("app", &Reference::Digest(manifest.digest), &manifest)
        .await
        .unwrap_err();
    assert_eq!(error.kind(), StoreErrorKind::Rejected);
    assert_eq!(store.requests_made(), 0, "refused before sending");
}
