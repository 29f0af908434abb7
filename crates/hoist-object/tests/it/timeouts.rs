//! S3 and GCS time out on silence, never on duration: a slow but steady transfer lasting several
//! idle periods succeeds (through the test kit's proxy, capped in bandwidth), and an endpoint that
//! accepts connections and never answers fails in about the idle timeout.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::StreamExt as _;
use hoist_object::{
    Backend, BackendOptions, BackendUrl, BlobMirror, ObjectErrorKind, OpenOptions, PutOutcome,
    S3Credentials, Timeouts, open_with,
};
use hoist_testkit::{FaultProxy, Faults, GcsServer, ProxyOptions, S3Server, SilentServer};

use crate::{random_blob, stream_of};

const IDLE: Duration = Duration::from_secs(1);

/// 384 KiB/s per connection and direction: 2 MiB take over five idle periods.
const RATE: u64 = 384 * 1024;
const SIZE: usize = 2 * 1024 * 1024;

fn options(s3: Option<&S3Server>) -> OpenOptions {
    OpenOptions {
        s3_credentials: s3.map(|server| S3Credentials {
            access_key_id: server.access_key().to_owned(),
            secret_access_key: server.secret_key().to_owned(),
        }),
        timeouts: Timeouts {
            connect: Duration::from_secs(5),
            idle: IDLE,
        },
        ..OpenOptions::default()
    }
}

fn backend(url: BackendUrl, endpoint: String) -> Backend {
    let s3 = matches!(url, BackendUrl::S3 { .. });
    Backend {
        name: "slow".to_owned(),
        url,
        options: BackendOptions {
            region: s3.then(|| "us-east-1".to_owned()),
            endpoint: Some(endpoint),
            path_style: s3,
        },
        labels: BTreeMap::new(),
    }
}

fn s3_url() -> BackendUrl {
    BackendUrl::S3 {
        bucket: "slow-bucket".to_owned(),
        prefix: String::new(),
    }
}

fn gcs_url() -> BackendUrl {
    BackendUrl::Gcs {
        bucket: "slow-bucket".to_owned(),
        prefix: String::new(),
    }
}

/// A proxy in front of `upstream` (`127.0.0.1:PORT`) that delivers `RATE` bytes per second and
/// keeps the `Host` header (S3 signs it).
async fn slow_link(upstream: &str) -> FaultProxy {
    FaultProxy::start_with(
        upstream,
        Faults::none().bandwidth(RATE),
        ProxyOptions {
            keep_host: true,
            ..ProxyOptions::default()
        },
    )
    .await
    .unwrap()
}

fn host_of(url: &str) -> &str {
    url.trim_start_matches("http://").trim_end_matches('/')
}

/// Writes a 2 MiB blob and reads it back, each way taking several idle periods.
async fn slow_round_trip(mirror: Arc<dyn BlobMirror>) {
    let (content, digest) = random_blob(71, SIZE);
    let started = Instant::now();
    let outcome = mirror
        .put_blob(&digest, SIZE as u64, stream_of(&content))
        .await
        .unwrap_or_else(|error| panic!("a steady upload is never idle: {error}"));
    assert_eq!(outcome, PutOutcome::Written);
    let upload = started.elapsed();
    assert!(upload > IDLE * 4, "the upload was slow: {upload:?}");

    let started = Instant::now();
    let mut stream = mirror.fetch_blob(&digest).await.unwrap();
    let mut fetched = Vec::new();
    while let Some(chunk) = stream.next().await {
        fetched.extend_from_slice(&chunk.expect("a steady download is never idle"));
    }
    assert!(fetched == content, "the same bytes came back");
    let download = started.elapsed();
    assert!(download > IDLE * 4, "the download was slow: {download:?}");
}

/// Asks a silent endpoint; the answer must be an error after about one idle period.
async fn fails_in_about_the_idle_timeout(mirror: Arc<dyn BlobMirror>) {
    let (content, digest) = random_blob(72, 1000);
    let started = Instant::now();
    let error = mirror.blob_size(&digest).await.unwrap_err();
    let elapsed = started.elapsed();
    assert_eq!(error.kind(), ObjectErrorKind::Transient, "{error}");
    assert!(format!("{error:#}").contains("idle timeout"), "{error:#}");
    assert!(elapsed >= IDLE && elapsed < IDLE * 3, "{elapsed:?}");

    let started = Instant::now();
    mirror
        .put_blob(&digest, content.len() as u64, stream_of(&content))
        .await
        .unwrap_err();
    let elapsed = started.elapsed();
    assert!(elapsed >= IDLE && elapsed < IDLE * 3, "{elapsed:?}");
}

#[tokio::test]
async fn s3_slow_but_steady_transfers_outlast_the_idle_timeout() {
    let server = S3Server::start().expect("start s3s-fs");
    server.create_bucket("slow-bucket").unwrap();
    let proxy = slow_link(host_of(&server.endpoint_url())).await;
    let mirror = open_with(
        &backend(s3_url(), format!("http://{}", proxy.host())),
        &options(Some(&server)),
    )
    .await
    .unwrap();
    slow_round_trip(mirror).await;
}

#[tokio::test]
async fn s3_that_accepts_and_never_answers_fails_in_about_the_idle_timeout() {
    let silent = SilentServer::start().await.unwrap();
    let server = S3Server::start().expect("start s3s-fs");
    let mirror = open_with(&backend(s3_url(), silent.url()), &options(Some(&server)))
        .await
        .unwrap();
    fails_in_about_the_idle_timeout(mirror).await;
}

#[tokio::test]
async fn gcs_slow_but_steady_transfers_outlast_the_idle_timeout() {
    let server = GcsServer::start().expect("start fake-gcs-server");
    server.create_bucket("slow-bucket").await.unwrap();
    let proxy = slow_link(host_of(&server.endpoint_url())).await;
    let mirror = open_with(
        &backend(gcs_url(), format!("http://{}", proxy.host())),
        &options(None),
    )
    .await
    .unwrap();
    slow_round_trip(mirror).await;
}

#[tokio::test]
async fn gcs_that_accepts_and_never_answers_fails_in_about_the_idle_timeout() {
    let silent = SilentServer::start().await.unwrap();
    let mirror = open_with(&backend(gcs_url(), silent.url()), &options(None))
        .await
        .unwrap();
    fails_in_about_the_idle_timeout(mirror).await;
}
