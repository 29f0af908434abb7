//! The keyed side of the backends ([`Bucket`]), as file promotion uses it: objects at arbitrary
//! keys, create-only and verified writes, streamed copies between backends, against a
//! directory, s3s-fs and fake-gcs-server.

use std::collections::BTreeMap;
use std::sync::Arc;

use bytes::Bytes;
use futures::TryStreamExt;
use hoist_object::{
    Backend, BackendOptions, BackendUrl, Bucket, ObjectErrorKind, OpenOptions, PutOutcome,
    S3Credentials, copy_object, hash_object, open_bucket,
};
use hoist_store::{ByteStream, StoreError, StoreErrorKind};
use hoist_testkit::{GcsServer, S3Server};

use crate::backends::{FileTamper, GcsTamper, S3Tamper};
use crate::suite::{LARGE, Tamper, test_uploads};
use crate::{random_blob, stream_of};

const KEY: &str = "v1.30.0/bin/linux/amd64/kubectl";

fn backend(url: BackendUrl, endpoint: Option<String>) -> Backend {
    let s3 = matches!(url, BackendUrl::S3 { .. });
    Backend {
        name: url.to_string(),
        url,
        options: BackendOptions {
            region: s3.then(|| "us-east-1".to_owned()),
            endpoint,
            path_style: s3,
        },
        labels: BTreeMap::new(),
    }
}

fn options(s3: Option<&S3Server>) -> OpenOptions {
    OpenOptions {
        uploads: test_uploads(),
        s3_credentials: s3.map(|server| S3Credentials {
            access_key_id: server.access_key().to_owned(),
            secret_access_key: server.secret_key().to_owned(),
        }),
        timeouts: Default::default(),
    }
}

async fn file_bucket(dir: &std::path::Path) -> Arc<dyn Bucket> {
    let url = BackendUrl::File {
        path: dir.to_owned(),
    };
    open_bucket(&backend(url, None), &options(None))
        .await
        .unwrap()
}

async fn s3_bucket(server: &S3Server, bucket: &str, prefix: &str) -> Arc<dyn Bucket> {
    server.create_bucket(bucket).unwrap();
    let url = BackendUrl::S3 {
        bucket: bucket.to_owned(),
        prefix: prefix.to_owned(),
    };
    open_bucket(
        &backend(url, Some(server.endpoint_url())),
        &options(Some(server)),
    )
    .await
    .unwrap()
}

async fn gcs_bucket(server: &GcsServer, bucket: &str, prefix: &str) -> Arc<dyn Bucket> {
    server.create_bucket(bucket).await.unwrap();
    let url = BackendUrl::Gcs {
        bucket: bucket.to_owned(),
        prefix: prefix.to_owned(),
    };
    open_bucket(&backend(url, Some(server.endpoint_url())), &options(None))
        .await
        .unwrap()
}

async fn fetch(bucket: &dyn Bucket, key: &str) -> Bytes {
    let chunks: Vec<Bytes> = bucket
        .fetch_object(key)
        .await
        .expect("fetch")
        .try_collect()
        .await
        .expect("read");
    Bytes::from(chunks.concat())
}

/// A stream that fails if anyone reads it.
fn unreadable() -> ByteStream {
    Box::pin(futures::stream::once(async {
        Err(StoreError::new(
            StoreErrorKind::Network,
            "unreadable",
            "this stream must not be read",
        ))
    }))
}

/// Put, HEAD, fetch, create-only, verification, multipart and key checks at arbitrary keys.
async fn run(bucket: Arc<dyn Bucket>, prefix: &str, tamper: &dyn Tamper) {
    let bucket = bucket.as_ref();
    let stored = |key: &str| {
        if prefix.is_empty() {
            key.to_owned()
        } else {
            format!("{prefix}/{key}")
        }
    };
    let (content, digest) = random_blob(11, 200_000);
    let size = content.len() as u64;
    assert_eq!(bucket.object_size(KEY).await.unwrap(), None);
    assert_eq!(
        bucket
            .put_object(KEY, &digest, size, stream_of(&content))
            .await
            .unwrap(),
        PutOutcome::Written
    );
    assert!(tamper.exists(&stored(KEY)).await, "stored under prefix/key");
    assert_eq!(bucket.object_size(KEY).await.unwrap(), Some(size));
    assert_eq!(fetch(bucket, KEY).await, content);
    assert_eq!(hash_object(bucket, KEY).await.unwrap(), (size, digest));
    assert!(
        bucket.url_of(KEY).ends_with(&stored(KEY)),
        "{}",
        bucket.url_of(KEY)
    );

    // Create-only: a second put does not read its stream and changes nothing.
    assert_eq!(
        bucket
            .put_object(KEY, &digest, size, unreadable())
            .await
            .unwrap(),
        PutOutcome::AlreadyPresent
    );
    // An object of another size is corruption, never replaced.
    let error = bucket
        .put_object(KEY, &digest, size + 1, unreadable())
        .await
        .unwrap_err();
    assert_eq!(error.kind(), ObjectErrorKind::Corrupt, "{error}");
    assert_eq!(fetch(bucket, KEY).await, content);

    // Bytes that do not hash to the digest leave nothing behind, small or multipart.
    for (length, key) in [(50_000, "bad/small"), (LARGE, "bad/large")] {
        let (good, good_digest) = random_blob(12, length);
        let mut wrong = good.to_vec();
        wrong[length / 2] ^= 0xff;
        let error = bucket
            .put_object(
                key,
                &good_digest,
                length as u64,
                stream_of(&Bytes::from(wrong)),
            )
            .await
            .unwrap_err();
        assert_eq!(error.kind(), ObjectErrorKind::Corrupt, "{key}: {error}");
        assert_eq!(bucket.object_size(key).await.unwrap(), None, "{key}");
        assert!(!tamper.exists(&stored(key)).await, "{key}");
    }
    // A large object goes up in parts and comes back whole.
    let (large, large_digest) = random_blob(13, LARGE);
    assert_eq!(
        bucket
            .put_object(
                "big/file.tar.gz",
                &large_digest,
                LARGE as u64,
                stream_of(&large)
            )
            .await
            .unwrap(),
        PutOutcome::Written
    );
    assert_eq!(
        hash_object(bucket, "big/file.tar.gz").await.unwrap(),
        (LARGE as u64, large_digest)
    );

    // Keys must stay below the prefix.
    for bad in ["../escape", "/absolute", "a//b", "a/./b", ""] {
        let error = bucket
            .put_object(bad, &digest, size, stream_of(&content))
            .await
            .unwrap_err();
        assert_eq!(error.kind(), ObjectErrorKind::Config, "{bad:?}: {error}");
        assert_eq!(
            bucket.object_size(bad).await.unwrap_err().kind(),
            ObjectErrorKind::Config
        );
    }
    // A missing object is NotFound on fetch.
    let error = bucket.fetch_object("nothing/here").await.err().unwrap();
    assert_eq!(error.kind(), ObjectErrorKind::NotFound, "{error}");
}

#[tokio::test]
async fn file_buckets_pass_the_suite() {
    let dir = tempfile::tempdir().unwrap();
    run(
        file_bucket(dir.path()).await,
        "",
        &FileTamper(dir.path().to_owned()),
    )
    .await;
    // Failed writes leave no temporary files.
    let leftovers: Vec<_> = std::fs::read_dir(dir.path().join("bad"))
        .map(|read| read.flatten().map(|entry| entry.path()).collect())
        .unwrap_or_default();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

#[tokio::test]
async fn s3_buckets_pass_the_suite() {
    let server = S3Server::start().expect("start s3s-fs");
    let bucket = s3_bucket(&server, "release-bucket", "binaries/kops").await;
    run(
        bucket,
        "binaries/kops",
        &S3Tamper(&server, "release-bucket"),
    )
    .await;
}

#[tokio::test]
async fn gcs_buckets_pass_the_suite() {
    let server = GcsServer::start().expect("start fake-gcs-server");
    let bucket = gcs_bucket(&server, "release-bucket", "").await;
    run(bucket, "", &GcsTamper(&server, "release-bucket")).await;
}

#[tokio::test]
async fn objects_copy_between_backends_verified() {
    let s3 = S3Server::start().expect("start s3s-fs");
    let gcs = GcsServer::start().expect("start fake-gcs-server");
    let dir = tempfile::tempdir().unwrap();
    let buckets: Vec<Arc<dyn Bucket>> = vec![
        file_bucket(dir.path()).await,
        s3_bucket(&s3, "copies", "s3").await,
        gcs_bucket(&gcs, "copies", "gcs").await,
    ];
    let (content, digest) = random_blob(21, LARGE);
    let size = content.len() as u64;
    buckets[0]
        .put_object("release/tool", &digest, size, stream_of(&content))
        .await
        .unwrap();
    // file -> S3 -> GCS -> file (under another key), each streamed and verified.
    for (from, to, from_key, to_key) in [
        (0, 1, "release/tool", "release/tool"),
        (1, 2, "release/tool", "release/tool"),
        (2, 0, "release/tool", "again/tool"),
    ] {
        let outcome = copy_object(
            buckets[from].as_ref(),
            from_key,
            buckets[to].as_ref(),
            to_key,
            &digest,
            size,
        )
        .await
        .unwrap();
        assert_eq!(outcome, PutOutcome::Written, "{from} -> {to}");
        assert_eq!(
            hash_object(buckets[to].as_ref(), to_key).await.unwrap(),
            (size, digest)
        );
    }
    // A source whose bytes are not what the manifest says: refused, nothing written.
    let (_, other) = random_blob(22, 10);
    for to in [1, 2, 0] {
        let error = copy_object(
            buckets[0].as_ref(),
            "release/tool",
            buckets[to].as_ref(),
            "wrong/tool",
            &other,
            size,
        )
        .await
        .unwrap_err();
        assert_eq!(error.kind(), ObjectErrorKind::Corrupt, "{error}");
        assert!(error.to_string().contains("release/tool"), "{error}");
        assert_eq!(buckets[to].object_size("wrong/tool").await.unwrap(), None);
    }
}
