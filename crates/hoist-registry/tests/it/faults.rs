//! Retries, request budgets and redirects, against in-process fakes on loopback addresses.

use std::time::{Duration, Instant};

use hoist_oci::{Digest, Reference, Tag};
use hoist_registry::{RegistryCredentials, RegistryOptions, RegistryStore};
use hoist_store::{Sink as _, Source as _, StoreErrorKind};

use crate::collect;
use crate::servers::{Answer, Fake, quick_retries};

const TAGS: &str = r#"{"name":"app","tags":["v1"]}"#;

fn store(fake: &Fake, options: RegistryOptions) -> RegistryStore {
    RegistryStore::new(
        &fake.host,
        RegistryOptions {
            insecure: true,
            ..options
        },
    )
    .unwrap()
}

fn options() -> RegistryOptions {
    RegistryOptions {
        retry: quick_retries(),
        ..RegistryOptions::default()
    }
}

#[tokio::test]
async fn retry_honours_retry_after() {
    let fake = Fake::start("127.0.0.1", |_, index| {
        if index == 0 {
            Answer::new(429).header("Retry-After", "1")
        } else {
            Answer::new(200).body(TAGS)
        }
    })
    .await;
    let store = store(&fake, options());
    let started = Instant::now();
    assert_eq!(store.list_tags("app").await.unwrap().len(), 1);
    let elapsed = started.elapsed();
    // The policy's own backoff is 20 ms; only the server's Retry-After explains a whole second.
    assert!(elapsed >= Duration::from_millis(950), "waited {elapsed:?}");
    assert!(elapsed < Duration::from_secs(5), "waited {elapsed:?}");
    assert_eq!(store.requests_made(), 2);
    assert_eq!(fake.seen().len(), 2);
}

#[tokio::test]
async fn server_errors_are_retried_then_reported() {
    let fake = Fake::start("127.0.0.1", |_, _| {
        Answer::new(503).body(r#"{"errors":[{"code":"UNAVAILABLE","message":"try later"}]}"#)
    })
    .await;
    let store = store(&fake, options());
    let error = store.list_tags("app").await.unwrap_err();
    assert_eq!(error.kind(), StoreErrorKind::Server);
    assert!(error.to_string().contains("try later"), "{error}");
    assert_eq!(fake.seen().len(), 3, "max_attempts requests");
}

#[tokio::test]
async fn a_retry_after_beyond_the_longest_wait_is_handed_to_the_caller() {
    let fake = Fake::start("127.0.0.1", |_, _| {
        Answer::new(429).header("Retry-After", "3600")
    })
    .await;
    let store = store(&fake, options());
    let error = store.list_tags("app").await.unwrap_err();
    assert_eq!(error.kind(), StoreErrorKind::RateLimited);
    assert_eq!(error.retry_after(), Some(Duration::from_secs(3600)));
    assert_eq!(fake.seen().len(), 1);
}

#[tokio::test]
async fn client_errors_are_not_retried() {
    let fake = Fake::start("127.0.0.1", |_, _| {
        Answer::new(403).body(r#"{"errors":[{"code":"DENIED"}]}"#)
    })
    .await;
    let store = store(&fake, options());
    let error = store.list_tags("app").await.unwrap_err();
    assert_eq!(error.kind(), StoreErrorKind::Denied);
    assert_eq!(fake.seen().len(), 1);
}

#[tokio::test]
async fn the_request_budget_is_enforced() {
    let fake = Fake::start("127.0.0.1", |_, _| Answer::new(200).body(TAGS)).await;
    let store = store(
        &fake,
        RegistryOptions {
            max_requests: Some(2),
            ..options()
        },
    );
    store.list_tags("app").await.unwrap();
    store.list_tags("app").await.unwrap();
    let error = store.list_tags("app").await.unwrap_err();
    assert_eq!(error.kind(), StoreErrorKind::Rejected);
    assert!(!error.is_retryable());
    assert_eq!(fake.seen().len(), 2);
    assert_eq!(store.requests_made(), 2);
}

#[tokio::test]
async fn redirects_to_another_host_carry_no_authorization() {
    let content = b"layer bytes from storage".to_vec();
    let digest = Digest::of(&content);
    // 127.0.0.2 is another host on the loopback network: the "storage" the registry sends us to.
    let storage = {
        let content = content.clone();
        Fake::start("127.0.0.2", move |_, _| {
            Answer::new(200).body(content.clone())
        })
        .await
    };
    let storage_host = storage.host.clone();
    let registry = Fake::start("127.0.0.1", move |request, _| {
        if !request.headers.contains_key("authorization") {
            return Answer::new(401).header("WWW-Authenticate", r#"Basic realm="fake""#);
        }
        if request.target.starts_with("/v2/app/blobs/") {
            // First a redirect on the registry itself, which keeps the credentials...
            Answer::new(307).header("Location", "/moved/blob")
        } else if request.target == "/moved/blob" {
            // ...then one to storage, which must not get them.
            Answer::new(307).header(
                "Location",
                &format!("http://{storage_host}/bucket/blob?signature=secret"),
            )
        } else {
            Answer::new(404)
        }
    })
    .await;
    let options = RegistryOptions {
        credentials: Some(RegistryCredentials::new("u", "p")),
        ..options()
    };
    let store = store(&registry, options);
    let fetched = collect(store.fetch_blob("app", &digest).await.unwrap()).await;
    assert_eq!(fetched, content);

    let seen = registry.seen();
    assert_eq!(seen.len(), 3, "challenge, blob, moved: {seen:?}");
    assert!(seen[2].target == "/moved/blob" && seen[2].headers.contains_key("authorization"));
    let stored = storage.seen();
    assert_eq!(stored.len(), 1);
    assert_eq!(stored[0].target, "/bucket/blob?signature=secret");
    assert!(
        !stored[0].headers.contains_key("authorization"),
        "{:?}",
        stored[0].headers
    );
    assert_eq!(store.requests_made(), 4);
}

#[tokio::test]
async fn concurrency_is_limited_per_host() {
    let fake = Fake::start("127.0.0.1", |_, _| {
        Answer::new(200)
            .body(TAGS)
            .delay(Duration::from_millis(150))
    })
    .await;
    let store = store(
        &fake,
        RegistryOptions {
            max_concurrent_requests: 2,
            ..options()
        },
    );
    let lists = (0..6).map(|_| {
        let store = store.clone();
        async move { store.list_tags("app").await }
    });
    for result in futures::future::join_all(lists).await {
        assert_eq!(result.unwrap().len(), 1);
    }
    assert_eq!(fake.seen().len(), 6);
    assert_eq!(fake.most_at_once(), 2);
}

#[tokio::test]
async fn manifest_bytes_are_checked_against_digests_and_never_retried() {
    let served = br#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[]}"#;
    let asked = Digest::of(b"what we asked for");
    let fake = Fake::start("127.0.0.1", move |request, _| {
        let answer = Answer::new(200).body(served.to_vec());
        if request.target.ends_with("/lying-tag") {
            answer
                .header("Content-Type", hoist_oci::media_types::OCI_INDEX)
                .header("Docker-Content-Digest", &asked.to_string())
        } else {
            // A generic Content-Type: the manifest's own mediaType field is used instead.
            answer.header("Content-Type", "application/json")
        }
    })
    .await;
    let store = store(&fake, options());
    let error = store
        .fetch_manifest("app", &Reference::Digest(asked))
        .await
        .unwrap_err();
    assert_eq!(error.kind(), StoreErrorKind::DigestMismatch);
    assert_eq!(fake.seen().len(), 1, "a mismatch is not retried");
    let lying = Reference::Tag(Tag::parse("lying-tag").unwrap());
    let error = store.fetch_manifest("app", &lying).await.unwrap_err();
    assert_eq!(error.kind(), StoreErrorKind::DigestMismatch);

    let honest = Reference::Tag(Tag::parse("v1").unwrap());
    let manifest = store.fetch_manifest("app", &honest).await.unwrap().unwrap();
    assert_eq!(manifest.media_type, hoist_oci::media_types::OCI_INDEX);
    assert_eq!(manifest.digest, Digest::of(served));
    let accept = &fake.seen()[2].headers["accept"];
    for media_type in hoist_oci::media_types::MANIFEST_TYPES {
        assert!(accept.contains(media_type), "{accept}");
    }
}

#[tokio::test]
async fn an_upload_post_that_failed_is_not_sent_again() {
    // A 500 after a POST may mean a session was opened that we cannot name: never a second one.
    let fake = Fake::start("127.0.0.1", |request, _| {
        if request.method == "POST" {
            Answer::new(500)
        } else {
            Answer::new(404)
        }
    })
    .await;
    let store = store(&fake, options());
    let content = b"layer".to_vec();
    let error = store
        .push_blob(
            "app",
            &Digest::of(&content),
            5,
            crate::stream_of(&content, 5),
        )
        .await
        .unwrap_err();
    assert_eq!(error.kind(), StoreErrorKind::Server);
    let posts = fake
        .seen()
        .iter()
        .filter(|request| request.method == "POST")
        .count();
    assert_eq!(posts, 1, "{:?}", fake.seen());
}

#[tokio::test]
async fn an_upload_post_refused_with_429_is_sent_again() {
    // A 429 opened nothing: trying again is safe.
    let fake = Fake::start("127.0.0.1", |request, index| {
        match (request.method.as_str(), index) {
            ("POST", 0) => Answer::new(429).header("Retry-After", "0"),
            ("POST", _) => Answer::new(202).header("Location", "/v2/app/blobs/uploads/session-1"),
            ("PUT", _) => Answer::new(201),
            _ => Answer::new(404),
        }
    })
    .await;
    let store = store(&fake, options());
    let content = b"layer".to_vec();
    store
        .push_blob(
            "app",
            &Digest::of(&content),
            5,
            crate::stream_of(&content, 5),
        )
        .await
        .unwrap();
    let methods: Vec<String> = fake
        .seen()
        .iter()
        .map(|request| request.method.clone())
        .collect();
    assert_eq!(methods, ["POST", "POST", "PUT"]);
    assert_eq!(store.throttled_responses(), 1);
}
