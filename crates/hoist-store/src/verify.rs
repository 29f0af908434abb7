//! [`VerifyingStream`]: checks size and sha256 of a blob while it streams.

use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use futures::Stream;
use hoist_oci::Digest;
use sha2::{Digest as _, Sha256};

use crate::{ByteStream, StoreError};

/// Passes a blob's chunks through while hashing them, and fails at the end (or as soon as the
/// stream runs past `expected_size`) when the content is not what was expected.
///
/// The error comes *instead of* the end of the stream, so a consumer that commits only after seeing
/// the end never commits bad bytes. Nothing is buffered: memory use does not grow with blob size.
pub struct VerifyingStream {
    inner: ByteStream,
    subject: String,
    expected: Digest,
    expected_size: u64,
    hasher: Sha256,
    seen: u64,
    done: bool,
}

impl std::fmt::Debug for VerifyingStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VerifyingStream")
            .field("subject", &self.subject)
            .field("expected", &self.expected)
            .field("expected_size", &self.expected_size)
            .field("seen", &self.seen)
            .finish()
    }
}

impl VerifyingStream {
    /// Wraps `inner`, which must yield exactly `expected_size` bytes hashing to `expected`.
    /// `subject` names the blob in errors.
    pub fn new(
        inner: ByteStream,
        subject: impl Into<String>,
        expected: Digest,
        expected_size: u64,
    ) -> Self {
        Self {
            inner,
            subject: subject.into(),
            expected,
            expected_size,
            hasher: Sha256::new(),
            seen: 0,
            done: false,
        }
    }

    /// Boxes this stream as a [`ByteStream`].
    pub fn boxed(self) -> ByteStream {
        Box::pin(self)
    }

    fn mismatch(&mut self) -> StoreError {
        let actual = Digest::from_sha256(std::mem::take(&mut self.hasher).finalize().into());
        StoreError::digest_mismatch(
            &self.subject,
            &self.expected,
            self.expected_size,
            &actual,
            self.seen,
        )
    }
}

impl Stream for VerifyingStream {
    type Item = Result<Bytes, StoreError>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        if self.done {
            return Poll::Ready(None);
        }
        match self.inner.as_mut().poll_next(cx) {
            Poll::Pending => Poll::Pending,
            Poll::Ready(Some(Ok(chunk))) => {
                self.seen += chunk.len() as u64;
                if self.seen > self.expected_size {
                    self.done = true;
                    self.hasher.update(&chunk);
                    return Poll::Ready(Some(Err(self.mismatch())));
                }
                self.hasher.update(&chunk);
                Poll::Ready(Some(Ok(chunk)))
            }
            Poll::Ready(Some(Err(error))) => {
                self.done = true;
                Poll::Ready(Some(Err(error)))
            }
            Poll::Ready(None) => {
                self.done = true;
                let actual =
                    Digest::from_sha256(std::mem::take(&mut self.hasher).finalize().into());
                if actual == self.expected && self.seen == self.expected_size {
                    Poll::Ready(None)
                } else {
                    Poll::Ready(Some(Err(StoreError::digest_mismatch(
                        &self.subject,
                        &self.expected,
                        self.expected_size,
                        &actual,
                        self.seen,
                    ))))
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use futures::{StreamExt, stream};

    use super::*;
    use crate::StoreErrorKind;

    fn chunks(parts: &[&'static [u8]]) -> ByteStream {
        Box::pin(stream::iter(
            parts
                .iter()
                .map(|p| Ok(Bytes::from_static(p)))
                .collect::<Vec<_>>(),
        ))
    }

    async fn drain(stream: VerifyingStream) -> (Vec<u8>, Option<StoreError>) {
        let mut stream = stream.boxed();
        let mut out = Vec::new();
        while let Some(item) = stream.next().await {
            match item {
                Ok(chunk) => out.extend_from_slice(&chunk),
                Err(error) => return (out, Some(error)),
            }
        }
        (out, None)
    }

    #[tokio::test]
    async fn passes_good_content() {
        let digest = Digest::of(b"hello world");
        let (out, error) = drain(VerifyingStream::new(
            chunks(&[b"hello ", b"world"]),
            "b",
            digest,
            11,
        ))
        .await;
        assert_eq!(out, b"hello world");
        assert!(error.is_none());
    }

    #[tokio::test]
    async fn fails_on_flipped_byte_at_the_end() {
        let digest = Digest::of(b"hello world");
        let (_, error) = drain(VerifyingStream::new(
            chunks(&[b"hello ", b"wOrld"]),
            "b",
            digest,
            11,
        ))
        .await;
        let error = error.expect("a mismatch");
        assert_eq!(error.kind(), StoreErrorKind::DigestMismatch);
        assert!(!error.is_retryable());
    }

    #[tokio::test]
    async fn fails_as_soon_as_too_long() {
        let digest = Digest::of(b"hello");
        let (out, error) = drain(VerifyingStream::new(
            chunks(&[b"hel", b"lo!!", b"more"]),
            "b",
            digest,
            5,
        ))
        .await;
        assert_eq!(out, b"hel", "the chunk that overruns is not passed on");
        assert_eq!(error.unwrap().kind(), StoreErrorKind::DigestMismatch);
    }

    #[tokio::test]
    async fn fails_when_short() {
        let digest = Digest::of(b"hello");
        let (_, error) = drain(VerifyingStream::new(chunks(&[b"hell"]), "b", digest, 5)).await;
        assert_eq!(error.unwrap().kind(), StoreErrorKind::DigestMismatch);
    }
}
