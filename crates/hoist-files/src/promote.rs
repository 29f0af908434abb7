//! The file promotion: [`plan`] reads what every source and destination holds, [`execute`] copies
//! what is missing. The dry run is the plan; `--confirm` executes exactly that plan.
//!
//! Per (file, destination) the plan is one [`FileStep`]:
//! - [`FileAction::Copy`]: the destination has no object there; the source has one.
//! - [`FileAction::Present`]: the destination holds an object whose bytes hash to the manifest's
//!   sha256 (read and hashed: a size or a name proves nothing about content).
//! - [`FileAction::Mismatched`]: the destination holds other bytes. Never overwritten: reported.
//! - [`FileAction::MissingSource`]: neither the destination nor the source has the file.
//! - [`FileAction::Unreadable`]: a store could not be asked (operational; a re-run may succeed).
//!
//! Execution streams each source object through a sha256 check into each destination with a
//! create-only write ([`hoist_object::copy_object`]). Source bytes that do not hash to the
//! manifest's sha256 refuse that file: nothing is written for it, and its other destinations are
//! not even attempted.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;

use futures::StreamExt as _;
use hoist_object::{Bucket, ObjectErrorKind, PutOutcome, hash_object};
use hoist_oci::Digest;
use serde::Serialize;

use crate::FileEntry;
use crate::error::FilesError;
use crate::model::{FileManifest, Filestore, object_url};

/// What a step does, or why it cannot.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum FileAction {
    /// Copy the file from the source.
    Copy,
    /// Already there with the right bytes.
    Present,
    /// The destination holds other bytes; never overwritten.
    Mismatched,
    /// The file is in neither the source nor the destination.
    MissingSource,
    /// A store could not be asked.
    Unreadable,
}

impl FileAction {
    /// Whether this step refuses the file for a reason a person must fix (bad bytes, missing
    /// file), as opposed to an operational failure.
    pub fn is_refusal(self) -> bool {
        matches!(self, Self::Mismatched | Self::MissingSource)
    }
}

/// One file to one destination.
#[derive(Debug, Clone, Serialize)]
pub struct FileStep {
    /// The project, for the multi-project layout.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub project: Option<String>,
    /// The file's name below each base.
    pub name: String,
    /// The manifest's sha256, as hex.
    pub sha256: String,
    /// The source object (`gs://staging/name`).
    pub source: String,
    /// The destination filestore's base.
    pub destination_base: String,
    /// The destination object.
    pub destination: String,
    /// The size of the source object (when it exists) or of the destination object.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub size: Option<u64>,
    /// What the step does.
    pub action: FileAction,
    /// Why, for anything but a copy or a present file.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Where the file is listed (`file:line:column`).
    pub location: String,
    #[serde(skip)]
    pub(crate) digest: Digest,
    #[serde(skip)]
    pub(crate) source_bucket: String,
    #[serde(skip)]
    pub(crate) destination_bucket: String,
}

/// Per destination filestore: how many files each action has, and the bytes to copy.
#[derive(Debug, Clone, Default, Serialize)]
pub struct FileTotals {
    /// Steps to copy, and their bytes.
    pub copy: u64,
    pub bytes: u64,
    /// Files already there.
    pub present: u64,
    /// Refusals (mismatched destination, missing source) and unreadable stores.
    pub refused: u64,
    pub unreadable: u64,
}

/// The plan of a file promotion: one step per (file, destination object), in manifest order.
#[derive(Debug, Clone, Default, Serialize)]
pub struct FilePlan {
    /// Every step.
    pub steps: Vec<FileStep>,
}

impl FilePlan {
    /// Totals per destination base, in base order.
    pub fn totals(&self) -> BTreeMap<String, FileTotals> {
        let mut totals: BTreeMap<String, FileTotals> = BTreeMap::new();
        for step in &self.steps {
            let total = totals.entry(step.destination_base.clone()).or_default();
            match step.action {
                FileAction::Copy => {
                    total.copy += 1;
                    total.bytes += step.size.unwrap_or(0);
                }
                FileAction::Present => total.present += 1,
                FileAction::Mismatched | FileAction::MissingSource => total.refused += 1,
                FileAction::Unreadable => total.unreadable += 1,
            }
        }
        totals
    }

    /// The steps that a person must look at.
    pub fn problems(&self) -> impl Iterator<Item = &FileStep> {
        self.steps
            .iter()
            .filter(|step| !matches!(step.action, FileAction::Copy | FileAction::Present))
    }

    /// Whether nothing needs copying and nothing is wrong.
    pub fn is_complete(&self) -> bool {
        self.steps
            .iter()
            .all(|step| step.action == FileAction::Present)
    }
}

/// The key of a filestore's bucket in [`Buckets`]: its URL and how it is reached.
pub(crate) fn bucket_key(store: &Filestore) -> String {
    let options = &store.options;
    format!(
        "{}|{}|{}|{}",
        store.url,
        options.endpoint.as_deref().unwrap_or(""),
        options.region.as_deref().unwrap_or(""),
        options.path_style
    )
}

/// Reads what every source and destination holds and classifies every (file, destination).
/// Makes `HEAD`s, and reads (hashes) every destination object that exists; writes nothing.
pub async fn plan(manifests: &[FileManifest], buckets: &Buckets, concurrency: usize) -> FilePlan {
    let mut seen: HashSet<String> = HashSet::new();
    let mut work: Vec<(StepSeed, &FileEntry)> = Vec::new();
    for manifest in manifests {
        let Some(source) = manifest.source() else {
            continue;
        };
        for file in &manifest.files {
            for destination in manifest.destinations() {
                let url = object_url(&destination.url, &file.name);
                // The same object promoted by two manifests (with the same sha256: anything else
                // is a conflict, refused at loading) is one step.
                if !seen.insert(url.clone()) {
                    continue;
                }
                work.push((
                    StepSeed {
                        project: manifest.project.clone(),
                        source,
                        destination,
                        destination_url: url,
                    },
                    file,
                ));
            }
        }
    }
    // One HEAD per source object, however many destinations it has.
    let sources: HashMap<String, Result<Option<u64>, String>> = {
        let mut unique: BTreeMap<String, (&Filestore, &str)> = BTreeMap::new();
        for (seed, file) in &work {
            unique
                .entry(object_url(&seed.source.url, &file.name))
                .or_insert((seed.source, &file.name));
        }
        futures::stream::iter(unique)
            .map(|(url, (store, name))| async move {
                let answer = match buckets.get(store) {
                    Ok(bucket) => bucket
                        .object_size(name)
                        .await
                        .map_err(|error| error.to_string()),
                    Err(error) => Err(error.to_string()),
                };
                (url, answer)
            })
            .buffer_unordered(concurrency.max(1))
            .collect()
            .await
    };
    let steps = futures::stream::iter(work)
        .map(|(seed, file)| {
            let source = sources
                .get(&object_url(&seed.source.url, &file.name))
                .cloned()
                .unwrap_or(Ok(None));
            async move { classify(seed, file, source, buckets).await }
        })
        .buffered(concurrency.max(1))
        .collect()
        .await;
    FilePlan { steps }
}

struct StepSeed<'a> {
    project: Option<String>,
    source: &'a Filestore,
    destination: &'a Filestore,
    destination_url: String,
}

async fn classify(
    seed: StepSeed<'_>,
    file: &FileEntry,
    source: Result<Option<u64>, String>,
    buckets: &Buckets,
) -> FileStep {
    let mut step = FileStep {
        project: seed.project,
        name: file.name.clone(),
        sha256: file.sha256.hex(),
        source: object_url(&seed.source.url, &file.name),
        destination_base: seed.destination.base.clone(),
        destination: seed.destination_url,
        size: None,
        action: FileAction::Unreadable,
        reason: None,
        location: file.location.to_string(),
        digest: file.sha256,
        source_bucket: bucket_key(seed.source),
        destination_bucket: bucket_key(seed.destination),
    };
    let destination = match buckets.get(seed.destination) {
        Ok(bucket) => bucket,
        Err(error) => {
            step.reason = Some(error.to_string());
            return step;
        }
    };
    let held = match destination.object_size(&file.name).await {
        Ok(held) => held,
        Err(error) => {
            step.reason = Some(error.to_string());
            return step;
        }
    };
    match (held, source) {
        (Some(size), _) => {
            step.size = Some(size);
            judge_existing(&mut step, destination.as_ref(), &file.sha256).await;
        }
        (None, Ok(Some(size))) => {
            step.size = Some(size);
            step.action = FileAction::Copy;
        }
        (None, Ok(None)) => {
            step.action = FileAction::MissingSource;
            step.reason = Some(format!("{} does not exist", step.source));
        }
        (None, Err(error)) => step.reason = Some(error),
    }
    step
}

/// Hashes the object a destination already holds: the right bytes are [`FileAction::Present`],
/// others [`FileAction::Mismatched`].
async fn judge_existing(step: &mut FileStep, bucket: &dyn Bucket, sha256: &Digest) {
    match hash_object(bucket, &step.name).await {
        Ok((_, found)) if found == *sha256 => {
            step.action = FileAction::Present;
            step.reason = None;
        }
        Ok((size, found)) => {
            step.action = FileAction::Mismatched;
            step.size = Some(size);
            step.reason = Some(format!(
                "{} already holds other bytes ({size} bytes with sha256 {}); never overwritten",
                step.destination,
                found.hex()
            ));
        }
        Err(error) => {
            step.action = FileAction::Unreadable;
            step.reason = Some(error.to_string());
        }
    }
}

/// What executing one copy step did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum CopyOutcome {
    /// Written now.
    Written,
    /// Found there with the right bytes (written meanwhile by someone else).
    Present,
    /// The source's bytes do not hash to the manifest's sha256: nothing written.
    SourceMismatch,
    /// The destination holds other bytes (appeared meanwhile): never overwritten.
    Mismatched,
    /// Not attempted: the same file's source failed verification for another destination.
    Skipped,
    /// An operational failure; a re-run may succeed.
    Failed,
}

impl CopyOutcome {
    /// Whether the file is now where it belongs.
    pub fn is_done(self) -> bool {
        matches!(self, Self::Written | Self::Present)
    }

    /// A refusal a person must fix (bad bytes), as opposed to an operational failure.
    pub fn is_refusal(self) -> bool {
        matches!(
            self,
            Self::SourceMismatch | Self::Mismatched | Self::Skipped
        )
    }
}

/// One executed copy.
#[derive(Debug, Clone, Serialize)]
pub struct Copied {
    /// The destination object.
    pub destination: String,
    /// The source object.
    pub source: String,
    /// Bytes written (0 unless written).
    pub bytes: u64,
    /// What happened.
    pub outcome: CopyOutcome,
    /// Why, when it did not work.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// Called after each copy (made, found done, refused or failed), from any task.
pub type CopyCallback<'a> = &'a (dyn Fn(&Copied) + Send + Sync);

/// Executes the copy steps of `plan`, `concurrency` files at a time; the destinations of one
/// file are written one after the other, so a source that fails verification is read once.
pub async fn execute(plan: &FilePlan, buckets: &Buckets, concurrency: usize) -> Vec<Copied> {
    execute_with(plan, buckets, concurrency, &|_| {}).await
}

/// [`execute`], calling `on_copied` after each copy (for progress).
pub async fn execute_with(
    plan: &FilePlan,
    buckets: &Buckets,
    concurrency: usize,
    on_copied: CopyCallback<'_>,
) -> Vec<Copied> {
    let mut by_source: BTreeMap<&str, Vec<&FileStep>> = BTreeMap::new();
    for step in plan
        .steps
        .iter()
        .filter(|step| step.action == FileAction::Copy)
    {
        by_source.entry(&step.source).or_default().push(step);
    }
    let batches: Vec<Vec<Copied>> = futures::stream::iter(by_source.into_values())
        .map(|steps| copy_file(steps, buckets, on_copied))
        .buffer_unordered(concurrency.max(1))
        .collect()
        .await;
    let mut copied: Vec<Copied> = batches.into_iter().flatten().collect();
    copied.sort_by(|a, b| a.destination.cmp(&b.destination));
    copied
}

async fn copy_file(
    steps: Vec<&FileStep>,
    buckets: &Buckets,
    on_copied: CopyCallback<'_>,
) -> Vec<Copied> {
    let mut done = Vec::new();
    let mut source_refused: Option<String> = None;
    for step in steps {
        let mut copied = Copied {
            destination: step.destination.clone(),
            source: step.source.clone(),
            bytes: 0,
            outcome: CopyOutcome::Failed,
            reason: None,
        };
        if let Some(reason) = &source_refused {
            copied.outcome = CopyOutcome::Skipped;
            copied.reason = Some(reason.clone());
            on_copied(&copied);
            done.push(copied);
            continue;
        }
        let (source, destination) = match (
            buckets.by_key(&step.source_bucket),
            buckets.by_key(&step.destination_bucket),
        ) {
            (Ok(source), Ok(destination)) => (source, destination),
            (Err(error), _) | (_, Err(error)) => {
                copied.reason = Some(error.to_string());
                on_copied(&copied);
                done.push(copied);
                continue;
            }
        };
        let size = step.size.unwrap_or(0);
        let result = hoist_object::copy_object(
            source.as_ref(),
            &step.name,
            destination.as_ref(),
            &step.name,
            &step.digest,
            size,
        )
        .await;
        match result {
            Ok(PutOutcome::Written) => {
                tracing::info!(src = %step.source, dst = %step.destination, bytes = size, "file copied");
                copied.outcome = CopyOutcome::Written;
                copied.bytes = size;
            }
            Ok(PutOutcome::AlreadyPresent) => {
                let mut judged = step.clone();
                judge_existing(&mut judged, destination.as_ref(), &step.digest).await;
                (copied.outcome, copied.reason) = match judged.action {
                    FileAction::Present => (CopyOutcome::Present, None),
                    FileAction::Mismatched => (CopyOutcome::Mismatched, judged.reason),
                    _ => (CopyOutcome::Failed, judged.reason),
                };
            }
            Err(error) if error.kind() == ObjectErrorKind::Corrupt => {
                // Either the source's bytes are wrong, or an object of another size appeared at
                // the destination since the plan: the destination says which.
                match destination.object_size(&step.name).await {
                    Ok(Some(_)) => {
                        copied.outcome = CopyOutcome::Mismatched;
                        copied.reason = Some(format!(
                            "{} already holds other bytes; never overwritten ({error})",
                            step.destination
                        ));
                    }
                    _ => {
                        // The verifying stream says what it expected and what it got.
                        let detail = error
                            .message()
                            .trim_start_matches("reading the blob failed: ");
                        copied.outcome = CopyOutcome::SourceMismatch;
                        copied.reason = Some(format!(
                            "the source's bytes do not match the manifest's sha256; nothing \
                             written: {detail}"
                        ));
                        source_refused = Some(format!(
                            "not attempted: {} failed verification for another destination",
                            step.source
                        ));
                    }
                }
            }
            Err(error) => copied.reason = Some(error.to_string()),
        }
        on_copied(&copied);
        done.push(copied);
    }
    done
}

/// How files are uploaded: multipart (S3) or resumable (GCS) above 16 MiB, in 8 MiB parts. Release
/// files are copied several at a time and each upload holds one part (or a whole small file) in
/// memory, so parts smaller than the blob mirrors' keep a promotion's memory low.
pub fn file_uploads() -> hoist_object::UploadSettings {
    hoist_object::UploadSettings {
        multipart_threshold: 16 * 1024 * 1024,
        part_size: 8 * 1024 * 1024,
    }
}

/// Opens the bucket of every filestore of `manifests` (no request is made).
pub async fn open_buckets(
    manifests: &[FileManifest],
    options: &hoist_object::OpenOptions,
) -> Result<Buckets, FilesError> {
    let mut opened: HashMap<String, Arc<dyn Bucket>> = HashMap::new();
    for store in manifests.iter().flat_map(|manifest| &manifest.filestores) {
        let key = bucket_key(store);
        if opened.contains_key(&key) {
            continue;
        }
        let bucket = hoist_object::open_bucket(&store.backend(), options)
            .await
            .map_err(|source| FilesError::Open {
                base: store.base.clone(),
                source,
            })?;
        opened.insert(key, bucket);
    }
    Ok(Buckets { opened })
}

/// The opened bucket of every filestore of a run, by URL and options. A file's name is its key
/// in the bucket (the bucket adds the base's prefix).
#[derive(Debug, Clone, Default)]
pub struct Buckets {
    opened: HashMap<String, Arc<dyn Bucket>>,
}

impl Buckets {
    /// The bucket of `store`.
    pub fn get(&self, store: &Filestore) -> Result<Arc<dyn Bucket>, FilesError> {
        self.by_key(&bucket_key(store))
    }

    pub(crate) fn by_key(&self, key: &str) -> Result<Arc<dyn Bucket>, FilesError> {
        self.opened
            .get(key)
            .cloned()
            .ok_or_else(|| FilesError::NotOpened {
                base: key.split('|').next().unwrap_or(key).to_owned(),
            })
    }
}
