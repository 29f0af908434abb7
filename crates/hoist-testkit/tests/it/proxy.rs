//! The fault proxy forwards faithfully and injects the faults it is asked for.

use hoist_testkit::{
    Error, FaultProxy, Faults, ImageBuilder, InjectedFault, hash_blob, push, validate_copy,
};

use crate::registry;

#[tokio::test]
async fn forwards_pushes_and_rewrites_upload_locations() {
    let server = registry();
    let proxy = FaultProxy::start(&server.host(), Faults::none())
        .await
        .unwrap();
    let client = proxy.endpoint().client().unwrap();
    // 8 MiB, streamed through the proxy both ways.
    let image = ImageBuilder::new(30).layer(8 << 20).build();
    push(&client, &proxy.endpoint(), "via/proxy", &image, &["v1"])
        .await
        .unwrap();

    let requests = proxy.requests();
    assert!(
        requests
            .iter()
            .any(|request| request.method == "PUT" && request.path.contains("/blobs/uploads/")),
        "the upload PUT went through the proxy, so Location was rewritten: {requests:?}"
    );
    assert_eq!(proxy.injected_count(), 0);
    assert_eq!(server.request_count(), proxy.request_count());

    validate_copy(
        &server.endpoint(),
        "via/proxy",
        &proxy.endpoint(),
        "via/proxy",
        image.digest(),
    )
    .await
    .unwrap();
}

#[tokio::test]
async fn flips_a_byte_of_the_chosen_blob() {
    let server = registry();
    let client = server.client().unwrap();
    let image = ImageBuilder::new(31).layers(&[100_000, 200_000]).build();
    push(&client, &server.endpoint(), "corrupt", &image, &[])
        .await
        .unwrap();
    let victim = image.layers[1].descriptor.clone();
    let proxy = FaultProxy::start(&server.host(), Faults::none().corrupt_blob(victim.digest))
        .await
        .unwrap();

    let (digest, length) = hash_blob(&client, &proxy.endpoint(), "corrupt", victim.digest)
        .await
        .unwrap();
    assert_ne!(
        digest, victim.digest,
        "the fetched bytes must hash differently"
    );
    assert_eq!(length, victim.size, "only a byte flips; the length stays");
    let other = image.layers[0].digest();
    let (untouched, _) = hash_blob(&client, &proxy.endpoint(), "corrupt", other)
        .await
        .unwrap();
    assert_eq!(untouched, other);

    let error = validate_copy(
        &server.endpoint(),
        "corrupt",
        &proxy.endpoint(),
        "corrupt",
        image.digest(),
    )
    .await
    .unwrap_err();
    assert!(
        matches!(error, Error::DigestMismatch { expected, .. } if expected == victim.digest),
        "{error}"
    );
    assert!(
        proxy
            .requests()
            .iter()
            .any(|request| request.fault == Some(InjectedFault::Corrupted))
    );
}

#[tokio::test]
async fn throttles_then_fails_then_forwards() {
    let server = registry();
    let proxy = FaultProxy::start(
        &server.host(),
        Faults::none().throttle_first(2, 3).fail_first(1),
    )
    .await
    .unwrap();
    let client = proxy.endpoint().client().unwrap();
    let url = format!("{}/v2/", proxy.endpoint().base_url());
    for _ in 0..2 {
        let response = client.get(&url).send().await.unwrap();
        assert_eq!(response.status().as_u16(), 429);
        assert_eq!(response.headers()["retry-after"], "3");
    }
    assert_eq!(
        client.get(&url).send().await.unwrap().status().as_u16(),
        500
    );
    assert_eq!(
        client.get(&url).send().await.unwrap().status().as_u16(),
        200
    );
    assert_eq!(proxy.request_count(), 4);
    assert_eq!(proxy.injected_count(), 3);
    // Injected answers never reach the registry.
    assert_eq!(server.request_count(), 1);
}

#[tokio::test]
async fn drops_the_connection_mid_blob_once() {
    let server = registry();
    let client = server.client().unwrap();
    let image = ImageBuilder::new(32).layer(1 << 20).build();
    push(&client, &server.endpoint(), "cut", &image, &[])
        .await
        .unwrap();
    let layer = image.layers[0].descriptor.clone();
    let proxy = FaultProxy::start(
        &server.host(),
        Faults::none().kill_first_after(1, 64 * 1024),
    )
    .await
    .unwrap();

    let error = hash_blob(&client, &proxy.endpoint(), "cut", layer.digest)
        .await
        .unwrap_err();
    assert!(matches!(error, Error::Http { .. }), "{error}");
    let (digest, length) = hash_blob(&client, &proxy.endpoint(), "cut", layer.digest)
        .await
        .unwrap();
    assert_eq!((digest, length), (layer.digest, layer.size));
    assert_eq!(
        proxy.requests()[0].fault,
        Some(InjectedFault::Cut(64 * 1024))
    );
}

#[tokio::test]
async fn plays_a_slow_far_link() {
    use std::time::{Duration, Instant};
    let server = registry();
    let client = server.client().unwrap();
    let image = ImageBuilder::new(40).layer(512 * 1024).build();
    push(&client, &server.endpoint(), "far/app", &image, &[])
        .await
        .unwrap();
    let layer = image.layers[0].descriptor.clone();
    // 100 ms each way, 256 KiB/s per connection.
    let proxy = FaultProxy::start(
        &server.host(),
        Faults::none()
            .latency(Duration::from_millis(100))
            .bandwidth(256 * 1024),
    )
    .await
    .unwrap();
    let started = Instant::now();
    let (digest, length) = hash_blob(&client, &proxy.endpoint(), "far/app", layer.digest)
        .await
        .unwrap();
    let elapsed = started.elapsed();
    assert_eq!((digest, length), (layer.digest, layer.size));
    // A handshake round trip, a request round trip, and about two seconds of bytes.
    let least = Duration::from_millis(400) + Duration::from_secs_f64(layer.size as f64 / 262_144.0);
    assert!(elapsed >= least.mul_f64(0.9), "{elapsed:?} < {least:?}");
    assert!(elapsed < least * 4, "{elapsed:?}");
}

#[tokio::test]
async fn answers_429_over_a_quota_of_concurrent_requests() {
    use std::time::Duration;
    let server = registry();
    // Requests take 400 ms (200 each way), so four sent at once overlap.
    let proxy = FaultProxy::start(
        &server.host(),
        Faults::none()
            .latency(Duration::from_millis(200))
            .quota(hoist_testkit::Quota::concurrent(2).retry_after(3)),
    )
    .await
    .unwrap();
    let client = reqwest::Client::new();
    let url = format!("http://{}/v2/", proxy.host());
    let answers = futures::future::join_all((0..4).map(|_| client.get(&url).send())).await;
    let mut statuses: Vec<u16> = answers
        .into_iter()
        .map(|answer| answer.unwrap().status().as_u16())
        .collect();
    statuses.sort_unstable();
    assert_eq!(statuses, [200, 200, 429, 429]);
    assert_eq!(proxy.over_quota_count(), 2);
    assert_eq!(proxy.most_served_at_once(), 2);
    let throttled = proxy
        .requests()
        .into_iter()
        .filter(|request| request.fault == Some(InjectedFault::OverQuota))
        .count();
    assert_eq!(throttled, 2);
}
