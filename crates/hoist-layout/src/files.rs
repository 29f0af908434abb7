//! File plumbing: blobs written through temp files and renamed into place, streamed reads.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use bytes::{Bytes, BytesMut};
use futures::StreamExt;
use hoist_oci::Digest;
use hoist_store::{ByteStream, StoreError};
use sha2::{Digest as _, Sha256};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Reads and writes go in chunks of this size, so memory use never grows with the blob.
pub(crate) const CHUNK_SIZE: usize = 64 * 1024;

static TEMP_COUNTER: AtomicU64 = AtomicU64::new(0);

/// A file being written under a temporary name. Dropping it (on error, or when the future is
/// cancelled) deletes the file, so a failed write leaves nothing behind.
#[derive(Debug)]
pub(crate) struct TempFile {
    path: PathBuf,
    armed: bool,
}

impl TempFile {
    /// A fresh `.tmp-…` name in `directory`: unique per process (pid), per call (counter) and,
    /// against a pid reused after a crash, per moment (nanoseconds).
    pub(crate) fn new(directory: &Path) -> Self {
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |elapsed| elapsed.subsec_nanos());
        let count = TEMP_COUNTER.fetch_add(1, Ordering::Relaxed);
        let name = format!(".tmp-{}-{count}-{nanos}", std::process::id());
        Self {
            path: directory.join(name),
            armed: true,
        }
    }

    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    /// Renames the file to `target` (atomic on one file system) and makes the rename durable.
    pub(crate) async fn persist(mut self, target: &Path) -> Result<(), StoreError> {
        tokio::fs::rename(&self.path, target)
            .await
            .map_err(|source| io_error(target, source))?;
        self.armed = false;
        if let Some(parent) = target.parent() {
            sync_directory(parent).await;
        }
        Ok(())
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        if self.armed {
            // Best effort: the file may not have been created yet.
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

/// Writes `stream` to `target` only if it is exactly `size` bytes hashing to `digest`: the bytes go
/// to a temp file in `target`'s directory, which is hashed as it fills, synced, checked, and only
/// then renamed. A stream error or a mismatch deletes the temp file and is returned.
pub(crate) async fn write_verified(
    target: &Path,
    digest: &Digest,
    size: u64,
    mut stream: ByteStream,
) -> Result<(), StoreError> {
    let directory = target.parent().unwrap_or(Path::new("."));
    let temp = TempFile::new(directory);
    let subject = target.display().to_string();
    // Declared after `temp`, so it is closed before `temp`'s drop deletes the file.
    let mut file = tokio::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(temp.path())
        .await
        .map_err(|source| io_error(temp.path(), source))?;
    let mut hasher = Sha256::new();
    let mut written = 0u64;
    while let Some(chunk) = stream.next().await {
        let chunk = chunk?;
        written += chunk.len() as u64;
        hasher.update(&chunk);
        if written > size {
            // No need to read the rest of an overlong stream: it cannot match any more.
            let actual = Digest::from_sha256(hasher.finalize().into());
            return Err(StoreError::digest_mismatch(
                subject, digest, size, &actual, written,
            ));
        }
        file.write_all(&chunk)
            .await
            .map_err(|source| io_error(temp.path(), source))?;
    }
    let actual = Digest::from_sha256(hasher.finalize().into());
    if actual != *digest || written != size {
        return Err(StoreError::digest_mismatch(
            subject, digest, size, &actual, written,
        ));
    }
    file.flush()
        .await
        .map_err(|source| io_error(temp.path(), source))?;
    file.sync_all()
        .await
        .map_err(|source| io_error(temp.path(), source))?;
    drop(file);
    temp.persist(target).await
}

/// Replaces `target` with `bytes` atomically (temp file, sync, rename): readers see the old or
/// the new content, never a mix.
pub(crate) async fn write_atomic(target: &Path, bytes: &[u8]) -> Result<(), StoreError> {
    let directory = target.parent().unwrap_or(Path::new("."));
    let temp = TempFile::new(directory);
    let mut file = tokio::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(temp.path())
        .await
        .map_err(|source| io_error(temp.path(), source))?;
    file.write_all(bytes)
        .await
        .map_err(|source| io_error(temp.path(), source))?;
    file.sync_all()
        .await
        .map_err(|source| io_error(temp.path(), source))?;
    drop(file);
    temp.persist(target).await
}

/// Copies the blob `source` to `target` (for a mount when hard links fail) the way every blob is
/// written: through a temp file, hashed and checked against `digest`, synced, then renamed. A
/// corrupted source is refused, not spread.
pub(crate) async fn copy_verified(
    source: &Path,
    target: &Path,
    digest: &Digest,
) -> Result<(), StoreError> {
    let size = file_size(source)
        .await?
        .ok_or_else(|| StoreError::not_found(source.display().to_string()))?;
    write_verified(target, digest, size, read_stream(source).await?).await
}

/// The file at `path` as a stream of chunks of at most [`CHUNK_SIZE`] bytes.
pub(crate) async fn read_stream(path: &Path) -> Result<ByteStream, StoreError> {
    let file = match tokio::fs::File::open(path).await {
        Ok(file) => file,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
            return Err(StoreError::not_found(path.display().to_string()));
        }
        Err(error) => return Err(io_error(path, error)),
    };
    let path = path.to_path_buf();
    let stream = futures::stream::try_unfold((file, path), |(mut file, path)| async move {
        let mut buffer = BytesMut::with_capacity(CHUNK_SIZE);
        let read = file
            .read_buf(&mut buffer)
            .await
            .map_err(|source| io_error(&path, source))?;
        if read == 0 {
            return Ok(None);
        }
        Ok(Some((Bytes::from(buffer), (file, path))))
    });
    Ok(Box::pin(stream))
}

/// The size of the file at `path`, `None` when it does not exist.
pub(crate) async fn file_size(path: &Path) -> Result<Option<u64>, StoreError> {
    match tokio::fs::metadata(path).await {
        Ok(metadata) if metadata.is_file() => Ok(Some(metadata.len())),
        Ok(_) => Ok(None),
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(error) => Err(io_error(path, error)),
    }
}

/// The whole file at `path`, `None` when it does not exist. Only for small files (index.json,
/// manifests): blobs are streamed.
pub(crate) async fn read_small(path: &Path) -> Result<Option<Vec<u8>>, StoreError> {
    match tokio::fs::read(path).await {
        Ok(bytes) => Ok(Some(bytes)),
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(error) => Err(io_error(path, error)),
    }
}

/// Makes a rename in `directory` durable. Best effort: some platforms cannot sync directories,
/// and the data itself is already synced.
async fn sync_directory(directory: &Path) {
    if let Ok(handle) = tokio::fs::File::open(directory).await {
        let _ = handle.sync_all().await;
    }
}

pub(crate) fn io_error(path: &Path, source: std::io::Error) -> StoreError {
    StoreError::io(path.display().to_string(), source)
}

#[cfg(test)]
mod tests {
    use hoist_store::StoreErrorKind;

    use super::*;

    #[tokio::test]
    async fn verified_copies_refuse_corrupted_sources() {
        let directory = tempfile::tempdir().unwrap();
        let source = directory.path().join("source");
        std::fs::write(&source, b"blob bytes").unwrap();
        let good = directory.path().join("good");
        copy_verified(&source, &good, &Digest::of(b"blob bytes"))
            .await
            .unwrap();
        assert_eq!(std::fs::read(&good).unwrap(), b"blob bytes");

        // The source no longer holds what its name says: nothing is written.
        std::fs::write(&source, b"blob bytez").unwrap();
        let bad = directory.path().join("bad");
        let error = copy_verified(&source, &bad, &Digest::of(b"blob bytes"))
            .await
            .unwrap_err();
        assert_eq!(error.kind(), StoreErrorKind::DigestMismatch);
        assert!(!bad.exists());
        let leftovers: Vec<_> = std::fs::read_dir(directory.path())
            .unwrap()
            .filter_map(Result::ok)
            .filter(|entry| entry.file_name().to_string_lossy().starts_with(".tmp-"))
            .collect();
        assert!(leftovers.is_empty(), "no temp file left behind");
    }
}
