//! [`FileMirror`]: the bucket layout in a local directory.

use std::os::unix::fs::FileExt as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use futures::StreamExt;
use hoist_oci::Digest;
use hoist_store::{ByteStream, StoreError};

use crate::bucket::Keyed;
use crate::error::ObjectError;
use crate::parts::size_error;
use crate::{BlobMirror, PutOutcome, blob_key};

/// Blobs in `DIR/containers/images/sha256:<hex>`. A blob is written to a temporary file in the
/// same directory and hard-linked into place only once verified: the link fails rather than
/// replace an existing file, so a blob is never overwritten and never seen half-written.
#[derive(Debug, Clone)]
pub struct FileMirror {
    root: PathBuf,
}

impl FileMirror {
    /// A mirror in `root` (created on the first write).
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Self { root: root.into() }
    }

    /// The file of a blob.
    pub fn blob_path(&self, digest: &Digest) -> PathBuf {
        self.root.join(blob_key("", digest))
    }
}

/// Places are file paths below the root.
#[async_trait::async_trait]
impl Keyed for FileMirror {
    type Place = PathBuf;

    fn base(&self) -> String {
        BlobMirror::describe(self)
    }

    fn place(&self, key: &str) -> PathBuf {
        self.root.join(key)
    }

    fn url(&self, key: &str) -> String {
        format!("file:{}", self.root.join(key).display())
    }

    async fn size_at(&self, path: &PathBuf) -> Result<Option<u64>, ObjectError> {
        match tokio::fs::metadata(path).await {
            Ok(metadata) => Ok(Some(metadata.len())),
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(error) => Err(ObjectError::io(path.display().to_string(), error)),
        }
    }

    fn subject_of(&self, path: &PathBuf) -> String {
        path.display().to_string()
    }

    async fn write_new(
        &self,
        path: &PathBuf,
        _digest: &Digest,
        size: u64,
        stream: ByteStream,
    ) -> Result<(), ObjectError> {
        let subject = self.subject_of(path);
        let directory = path.parent().unwrap_or(Path::new("."));
        tokio::fs::create_dir_all(directory)
            .await
            .map_err(|error| ObjectError::io(directory.display().to_string(), error))?;
        // Dropped on any error, which deletes the partial file.
        let temporary = tempfile::Builder::new()
            .prefix(".upload-")
            .tempfile_in(directory)
            .map_err(|error| ObjectError::io(directory.display().to_string(), error))?;
        let file = temporary
            .reopen()
            .map_err(|error| ObjectError::io(temporary.path().display().to_string(), error))?;
        // Each chunk is written as it came (from the spool: 256 KiB), off the async threads,
        // without copying it; the stream is verified, so only its size is counted here.
        let file = Arc::new(file);
        let mut stream = stream;
        let mut written = 0u64;
        while let Some(chunk) = stream.next().await {
            let chunk = chunk.map_err(|error| ObjectError::from_stream(&subject, error))?;
            let offset = written;
            written += chunk.len() as u64;
            if written > size {
                let error = size_error(&subject, size, written, "more than");
                return Err(ObjectError::from_stream(&subject, error));
            }
            let target = Arc::clone(&file);
            blocking(&subject, move || target.write_all_at(&chunk, offset)).await?;
        }
        if written != size {
            let error = size_error(&subject, size, written, "only");
            return Err(ObjectError::from_stream(&subject, error));
        }
        let target = Arc::clone(&file);
        blocking(&subject, move || target.sync_all()).await?;
        drop(file);
        // A hard link fails when the target exists (AlreadyExists), unlike rename, which would
        // replace it.
        std::fs::hard_link(temporary.path(), path).map_err(|error| ObjectError::io(&subject, error))
    }

    async fn fetch_at(&self, path: &PathBuf) -> Result<ByteStream, ObjectError> {
        let subject = path.display().to_string();
        let file = tokio::fs::File::open(path)
            .await
            .map_err(|error| ObjectError::io(&subject, error))?;
        let stream = file_chunks(file)
            .map(move |chunk| chunk.map_err(|error| StoreError::io(subject.clone(), error)));
        Ok(Box::pin(stream))
    }
}

#[async_trait::async_trait]
impl BlobMirror for FileMirror {
    fn describe(&self) -> String {
        format!("file:{}", self.root.display())
    }

    async fn blob_size(&self, digest: &Digest) -> Result<Option<u64>, ObjectError> {
        self.size_at(&self.blob_path(digest)).await
    }

    async fn put_verified_blob(
        &self,
        digest: &Digest,
        size: u64,
        stream: ByteStream,
    ) -> Result<PutOutcome, ObjectError> {
        self.put_verified_at(&self.blob_path(digest), digest, size, stream)
            .await
    }

    async fn fetch_blob(&self, digest: &Digest) -> Result<ByteStream, ObjectError> {
        self.fetch_at(&self.blob_path(digest)).await
    }
}

/// Runs file I/O on the blocking pool.
async fn blocking(
    subject: &str,
    work: impl FnOnce() -> std::io::Result<()> + Send + 'static,
) -> Result<(), ObjectError> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(std::io::Error::other)
        .and_then(|result| result)
        .map_err(|error| ObjectError::io(subject, error))
}

/// The outcome when an object is already there: a skip if its size is right, else corruption.
pub(crate) fn existing(subject: &str, size: u64, found: u64) -> Result<PutOutcome, ObjectError> {
    if found == size {
        Ok(PutOutcome::AlreadyPresent)
    } else {
        Err(ObjectError::wrong_size(subject, size, found))
    }
}

/// A file as a stream of chunks of up to 64 KiB.
fn file_chunks(
    file: tokio::fs::File,
) -> impl futures::Stream<Item = std::io::Result<bytes::Bytes>> + Send {
    use tokio::io::AsyncReadExt;
    futures::stream::try_unfold(file, |mut file| async move {
        let mut buffer = vec![0u8; 64 * 1024];
        let read = file.read(&mut buffer).await?;
        if read == 0 {
            return Ok(None);
        }
        buffer.truncate(read);
        Ok(Some((bytes::Bytes::from(buffer), file)))
    })
}
