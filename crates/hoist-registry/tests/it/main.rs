//! Integration tests of hoist-registry against real registry:2 servers on 127.0.0.1 (Debian's
//! `docker-registry`), plus small in-process fakes for rate limits, redirects and bearer tokens,
//! and the test kit's fault proxy for slow links, silence and quotas.

mod auth;
mod blobs;
mod faults;
mod manifests;
mod network;
mod servers;
mod tags;

use bytes::Bytes;
use futures::StreamExt as _;
use hoist_oci::Digest;
use hoist_store::{ByteStream, StoreError};
use sha2::{Digest as _, Sha256};

/// `bytes` as a stream of `item`-sized pieces.
pub fn stream_of(bytes: &[u8], item: usize) -> ByteStream {
    let pieces: Vec<Result<Bytes, StoreError>> = bytes
        .chunks(item.max(1))
        .map(|piece| Ok(Bytes::copy_from_slice(piece)))
        .collect();
    Box::pin(futures::stream::iter(pieces))
}

/// Deterministic pseudo-random content: piece `index` of a blob seeded with `seed`.
fn piece(seed: u64, index: u64, len: usize) -> Bytes {
    let mut state = seed ^ index.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut out = Vec::with_capacity(len);
    while out.len() < len {
        // xorshift64
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        out.extend_from_slice(&state.to_le_bytes());
    }
    out.truncate(len);
    Bytes::from(out)
}

/// A blob of `size` bytes made on the fly in 64 KiB items, never held whole: its digest and a
/// stream of it.
pub fn generated(seed: u64, size: u64) -> (Digest, ByteStream) {
    const ITEM: u64 = 64 * 1024;
    let mut hasher = Sha256::new();
    let count = size.div_ceil(ITEM);
    let length = move |index: u64| (size - index * ITEM).min(ITEM) as usize;
    for index in 0..count {
        hasher.update(piece(seed, index, length(index)));
    }
    let digest = Digest::from_sha256(hasher.finalize().into());
    let stream =
        futures::stream::iter(0..count).map(move |index| Ok(piece(seed, index, length(index))));
    (digest, Box::pin(stream))
}

/// Reads a stream to its end, hashing it; returns the digest and size.
pub async fn digest_of(mut stream: ByteStream) -> Result<(Digest, u64), StoreError> {
    let mut hasher = Sha256::new();
    let mut size = 0;
    while let Some(chunk) = stream.next().await {
        let chunk = chunk?;
        size += chunk.len() as u64;
        hasher.update(&chunk);
    }
    Ok((Digest::from_sha256(hasher.finalize().into()), size))
}

/// Reads a stream to its end.
pub async fn collect(mut stream: ByteStream) -> Vec<u8> {
    let mut out = Vec::new();
    while let Some(chunk) = stream.next().await {
        out.extend_from_slice(&chunk.expect("a good chunk"));
    }
    out
}
