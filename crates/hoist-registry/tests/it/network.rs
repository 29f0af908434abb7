//! Real networks, played by the test kit's fault proxy in front of registry:2: timeouts that fire
//! on silence and never on duration, and adaptive concurrency under a registry's quota.

use std::time::{Duration, Instant};

use hoist_oci::{Digest, Reference};
use hoist_registry::{Concurrency, RegistryOptions, RegistryStore, RetryPolicy, Timeouts};
use hoist_store::idle::IdleTimeout;
use hoist_store::{Sink as _, Source as _, StoreErrorKind};
use hoist_testkit::{FaultProxy, Faults, ImageBuilder, Quota, RegistryServer, SilentServer, push};

use crate::{digest_of, generated};

/// Short enough for tests, long enough for a loaded machine to never be that silent by itself.
const IDLE: Duration = Duration::from_secs(1);

fn registry() -> RegistryServer {
    RegistryServer::start(hoist_testkit::RegistryOptions::plain()).expect("registry:2 starts")
}

fn options(idle: Duration) -> RegistryOptions {
    RegistryOptions {
        insecure: true,
        timeouts: Timeouts {
            connect: Duration::from_secs(5),
            idle,
        },
        retry: RetryPolicy {
            max_attempts: 5,
            base_delay: Duration::from_millis(50),
            max_delay: Duration::from_secs(5),
        },
        ..RegistryOptions::default()
    }
}

#[tokio::test]
async fn a_slow_but_steady_blob_outlasts_the_idle_timeout_both_ways() {
    let server = registry();
    // 384 KiB/s per connection and direction: 2 MiB take over five idle periods each way.
    let proxy = FaultProxy::start(&server.host(), Faults::none().bandwidth(384 * 1024))
        .await
        .unwrap();
    let store = RegistryStore::new(&proxy.host(), options(IDLE)).unwrap();
    let size = 2 * 1024 * 1024;
    let (digest, stream) = generated(91, size);

    let started = Instant::now();
    store
        .push_blob("slow/app", &digest, size, stream)
        .await
        .unwrap_or_else(|error| {
            panic!(
                "a steady upload is never idle: after {:?}: {error}",
                started.elapsed()
            )
        });
    let upload = started.elapsed();
    assert!(upload > IDLE * 4, "the upload was slow: {upload:?}");

    let started = Instant::now();
    let fetched = store.fetch_blob("slow/app", &digest).await.unwrap();
    assert_eq!(digest_of(fetched).await.unwrap(), (digest, size));
    let download = started.elapsed();
    assert!(download > IDLE * 4, "the download was slow: {download:?}");
}

#[tokio::test]
async fn a_registry_that_accepts_and_never_answers_fails_in_about_the_idle_timeout() {
    let silent = SilentServer::start().await.unwrap();
    let store = RegistryStore::new(silent.host(), options(IDLE)).unwrap();
    let digest = Digest::of(b"anything");

    let started = Instant::now();
    let error = store
        .head_manifest("app", &Reference::Digest(digest))
        .await
        .unwrap_err();
    let elapsed = started.elapsed();
    assert_eq!(error.kind(), StoreErrorKind::Network, "{error}");
    assert!(IdleTimeout::is_cause_of(&error), "{error:?}");
    assert!(error.to_string().contains("idle timeout"), "{error}");
    // Not retried: the server had its whole idle period already.
    assert!(elapsed >= IDLE && elapsed < IDLE * 3, "{elapsed:?}");
    assert_eq!(silent.accepted(), 1);

    let content = vec![7u8; 3 * 1024 * 1024];
    let (digest, stream) = (Digest::of(&content), crate::stream_of(&content, 64 * 1024));
    let started = Instant::now();
    let error = store
        .push_blob("app", &digest, content.len() as u64, stream)
        .await
        .unwrap_err();
    let elapsed = started.elapsed();
    assert!(IdleTimeout::is_cause_of(&error), "{error:?}");
    assert!(elapsed >= IDLE && elapsed < IDLE * 3, "{elapsed:?}");
}

#[tokio::test]
async fn a_blob_body_that_goes_silent_fails_in_about_the_idle_timeout() {
    let server = registry();
    let client = server.client().unwrap();
    let image = ImageBuilder::new(92).layer(1024 * 1024).build();
    push(&client, &server.endpoint(), "stalls/app", &image, &[])
        .await
        .unwrap();
    let layer = image.layers[0].descriptor.clone();
    let proxy = FaultProxy::start(&server.host(), Faults::none().stall_after(256 * 1024))
        .await
        .unwrap();
    let store = RegistryStore::new(&proxy.host(), options(IDLE)).unwrap();

    let started = Instant::now();
    let stream = store.fetch_blob("stalls/app", &layer.digest).await.unwrap();
    let error = digest_of(stream).await.unwrap_err();
    let elapsed = started.elapsed();
    assert_eq!(error.kind(), StoreErrorKind::Network, "{error}");
    assert!(error.to_string().contains("idle timeout"), "{error}");
    assert!(elapsed >= IDLE && elapsed < IDLE * 3, "{elapsed:?}");
}

/// `requests` blob HEADs, `demand` at a time, through `store`; how long they took, and how many
/// failed for good.
async fn heads(
    store: &RegistryStore,
    digest: Digest,
    requests: usize,
    demand: usize,
) -> (Duration, usize) {
    use futures::StreamExt as _;
    let started = Instant::now();
    let failures = futures::stream::iter(0..requests)
        .map(|_| async move { store.blob_size("quota/app", &digest).await })
        .buffer_unordered(demand)
        .filter(|result| std::future::ready(!matches!(result, Ok(Some(_)))))
        .count()
        .await;
    (started.elapsed(), failures)
}

#[tokio::test]
async fn adaptive_concurrency_meets_a_quota_with_few_429s() {
    let server = registry();
    let client = server.client().unwrap();
    let image = ImageBuilder::new(93).layer(1000).build();
    push(&client, &server.endpoint(), "quota/app", &image, &[])
        .await
        .unwrap();
    let digest = image.layers[0].descriptor.digest;
    // A registry 50 ms away that serves 8 requests at once and answers 429 beyond.
    const QUOTA: usize = 8;
    const REQUESTS: usize = 400;
    let link = || {
        Faults::none()
            .latency(Duration::from_millis(25))
            .quota(Quota::concurrent(QUOTA))
    };
    // Far more demand than the quota, as a promotion with many images has.
    let demand = 32;

    let adaptive_proxy = FaultProxy::start(&server.host(), link()).await.unwrap();
    let adaptive = RegistryStore::new(
        &adaptive_proxy.host(),
        RegistryOptions {
            max_concurrent_requests: demand,
            ..options(Duration::from_secs(30))
        },
    )
    .unwrap();
    let (adaptive_wall, adaptive_failures) = heads(&adaptive, digest, REQUESTS, demand).await;
    let adaptive_429s = adaptive_proxy.over_quota_count();

    // The baseline in the same run: a fixed concurrency at the same ceiling.
    let fixed_proxy = FaultProxy::start(&server.host(), link()).await.unwrap();
    let fixed = RegistryStore::new(
        &fixed_proxy.host(),
        RegistryOptions {
            max_concurrent_requests: demand,
            concurrency: Concurrency {
                adaptive: false,
                initial: demand,
            },
            ..options(Duration::from_secs(30))
        },
    )
    .unwrap();
    let (fixed_wall, fixed_failures) = heads(&fixed, digest, REQUESTS, demand).await;
    let fixed_429s = fixed_proxy.over_quota_count();

    // The quota's own throughput: QUOTA requests per round trip (50 ms and a little serving).
    let ideal = Duration::from_millis(50) * (REQUESTS / QUOTA) as u32;
    eprintln!(
        "quota {QUOTA} at once, {REQUESTS} requests, demand {demand}: adaptive {adaptive_wall:?}, \
         {adaptive_429s} 429s, {adaptive_failures} failures (windows {:?}); fixed {fixed_wall:?}, \
         {fixed_429s} 429s, {fixed_failures} failures; ideal {ideal:?}",
        adaptive.concurrency_windows()
    );
    assert_eq!(adaptive_failures, 0, "every request succeeded");
    assert_eq!(adaptive.throttled_responses(), adaptive_429s as u64);
    // Few 429s: a sawtooth touches the quota now and then, about one 429 per window of growth.
    assert!(
        adaptive_429s * 10 <= REQUESTS,
        "adaptive: {adaptive_429s} 429s for {REQUESTS} requests"
    );
    assert!(
        fixed_429s >= adaptive_429s * 4 && fixed_429s >= REQUESTS / 2,
        "the fixed baseline is throttled far more: {fixed_429s} against {adaptive_429s}"
    );
    // Close to the quota's throughput (generous: the machine is shared), with a tiny fraction of
    // the 429s the fixed baseline costs the registry.
    assert!(
        adaptive_wall < ideal * 3,
        "adaptive took {adaptive_wall:?}, the quota allows {ideal:?}"
    );
    assert!(adaptive_proxy.most_served_at_once() <= QUOTA);
}

#[tokio::test]
async fn a_rate_cap_under_a_per_second_quota_meets_no_429() {
    let server = registry();
    let client = server.client().unwrap();
    let image = ImageBuilder::new(94).layer(1000).build();
    push(&client, &server.endpoint(), "quota/app", &image, &[])
        .await
        .unwrap();
    let digest = image.layers[0].descriptor.digest;
    let proxy = FaultProxy::start(
        &server.host(),
        Faults::none().quota(Quota::per_second(20).retry_after(1)),
    )
    .await
    .unwrap();
    let store = RegistryStore::new(
        &proxy.host(),
        RegistryOptions {
            max_requests_per_second: Some(15.0),
            ..options(Duration::from_secs(30))
        },
    )
    .unwrap();
    let (wall, failures) = heads(&store, digest, 45, 16).await;
    assert_eq!(failures, 0);
    assert_eq!(proxy.over_quota_count(), 0, "15 per second stay under 20");
    // 45 requests at 15 per second: three seconds, less the first.
    assert!(wall >= Duration::from_millis(2800), "{wall:?}");
}
