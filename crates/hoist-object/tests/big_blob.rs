//! A 2 GiB blob goes to S3 (s3s-fs) in one streamed `PutObject`, and one through a multipart
//! upload, with bounded memory.
//!
//! Its own test binary, so that the process's peak resident memory (`VmHWM`) belongs to this
//! upload alone. The blob is generated on the fly, chunk by chunk, never held whole.

use bytes::Bytes;
use futures::StreamExt as _;
use hoist_object::{
    Backend, BackendOptions, BackendUrl, OpenOptions, PutOutcome, S3Credentials, UploadSettings,
    open_with,
};
use hoist_oci::Digest;
use hoist_store::{ByteStream, StoreError};
use hoist_testkit::S3Server;
use sha2::{Digest as _, Sha256};

const SIZE: u64 = 2 << 30;
const CHUNK: usize = 1 << 20;

/// Chunk `index` of the blob: a fixed pattern, made distinct by the index in its first bytes.
fn chunk(index: u64) -> Bytes {
    let mut bytes: Vec<u8> = (0..CHUNK).map(|i| (i * 31 % 251) as u8).collect();
    bytes[..8].copy_from_slice(&index.to_le_bytes());
    Bytes::from(bytes)
}

fn blob() -> ByteStream {
    let chunks = SIZE / CHUNK as u64;
    Box::pin(futures::stream::iter(0..chunks).map(|index| Ok::<_, StoreError>(chunk(index))))
}

/// The peak resident set of this process so far, in bytes (Linux `VmHWM`).
fn peak_resident() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").expect("procfs");
    let line = status
        .lines()
        .find(|line| line.starts_with("VmHWM:"))
        .expect("a VmHWM line");
    let kib: u64 = line
        .split_whitespace()
        .nth(1)
        .and_then(|value| value.parse().ok())
        .expect("a number of kB");
    kib * 1024
}

#[tokio::test(flavor = "multi_thread")]
async fn a_2_gib_blob_goes_to_s3_with_bounded_memory_streamed_or_in_parts() {
    let mut hasher = Sha256::new();
    let mut stream = blob();
    while let Some(item) = stream.next().await {
        hasher.update(item.unwrap());
    }
    let digest = Digest::from_sha256(hasher.finalize().into());

    let server = S3Server::start().expect("start s3s-fs");
    server.create_bucket("big").unwrap();
    let backend = Backend {
        name: "big".to_owned(),
        url: BackendUrl::S3 {
            bucket: "big".to_owned(),
            prefix: String::new(),
        },
        options: BackendOptions {
            region: Some("us-east-1".to_owned()),
            endpoint: Some(server.endpoint_url()),
            path_style: true,
        },
        labels: Default::default(),
    };
    let credentials = S3Credentials {
        access_key_id: server.access_key().to_owned(),
        secret_access_key: server.secret_key().to_owned(),
    };
    let stored = server.object_path("big", &hoist_object::blob_key("", &digest));
    let mib = |bytes: u64| bytes as f64 / f64::from(1 << 20);
    let start = peak_resident();
    // The defaults (one streamed PutObject up to 5 GiB), then a multipart upload of 16 MiB parts.
    let settings = [
        ("one PutObject", UploadSettings::default()),
        (
            "multipart",
            UploadSettings {
                multipart_threshold: 64 << 20,
                part_size: 16 << 20,
            },
        ),
    ];
    for (how, uploads) in settings {
        let options = OpenOptions {
            uploads,
            s3_credentials: Some(credentials.clone()),
            ..OpenOptions::default()
        };
        let mirror = open_with(&backend, &options).await.unwrap();
        let outcome = mirror.put_blob(&digest, SIZE, blob()).await.unwrap();
        let after = peak_resident();
        assert_eq!(outcome, PutOutcome::Written, "{how}");
        assert_eq!(mirror.blob_size(&digest).await.unwrap(), Some(SIZE));
        assert_eq!(std::fs::metadata(&stored).unwrap().len(), SIZE);
        println!(
            "2 GiB to S3 ({how}): peak resident {:.1} MiB before, {:.1} MiB after",
            mib(start),
            mib(after)
        );
        // A streamed body holds a chunk or two, a multipart upload one 16 MiB part being filled
        // and one being sent, plus the SDK's own buffers: far below the blob's size, and
        // independent of it.
        assert!(
            after < start + (96 << 20),
            "{how}: peak resident memory grew from {:.1} MiB to {:.1} MiB",
            mib(start),
            mib(after)
        );
        std::fs::remove_file(&stored).unwrap();
    }
}
