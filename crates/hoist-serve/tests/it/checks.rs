//! Existence checks seen on the wire: positive answers cached (one `HEAD` per blob, even for
//! concurrent first requests), negative ones not, timeouts fall back to the upstream; metrics;
//! requests in flight finish on shutdown; a request with no known peer.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use axum::extract::ConnectInfo;
use hoist_serve::{Redirector, ServeConfig, Upstream};
use tower::ServiceExt as _;

use crate::rules::{AWS_EU_WEST_3, BUCKET, GCR, IN_BOTH, Mirrored, cloud_regions};
use crate::support::{Running, client};

fn heads_of(world: &Mirrored, digest: &str) -> usize {
    world
        .bucket
        .requests()
        .iter()
        .filter(|request| {
            request.operation == "HeadObject"
                && request.bucket == BUCKET
                && request.key == format!("containers/images/{digest}")
        })
        .count()
}

async fn get_blob(server: &Running, digest: &str) -> (u16, String) {
    let response = client()
        .get(format!("{}/v2/pause/blobs/{digest}", server.origin()))
        .header("x-forwarded-for", AWS_EU_WEST_3)
        .send()
        .await
        .unwrap();
    let location = response.headers()["location"].to_str().unwrap().to_owned();
    (response.status().as_u16(), location)
}

fn config(world: &Mirrored) -> ServeConfig {
    let mut config = ServeConfig::new(Upstream::parse(GCR).unwrap());
    config.trusted_load_balancers = vec!["127.0.0.0/8".parse().unwrap()];
    config.regions = cloud_regions();
    config.mirrors = world.mirrors();
    config
}

#[tokio::test]
async fn found_blobs_are_asked_for_once() {
    let world = Mirrored::start().await;
    let server = Running::start(config(&world)).await;
    for _ in 0..3 {
        assert_eq!(
            get_blob(&server, IN_BOTH).await,
            (307, world.s3_url(IN_BOTH))
        );
    }
    assert_eq!(
        heads_of(&world, IN_BOTH),
        1,
        "{:?}",
        world.bucket.requests()
    );

    // Concurrent first requests share one check.
    let shared = "sha256:1111111111111111111111111111111111111111111111111111111111111111";
    world.put_s3(shared, b"shared").await;
    let answers = futures::future::join_all((0..16).map(|_| get_blob(&server, shared))).await;
    assert!(
        answers
            .iter()
            .all(|answer| *answer == (307, world.s3_url(shared))),
        "{answers:?}"
    );
    assert_eq!(heads_of(&world, shared), 1);

    let metrics = server.redirector.metrics().encode();
    assert!(
        metrics.contains("hoist_serve_blob_cache_hits_total 2\n"),
        "{metrics}"
    );
    assert!(
        metrics.contains("hoist_serve_blob_cache_misses_total 17\n"),
        "{metrics}"
    );
    assert!(
        metrics.contains(r#"hoist_serve_requests_total{route="blob",outcome="mirror"} 19"#),
        "{metrics}"
    );
    assert!(
        metrics
            .contains(r#"hoist_serve_blob_checks_total{backend="s3-eu-west-3",result="found"} 2"#),
        "{metrics}"
    );
}

#[tokio::test]
async fn missing_blobs_are_asked_for_again() {
    let world = Mirrored::start().await;
    let server = Running::start(config(&world)).await;
    let later = "sha256:2222222222222222222222222222222222222222222222222222222222222222";
    let upstream = format!("{GCR}/v2/pause/blobs/{later}");
    assert_eq!(get_blob(&server, later).await, (307, upstream.clone()));
    assert_eq!(get_blob(&server, later).await, (307, upstream));
    // Mirrored now: the next request finds it, with no restart.
    world.put_s3(later, b"later").await;
    assert_eq!(get_blob(&server, later).await, (307, world.s3_url(later)));
    assert_eq!(heads_of(&world, later), 3);
    let metrics = server.redirector.metrics().encode();
    assert!(
        metrics
            .contains(r#"hoist_serve_requests_total{route="blob",outcome="upstream-fallback"} 2"#),
        "{metrics}"
    );
}

/// A mirror that accepts connections and never answers.
async fn black_hole() -> (SocketAddr, tokio::task::JoinHandle<()>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let task = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((stream, _)) = listener.accept().await {
            held.push(stream);
        }
    });
    (address, task)
}

fn black_hole_config(world: &Mirrored, address: SocketAddr, timeout: Duration) -> ServeConfig {
    let text = format!(
        "backends:\n- name: silent\n  url: s3://{BUCKET}\n  endpoint: http://{address}\n  pathStyle: true\n  labels: {{cloud: aws, region: eu-west-3}}\n"
    );
    let catalogue = hoist_object::Catalogue::from_str(&text, "backends.yaml").unwrap();
    let all: Vec<&hoist_object::Backend> = catalogue.backends.iter().collect();
    let mut config = config(world);
    config.mirrors = hoist_serve::Mirrors::new(&all, None).unwrap();
    config.blob_check_timeout = timeout;
    config
}

#[tokio::test]
async fn a_silent_mirror_times_out_to_the_upstream() {
    let world = Mirrored::start().await;
    let (address, _hole) = black_hole().await;
    let server = Running::start(black_hole_config(
        &world,
        address,
        Duration::from_millis(500),
    ))
    .await;
    let started = Instant::now();
    let answer = get_blob(&server, IN_BOTH).await;
    let elapsed = started.elapsed();
    assert_eq!(answer, (307, format!("{GCR}/v2/pause/blobs/{IN_BOTH}")));
    assert!(elapsed >= Duration::from_millis(450), "{elapsed:?}");
    assert!(elapsed < Duration::from_secs(30), "{elapsed:?}");
    let metrics = server.redirector.metrics().encode();
    assert!(
        metrics.contains(r#"hoist_serve_blob_checks_total{backend="silent",result="error"} 1"#),
        "{metrics}"
    );
}

#[tokio::test]
async fn requests_in_flight_finish_on_shutdown() {
    let world = Mirrored::start().await;
    let (address, _hole) = black_hole().await;
    let server = Running::start(black_hole_config(&world, address, Duration::from_secs(2))).await;
    let origin = server.origin();
    let request = tokio::spawn(async move {
        client()
            .get(format!("{origin}/v2/pause/blobs/{IN_BOTH}"))
            .header("x-forwarded-for", AWS_EU_WEST_3)
            .send()
            .await
            .map(|response| response.status().as_u16())
    });
    // Let the request reach its existence check, then stop the server under it.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let origin = server.origin();
    tokio::time::timeout(Duration::from_secs(30), server.stop())
        .await
        .expect("the server stops once the request is answered");
    assert_eq!(request.await.unwrap().unwrap(), 307);
    // And it accepts nothing new.
    assert!(
        client()
            .get(format!("{origin}/healthz"))
            .send()
            .await
            .is_err()
    );
}

#[tokio::test]
async fn an_unknown_peer_gets_no_blob() {
    let redirector = Redirector::new(ServeConfig::new(Upstream::parse(GCR).unwrap()));
    let request = |path: &str, peer: Option<SocketAddr>| {
        let mut request = axum::http::Request::get(path)
            .body(axum::body::Body::empty())
            .unwrap();
        if let Some(peer) = peer {
            request.extensions_mut().insert(ConnectInfo(peer));
        }
        request
    };
    let blob = format!("/v2/pause/blobs/{IN_BOTH}");
    let response = redirector
        .router()
        .oneshot(request(&blob, None))
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
    let response = redirector
        .router()
        .oneshot(request(&blob, Some("35.180.1.1:888".parse().unwrap())))
        .await
        .unwrap();
    assert_eq!(response.status(), 307);
    let response = redirector
        .router()
        .oneshot(request("/v2/pause/manifests/latest", None))
        .await
        .unwrap();
    assert_eq!(response.status(), 307);
    assert_eq!(
        response.headers()["location"],
        format!("{GCR}/v2/pause/manifests/latest")
    );
}
