//! Reading a *verified* blob stream on its way into a bucket: counted against its size, never
//! hashed again, and never letting an uploader see the whole blob before its end was verified.
//!
//! The stream given to [`BlobMirror::put_verified_blob`](crate::BlobMirror::put_verified_blob)
//! fails instead of ending when its bytes do not hash to the digest. Two readers build on that:
//!
//! - [`Guarded`] passes the stream through as a request body, holding back its latest chunk
//!   until the next one (or the verified end) arrives: a server that commits an object once it
//!   received `size` bytes (a single `PutObject`, a GCS media upload) never receives the last of
//!   them when verification fails; the body fails instead, and nothing is committed.
//! - [`PartReader`] cuts the stream into parts for multipart uploads, holding one part in memory.
//!   `None` comes only after the verified end, so the completing request is sent only then.
//!
//! Both keep a CRC32C of what passed (cheap next to sha256), which GCS reports for what it stored.

use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use bytes::{Bytes, BytesMut};
use crc_fast::{CrcAlgorithm, Digest as Crc};
use futures::{Stream, StreamExt};
use hoist_store::{ByteStream, StoreError, StoreErrorKind};

use crate::error::ObjectError;

/// The blob stream ran past its size, or ended short of it.
pub(crate) fn size_error(subject: &str, size: u64, seen: u64, how: &str) -> StoreError {
    StoreError::new(
        StoreErrorKind::DigestMismatch,
        subject,
        format!("the blob was announced as {size} bytes but the stream held {how} {seen}"),
    )
}

/// What a [`Guarded`] stream saw, readable after the request that consumed it ended.
#[derive(Debug)]
pub(crate) struct Tally {
    seen: u64,
    crc: Crc,
    /// The input stream's own failure (a digest mismatch, a broken source), which the request
    /// reports only as a failed body.
    error: Option<StoreError>,
}

impl Tally {
    /// The input's own error, if it failed.
    pub(crate) fn take_error(&mut self) -> Option<StoreError> {
        self.error.take()
    }

    /// The CRC32C of the bytes that passed.
    pub(crate) fn crc32c(&self) -> u32 {
        crc32c(&self.crc)
    }
}

fn crc32c(crc: &Crc) -> u32 {
    // A 32-bit CRC in a u64.
    u32::try_from(crc.finalize()).unwrap_or_default()
}

/// A verified blob stream as a request body: counted, with its latest chunk held back until the
/// verified end (see the module documentation).
pub(crate) struct Guarded {
    inner: ByteStream,
    subject: String,
    size: u64,
    held: Option<Bytes>,
    tally: Arc<Mutex<Tally>>,
    done: bool,
}

impl Guarded {
    /// Wraps `inner`, a verified stream of `size` bytes; `subject` names the object in errors.
    pub(crate) fn new(inner: ByteStream, subject: &str, size: u64) -> (Self, Arc<Mutex<Tally>>) {
        let tally = Arc::new(Mutex::new(Tally {
            seen: 0,
            crc: Crc::new(CrcAlgorithm::Crc32Iscsi),
            error: None,
        }));
        (
            Self {
                inner,
                subject: subject.to_owned(),
                size,
                held: None,
                tally: Arc::clone(&tally),
                done: false,
            },
            tally,
        )
    }

    fn fail(&mut self, error: StoreError) -> Poll<Option<std::io::Result<Bytes>>> {
        self.done = true;
        self.held = None;
        let message = error.to_string();
        lock(&self.tally).error = Some(error);
        Poll::Ready(Some(Err(std::io::Error::other(message))))
    }
}

fn lock(tally: &Mutex<Tally>) -> std::sync::MutexGuard<'_, Tally> {
    tally
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl Stream for Guarded {
    type Item = std::io::Result<Bytes>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        if self.done {
            return Poll::Ready(None);
        }
        loop {
            match self.inner.as_mut().poll_next(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(Some(Ok(chunk))) => {
                    if chunk.is_empty() {
                        continue;
                    }
                    let seen = {
                        let mut tally = lock(&self.tally);
                        tally.seen += chunk.len() as u64;
                        tally.crc.update(&chunk);
                        tally.seen
                    };
                    if seen > self.size {
                        let error = size_error(&self.subject, self.size, seen, "more than");
                        return self.fail(error);
                    }
                    if let Some(previous) = self.held.replace(chunk) {
                        return Poll::Ready(Some(Ok(previous)));
                    }
                }
                Poll::Ready(Some(Err(error))) => return self.fail(error),
                Poll::Ready(None) => {
                    let seen = lock(&self.tally).seen;
                    if seen != self.size {
                        let error = size_error(&self.subject, self.size, seen, "only");
                        return self.fail(error);
                    }
                    self.done = true;
                    return Poll::Ready(self.held.take().map(Ok));
                }
            }
        }
    }
}

/// A [`Guarded`] stream as an HTTP body of exactly its size. `Sync` (as the AWS SDK wants) by
/// way of a mutex: polling has `&mut` access and never locks it, `is_end_stream` locks it briefly.
pub(crate) struct GuardedBody {
    inner: Mutex<Guarded>,
    size: u64,
}

impl GuardedBody {
    pub(crate) fn new(guarded: Guarded) -> Self {
        let size = guarded.size;
        Self {
            inner: Mutex::new(guarded),
            size,
        }
    }
}

impl http_body::Body for GuardedBody {
    type Data = Bytes;
    type Error = std::io::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Bytes>, Self::Error>>> {
        let guarded = self
            .get_mut()
            .inner
            .get_mut()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        Pin::new(guarded)
            .poll_next(cx)
            .map(|item| item.map(|chunk| chunk.map(http_body::Frame::data)))
    }

    fn size_hint(&self) -> http_body::SizeHint {
        http_body::SizeHint::with_exact(self.size)
    }

    /// True once the verified end was passed on: a body of known length may not be asked again,
    /// and the idle watch counts the time to drain it from then on.
    fn is_end_stream(&self) -> bool {
        let guarded = self
            .inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        guarded.done && guarded.held.is_none()
    }
}

/// Reads a verified blob stream part by part, holding at most one part in memory. `None` only
/// after the whole blob was read and its end verified: an uploader that commits only then never
/// commits bad bytes.
pub(crate) struct PartReader {
    stream: ByteStream,
    subject: String,
    size: u64,
    part_size: usize,
    /// Bytes read past the last part returned.
    pending: BytesMut,
    seen: u64,
    finished: bool,
    /// CRC32C of every byte read, for stores that report one (GCS) to be checked against.
    crc: Crc,
}

impl PartReader {
    /// Cuts `stream`, a verified stream of `size` bytes, into `part_size` parts.
    pub(crate) fn new(stream: ByteStream, subject: &str, size: u64, part_size: u64) -> Self {
        Self {
            stream,
            subject: subject.to_owned(),
            size,
            part_size: usize::try_from(part_size).unwrap_or(usize::MAX),
            pending: BytesMut::new(),
            seen: 0,
            finished: false,
            crc: Crc::new(CrcAlgorithm::Crc32Iscsi),
        }
    }

    /// The next part: exactly `part_size` bytes, or fewer for the last one. `None` once the whole
    /// blob was read *and verified*.
    pub(crate) async fn next_part(&mut self) -> Result<Option<Bytes>, ObjectError> {
        while !self.finished && self.pending.len() < self.part_size {
            match self.stream.next().await {
                Some(Ok(chunk)) => {
                    self.seen += chunk.len() as u64;
                    if self.seen > self.size {
                        let error = size_error(&self.subject, self.size, self.seen, "more than");
                        return Err(ObjectError::from_stream(&self.subject, error));
                    }
                    self.crc.update(&chunk);
                    self.pending.extend_from_slice(&chunk);
                }
                Some(Err(error)) => return Err(ObjectError::from_stream(&self.subject, error)),
                None => {
                    if self.seen != self.size {
                        let error = size_error(&self.subject, self.size, self.seen, "only");
                        return Err(ObjectError::from_stream(&self.subject, error));
                    }
                    self.finished = true;
                }
            }
        }
        if self.pending.is_empty() {
            return Ok(None);
        }
        let take = self.pending.len().min(self.part_size);
        Ok(Some(self.pending.split_to(take).freeze()))
    }

    /// The CRC32C of the bytes read so far (of the whole blob once it was read to the end).
    pub(crate) fn crc32c(&self) -> u32 {
        crc32c(&self.crc)
    }
}

/// The CRC32C of `bytes` (S3 part checksums).
pub(crate) fn crc32c_of(bytes: &[u8]) -> u32 {
    u32::try_from(crc_fast::checksum(CrcAlgorithm::Crc32Iscsi, bytes)).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use hoist_oci::Digest;
    use hoist_store::VerifyingStream;

    use super::*;
    use crate::error::ObjectErrorKind;

    fn stream_of(chunks: Vec<&'static [u8]>) -> ByteStream {
        Box::pin(futures::stream::iter(
            chunks
                .into_iter()
                .map(|chunk| Ok(Bytes::from_static(chunk))),
        ))
    }

    fn verified(chunks: Vec<&'static [u8]>, good: &[u8]) -> ByteStream {
        let size = chunks.iter().map(|chunk| chunk.len() as u64).sum();
        VerifyingStream::new(stream_of(chunks), "blob", Digest::of(good), size).boxed()
    }

    #[tokio::test]
    async fn cuts_into_parts_and_ends_only_after_verification() {
        let content: &[u8] = b"0123456789";
        let mut reader =
            PartReader::new(verified(vec![b"0123", b"456789"], content), "blob", 10, 4);
        let mut parts = Vec::new();
        while let Some(part) = reader.next_part().await.unwrap() {
            parts.push(part);
        }
        assert_eq!(parts, [&b"0123"[..], b"4567", b"89"]);
        assert_eq!(reader.crc32c(), crc32c_of(content));

        // Bad bytes of the right size: the error comes where the end would.
        let mut reader =
            PartReader::new(verified(vec![b"0123", b"45678X"], content), "blob", 10, 4);
        assert_eq!(reader.next_part().await.unwrap().unwrap(), &b"0123"[..]);
        assert_eq!(reader.next_part().await.unwrap().unwrap(), &b"4567"[..]);
        let error = reader.next_part().await.unwrap_err();
        assert_eq!(error.kind(), ObjectErrorKind::Corrupt);

        // A stream of another size than announced.
        let mut reader = PartReader::new(stream_of(vec![b"01234"]), "blob", 4, 4);
        assert_eq!(
            reader.next_part().await.unwrap_err().kind(),
            ObjectErrorKind::Corrupt
        );
    }

    #[tokio::test]
    async fn a_guarded_body_holds_back_the_last_chunk_until_verified() {
        let content: &[u8] = b"hello world";
        let (guarded, tally) =
            Guarded::new(verified(vec![b"hello", b" ", b"world"], content), "o", 11);
        let items: Vec<_> = guarded.collect().await;
        let chunks: Vec<Bytes> = items.into_iter().map(Result::unwrap).collect();
        assert_eq!(chunks.concat(), content);
        assert_eq!(lock(&tally).crc32c(), crc32c_of(content));

        // A mismatch: the last chunk is never handed out, the error comes instead.
        let (guarded, tally) =
            Guarded::new(verified(vec![b"hello", b" ", b"wOrld"], content), "o", 11);
        let items: Vec<_> = guarded.collect().await;
        let passed: Vec<u8> = items
            .iter()
            .filter_map(|item| item.as_ref().ok())
            .flat_map(|chunk| chunk.to_vec())
            .collect();
        assert_eq!(passed, b"hello ");
        assert!(items.last().unwrap().is_err());
        let error = lock(&tally).take_error().expect("the stream's own error");
        assert_eq!(error.kind(), StoreErrorKind::DigestMismatch);
    }
}
