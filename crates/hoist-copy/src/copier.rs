//! [`Copier`]: one image at a time, in commit order blobs → child manifests → index → tags.

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::StreamExt as _;
use hoist_oci::{Digest, Reference, Tag};
use hoist_store::{RawManifest, Sink, Source};

use crate::blobs::SharedCopy;
use crate::error::CopyError;
use crate::manifest::{Descriptor, References, references};
use crate::progress::{BlobOutcome, Progress, ProgressEvent};
use crate::spool::Spool;

/// Tag suffixes cosign uses for things attached to `sha256-<hex>`; the empty one is the OCI
/// referrers tag-schema fallback (an index of referrers tagged `sha256-<hex>`).
const ATTACHED_SUFFIXES: [&str; 4] = [".sig", ".att", ".sbom", ""];

/// How a [`Copier`] works.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CopyOptions {
    /// Blobs of one image copied at once (at least 1).
    pub concurrency: usize,
    /// Copy cosign signatures, attestations and SBOMs and the referrers fallback tag along.
    pub attached: bool,
    /// Attempts per blob when the store fails in a retryable way (the first included).
    pub attempts: u32,
    /// The wait before the second attempt; it doubles for each later one.
    pub backoff: Duration,
}

impl Default for CopyOptions {
    fn default() -> Self {
        Self {
            concurrency: 4,
            attached: true,
            attempts: 3,
            backoff: Duration::from_millis(500),
        }
    }
}

/// One image to copy: `digest` from the source repository to the destination repository, then
/// `tags` pointed at it there.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CopyRequest {
    /// The repository path in the source store.
    pub source_repository: String,
    /// The repository path in the destination store.
    pub destination_repository: String,
    /// The manifest or index to copy.
    pub digest: Digest,
    /// Tags to point at it at the destination.
    pub tags: Vec<Tag>,
    /// The caller found the manifest missing at the destination (a plan's inventory): it is not
    /// looked up there again, one round trip less. Pushing it once more would be harmless.
    pub missing: bool,
}

/// A cosign artifact or referrers index that was copied along with an image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttachedArtifact {
    /// Its tag, such as `sha256-<hex>.sig`.
    pub tag: Tag,
    /// The manifest the tag points at.
    pub digest: Digest,
}

/// What one copy did. Counts include the attached artifacts.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CopyReport {
    /// Manifests pushed by digest.
    pub manifests_pushed: usize,
    /// Manifests the destination already had (their whole tree is then skipped).
    pub manifests_skipped: usize,
    /// Blobs streamed from the source.
    pub blobs_uploaded: usize,
    /// Blobs mounted from the source repository of the same store.
    pub blobs_mounted: usize,
    /// Blobs the destination had, or that a concurrent request copied.
    pub blobs_skipped: usize,
    /// Bytes of the uploaded blobs.
    pub bytes_uploaded: u64,
    /// Foreign and non-distributable layers, which registries do not hold, so were not copied.
    pub foreign_layers_skipped: Vec<Digest>,
    /// Tags pointed at the image.
    pub tags_set: usize,
    /// Tags that already pointed at the image.
    pub tags_skipped: usize,
    /// Attached artifacts copied along (by tag).
    pub attached: Vec<AttachedArtifact>,
    /// Referrers found through the source's OCI referrers API and copied along (by digest).
    pub referrers: Vec<Digest>,
}

impl CopyReport {
    /// Adds the counts and lists of `other`, a report of the same copy.
    fn absorb(&mut self, other: CopyReport) {
        self.manifests_pushed += other.manifests_pushed;
        self.manifests_skipped += other.manifests_skipped;
        self.blobs_uploaded += other.blobs_uploaded;
        self.blobs_mounted += other.blobs_mounted;
        self.blobs_skipped += other.blobs_skipped;
        self.bytes_uploaded += other.bytes_uploaded;
        self.foreign_layers_skipped
            .extend(other.foreign_layers_skipped);
        self.tags_set += other.tags_set;
        self.tags_skipped += other.tags_skipped;
        self.attached.extend(other.attached);
        self.referrers.extend(other.referrers);
    }
}

/// Copies images from one store to another. Cheap to share behind an `Arc`; run many
/// [`Copier::copy`] calls at once and identical blob copies are merged.
#[derive(Clone)]
pub struct Copier {
    inner: Arc<Inner>,
}

pub(crate) struct Inner {
    pub(crate) source: Arc<dyn Source>,
    pub(crate) destination: Arc<dyn Sink>,
    pub(crate) options: CopyOptions,
    pub(crate) progress: Option<Progress>,
    /// Source and destination are one store, so blobs can be mounted across repositories.
    pub(crate) same_store: bool,
    /// Where source blobs are read through, shared with the copiers to other destinations.
    pub(crate) spool: Option<Spool>,
    /// Blob copies by (destination repository, digest): running, or finished successfully.
    pub(crate) in_flight: Mutex<HashMap<(String, Digest), SharedCopy>>,
    /// A destination repository known to hold each blob (found there, uploaded or mounted), to
    /// mount it from into the other repositories of the destination instead of uploading again.
    pub(crate) placed: Mutex<HashMap<Digest, String>>,
    /// The destination repository the first copy of each blob went to: a copy of the blob into
    /// another repository waits for that one and mounts, instead of uploading the bytes again.
    pub(crate) first_copy: Mutex<HashMap<Digest, String>>,
    /// Source tag lists by repository, listed once per copier to find attached artifacts.
    source_tags: tokio::sync::Mutex<HashMap<String, Arc<HashSet<Tag>>>>,
}

impl fmt::Debug for Copier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Copier")
            .field("source", &self.inner.source.describe())
            .field("destination", &self.inner.destination.describe())
            .field("options", &self.inner.options)
            .finish_non_exhaustive()
    }
}

/// A manifest of a walk: its digest, the size its parent names, and, once its children are
/// queued, its bytes with whether it is a leaf.
type Pending = (Digest, Option<u64>, Option<(RawManifest, bool)>);

/// The manifests of one image still to push, in push order, and the blobs they need.
#[derive(Default)]
struct Tree {
    /// Children before parents, each with whether it has children of its own (a leaf depends on
    /// no other manifest, so consecutive leaves are pushed at once).
    manifests: Vec<(RawManifest, bool)>,
    blobs: Vec<Descriptor>,
    root: Option<RawManifest>,
}

impl Copier {
    /// A copier from `source` to `destination`. When both `describe()` the same store, blobs are
    /// mounted across repositories instead of uploaded.
    pub fn new(source: Arc<dyn Source>, destination: Arc<dyn Sink>, options: CopyOptions) -> Self {
        let same_store = source.describe() == destination.describe();
        Self {
            inner: Arc::new(Inner {
                source,
                destination,
                options,
                progress: None,
                same_store,
                spool: None,
                in_flight: Mutex::default(),
                placed: Mutex::default(),
                first_copy: Mutex::default(),
                source_tags: tokio::sync::Mutex::default(),
            }),
        }
    }

    /// Sends progress events to `progress`. Call before sharing the copier.
    pub fn with_progress(mut self, progress: Progress) -> Self {
        match Arc::get_mut(&mut self.inner) {
            Some(inner) => inner.progress = Some(progress),
            None => tracing::warn!("progress set on a shared copier; ignored"),
        }
        self
    }

    /// Reads source blobs through `spool` (shared with other copiers from the same source), so
    /// that each is read from the source once for every destination. Call before sharing the
    /// copier.
    pub fn with_spool(mut self, spool: Spool) -> Self {
        match Arc::get_mut(&mut self.inner) {
            Some(inner) => inner.spool = Some(spool),
            None => tracing::warn!("spool set on a shared copier; ignored"),
        }
        self
    }

    /// Copies one image (a manifest, or an index with all its children) and then points the tags
    /// at it; with it, when enabled, its attached artifacts. Nothing is tagged unless everything the
    /// image references is at the destination; running it again completes an interrupted copy and
    /// only reads when the copy is complete.
    pub async fn copy(&self, request: &CopyRequest) -> Result<CopyReport, CopyError> {
        let inner = &self.inner;
        let mut report = CopyReport::default();
        let (from, to) = (&request.source_repository, &request.destination_repository);
        // What is attached to the image is looked up at the source and its content (blobs,
        // manifests: nothing a tag names yet) copied while the image is copied, so their round
        // trips overlap; its tags are written only once the image's own tags were all checked.
        let mut attached_report = CopyReport::default();
        let attached = async {
            if !inner.options.attached {
                return Ok((Vec::new(), None));
            }
            let (tagged, referrers) = futures::try_join!(
                inner.attached_tags(from, request.digest),
                inner.list_referrers(from, request.digest)
            )?;
            let mut prepared = Vec::with_capacity(tagged.len());
            for (tag, digest) in tagged {
                let root = inner
                    .prepare(from, to, digest, None, &mut attached_report)
                    .await?;
                prepared.push((tag, digest, root));
            }
            Ok::<_, CopyError>((prepared, referrers))
        };
        let known_missing = request.missing.then_some(request.digest);
        let (root, attached) = futures::join!(
            inner.prepare(from, to, request.digest, known_missing, &mut report),
            attached
        );
        let root = root?;
        // Every tag of the image is checked before any is written; once they are, the image is
        // complete and its tags and its artifacts' tags are written together.
        let to_set = inner
            .check_tags(to, request.digest, &request.tags, &mut report)
            .await?;
        let (prepared, referrers) = attached?;
        report.absorb(attached_report);
        let mut side = CopyReport::default();
        let artifacts = async {
            for (tag, digest, root) in prepared {
                inner
                    .set_tags(
                        from,
                        to,
                        digest,
                        root,
                        std::slice::from_ref(&tag),
                        &mut side,
                    )
                    .await?;
                side.attached.push(AttachedArtifact { tag, digest });
            }
            Ok::<_, CopyError>(())
        };
        let (written, artifacts) = futures::join!(
            inner.write_tags(from, to, request.digest, root, to_set, &mut report),
            artifacts
        );
        written?;
        artifacts?;
        report.absorb(side);
        inner
            .copy_referrers(from, to, referrers.unwrap_or_default(), &mut report)
            .await?;
        Ok(report)
    }
}

impl Inner {
    /// The attached artifacts' tags (`sha256-<hex>.sig`, `.att`, `.sbom`) the source holds for
    /// `digest`, with the digests they point at, looked up at once.
    async fn attached_tags(
        &self,
        from: &str,
        digest: Digest,
    ) -> Result<Vec<(Tag, Digest)>, CopyError> {
        let tags = self.source_tags(from).await?;
        let prefix = digest.tag_prefix();
        let wanted: Vec<Tag> = ATTACHED_SUFFIXES
            .iter()
            .filter_map(|suffix| Tag::parse(&format!("{prefix}{suffix}")).ok())
            .filter(|tag| tags.contains(tag))
            .collect();
        let heads = futures::future::join_all(wanted.iter().map(|tag| async move {
            let reference = Reference::Tag(tag.clone());
            self.source
                .head_manifest(from, &reference)
                .await
                .map_err(|error| {
                    CopyError::store(
                        "look up attached artifact",
                        format!("{}/{from}:{tag}", self.source.describe()),
                        error,
                    )
                })
        }))
        .await;
        let mut found = Vec::new();
        for (tag, head) in wanted.into_iter().zip(heads) {
            // Deleted between listing and now: nothing to copy.
            if let Some(head) = head? {
                found.push((tag, head.digest));
            }
        }
        Ok(found)
    }

    /// The referrers the source's referrers API lists for `digest`; `None` when it has no API
    /// (then the fallback tag, copied with the other attached tags, carries them).
    async fn list_referrers(
        &self,
        from: &str,
        digest: Digest,
    ) -> Result<Option<Vec<hoist_store::Referrer>>, CopyError> {
        self.source.referrers(from, &digest).await.map_err(|error| {
            CopyError::store(
                "list referrers",
                format!("{}/{from}@{digest}", self.source.describe()),
                error,
            )
        })
    }

    /// Copies, by digest, the `listed` referrers not copied already (a registry with the API
    /// indexes them again from their `subject` when they are pushed).
    async fn copy_referrers(
        self: &Arc<Self>,
        from: &str,
        to: &str,
        listed: Vec<hoist_store::Referrer>,
        report: &mut CopyReport,
    ) -> Result<(), CopyError> {
        for referrer in listed {
            let copied = report.attached.iter().any(|a| a.digest == referrer.digest)
                || report.referrers.contains(&referrer.digest);
            if copied {
                continue;
            }
            self.copy_image(from, to, referrer.digest, &[], report)
                .await?;
            report.referrers.push(referrer.digest);
        }
        Ok(())
    }

    pub(crate) fn emit(&self, event: &ProgressEvent) {
        if let Some(progress) = &self.progress {
            progress(event);
        }
    }

    fn subject(&self, repository: &str, reference: &dyn fmt::Display, separator: char) -> String {
        format!(
            "{}/{repository}{separator}{reference}",
            self.destination.describe()
        )
    }

    async fn copy_image(
        self: &Arc<Self>,
        from: &str,
        to: &str,
        digest: Digest,
        tags: &[Tag],
        report: &mut CopyReport,
    ) -> Result<(), CopyError> {
        let root = self.prepare(from, to, digest, None, report).await?;
        self.set_tags(from, to, digest, root, tags, report).await
    }

    /// Copies everything of the image but its tags: the manifests the destination lacks, children
    /// before parents, after the blobs they need; `known_missing` (a root the caller found
    /// missing) is not looked up at the destination. Returns the root manifest when it was read.
    async fn prepare(
        self: &Arc<Self>,
        from: &str,
        to: &str,
        digest: Digest,
        known_missing: Option<Digest>,
        report: &mut CopyReport,
    ) -> Result<Option<RawManifest>, CopyError> {
        let tree = self.walk(from, to, digest, known_missing, report).await?;
        self.copy_blobs(from, to, &tree.blobs, report).await?;
        // Children before parents; a run of leaves (images of an index) goes at once, each
        // parent only after everything before it.
        let mut rest = tree.manifests.as_slice();
        while !rest.is_empty() {
            let leaves = rest.iter().take_while(|(_, leaf)| *leaf).count().max(1);
            let (group, after) = rest.split_at(leaves);
            rest = after;
            // Owned captures, as in `copy_blobs`.
            let pushes = group.iter().cloned().map(|(manifest, _)| {
                let (inner, to) = (Arc::clone(self), to.to_owned());
                async move {
                    let reference = Reference::Digest(manifest.digest);
                    inner
                        .destination
                        .push_manifest(&to, &reference, &manifest)
                        .await
                        .map_err(|error| {
                            CopyError::store(
                                "push manifest",
                                inner.subject(&to, &manifest.digest, '@'),
                                error,
                            )
                        })
                        .map(|()| manifest.digest)
                }
            });
            let mut pushes =
                futures::stream::iter(pushes).buffered(self.options.concurrency.max(1));
            while let Some(pushed) = pushes.next().await {
                let digest = pushed?;
                report.manifests_pushed += 1;
                self.emit(&ProgressEvent::ManifestPushed {
                    repository: to.to_owned(),
                    digest,
                });
            }
        }
        Ok(tree.root)
    }

    /// Fetches the manifests of the image that the destination lacks, children before parents,
    /// and gathers the blobs they reference (each once).
    async fn walk(
        self: &Arc<Self>,
        from: &str,
        to: &str,
        digest: Digest,
        known_missing: Option<Digest>,
        report: &mut CopyReport,
    ) -> Result<Tree, CopyError> {
        let mut tree = Tree::default();
        let mut done = HashSet::new();
        let mut blobs_seen = HashSet::new();
        let mut blob_batches: Vec<Vec<Descriptor>> = Vec::new();
        // A work list, not recursion.
        let mut pending: Vec<Pending> = vec![(digest, None, None)];
        while let Some((current, expected_size, fetched)) = pending.pop() {
            if let Some((manifest, leaf)) = fetched {
                // Every child is pushed by now: the parent's turn.
                if done.insert(current) {
                    if current == digest {
                        tree.root = Some(manifest.clone());
                    }
                    tree.manifests.push((manifest, leaf));
                }
                continue;
            }
            // The siblings waiting on top of the stack are looked up at once (the children of
            // an index: one round trip for all of them instead of one each).
            let mut batch = vec![(current, expected_size)];
            while let Some((_, _, None)) = pending.last() {
                if let Some((sibling, size, _)) = pending.pop() {
                    batch.push((sibling, size));
                }
            }
            let mut queued = HashSet::new();
            batch.retain(|(candidate, _)| !done.contains(candidate) && queued.insert(*candidate));
            let lookups = batch.iter().copied().map(|(candidate, size)| {
                let (inner, from, to) = (Arc::clone(self), from.to_owned(), to.to_owned());
                let check = known_missing != Some(candidate);
                async move { inner.look_up(&from, &to, candidate, size, check).await }
            });
            let looked_up: Vec<Option<(RawManifest, References)>> = futures::stream::iter(lookups)
                .buffered(self.options.concurrency.max(1))
                .collect::<Vec<_>>()
                .await
                .into_iter()
                .collect::<Result<_, _>>()?;
            // Back on the stack in reverse, so the first sibling's children come first.
            for ((candidate, _), found) in batch.into_iter().zip(looked_up).rev() {
                let Some((manifest, found)) = found else {
                    // Committed children-first, so a manifest present means its whole tree is.
                    report.manifests_skipped += 1;
                    done.insert(candidate);
                    continue;
                };
                for layer in &found.foreign {
                    tracing::info!(digest = %layer.digest, manifest = %candidate, "not copying a foreign layer");
                    report.foreign_layers_skipped.push(layer.digest);
                }
                let leaf = found.children.is_empty();
                blob_batches.push(found.blobs);
                pending.push((candidate, None, Some((manifest, leaf))));
                pending.extend(
                    found
                        .children
                        .into_iter()
                        .rev()
                        .map(|child| (child.digest, Some(child.size), None)),
                );
            }
            // Blobs in the order the manifests were met.
            for blobs in blob_batches.drain(..).rev() {
                tree.blobs.extend(
                    blobs
                        .into_iter()
                        .filter(|blob| blobs_seen.insert(blob.digest)),
                );
            }
        }
        Ok(tree)
    }

    /// One manifest of a walk: `None` when the destination has it (looked up only when
    /// `check_destination`), else its bytes from the source (checked against the size its parent
    /// names) and what it references.
    async fn look_up(
        &self,
        from: &str,
        to: &str,
        current: Digest,
        expected_size: Option<u64>,
        check_destination: bool,
    ) -> Result<Option<(RawManifest, References)>, CopyError> {
        let reference = Reference::Digest(current);
        if check_destination {
            let at_destination = self
                .destination
                .head_manifest(to, &reference)
                .await
                .map_err(|error| {
                    CopyError::store("check manifest", self.subject(to, &current, '@'), error)
                })?;
            if at_destination.is_some() {
                return Ok(None);
            }
        }
        let source_subject = format!("{}/{from}@{current}", self.source.describe());
        let manifest = self
            .source
            .fetch_manifest(from, &reference)
            .await
            .map_err(|error| CopyError::store("fetch manifest", &source_subject, error))?
            .ok_or_else(|| CopyError::ManifestNotFound {
                subject: source_subject.clone(),
            })?;
        let invalid = |reason: String| CopyError::InvalidManifest {
            subject: source_subject.clone(),
            reason,
        };
        if let Some(expected) = expected_size
            && expected != manifest.bytes.len() as u64
        {
            return Err(invalid(format!(
                "its index names {expected} bytes, it has {}",
                manifest.bytes.len()
            )));
        }
        let found = references(&manifest.media_type, &manifest.bytes).map_err(invalid)?;
        Ok(Some((manifest, found)))
    }

    /// Copies `blobs` with bounded concurrency. On a failure the other copies still finish (what
    /// they upload serves the next run); the first error is returned.
    async fn copy_blobs(
        self: &Arc<Self>,
        from: &str,
        to: &str,
        blobs: &[Descriptor],
        report: &mut CopyReport,
    ) -> Result<(), CopyError> {
        // Owned captures: borrowed ones make the future not `Send` for every lifetime (a known
        // limitation of higher-ranked closures), and callers spawn copies.
        let copies = blobs.iter().cloned().map(|blob| {
            let inner = Arc::clone(self);
            let (from, to) = (from.to_owned(), to.to_owned());
            async move {
                let result = inner.ensure_blob(&from, &to, &blob).await;
                (blob, result)
            }
        });
        let mut copies =
            futures::stream::iter(copies).buffer_unordered(self.options.concurrency.max(1));
        let mut first_error = None;
        while let Some((blob, result)) = copies.next().await {
            match result {
                Ok(BlobOutcome::Uploaded) => {
                    report.blobs_uploaded += 1;
                    report.bytes_uploaded += blob.size;
                }
                Ok(BlobOutcome::Mounted) => report.blobs_mounted += 1,
                Ok(BlobOutcome::Skipped) => report.blobs_skipped += 1,
                Err(error) => {
                    first_error.get_or_insert(error);
                }
            }
        }
        first_error.map_or(Ok(()), Err)
    }

    /// Points `tags` at `digest`, after checking that none of them points elsewhere (then
    /// nothing is written).
    async fn set_tags(
        self: &Arc<Self>,
        from: &str,
        to: &str,
        digest: Digest,
        root: Option<RawManifest>,
        tags: &[Tag],
        report: &mut CopyReport,
    ) -> Result<(), CopyError> {
        let to_set = self.check_tags(to, digest, tags, report).await?;
        self.write_tags(from, to, digest, root, to_set, report)
            .await
    }

    /// Looks up every tag at once: those already at `digest` are counted, a tag at another digest
    /// is a move (an error, before anything is written), and the missing ones are returned.
    async fn check_tags(
        self: &Arc<Self>,
        to: &str,
        digest: Digest,
        tags: &[Tag],
        report: &mut CopyReport,
    ) -> Result<Vec<Tag>, CopyError> {
        let mut distinct: Vec<Tag> = Vec::with_capacity(tags.len());
        for tag in tags {
            if !distinct.contains(tag) {
                distinct.push(tag.clone());
            }
        }
        let checks = distinct.iter().cloned().map(|tag| {
            let (inner, to) = (Arc::clone(self), to.to_owned());
            async move {
                let head = inner
                    .destination
                    .head_manifest(&to, &Reference::Tag(tag.clone()))
                    .await
                    .map_err(|error| {
                        CopyError::store("check tag", inner.subject(&to, &tag, ':'), error)
                    })?;
                Ok::<_, CopyError>((tag, head))
            }
        });
        let checked: Vec<_> = futures::stream::iter(checks)
            .buffered(self.options.concurrency.max(1))
            .collect()
            .await;
        let mut to_set = Vec::new();
        for check in checked {
            let (tag, head) = check?;
            match head {
                Some(head) if head.digest == digest => report.tags_skipped += 1,
                Some(head) => {
                    return Err(CopyError::TagMove {
                        subject: self.subject(to, &tag, ':'),
                        current: head.digest,
                        wanted: digest,
                    });
                }
                None => to_set.push(tag),
            }
        }
        Ok(to_set)
    }

    /// Points the checked `to_set` tags at `digest`, at once.
    async fn write_tags(
        self: &Arc<Self>,
        from: &str,
        to: &str,
        digest: Digest,
        root: Option<RawManifest>,
        to_set: Vec<Tag>,
        report: &mut CopyReport,
    ) -> Result<(), CopyError> {
        if to_set.is_empty() {
            return Ok(());
        }
        let manifest = match root {
            Some(manifest) => manifest,
            // The image was already there; its bytes are needed to write the tag.
            None => {
                let subject = format!("{}/{from}@{digest}", self.source.describe());
                self.source
                    .fetch_manifest(from, &Reference::Digest(digest))
                    .await
                    .map_err(|error| CopyError::store("fetch manifest", &subject, error))?
                    .ok_or(CopyError::ManifestNotFound { subject })?
            }
        };
        let pushes = to_set.into_iter().map(|tag| {
            let (inner, to, manifest) = (Arc::clone(self), to.to_owned(), manifest.clone());
            async move {
                inner
                    .destination
                    .push_manifest(&to, &Reference::Tag(tag.clone()), &manifest)
                    .await
                    .map_err(|error| {
                        CopyError::store("push tag", inner.subject(&to, &tag, ':'), error)
                    })
                    .map(|()| tag)
            }
        });
        let mut pushes = futures::stream::iter(pushes).buffered(self.options.concurrency.max(1));
        while let Some(pushed) = pushes.next().await {
            let tag = pushed?;
            report.tags_set += 1;
            self.emit(&ProgressEvent::TagSet {
                repository: to.to_owned(),
                tag,
                digest,
            });
        }
        Ok(())
    }

    /// The tags of a source repository, listed once per copier.
    async fn source_tags(&self, repository: &str) -> Result<Arc<HashSet<Tag>>, CopyError> {
        let mut cache = self.source_tags.lock().await;
        if let Some(tags) = cache.get(repository) {
            return Ok(Arc::clone(tags));
        }
        let tags = self.source.list_tags(repository).await.map_err(|error| {
            CopyError::store(
                "list tags",
                format!("{}/{repository}", self.source.describe()),
                error,
            )
        })?;
        let tags = Arc::new(tags.into_iter().collect::<HashSet<_>>());
        cache.insert(repository.to_owned(), Arc::clone(&tags));
        Ok(tags)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attached_tags_are_valid_tags() {
        let prefix = Digest::of(b"x").tag_prefix();
        for suffix in ATTACHED_SUFFIXES {
            assert!(Tag::parse(&format!("{prefix}{suffix}")).is_ok(), "{suffix}");
        }
    }
}
