//! The suite against each backend: a directory, s3s-fs and fake-gcs-server.

use std::collections::BTreeMap;
use std::future::Future;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::Arc;

use bytes::Bytes;
use hoist_object::{
    Backend, BackendOptions, BackendUrl, BlobMirror, ObjectErrorKind, OpenOptions, PutOutcome,
    S3Credentials, open_with,
};
use hoist_testkit::{GcsServer, S3Server};

use crate::suite::{self, Tamper, test_uploads};
use crate::{random_blob, stream_of};

type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

fn backend(url: BackendUrl, endpoint: Option<String>) -> Backend {
    let s3 = matches!(url, BackendUrl::S3 { .. });
    Backend {
        name: "test".to_owned(),
        url,
        options: BackendOptions {
            region: s3.then(|| "us-east-1".to_owned()),
            endpoint,
            path_style: s3,
        },
        labels: BTreeMap::new(),
    }
}

// --- file:// ---

pub struct FileTamper(pub PathBuf);

impl Tamper for FileTamper {
    fn plant<'a>(&'a self, key: &'a str, content: Bytes) -> BoxFuture<'a, ()> {
        Box::pin(async move {
            let path = self.0.join(key);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, content).unwrap();
        })
    }
    fn remove<'a>(&'a self, key: &'a str) -> BoxFuture<'a, ()> {
        Box::pin(async move { std::fs::remove_file(self.0.join(key)).unwrap() })
    }
    fn exists<'a>(&'a self, key: &'a str) -> BoxFuture<'a, bool> {
        Box::pin(async move { self.0.join(key).is_file() })
    }
}

async fn file_mirror(directory: &std::path::Path) -> Arc<dyn BlobMirror> {
    let backend = backend(
        BackendUrl::File {
            path: directory.to_owned(),
        },
        None,
    );
    open_with(
        &backend,
        &OpenOptions {
            uploads: test_uploads(),
            ..Default::default()
        },
    )
    .await
    .unwrap()
}

#[tokio::test]
async fn file_backend_passes_the_suite() {
    let directory = tempfile::tempdir().unwrap();
    let mirror = file_mirror(directory.path()).await;
    assert_eq!(
        mirror.describe(),
        format!("file:{}", directory.path().display())
    );
    suite::run(mirror, "", &FileTamper(directory.path().to_owned())).await;
    // No temporary files are left behind by the failed uploads.
    let images = directory.path().join("containers/images");
    let leftovers: Vec<_> = std::fs::read_dir(images)
        .unwrap()
        .flatten()
        .filter(|entry| !entry.file_name().to_string_lossy().starts_with("sha256:"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

#[tokio::test]
async fn file_backend_mirrors_from_a_registry() {
    let directory = tempfile::tempdir().unwrap();
    suite::mirror_from_registry(file_mirror(directory.path()).await).await;
}

// --- S3 (s3s-fs) ---

pub struct S3Tamper<'a>(pub &'a S3Server, pub &'static str);

impl Tamper for S3Tamper<'_> {
    fn plant<'a>(&'a self, key: &'a str, content: Bytes) -> BoxFuture<'a, ()> {
        Box::pin(async move {
            let path = self.0.object_path(self.1, key);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, content).unwrap();
        })
    }
    fn remove<'a>(&'a self, key: &'a str) -> BoxFuture<'a, ()> {
        Box::pin(async move { std::fs::remove_file(self.0.object_path(self.1, key)).unwrap() })
    }
    fn exists<'a>(&'a self, key: &'a str) -> BoxFuture<'a, bool> {
        Box::pin(async move { self.0.object_path(self.1, key).is_file() })
    }
}

async fn s3_mirror(server: &S3Server, bucket: &str, prefix: &str) -> Arc<dyn BlobMirror> {
    server.create_bucket(bucket).unwrap();
    let backend = backend(
        BackendUrl::S3 {
            bucket: bucket.to_owned(),
            prefix: prefix.to_owned(),
        },
        Some(server.endpoint_url()),
    );
    let options = OpenOptions {
        uploads: test_uploads(),
        s3_credentials: Some(S3Credentials {
            access_key_id: server.access_key().to_owned(),
            secret_access_key: server.secret_key().to_owned(),
        }),
        ..OpenOptions::default()
    };
    open_with(&backend, &options).await.unwrap()
}

#[tokio::test]
async fn s3_backend_passes_the_suite() {
    let server = S3Server::start().expect("start s3s-fs");
    let mirror = s3_mirror(&server, "mirror-bucket", "prod/k8s").await;
    assert_eq!(mirror.describe(), "s3://mirror-bucket/prod/k8s");
    suite::run(mirror, "prod/k8s", &S3Tamper(&server, "mirror-bucket")).await;
}

#[tokio::test]
async fn s3_backend_mirrors_from_a_registry() {
    let server = S3Server::start().expect("start s3s-fs");
    suite::mirror_from_registry(s3_mirror(&server, "registry-blobs", "").await).await;
}

#[tokio::test]
async fn s3_errors_are_classified_and_never_show_the_secret() {
    let server = S3Server::start().expect("start s3s-fs");
    let (content, digest) = random_blob(5, 1000);
    let mirror = s3_mirror(&server, "present", "").await;
    let options = OpenOptions {
        uploads: test_uploads(),
        s3_credentials: None,
        ..OpenOptions::default()
    };
    // Wrong credentials: refused, and the secret appears nowhere.
    let wrong = OpenOptions {
        s3_credentials: Some(S3Credentials {
            access_key_id: server.access_key().to_owned(),
            secret_access_key: "not-the-secret-0123456789".to_owned(),
        }),
        ..options
    };
    let denied = open_with(
        &backend(
            BackendUrl::S3 {
                bucket: "present".to_owned(),
                prefix: String::new(),
            },
            Some(server.endpoint_url()),
        ),
        &wrong,
    )
    .await
    .unwrap();
    let error = denied
        .put_blob(&digest, content.len() as u64, stream_of(&content))
        .await
        .unwrap_err();
    assert_eq!(error.kind(), ObjectErrorKind::Refused, "{error}");
    assert!(
        error
            .to_string()
            .starts_with("s3://present/containers/images/sha256:"),
        "{error}"
    );
    let shown = format!("{error} {error:?} {denied:?} {wrong:?}");
    assert!(!shown.contains("not-the-secret"), "{shown}");
    assert!(!shown.contains(server.secret_key()), "{shown}");
    // The right mirror still works.
    let outcome = mirror
        .put_blob(&digest, content.len() as u64, stream_of(&content))
        .await
        .unwrap();
    assert_eq!(outcome, PutOutcome::Written);
}

// --- GCS (fake-gcs-server) ---

pub struct GcsTamper<'a>(pub &'a GcsServer, pub &'static str);

impl Tamper for GcsTamper<'_> {
    fn plant<'a>(&'a self, key: &'a str, content: Bytes) -> BoxFuture<'a, ()> {
        Box::pin(async move { self.0.put_object(self.1, key, content).await.unwrap() })
    }
    fn remove<'a>(&'a self, key: &'a str) -> BoxFuture<'a, ()> {
        Box::pin(async move { self.0.delete_object(self.1, key).await.unwrap() })
    }
    fn exists<'a>(&'a self, key: &'a str) -> BoxFuture<'a, bool> {
        Box::pin(async move { self.0.get_object(self.1, key).await.unwrap().is_some() })
    }
}

async fn gcs_mirror(server: &GcsServer, bucket: &str, prefix: &str) -> Arc<dyn BlobMirror> {
    server.create_bucket(bucket).await.unwrap();
    let backend = backend(
        BackendUrl::Gcs {
            bucket: bucket.to_owned(),
            prefix: prefix.to_owned(),
        },
        Some(server.endpoint_url()),
    );
    open_with(
        &backend,
        &OpenOptions {
            uploads: test_uploads(),
            ..Default::default()
        },
    )
    .await
    .unwrap()
}

#[tokio::test]
async fn gcs_backend_passes_the_suite() {
    let server = GcsServer::start().expect("start fake-gcs-server");
    let mirror = gcs_mirror(&server, "k8s-artifacts-test", "prefix").await;
    assert_eq!(mirror.describe(), "gs://k8s-artifacts-test/prefix");
    suite::run(mirror, "prefix", &GcsTamper(&server, "k8s-artifacts-test")).await;
}

#[tokio::test]
async fn gcs_backend_mirrors_from_a_registry() {
    let server = GcsServer::start().expect("start fake-gcs-server");
    suite::mirror_from_registry(gcs_mirror(&server, "registry-blobs", "").await).await;
}
