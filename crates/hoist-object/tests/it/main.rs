//! Integration tests of hoist-object against real servers on 127.0.0.1: s3s-fs (S3),
//! fake-gcs-server (GCS), a directory (file://) and registry:2 as the source of blobs; blobs
//! (`BlobMirror`) and objects at arbitrary keys (`Bucket`, for file promotion).
//! `ci/install-mirror-servers.sh` installs the object servers.

mod backends;
mod buckets;
mod catalogue;
mod suite;
mod timeouts;

use bytes::Bytes;
use hoist_oci::Digest;
use hoist_store::ByteStream;
use rand::{RngCore, SeedableRng};

/// Deterministic random bytes and their digest.
pub fn random_blob(seed: u64, length: usize) -> (Bytes, Digest) {
    let mut content = vec![0u8; length];
    rand::rngs::StdRng::seed_from_u64(seed).fill_bytes(&mut content);
    let digest = Digest::of(&content);
    (Bytes::from(content), digest)
}

/// `content` as a stream of 64 KiB chunks, as a network body would arrive.
pub fn stream_of(content: &Bytes) -> ByteStream {
    let chunks: Vec<Result<Bytes, hoist_store::StoreError>> = content
        .chunks(64 * 1024)
        .map(|chunk| Ok(content.slice_ref(chunk)))
        .collect();
    Box::pin(futures::stream::iter(chunks))
}
