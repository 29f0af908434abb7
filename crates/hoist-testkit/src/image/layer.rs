//! Random layers: real gzip'd tar archives generated from a seed, never held whole in memory.
//!
//! A layer is regenerated each time its bytes are needed (once to learn its digest, once per
//! upload). Generation is deterministic: the same seed and size give the same blob.

use std::io::{self, Read, Write};

use bytes::Bytes;
use flate2::Compression;
use flate2::write::GzEncoder;
use hoist_oci::Digest;
use rand::rngs::StdRng;
use rand::{RngCore, SeedableRng};
use sha2::{Digest as _, Sha256};

/// Chunks a layer is streamed in.
const CHUNK: usize = 256 * 1024;

/// A random layer: one file of `content_size` random bytes in a tar archive, gzip'd.
///
/// Cheap to clone; share one between images to get shared blobs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Layer {
    seed: u64,
    content_size: u64,
    digest: Digest,
    size: u64,
    diff_id: Digest,
}

impl Layer {
    /// Generates (and hashes) the layer for `seed` holding `content_size` random bytes.
    ///
    /// Random bytes do not compress, so the blob is a little larger than `content_size`.
    pub fn random(seed: u64, content_size: u64) -> Self {
        let mut sink = HashingWriter::new(io::sink());
        let diff_id = write_layer(seed, content_size, &mut sink)
            .expect("writing a generated layer into a hashing sink cannot fail");
        let (digest, size) = sink.finish();
        Self {
            seed,
            content_size,
            digest,
            size,
            diff_id,
        }
    }

    /// The digest of the gzip'd blob.
    pub fn digest(&self) -> Digest {
        self.digest
    }

    /// The size of the gzip'd blob.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// The digest of the uncompressed tar (the config's `rootfs.diff_ids` entry).
    pub fn diff_id(&self) -> Digest {
        self.diff_id
    }

    /// How many random bytes the file inside holds.
    pub fn content_size(&self) -> u64 {
        self.content_size
    }

    /// The seed the content is generated from.
    pub fn seed(&self) -> u64 {
        self.seed
    }

    /// Writes the blob's bytes to `writer`.
    pub fn write_to(&self, writer: impl Write) -> io::Result<()> {
        write_layer(self.seed, self.content_size, writer).map(|_| ())
    }

    /// The whole blob in memory (for small layers and tests).
    pub fn to_bytes(&self) -> Bytes {
        let mut buffer = Vec::with_capacity(usize::try_from(self.size).unwrap_or(0));
        self.write_to(&mut buffer)
            .expect("writing a generated layer into memory cannot fail");
        Bytes::from(buffer)
    }

    /// The blob as a stream of chunks, generated on a blocking thread while the consumer reads;
    /// at most a few chunks are in memory at once. Must be called within a tokio runtime.
    pub fn stream(&self) -> impl futures::Stream<Item = io::Result<Bytes>> + Send + Sync + 'static {
        let (sender, receiver) = tokio::sync::mpsc::channel::<io::Result<Bytes>>(4);
        let layer = self.clone();
        tokio::task::spawn_blocking(move || {
            let writer = io::BufWriter::with_capacity(
                CHUNK,
                ChannelWriter {
                    sender: sender.clone(),
                },
            );
            if let Err(error) = layer.write_to(writer) {
                // The receiver may be gone (upload aborted); then nobody needs the error.
                let _ = sender.blocking_send(Err(error));
            }
        });
        let mut receiver = receiver;
        futures::stream::poll_fn(move |context| receiver.poll_recv(context))
    }
}

/// Writes the gzip'd tar for `seed`/`content_size` and returns the digest of the uncompressed tar.
fn write_layer(seed: u64, content_size: u64, writer: impl Write) -> io::Result<Digest> {
    // The gzip header carries mtime 0 and no file name, so equal input gives equal bytes.
    let mut gzip = GzEncoder::new(writer, Compression::fast());
    let mut tar_hasher = HashingWriter::new(&mut gzip);
    {
        let mut builder = tar::Builder::new(&mut tar_hasher);
        let mut header = tar::Header::new_ustar();
        header.set_size(content_size);
        header.set_mode(0o644);
        header.set_mtime(0);
        header.set_entry_type(tar::EntryType::Regular);
        builder.append_data(
            &mut header,
            format!("hoist-random/{seed:016x}.bin"),
            RandomReader::new(seed, content_size),
        )?;
        builder.into_inner()?;
    }
    let (diff_id, _) = tar_hasher.finish();
    gzip.finish()?.flush()?;
    Ok(diff_id)
}

/// `remaining` random bytes from a seeded generator.
struct RandomReader {
    generator: StdRng,
    remaining: u64,
}

impl RandomReader {
    fn new(seed: u64, size: u64) -> Self {
        Self {
            generator: StdRng::seed_from_u64(seed),
            remaining: size,
        }
    }
}

impl Read for RandomReader {
    fn read(&mut self, buffer: &mut [u8]) -> io::Result<usize> {
        let length = buffer
            .len()
            .min(usize::try_from(self.remaining).unwrap_or(usize::MAX));
        self.generator.fill_bytes(&mut buffer[..length]);
        self.remaining -= length as u64;
        Ok(length)
    }
}

/// Passes bytes through while computing their sha256 and length.
struct HashingWriter<W> {
    inner: W,
    hasher: Sha256,
    length: u64,
}

impl<W> HashingWriter<W> {
    fn new(inner: W) -> Self {
        Self {
            inner,
            hasher: Sha256::new(),
            length: 0,
        }
    }

    fn finish(self) -> (Digest, u64) {
        (
            Digest::from_sha256(self.hasher.finalize().into()),
            self.length,
        )
    }
}

impl<W: Write> Write for HashingWriter<W> {
    fn write(&mut self, buffer: &[u8]) -> io::Result<usize> {
        let written = self.inner.write(buffer)?;
        self.hasher.update(&buffer[..written]);
        self.length += written as u64;
        Ok(written)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// Sends each write as one chunk to an async receiver (blocking while it is full).
struct ChannelWriter {
    sender: tokio::sync::mpsc::Sender<io::Result<Bytes>>,
}

impl Write for ChannelWriter {
    fn write(&mut self, buffer: &[u8]) -> io::Result<usize> {
        self.sender
            .blocking_send(Ok(Bytes::copy_from_slice(buffer)))
            .map_err(|_| io::Error::new(io::ErrorKind::BrokenPipe, "layer stream dropped"))?;
        Ok(buffer.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::io::Read as _;

    use super::*;

    #[test]
    fn is_a_deterministic_gzipped_tar_with_matching_digests() {
        let layer = Layer::random(7, 100_000);
        assert_eq!(layer, Layer::random(7, 100_000));
        assert_ne!(layer.digest(), Layer::random(8, 100_000).digest());

        let bytes = layer.to_bytes();
        assert_eq!(bytes.len() as u64, layer.size());
        assert_eq!(Digest::of(&bytes), layer.digest());

        let mut tar = Vec::new();
        flate2::read::GzDecoder::new(&bytes[..])
            .read_to_end(&mut tar)
            .unwrap();
        assert_eq!(Digest::of(&tar), layer.diff_id());
        let mut archive = tar::Archive::new(&tar[..]);
        let entries: Vec<u64> = archive
            .entries()
            .unwrap()
            .map(|entry| entry.unwrap().header().size().unwrap())
            .collect();
        assert_eq!(entries, vec![100_000]);
    }
}
