//! Cuts a verified blob stream into parts, holding at most one part in memory.

use bytes::{Bytes, BytesMut};
use futures::StreamExt;
use hoist_oci::Digest;
use hoist_store::{ByteStream, VerifyingStream};
use md5::{Digest as _, Md5};

use crate::error::ObjectError;

/// Reads a blob stream part by part. The stream is wrapped in a [`VerifyingStream`], so a blob
/// whose bytes do not hash to its digest fails *before* the reader reports the end: an uploader
/// that commits only after [`PartReader::next_part`] returned `None` never commits bad bytes.
pub(crate) struct PartReader {
    stream: ByteStream,
    subject: String,
    part_size: usize,
    /// Bytes read past the last part returned.
    pending: BytesMut,
    finished: bool,
    /// MD5 of every byte read, for stores that report one (GCS) to be checked against.
    md5: Md5,
}

impl PartReader {
    /// Verifies `stream` against `digest` and `size` while cutting it into `part_size` parts.
    pub(crate) fn new(
        stream: ByteStream,
        subject: &str,
        digest: &Digest,
        size: u64,
        part_size: u64,
    ) -> Self {
        Self {
            stream: VerifyingStream::new(stream, subject, *digest, size).boxed(),
            subject: subject.to_owned(),
            part_size: usize::try_from(part_size).unwrap_or(usize::MAX),
            pending: BytesMut::new(),
            finished: false,
            md5: Md5::new(),
        }
    }

    /// The next part: exactly `part_size` bytes, or fewer for the last one. `None` once the whole
    /// blob was read *and verified*.
    pub(crate) async fn next_part(&mut self) -> Result<Option<Bytes>, ObjectError> {
        while !self.finished && self.pending.len() < self.part_size {
            match self.stream.next().await {
                Some(Ok(chunk)) => {
                    self.md5.update(&chunk);
                    self.pending.extend_from_slice(&chunk);
                }
                Some(Err(error)) => return Err(ObjectError::from_stream(&self.subject, error)),
                None => self.finished = true,
            }
        }
        if self.pending.is_empty() {
            return Ok(None);
        }
        let take = self.pending.len().min(self.part_size);
        Ok(Some(self.pending.split_to(take).freeze()))
    }

    /// Reads the whole (verified) blob into memory; for blobs under the multipart threshold.
    pub(crate) async fn read_all(&mut self) -> Result<Bytes, ObjectError> {
        self.part_size = usize::MAX;
        Ok(self.next_part().await?.unwrap_or_default())
    }

    /// The MD5 of the bytes read so far (of the whole blob once it was read to the end).
    pub(crate) fn md5(&self) -> [u8; 16] {
        self.md5.clone().finalize().into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ObjectErrorKind;

    fn stream_of(chunks: Vec<&'static [u8]>) -> ByteStream {
        Box::pin(futures::stream::iter(
            chunks
                .into_iter()
                .map(|chunk| Ok(Bytes::from_static(chunk))),
        ))
    }

    #[tokio::test]
    async fn cuts_into_parts_and_verifies_before_the_end() {
        let content: &[u8] = b"0123456789";
        let digest = Digest::of(content);
        let mut reader =
            PartReader::new(stream_of(vec![b"0123", b"456789"]), "blob", &digest, 10, 4);
        let mut parts = Vec::new();
        while let Some(part) = reader.next_part().await.unwrap() {
            parts.push(part);
        }
        assert_eq!(parts, [&b"0123"[..], b"4567", b"89"]);
        assert_eq!(reader.md5(), <[u8; 16]>::from(Md5::digest(content)));

        // Bad bytes of the right size: the error comes where the end would.
        let mut reader =
            PartReader::new(stream_of(vec![b"0123", b"45678X"]), "blob", &digest, 10, 4);
        assert_eq!(reader.next_part().await.unwrap().unwrap(), &b"0123"[..]);
        assert_eq!(reader.next_part().await.unwrap().unwrap(), &b"4567"[..]);
        let error = reader.next_part().await.unwrap_err();
        assert_eq!(error.kind(), ObjectErrorKind::Corrupt);

        let mut reader =
            PartReader::new(stream_of(vec![b"0123", b"45678X"]), "blob", &digest, 10, 4);
        assert_eq!(
            reader.read_all().await.unwrap_err().kind(),
            ObjectErrorKind::Corrupt
        );
    }
}
