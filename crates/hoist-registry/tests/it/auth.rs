//! Basic auth (registry:2 with htpasswd), bearer tokens (a fake token service), TLS with an extra
//! CA, and plain HTTP only when asked.

use std::sync::{Arc, Mutex};

use base64::Engine as _;
use hoist_oci::Digest;
use hoist_registry::{RegistryCredentials, RegistryOptions, RegistryStore, RetryPolicy};
use hoist_store::{Sink as _, Source as _, StoreErrorKind};

use crate::servers::{Answer, Fake, PASSWORD, Registry, USER, quick_retries};
use crate::{collect, stream_of};

fn with_credentials(registry: &Registry, username: &str, password: &str) -> RegistryStore {
    let options = RegistryOptions {
        credentials: Some(RegistryCredentials::new(username, password)),
        ..registry.options()
    };
    RegistryStore::new(&registry.host, options).unwrap()
}

#[tokio::test]
async fn basic_auth_works_after_one_challenge() {
    let registry = Registry::start_htpasswd();
    let store = with_credentials(&registry, USER, PASSWORD);
    let content = b"private layer".to_vec();
    let digest = Digest::of(&content);
    store
        .push_blob(
            "private/app",
            &digest,
            content.len() as u64,
            stream_of(&content, 3),
        )
        .await
        .unwrap();
    // POST answered 401 Basic, POST again with the password, then the PUT carries it at once.
    assert_eq!(store.requests_made(), 3);
    assert_eq!(
        collect(store.fetch_blob("private/app", &digest).await.unwrap()).await,
        content
    );
    assert_eq!(store.requests_made(), 4);
    assert!(
        !format!("{store:?}").contains(PASSWORD),
        "Debug shows no password"
    );
}

#[tokio::test]
async fn wrong_or_missing_password_is_unauthorized() {
    let registry = Registry::start_htpasswd();
    let wrong = with_credentials(&registry, USER, "wrong password");
    let error = wrong.list_tags("private/app").await.unwrap_err();
    assert_eq!(error.kind(), StoreErrorKind::Unauthorized, "{error}");
    assert!(!error.to_string().contains("wrong password"));
    let content = b"x".to_vec();
    let error = wrong
        .push_blob(
            "private/app",
            &Digest::of(&content),
            1,
            stream_of(&content, 1),
        )
        .await
        .unwrap_err();
    assert_eq!(error.kind(), StoreErrorKind::Unauthorized);

    let anonymous = registry.store();
    let error = anonymous.list_tags("private/app").await.unwrap_err();
    assert_eq!(error.kind(), StoreErrorKind::Unauthorized);
    assert_eq!(
        anonymous.requests_made(),
        1,
        "no point retrying without credentials"
    );
}

#[tokio::test]
async fn bearer_tokens_are_fetched_once_per_scope() {
    let realm: Arc<Mutex<String>> = Arc::default();
    let fake = {
        let realm = realm.clone();
        Fake::start("127.0.0.1", move |request, _| {
            let authorization = request
                .headers
                .get("authorization")
                .cloned()
                .unwrap_or_default();
            if request.target.starts_with("/token?") {
                let expected = base64::engine::general_purpose::STANDARD.encode("robot:s3cret");
                if authorization != format!("Basic {expected}") {
                    return Answer::new(401);
                }
                let scope = request
                    .target
                    .split("scope=")
                    .nth(1)
                    .unwrap_or_default()
                    .to_owned();
                return Answer::new(200).body(
                    serde_json::json!({"token": format!("t-{scope}"), "expires_in": 300})
                        .to_string(),
                );
            }
            let repository = request
                .target
                .trim_start_matches("/v2/")
                .trim_end_matches("/tags/list");
            let scope = format!("repository%3A{}%3Apull", repository.replace('/', "%2F"));
            if authorization == format!("Bearer t-{scope}") {
                return Answer::new(200).body(r#"{"name":"x","tags":["v1"]}"#);
            }
            let challenge = format!(
                r#"Bearer realm="{}",service="fake",scope="repository:{repository}:pull""#,
                realm.lock().unwrap()
            );
            Answer::new(401).header("WWW-Authenticate", &challenge)
        })
        .await
    };
    *realm.lock().unwrap() = format!("http://{}/token", fake.host);
    let options = RegistryOptions {
        insecure: true,
        retry: quick_retries(),
        credentials: Some(RegistryCredentials::new("robot", "s3cret")),
        ..RegistryOptions::default()
    };
    let store = RegistryStore::new(&fake.host, options).unwrap();

    assert_eq!(store.list_tags("team/app").await.unwrap().len(), 1);
    assert_eq!(store.requests_made(), 3, "challenge, token, request");
    assert_eq!(store.list_tags("team/app").await.unwrap().len(), 1);
    assert_eq!(store.requests_made(), 4, "the token is cached");
    assert_eq!(store.list_tags("team/other").await.unwrap().len(), 1);
    assert_eq!(
        store.requests_made(),
        6,
        "a new scope: token first, no second challenge"
    );
    let token_request = fake
        .seen()
        .into_iter()
        .find(|request| request.target.starts_with("/token?"))
        .unwrap();
    assert!(
        token_request.target.contains("service=fake"),
        "{}",
        token_request.target
    );

    let wrong = RegistryOptions {
        insecure: true,
        retry: quick_retries(),
        credentials: Some(RegistryCredentials::new("robot", "guess")),
        ..RegistryOptions::default()
    };
    let store = RegistryStore::new(&fake.host, wrong).unwrap();
    let error = store.list_tags("team/app").await.unwrap_err();
    assert_eq!(error.kind(), StoreErrorKind::Unauthorized);
}

fn no_retries() -> RetryPolicy {
    RetryPolicy {
        max_attempts: 1,
        ..quick_retries()
    }
}

#[tokio::test]
async fn tls_with_the_ca_works_and_without_it_fails() {
    let registry = Registry::start_tls();
    let store = registry.store();
    let content = b"over tls".to_vec();
    let digest = Digest::of(&content);
    store
        .push_blob(
            "secure/app",
            &digest,
            content.len() as u64,
            stream_of(&content, 3),
        )
        .await
        .unwrap();
    assert_eq!(
        store.blob_size("secure/app", &digest).await.unwrap(),
        Some(content.len() as u64)
    );

    let options = RegistryOptions {
        ca_files: Vec::new(),
        retry: no_retries(),
        ..registry.options()
    };
    let untrusting = RegistryStore::new(&registry.host, options).unwrap();
    let error = untrusting
        .blob_size("secure/app", &digest)
        .await
        .unwrap_err();
    assert_eq!(error.kind(), StoreErrorKind::Network, "{error}");
}

#[tokio::test]
async fn plain_http_only_when_insecure() {
    let registry = Registry::start();
    let options = RegistryOptions {
        insecure: false,
        retry: no_retries(),
        ..registry.options()
    };
    let strict = RegistryStore::new(&registry.host, options).unwrap();
    let error = strict.list_tags("app").await.unwrap_err();
    assert_eq!(
        error.kind(),
        StoreErrorKind::Network,
        "https to a plain server fails: {error}"
    );
    assert_eq!(registry.store().list_tags("app").await.unwrap(), vec![]);
}

/// A registry at `127.0.0.1` with a bearer token service at `realm`, answering `tags/list` for
/// token `good` with one page whose `Link` points at `next_page`; and how many tokens it gave.
async fn bearer_registry(
    expires_in: u64,
    next_page: Arc<Mutex<String>>,
) -> (Fake, Arc<std::sync::atomic::AtomicUsize>) {
    let tokens = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let realm: Arc<Mutex<String>> = Arc::default();
    let fake = {
        let (realm, tokens) = (realm.clone(), tokens.clone());
        Fake::start("127.0.0.1", move |request, _| {
            if request.target.starts_with("/token?") {
                tokens.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                return Answer::new(200).body(
                    serde_json::json!({"token": "good", "expires_in": expires_in}).to_string(),
                );
            }
            if request.headers.get("authorization").map(String::as_str) == Some("Bearer good") {
                let answer = Answer::new(200).body(r#"{"name":"app","tags":["v1"]}"#);
                let next = next_page.lock().unwrap().clone();
                return if next.is_empty() {
                    answer
                } else {
                    answer.header("Link", &format!(r#"<{next}>; rel="next""#))
                };
            }
            let challenge = format!(r#"Bearer realm="{}",service="fake""#, realm.lock().unwrap());
            Answer::new(401).header("WWW-Authenticate", &challenge)
        })
        .await
    };
    *realm.lock().unwrap() = format!("http://{}/token", fake.host);
    (fake, tokens)
}

fn bearer_options() -> RegistryOptions {
    RegistryOptions {
        insecure: true,
        retry: quick_retries(),
        ..RegistryOptions::default()
    }
}

#[tokio::test]
async fn a_huge_token_lifetime_is_clamped_not_a_panic() {
    let (fake, tokens) = bearer_registry(u64::MAX, Arc::default()).await;
    let store = RegistryStore::new(&fake.host, bearer_options()).unwrap();
    assert_eq!(store.list_tags("app").await.unwrap().len(), 1);
    assert_eq!(store.list_tags("app").await.unwrap().len(), 1);
    assert_eq!(
        tokens.load(std::sync::atomic::Ordering::SeqCst),
        1,
        "the token is kept"
    );
}

#[tokio::test]
async fn a_challenge_from_another_host_does_not_replace_the_realm() {
    // Another host (127.0.0.2) that a `Link` points to, answering with its own login challenge.
    let evil_realm_hits = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let evil = {
        let hits = evil_realm_hits.clone();
        Fake::start("127.0.0.2", move |request, _| {
            if request.target.starts_with("/evil-token") {
                hits.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                return Answer::new(200).body(r#"{"token":"stolen"}"#);
            }
            Answer::new(401).header(
                "WWW-Authenticate",
                r#"Bearer realm="http://127.0.0.2:1/evil-token",service="evil""#,
            )
        })
        .await
    };
    let next_page = Arc::new(Mutex::new(format!(
        "http://{}/v2/app/tags/list?last=v1",
        evil.host
    )));
    let (fake, tokens) = bearer_registry(300, next_page.clone()).await;
    let store = RegistryStore::new(&fake.host, bearer_options()).unwrap();

    let error = store.list_tags("app").await.unwrap_err();
    assert_eq!(error.kind(), StoreErrorKind::Unauthorized, "{error}");
    assert!(
        error.to_string().contains("another host") || error.to_string().contains("other than"),
        "{error}"
    );
    let seen = evil.seen();
    assert_eq!(
        seen.len(),
        1,
        "one page request, no token request: {seen:?}"
    );
    assert!(
        !seen[0].headers.contains_key("authorization"),
        "the registry's token never goes to another host"
    );
    assert_eq!(evil_realm_hits.load(std::sync::atomic::Ordering::SeqCst), 0);

    // The registry's own realm still holds: the next listing uses the cached token at once.
    next_page.lock().unwrap().clear();
    let before = store.requests_made();
    assert_eq!(store.list_tags("app").await.unwrap().len(), 1);
    assert_eq!(
        store.requests_made(),
        before + 1,
        "no new challenge, no new token"
    );
    assert_eq!(tokens.load(std::sync::atomic::Ordering::SeqCst), 1);
}
