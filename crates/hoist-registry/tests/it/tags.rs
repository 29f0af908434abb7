//! Tag listing against a real registry:2, and paging plus GCR digest maps against a fake.

use std::collections::BTreeMap;

use hoist_oci::{Digest, Reference, Tag};
use hoist_registry::{RegistryOptions, RegistryStore};
use hoist_store::{RawManifest, Sink as _, Source as _};

use crate::servers::{Answer, Fake, Registry, quick_retries};

fn tags(names: &[&str]) -> Vec<Tag> {
    names.iter().map(|name| Tag::parse(name).unwrap()).collect()
}

#[tokio::test]
async fn tags_are_sorted_and_unique_and_missing_repositories_have_none() {
    let registry = Registry::start();
    let store = registry.store();
    // An index with no children needs no blobs.
    let manifest = RawManifest::new(
        hoist_oci::media_types::OCI_INDEX,
        r#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[]}"#,
    );
    for name in ["v1.10", "b", "v1.9", "a", "b"] {
        store
            .push_manifest("app", &Reference::Tag(Tag::parse(name).unwrap()), &manifest)
            .await
            .unwrap();
    }
    assert_eq!(
        store.list_tags("app").await.unwrap(),
        tags(&["a", "b", "v1.10", "v1.9"])
    );
    let listing = store.list_tags_with_digests("app").await.unwrap();
    assert_eq!(listing.digests, None, "registry:2 sends no digest map");
    assert_eq!(
        store.list_tags("never/pushed").await.unwrap(),
        Vec::<Tag>::new()
    );
}

#[tokio::test]
async fn follows_link_pages_and_reads_the_gcr_digest_map() {
    let first = Digest::of(b"first");
    let second = Digest::of(b"second");
    let untagged = Digest::of(b"untagged");
    let fake = Fake::start("127.0.0.1", move |request, _| {
        if request.target == "/v2/team/app/tags/list" {
            let body = serde_json::json!({
                "name": "team/app",
                "tags": ["z", "b"],
                "manifest": {
                    first.to_string(): {"tag": ["z"], "mediaType": "application/vnd.oci.image.index.v1+json", "imageSizeBytes": "10"},
                    untagged.to_string(): {"tag": [], "mediaType": "application/vnd.oci.image.manifest.v1+json"},
                },
            });
            Answer::new(200).header("Link", r#"</v2/team/app/tags/list?last=b&n=2>; rel="next""#).body(body.to_string())
        } else if request.target == "/v2/team/app/tags/list?last=b&n=2" {
            let body = serde_json::json!({
                "name": "team/app",
                "tags": ["a", "b", "not a tag!"],
                "manifest": {second.to_string(): {"tag": ["a", "b"]}},
            });
            Answer::new(200).body(body.to_string())
        } else {
            Answer::new(404)
        }
    })
    .await;
    let options = RegistryOptions {
        insecure: true,
        retry: quick_retries(),
        ..RegistryOptions::default()
    };
    let store = RegistryStore::new(&fake.host, options).unwrap();
    let listing = store.list_tags_with_digests("team/app").await.unwrap();
    assert_eq!(
        listing.tags,
        tags(&["a", "b", "z"]),
        "the invalid tag is skipped"
    );
    let expected: BTreeMap<Tag, Digest> = [("a", second), ("b", second), ("z", first)]
        .into_iter()
        .map(|(name, digest)| (Tag::parse(name).unwrap(), digest))
        .collect();
    assert_eq!(listing.digests, Some(expected));
    assert_eq!(store.requests_made(), 2);
    for request in fake.seen() {
        assert!(
            request
                .headers
                .get("user-agent")
                .is_some_and(|agent| agent.starts_with("hoist/"))
        );
    }
}
