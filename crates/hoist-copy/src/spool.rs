//! [`Spool`]: each source blob is read once per run, verified once, and read back from local disk
//! by every destination (registry or mirror) that needs it, each at its own pace.
//!
//! The first consumer of a blob starts its *fetch*: a task streams it from the source through a
//! [`VerifyingStream`] (the one sha256 of every byte) into an anonymous temporary file. Every
//! consumer, the first included, gets a *reader* of that file which follows the fetch as it
//! grows, so uploads start with the first bytes instead of after the last. A reader never hands
//! out the blob's final byte before the fetch verified the whole blob, and fails instead of ending
//! when verification fails: readers are verified streams
//! ([`Sink::push_verified_blob`](hoist_store::Sink::push_verified_blob)), and no sink can commit
//! a blob it has not received in full. A retried upload opens a new reader: it reads the spool,
//! not the source.
//!
//! How long a blob stays: the caller announces how many consumers may want it
//! ([`Spool::expect`]) and says when each is done with it ([`Spool::release`]); the blob is
//! evicted as soon as none is left and no reader is open. A blob with exactly one consumer left
//! is not spooled at all: it streams straight from the source (verified) to that consumer. A blob
//! nobody announced stays until its space is needed.
//!
//! Space: at most `capacity` bytes are held at once (a blob larger than that is held alone).
//! A fetch waits, in arrival order, for room; idle blobs are evicted to make it (even ones a later
//! consumer expects, which will then be fetched again). Open readers and running fetches are never
//! evicted, and never wait for space, so waiting cannot deadlock.
//!
//! The files are created already unlinked (`O_TMPFILE`): nothing names them, nobody else can see
//! a half-written one, and the kernel frees them when the run ends, even if it is killed. See
//! ARCHITECTURE.md for why this is a spool and not a tee.

use std::collections::HashMap;
use std::os::unix::fs::FileExt as _;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use futures::{FutureExt as _, StreamExt as _};
use hoist_oci::Digest;
use hoist_store::{ByteStream, Source, StoreError, StoreErrorKind, VerifyingStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, watch};

use crate::blobs::lock;

/// Bytes a reader reads from the file at once (and so hands to a sink per item).
const READ_CHUNK: u64 = 256 * 1024;
/// Bytes a fetch gathers before writing them to the file.
const WRITE_BATCH: usize = 256 * 1024;
/// The default most bytes held at once.
pub const DEFAULT_CAPACITY: u64 = 2 << 30;

/// The default most blob streams read at once.
pub const DEFAULT_STREAMS: usize = 32;

/// Where and how much a [`Spool`] may hold.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpoolOptions {
    /// The directory of the (unlinked) temporary files.
    pub directory: PathBuf,
    /// The most bytes held at once; a blob larger than this is held alone.
    pub capacity: u64,
    /// The most streams handed out and not yet dropped (each an upload in flight, and the
    /// buffers it holds): bounds the memory of a run however many destinations and mirrors an
    /// image fans out to. [`Spool::read`] waits for one.
    pub streams: usize,
}

impl Default for SpoolOptions {
    fn default() -> Self {
        Self {
            directory: std::env::temp_dir(),
            capacity: DEFAULT_CAPACITY,
            streams: DEFAULT_STREAMS,
        }
    }
}

/// What a spool did, for reports and for tests that prove each blob was read once.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct SpoolStats {
    /// Blobs read from a source (a repeat after a failure or an early eviction counts again).
    pub fetches: u64,
    /// Bytes read from sources.
    pub bytes_fetched: u64,
    /// Fetches streamed straight to their only consumer, without the disk.
    pub passed_through: u64,
    /// Readers opened on spooled blobs (one per upload attempt).
    pub reads: u64,
    /// The most bytes held at once.
    pub peak_bytes: u64,
    /// Blobs evicted for space while a consumer still expected them.
    pub early_evictions: u64,
}

/// A place among the streams a [`Spool`] hands out at once ([`Spool::reserve_stream`]).
#[derive(Debug)]
pub struct StreamSlot(#[allow(dead_code)] OwnedSemaphorePermit);

/// Room a unit of work was admitted with ([`Spool::admit`]), given back when dropped.
#[derive(Debug)]
pub struct Admission(#[allow(dead_code)] OwnedSemaphorePermit);

/// A spool of verified source blobs. Cheap to clone: clones share the blobs. Call
/// [`Spool::close`] at the end of the run to stop fetches nobody waits for.
#[derive(Clone)]
pub struct Spool {
    shared: Arc<Shared>,
}

impl std::fmt::Debug for Spool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Spool")
            .field("directory", &self.shared.directory)
            .field("capacity_kib", &self.shared.capacity_kib)
            .finish_non_exhaustive()
    }
}

struct Shared {
    directory: PathBuf,
    capacity_kib: u32,
    /// Free space, in KiB (a semaphore is fair: a large fetch is not overtaken by small ones).
    space: Arc<Semaphore>,
    /// Streams that may still be handed out.
    streams: Arc<Semaphore>,
    /// Room not yet promised to admitted work, in KiB ([`Spool::admit`]).
    room: Arc<Semaphore>,
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    entries: HashMap<Digest, Entry>,
    /// Consumers announced and not yet done, by blob; absent for blobs nobody announced.
    demand: HashMap<Digest, usize>,
    /// Fetches waiting for space: any blob that becomes idle meanwhile is evicted for them.
    waiting_for_space: usize,
    clock: u64,
    next_id: u64,
    held_bytes: u64,
    stats: SpoolStats,
}

struct Entry {
    id: u64,
    blob: Arc<Spooled>,
    readers: usize,
    fetching: bool,
    last_used: u64,
    /// The space held, once the fetch got it.
    permit: Option<OwnedSemaphorePermit>,
    fetch: Option<tokio::task::AbortHandle>,
}

/// One blob's file and the progress of its fetch.
struct Spooled {
    file: Arc<std::fs::File>,
    size: u64,
    subject: String,
    status: watch::Receiver<Status>,
}

#[derive(Clone)]
enum Status {
    /// Waiting for space in the spool.
    Queued,
    /// Fetching; this many bytes are in the file.
    Fetching(u64),
    /// The whole blob is in the file and hashes to its digest.
    Verified,
    /// The fetch failed; every reader fails with this.
    Failed(Arc<StoreError>),
}

impl Spool {
    /// An empty spool writing its files in `options.directory` (checked now: it must exist).
    pub fn new(options: SpoolOptions) -> Result<Self, StoreError> {
        let directory = options.directory;
        let metadata = std::fs::metadata(&directory)
            .map_err(|error| StoreError::io(directory.display().to_string(), error))?;
        if !metadata.is_dir() {
            return Err(StoreError::new(
                StoreErrorKind::Io,
                directory.display().to_string(),
                "the spool directory is not a directory",
            ));
        }
        let capacity_kib = kib(options.capacity);
        Ok(Self {
            shared: Arc::new(Shared {
                directory,
                capacity_kib,
                space: Arc::new(Semaphore::new(capacity_kib as usize)),
                streams: Arc::new(Semaphore::new(options.streams.max(1))),
                room: Arc::new(Semaphore::new(capacity_kib as usize)),
                state: Mutex::default(),
            }),
        })
    }

    /// Announces `consumers` more consumers of `digest`: it stays spooled until each of them
    /// [`released`](Spool::release) it (or its space is needed).
    pub fn expect(&self, digest: Digest, consumers: usize) {
        *lock(&self.shared.state).demand.entry(digest).or_default() += consumers;
    }

    /// One announced consumer is done with `digest` (copied it, found it present, or gave up).
    pub fn release(&self, digest: &Digest) {
        let mut state = lock(&self.shared.state);
        if let Some(left) = state.demand.get_mut(digest) {
            *left = left.saturating_sub(1);
        }
        state.evict_if_unneeded(digest);
    }

    /// Waits until `bytes` (a unit of work's blobs; at most the capacity) fit beside what the
    /// work admitted before was promised, in arrival order. Work admitted this way that runs its
    /// consumers together finds its blobs spooled until they are all done, never evicted for
    /// another's and fetched again; work larger than the spool runs alone.
    pub async fn admit(&self, bytes: u64) -> Admission {
        let permit = Arc::clone(&self.shared.room)
            .acquire_many_owned(kib(bytes).min(self.shared.capacity_kib))
            .await
            .expect("the room semaphore is never closed");
        Admission(permit)
    }

    /// What the spool did so far.
    pub fn stats(&self) -> SpoolStats {
        lock(&self.shared.state).stats
    }

    /// Waits until fewer than `streams` streams are out, and reserves one for [`Spool::read`].
    /// Reserve it before starting the request the stream is for: a request opened first would
    /// sit silent while it waits (and a server or the idle timeout would end it). A slot dropped
    /// unused (the destination had the blob) frees its place.
    pub async fn reserve_stream(&self) -> StreamSlot {
        let permit = Arc::clone(&self.shared.streams)
            .acquire_owned()
            .await
            .expect("the stream semaphore is never closed");
        StreamSlot(permit)
    }

    /// A verified stream of the blob `digest` of `size` bytes, in `slot` (held until the stream
    /// is dropped): from the spool when it is there or being fetched, else fetched now from
    /// `repository` of `source` (spooled, unless this is its only consumer left). Fails when the
    /// fetch fails: a retryable failure is forgotten, so calling again fetches again; a mismatch
    /// or a missing blob is remembered.
    ///
    /// Slots bound the memory of a run however many destinations and mirrors an image fans out
    /// to. A stream never waits for a slot (only for its fetch, which needs none), so waiting
    /// for one always ends.
    pub async fn read(
        &self,
        slot: StreamSlot,
        source: &Arc<dyn Source>,
        repository: &str,
        digest: Digest,
        size: u64,
    ) -> Result<ByteStream, StoreError> {
        let stream = self.read_now(source, repository, digest, size).await?;
        Ok(Box::pin(stream.inspect(move |_| {
            let _ = &slot;
        })))
    }

    async fn read_now(
        &self,
        source: &Arc<dyn Source>,
        repository: &str,
        digest: Digest,
        size: u64,
    ) -> Result<ByteStream, StoreError> {
        let subject = format!("{}/{repository}@{digest}", source.describe());
        let spooled = {
            let mut state = lock(&self.shared.state);
            state.clock += 1;
            let now = state.clock;
            let one_consumer_left = state.demand.get(&digest).copied() == Some(1);
            match state.entries.get_mut(&digest) {
                // Another manifest names another size: one of them is wrong, and the
                // verification of this read will tell; it cannot share the spooled copy.
                Some(entry) if entry.blob.size != size => None,
                Some(entry) => {
                    entry.readers += 1;
                    entry.last_used = now;
                    let stream = reader(Arc::clone(&self.shared), digest, entry.id, &entry.blob);
                    let status = entry.blob.status.clone();
                    state.stats.reads += 1;
                    Some((stream, status))
                }
                None if one_consumer_left => None,
                None => Some(self.start_fetch(
                    &mut state,
                    source,
                    repository,
                    digest,
                    size,
                    subject.clone(),
                )?),
            }
        };
        let Some((stream, mut status)) = spooled else {
            return self
                .pass_through(source, repository, digest, size, subject)
                .await;
        };
        // Hand out the reader once the fetch has its space: an upload started on a blob that
        // waits for space could hold a connection that the uploads freeing space wait for.
        let admitted = status
            .wait_for(|status| !matches!(status, Status::Queued))
            .await
            .is_ok();
        if !admitted {
            return Err(StoreError::new(
                StoreErrorKind::Io,
                subject,
                "the spool was closed before the blob was fetched",
            ));
        }
        Ok(stream)
    }

    /// Stops the fetches still running and drops every spooled blob (their files go with them).
    pub fn close(&self) {
        let mut state = lock(&self.shared.state);
        for (_, entry) in state.entries.drain() {
            if let Some(fetch) = entry.fetch {
                fetch.abort();
            }
        }
        state.held_bytes = 0;
    }

    fn start_fetch(
        &self,
        state: &mut State,
        source: &Arc<dyn Source>,
        repository: &str,
        digest: Digest,
        size: u64,
        subject: String,
    ) -> Result<(ByteStream, watch::Receiver<Status>), StoreError> {
        let directory = &self.shared.directory;
        let file = tempfile::tempfile_in(directory)
            .map_err(|error| StoreError::io(directory.display().to_string(), error))?;
        let (sender, status) = watch::channel(Status::Queued);
        let blob = Arc::new(Spooled {
            file: Arc::new(file),
            size,
            subject,
            status,
        });
        state.next_id += 1;
        let id = state.next_id;
        state.stats.fetches += 1;
        state.stats.reads += 1;
        let fetch = tokio::spawn(fetch(
            Arc::clone(&self.shared),
            id,
            digest,
            Arc::clone(source),
            repository.to_owned(),
            Arc::clone(&blob),
            sender,
        ));
        let stream = reader(Arc::clone(&self.shared), digest, id, &blob);
        let status = blob.status.clone();
        state.entries.insert(
            digest,
            Entry {
                id,
                blob,
                readers: 1,
                fetching: true,
                last_used: state.clock,
                permit: None,
                fetch: Some(fetch.abort_handle()),
            },
        );
        Ok((stream, status))
    }

    /// The only consumer left: stream from the source, verified, without the disk.
    async fn pass_through(
        &self,
        source: &Arc<dyn Source>,
        repository: &str,
        digest: Digest,
        size: u64,
        subject: String,
    ) -> Result<ByteStream, StoreError> {
        {
            let mut state = lock(&self.shared.state);
            state.stats.fetches += 1;
            state.stats.passed_through += 1;
        }
        let stream = source.fetch_blob(repository, &digest).await?;
        let shared = Arc::clone(&self.shared);
        let counted = stream.inspect(move |item| {
            if let Ok(chunk) = item {
                lock(&shared.state).stats.bytes_fetched += chunk.len() as u64;
            }
        });
        Ok(VerifyingStream::new(Box::pin(counted), subject, digest, size).boxed())
    }
}

impl Shared {
    /// Waits for room for `size` bytes, evicting idle blobs first.
    async fn reserve(self: &Arc<Self>, size: u64) -> OwnedSemaphorePermit {
        let kib = kib(size).min(self.capacity_kib);
        {
            let mut state = lock(&self.state);
            loop {
                if let Ok(permit) = Arc::clone(&self.space).try_acquire_many_owned(kib) {
                    return permit;
                }
                if !state.evict_one_idle() {
                    break;
                }
            }
            state.waiting_for_space += 1;
        }
        let permit = Arc::clone(&self.space).acquire_many_owned(kib).await;
        lock(&self.state).waiting_for_space -= 1;
        permit.expect("the spool's semaphore is never closed")
    }
}

impl State {
    /// Evicts `digest` when it is idle and either nobody expects it any more or a fetch waits
    /// for space.
    fn evict_if_unneeded(&mut self, digest: &Digest) {
        let Some(entry) = self.entries.get(digest) else {
            return;
        };
        if entry.fetching || entry.readers > 0 || entry.permit.is_none() {
            return;
        }
        let demand = self.demand.get(digest).copied();
        let done = demand == Some(0);
        if done || self.waiting_for_space > 0 {
            if demand.is_some_and(|left| left > 0) {
                self.stats.early_evictions += 1;
            }
            self.remove(digest);
        }
    }

    /// Evicts the idle blob least likely to be read again: one nobody announced, else the least
    /// recently used. `false` when every blob is being fetched or read.
    fn evict_one_idle(&mut self) -> bool {
        let victim = self
            .entries
            .iter()
            .filter(|(_, entry)| !entry.fetching && entry.readers == 0 && entry.permit.is_some())
            .min_by_key(|(digest, entry)| (self.demand.contains_key(*digest), entry.last_used))
            .map(|(digest, _)| *digest);
        let Some(digest) = victim else {
            return false;
        };
        if self.demand.get(&digest).is_some_and(|left| *left > 0) {
            self.stats.early_evictions += 1;
        }
        self.remove(&digest);
        true
    }

    fn remove(&mut self, digest: &Digest) {
        if let Some(entry) = self.entries.remove(digest)
            && entry.permit.is_some()
        {
            self.held_bytes -= entry.blob.size;
        }
    }
}

/// The fetch task of one blob: waits for space, then streams the blob from the source through
/// the verifier into the file, publishing its progress.
async fn fetch(
    shared: Arc<Shared>,
    id: u64,
    digest: Digest,
    source: Arc<dyn Source>,
    repository: String,
    blob: Arc<Spooled>,
    sender: watch::Sender<Status>,
) {
    let permit = shared.reserve(blob.size).await;
    {
        let mut state = lock(&shared.state);
        let state = &mut *state;
        match state.entries.get_mut(&digest) {
            Some(entry) if entry.id == id => {
                entry.permit = Some(permit);
                state.held_bytes += blob.size;
                state.stats.peak_bytes = state.stats.peak_bytes.max(state.held_bytes);
            }
            // Closed meanwhile.
            _ => return,
        }
    }
    sender.send_replace(Status::Fetching(0));
    let result = fill(&shared, &source, &repository, digest, &blob, &sender).await;
    let failed = result.as_ref().err().map(|error| error.is_retryable());
    sender.send_replace(match result {
        Ok(()) => Status::Verified,
        Err(error) => Status::Failed(Arc::new(error)),
    });
    let mut state = lock(&shared.state);
    let state = &mut *state;
    let Some(entry) = state
        .entries
        .get_mut(&digest)
        .filter(|entry| entry.id == id)
    else {
        return;
    };
    entry.fetching = false;
    entry.fetch = None;
    match failed {
        // Forgotten, so that a retry fetches again; open readers keep the failed status.
        Some(true) => state.remove(&digest),
        // Remembered without its space: the same read would fail the same way.
        Some(false) => {
            if entry.permit.take().is_some() {
                state.held_bytes -= entry.blob.size;
            }
        }
        None => state.evict_if_unneeded(&digest),
    }
}

async fn fill(
    shared: &Shared,
    source: &Arc<dyn Source>,
    repository: &str,
    digest: Digest,
    blob: &Spooled,
    sender: &watch::Sender<Status>,
) -> Result<(), StoreError> {
    let stream = source.fetch_blob(repository, &digest).await?;
    let mut verified = VerifyingStream::new(stream, blob.subject.clone(), digest, blob.size);
    // Chunks as the source sent them, written together (vectored: no copy).
    let mut batch: Vec<Bytes> = Vec::new();
    let mut batched = 0usize;
    let mut written = 0u64;
    loop {
        // Write what was gathered whenever the source has nothing more right now, so readers
        // follow the fetch closely; else in batches.
        let next = match verified.next().now_or_never() {
            Some(next) => next,
            None => {
                if !batch.is_empty() {
                    let chunks = std::mem::take(&mut batch);
                    written = write_chunks(blob, digest, written, chunks).await?;
                    batched = 0;
                    sender.send_replace(Status::Fetching(written));
                }
                verified.next().await
            }
        };
        let chunk = next.transpose()?;
        let end = chunk.is_none();
        if let Some(chunk) = chunk {
            lock(&shared.state).stats.bytes_fetched += chunk.len() as u64;
            batched += chunk.len();
            batch.push(chunk);
        }
        if batched >= WRITE_BATCH || (end && !batch.is_empty()) {
            let chunks = std::mem::take(&mut batch);
            written = write_chunks(blob, digest, written, chunks).await?;
            batched = 0;
            sender.send_replace(Status::Fetching(written));
        }
        if end {
            // The verifier ended cleanly: exactly `size` bytes, hashing to `digest`.
            return Ok(());
        }
    }
}

/// Writes `chunks` at `offset`; returns the new end. Tried right here first without waiting
/// (the page cache takes it at once); only a write that would wait (dirty-page throttling) goes
/// to the blocking pool.
async fn write_chunks(
    blob: &Spooled,
    digest: Digest,
    offset: u64,
    chunks: Vec<Bytes>,
) -> Result<u64, StoreError> {
    let length: u64 = chunks.iter().map(|chunk| chunk.len() as u64).sum();
    let done = write_cached(&blob.file, &chunks, offset);
    if done < length {
        let file = Arc::clone(&blob.file);
        tokio::task::spawn_blocking(move || {
            let mut position = offset;
            for chunk in &chunks {
                let chunk_length = chunk.len() as u64;
                let end = position + chunk_length;
                if end > offset + done {
                    let skip = (offset + done).saturating_sub(position);
                    let start = usize::try_from(skip).unwrap_or(usize::MAX);
                    file.write_all_at(&chunk[start..], position + skip)?;
                }
                position = end;
            }
            Ok::<_, std::io::Error>(())
        })
        .await
        .map_err(std::io::Error::other)
        .and_then(|result| result)
        .map_err(|error| StoreError::io(format!("the spooled copy of {digest}"), error))?;
    }
    Ok(offset + length)
}

/// Whether non-blocking buffered writes work here (some file systems refuse them; one refusal
/// turns them off for the run).
#[cfg(target_os = "linux")]
static NOWAIT_WRITES: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(true);

/// Writes what the page cache takes at once (`pwritev2` with `RWF_NOWAIT`); returns how many
/// bytes were written (the blocking write that follows does the rest, and reports errors).
#[cfg(target_os = "linux")]
fn write_cached(file: &std::fs::File, chunks: &[Bytes], offset: u64) -> u64 {
    use std::sync::atomic::Ordering;
    if !NOWAIT_WRITES.load(Ordering::Relaxed) {
        return 0;
    }
    let slices: Vec<std::io::IoSlice<'_>> = chunks
        .iter()
        .map(|chunk| std::io::IoSlice::new(chunk))
        .collect();
    match rustix::io::pwritev2(file, &slices, offset, rustix::io::ReadWriteFlags::NOWAIT) {
        Ok(written) => written as u64,
        Err(rustix::io::Errno::OPNOTSUPP | rustix::io::Errno::INVAL) => {
            NOWAIT_WRITES.store(false, Ordering::Relaxed);
            0
        }
        Err(_) => 0,
    }
}

#[cfg(not(target_os = "linux"))]
fn write_cached(_: &std::fs::File, _: &[Bytes], _: u64) -> u64 {
    0
}

/// `bytes` in KiB, rounded up, at least 1 (the unit of the spool's semaphores).
fn kib(bytes: u64) -> u32 {
    u32::try_from(bytes.div_ceil(1024).max(1)).unwrap_or(u32::MAX)
}

/// Marks a reader closed when dropped, so the blob can be evicted.
struct ReaderGuard {
    shared: Arc<Shared>,
    digest: Digest,
    id: u64,
}

impl Drop for ReaderGuard {
    fn drop(&mut self) {
        let mut state = lock(&self.shared.state);
        if let Some(entry) = state.entries.get_mut(&self.digest)
            && entry.id == self.id
        {
            entry.readers -= 1;
            state.evict_if_unneeded(&self.digest);
        }
    }
}

struct ReadState {
    blob: Arc<Spooled>,
    status: watch::Receiver<Status>,
    offset: u64,
    _guard: ReaderGuard,
}

/// A verified stream of a spooled blob from its first byte, following the fetch.
fn reader(shared: Arc<Shared>, digest: Digest, id: u64, blob: &Arc<Spooled>) -> ByteStream {
    let state = ReadState {
        blob: Arc::clone(blob),
        status: blob.status.clone(),
        offset: 0,
        _guard: ReaderGuard { shared, digest, id },
    };
    Box::pin(futures::stream::try_unfold(state, next_chunk))
}

async fn next_chunk(mut state: ReadState) -> Result<Option<(Bytes, ReadState)>, StoreError> {
    loop {
        let status = state.status.borrow_and_update().clone();
        let size = state.blob.size;
        let available = match &status {
            Status::Failed(error) => return Err(shared_error(error)),
            Status::Verified => size,
            // The last byte waits for the verdict: a sink can never receive a whole blob that
            // turns out not to match.
            Status::Fetching(written) => (*written).min(size.saturating_sub(1)),
            Status::Queued => 0,
        };
        if state.offset < available {
            let length = (available - state.offset).min(READ_CHUNK);
            let bytes = read_at(&state.blob, state.offset, length).await?;
            state.offset += length;
            return Ok(Some((bytes, state)));
        }
        if matches!(status, Status::Verified) {
            return Ok(None);
        }
        if state.status.changed().await.is_err()
            && !matches!(*state.status.borrow(), Status::Verified | Status::Failed(_))
        {
            return Err(StoreError::new(
                StoreErrorKind::Io,
                state.blob.subject.clone(),
                "the spooled copy was abandoned before it was complete",
            ));
        }
    }
}

async fn read_at(blob: &Spooled, offset: u64, length: u64) -> Result<Bytes, StoreError> {
    let length = usize::try_from(length).expect("a read chunk fits in memory");
    let mut buffer = vec![0u8; length];
    // The bytes were written moments ago and sit in the page cache: read them right here. Only
    // a read that would wait for the disk goes to the blocking pool (a thread hop per chunk
    // costs more CPU than the copy itself).
    let filled = read_cached(&blob.file, &mut buffer, offset);
    if filled == length {
        return Ok(Bytes::from(buffer));
    }
    let file = Arc::clone(&blob.file);
    tokio::task::spawn_blocking(move || {
        file.read_exact_at(&mut buffer[filled..], offset + filled as u64)?;
        Ok::<_, std::io::Error>(Bytes::from(buffer))
    })
    .await
    .map_err(std::io::Error::other)
    .and_then(|result| result)
    .map_err(|error| StoreError::io(format!("the spooled copy of {}", blob.subject), error))
}

/// Reads into `buffer` what the page cache holds at `offset`, without waiting for the disk
/// (`preadv2` with `RWF_NOWAIT`); returns how many bytes were read (0 when anything failed: the
/// blocking read that follows reports real errors).
#[cfg(target_os = "linux")]
fn read_cached(file: &std::fs::File, buffer: &mut [u8], offset: u64) -> usize {
    let mut filled = 0;
    while filled < buffer.len() {
        let slice = &mut [std::io::IoSliceMut::new(&mut buffer[filled..])];
        match rustix::io::preadv2(
            file,
            slice,
            offset + filled as u64,
            rustix::io::ReadWriteFlags::NOWAIT,
        ) {
            Ok(read) if read > 0 => filled += read,
            _ => break,
        }
    }
    filled
}

#[cfg(not(target_os = "linux"))]
fn read_cached(_: &std::fs::File, _: &mut [u8], _: u64) -> usize {
    0
}

/// A fetch failure, for one more reader: same kind, subject and message.
fn shared_error(error: &StoreError) -> StoreError {
    let mut message = error.message().to_owned();
    let mut cause = std::error::Error::source(error);
    while let Some(inner) = cause {
        message.push_str(&format!(": {inner}"));
        cause = inner.source();
    }
    StoreError::new(error.kind(), error.subject(), message).with_retry_after(error.retry_after())
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use hoist_oci::{Reference, Tag};
    use hoist_store::{ManifestHead, RawManifest};
    use tokio::sync::mpsc;

    use super::*;

    /// A source whose one blob arrives chunk by chunk, when the test sends it.
    struct Trickle {
        chunks: Mutex<Option<mpsc::UnboundedReceiver<Bytes>>>,
        fetches: AtomicUsize,
    }

    impl std::fmt::Debug for Trickle {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("Trickle")
        }
    }

    fn unsupported() -> StoreError {
        StoreError::new(StoreErrorKind::Unsupported, "trickle", "blobs only")
    }

    #[async_trait::async_trait]
    impl Source for Trickle {
        fn describe(&self) -> String {
            "trickle".to_owned()
        }
        async fn list_tags(&self, _: &str) -> Result<Vec<Tag>, StoreError> {
            Err(unsupported())
        }
        async fn head_manifest(
            &self,
            _: &str,
            _: &Reference,
        ) -> Result<Option<ManifestHead>, StoreError> {
            Err(unsupported())
        }
        async fn fetch_manifest(
            &self,
            _: &str,
            _: &Reference,
        ) -> Result<Option<RawManifest>, StoreError> {
            Err(unsupported())
        }
        async fn blob_size(&self, _: &str, _: &Digest) -> Result<Option<u64>, StoreError> {
            Err(unsupported())
        }
        async fn fetch_blob(&self, _: &str, _: &Digest) -> Result<ByteStream, StoreError> {
            self.fetches.fetch_add(1, Ordering::SeqCst);
            let receiver = lock(&self.chunks).take().ok_or_else(unsupported)?;
            Ok(Box::pin(futures::stream::unfold(
                receiver,
                |mut receiver| async move {
                    let chunk = receiver.recv().await?;
                    Some((Ok(chunk), receiver))
                },
            )))
        }
    }

    fn trickle() -> (Arc<Trickle>, mpsc::UnboundedSender<Bytes>) {
        let (sender, receiver) = mpsc::unbounded_channel();
        let source = Arc::new(Trickle {
            chunks: Mutex::new(Some(receiver)),
            fetches: AtomicUsize::new(0),
        });
        (source, sender)
    }

    fn spool() -> (Spool, tempfile::TempDir) {
        let directory = tempfile::tempdir().unwrap();
        let spool = Spool::new(SpoolOptions {
            directory: directory.path().to_owned(),
            capacity: 1 << 20,
            streams: 2,
        })
        .unwrap();
        (spool, directory)
    }

    #[tokio::test]
    async fn work_is_admitted_while_its_blobs_fit_and_larger_work_alone() {
        let (spool, _directory) = spool();
        assert_eq!(kib(3 << 30), 3 << 20);
        assert_eq!(kib(10), 1, "rounded up");
        let wait = std::time::Duration::from_millis(200);
        let half = spool.admit(512 << 10).await;
        let quarter = spool.admit(256 << 10).await;
        // 768 KiB of 1 MiB promised: half more does not fit until half is given back.
        assert!(
            tokio::time::timeout(wait, spool.admit(512 << 10))
                .await
                .is_err()
        );
        drop(half);
        let again = tokio::time::timeout(wait, spool.admit(512 << 10)).await;
        assert!(again.is_ok(), "the room came back");
        // More than the whole spool asks for all of it: it runs alone.
        drop((quarter, again));
        let alone = spool.admit(8 << 20).await;
        assert!(tokio::time::timeout(wait, spool.admit(1)).await.is_err());
        drop(alone);
        assert!(tokio::time::timeout(wait, spool.admit(1)).await.is_ok());
    }

    #[tokio::test]
    async fn streams_wait_for_a_slot_and_a_dropped_stream_frees_its_slot() {
        let (spool, _directory) = spool();
        let (trickle, sender) = trickle();
        let source: Arc<dyn Source> = trickle;
        let content = b"0123456789".to_vec();
        let digest = Digest::of(&content);
        spool.expect(digest, 3);
        let first = spool
            .read(spool.reserve_stream().await, &source, "r", digest, 10)
            .await
            .unwrap();
        let unused = spool.reserve_stream().await;
        // Both slots are taken: a third waits.
        let waiting = tokio::time::timeout(
            std::time::Duration::from_millis(200),
            spool.reserve_stream(),
        )
        .await;
        assert!(waiting.is_err(), "a third stream got a slot of two");
        // A slot dropped unused (the destination had the blob) frees its place.
        drop(unused);
        let second = spool
            .read(spool.reserve_stream().await, &source, "r", digest, 10)
            .await
            .unwrap();
        assert!(
            tokio::time::timeout(
                std::time::Duration::from_millis(200),
                spool.reserve_stream()
            )
            .await
            .is_err()
        );
        // So does a stream, once dropped (its upload ended); both read the blob whole.
        sender.send(Bytes::from(content.clone())).unwrap();
        drop(sender);
        for mut stream in [first, second] {
            let (bytes, end) = drain_ready(&mut stream).await;
            assert_eq!(bytes, content);
            assert!(matches!(end, Some(Ok(()))), "{end:?}");
        }
        let third =
            tokio::time::timeout(std::time::Duration::from_secs(5), spool.reserve_stream()).await;
        assert!(third.is_ok(), "the slots came back");
    }

    /// Reads what `stream` has now, without waiting: its bytes, and whether it ended or failed.
    async fn drain_ready(stream: &mut ByteStream) -> (Vec<u8>, Option<Result<(), StoreError>>) {
        let mut bytes = Vec::new();
        loop {
            let next =
                tokio::time::timeout(std::time::Duration::from_millis(200), stream.next()).await;
            match next {
                Err(_) => return (bytes, None),
                Ok(None) => return (bytes, Some(Ok(()))),
                Ok(Some(Ok(chunk))) => bytes.extend_from_slice(&chunk),
                Ok(Some(Err(error))) => return (bytes, Some(Err(error))),
            }
        }
    }

    #[tokio::test]
    async fn readers_follow_the_fetch_but_get_the_last_byte_only_once_verified() {
        let content = b"0123456789";
        let digest = Digest::of(content);
        let (source, sender) = trickle();
        let source: Arc<dyn Source> = source;
        let (spool, _directory) = spool();
        let mut first = spool
            .read(spool.reserve_stream().await, &source, "r", digest, 10)
            .await
            .unwrap();
        sender.send(Bytes::from_static(b"01234")).unwrap();
        sender.send(Bytes::from_static(b"56789")).unwrap();
        let (bytes, end) = drain_ready(&mut first).await;
        assert_eq!(
            bytes, b"012345678",
            "all but the last byte, before the end is known"
        );
        assert!(end.is_none());

        // A second reader starts from the first byte, without another fetch.
        let mut second = spool
            .read(spool.reserve_stream().await, &source, "r", digest, 10)
            .await
            .unwrap();
        drop(sender);
        let (bytes, end) = drain_ready(&mut first).await;
        assert_eq!(bytes, b"9");
        assert!(matches!(end, Some(Ok(()))));
        let (bytes, end) = drain_ready(&mut second).await;
        assert_eq!(bytes, content);
        assert!(matches!(end, Some(Ok(()))));
        assert_eq!(spool.stats().fetches, 1);
    }

    #[tokio::test]
    async fn a_mismatch_fails_every_reader_instead_of_the_last_byte() {
        let digest = Digest::of(b"0123456789");
        let (source, sender) = trickle();
        let counter = Arc::clone(&source);
        let source: Arc<dyn Source> = source;
        let (spool, _directory) = spool();
        let mut reader = spool
            .read(spool.reserve_stream().await, &source, "r", digest, 10)
            .await
            .unwrap();
        sender.send(Bytes::from_static(b"0123456780")).unwrap();
        drop(sender);
        let (bytes, end) = drain_ready(&mut reader).await;
        assert!(
            bytes.len() < 10 && b"0123456780".starts_with(&bytes),
            "never the whole blob: {bytes:?}"
        );
        let error = end.expect("an end").expect_err("a mismatch");
        assert_eq!(error.kind(), StoreErrorKind::DigestMismatch);

        // Remembered: another reader fails the same way, without reading the source again.
        let mut again = spool
            .read(spool.reserve_stream().await, &source, "r", digest, 10)
            .await
            .unwrap();
        let (bytes, end) = drain_ready(&mut again).await;
        assert!(bytes.is_empty());
        assert!(matches!(end, Some(Err(_))));
        assert_eq!(counter.fetches.load(Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn a_blob_is_evicted_once_every_announced_consumer_released_it() {
        let content = b"evict me";
        let digest = Digest::of(content);
        let (source, sender) = trickle();
        let source: Arc<dyn Source> = source;
        let (spool, _directory) = spool();
        spool.expect(digest, 2);
        let mut reader = spool
            .read(spool.reserve_stream().await, &source, "r", digest, 8)
            .await
            .unwrap();
        sender.send(Bytes::from_static(content)).unwrap();
        drop(sender);
        let (bytes, _) = drain_ready(&mut reader).await;
        assert_eq!(bytes, content);
        drop(reader);
        assert_eq!(
            lock(&spool.shared.state).held_bytes,
            8,
            "kept for the second consumer"
        );
        spool.release(&digest);
        assert_eq!(lock(&spool.shared.state).held_bytes, 8);
        spool.release(&digest);
        assert_eq!(lock(&spool.shared.state).held_bytes, 0, "evicted");
        assert!(lock(&spool.shared.state).entries.is_empty());
    }
}
