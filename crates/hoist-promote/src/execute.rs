//! Executing a [`Plan`]: every step that writes becomes one [`Copier::copy`], and every blob a
//! mirror lacks one upload, all in one pass, with failures collected per step and per blob so
//! that independent work goes on.
//!
//! **An image is the unit of work.** `jobs` images are in flight at once, and each goes to all
//! its destinations and mirrors at once. Counting (image × destination) pairs instead would let
//! an image's destinations take every slot: with three destinations sharing one source read,
//! `--jobs 8` moved only about three source streams at once, and on a long link the wall time is
//! set by how many streams move, not by the bytes. Each registry host's adaptive window (and
//! `--max-rps`) bounds the requests it gets however many images fan out to it. An image starts
//! only when the spool has room for its blobs beside those of the images moving, and the spool
//! bounds the streams in flight (memory), whatever the fan-out.
//!
//! **Read once, write everywhere.** One [`Spool`] serves the whole run: a source blob is read
//! once, verified once, and every destination registry and mirror that lacks it reads the
//! spooled copy (see `hoist_copy::Spool`). Work is ordered image by image (the steps of one image
//! to every destination, then its blobs to every mirror), so the consumers of a blob run at about
//! the same time and the spool holds it briefly; each consumer announced up front
//! ([`Spool::expect`]) releases the blob when it is done with it, which evicts it.
//!
//! One [`Copier`] serves each (source store, destination store) pair for the whole run, so a
//! blob that several images need in one destination repository is uploaded once.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt as _;
use hoist_copy::{
    Copier, CopyError, CopyOptions, CopyReport, CopyRequest, Progress, Spool, SpoolStats,
};
use hoist_oci::Digest;
use hoist_store::{Source, StoreError};

use crate::images::PromotedImage;
use crate::mirrors::{self, Mirror, MirrorSummary};
use crate::plan::{Plan, SourceImage, Step};
use crate::stores::Stores;

/// Called when a step ends, successfully or not.
pub type StepCallback = Arc<dyn Fn(&Step, Result<&CopyReport, &CopyError>) + Send + Sync>;

/// How a plan is executed.
#[derive(Clone, Default)]
pub struct ExecuteOptions {
    /// Images in flight at once; each goes to all its destinations and mirrors at once (its
    /// steps and mirror uploads run together, bounded per host by the stores' own windows).
    pub jobs: usize,
    /// How each image is copied (its `concurrency` also bounds the blobs of one image going to
    /// one mirror at once).
    pub copy: CopyOptions,
    /// Blob-level progress for bars and logs.
    pub progress: Option<Progress>,
    /// Step-level progress.
    pub on_step: Option<StepCallback>,
    /// The spool source blobs are read through; `None` reads each blob from the source for
    /// every destination (and mirror) that needs it.
    pub spool: Option<Spool>,
}

impl std::fmt::Debug for ExecuteOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ExecuteOptions")
            .field("jobs", &self.jobs)
            .field("copy", &self.copy)
            .field("spool", &self.spool)
            .finish_non_exhaustive()
    }
}

/// Blob mirrors to fill in the same pass as the registries: every blob of every image, in every
/// mirror (a `HEAD` skips what is there).
#[derive(Debug, Clone, Copy)]
pub struct MirrorWork<'a> {
    /// The promoted images (not only those copied now: a new mirror is back-filled).
    pub images: &'a [PromotedImage],
    /// The selected mirrors.
    pub mirrors: &'a [Mirror],
}

/// A step that failed.
#[derive(Debug, Clone, serde::Serialize)]
pub struct StepFailure {
    /// The step.
    pub step: Step,
    /// What went wrong.
    pub error: String,
}

/// What executing a plan did.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct Execution {
    /// Steps that completed.
    pub completed: usize,
    /// Steps that failed, in plan order.
    pub failures: Vec<StepFailure>,
    /// The sum of the copy reports.
    pub manifests_pushed: usize,
    pub blobs_uploaded: usize,
    pub blobs_mounted: usize,
    pub blobs_skipped: usize,
    pub bytes_uploaded: u64,
    pub tags_set: usize,
    /// Signatures, attestations, SBOMs and referrers copied along (by tag or referrers API).
    pub attached: usize,
    /// How the sources were read: each blob once (`fetches`), however many destinations.
    pub source_reads: SpoolStats,
    /// What was written to each mirror (reported with the mirrors, not here).
    #[serde(skip)]
    pub mirrors: Vec<MirrorSummary>,
}

impl Execution {
    fn add(&mut self, report: &CopyReport) {
        self.completed += 1;
        self.manifests_pushed += report.manifests_pushed;
        self.blobs_uploaded += report.blobs_uploaded;
        self.blobs_mounted += report.blobs_mounted;
        self.blobs_skipped += report.blobs_skipped;
        self.bytes_uploaded += report.bytes_uploaded;
        self.tags_set += report.tags_set;
        self.attached += report.attached.len() + report.referrers.len();
    }
}

/// One unit of work: a registry step, or an image's blobs to one mirror.
enum Work<'a> {
    Step {
        step: &'a Step,
        /// The blobs announced to the spool for it, released when it ends.
        blobs: &'a [(Digest, u64)],
    },
    Mirror {
        image: &'a PromotedImage,
        mirror: usize,
        /// The blobs this image is the first to bring to this mirror.
        blobs: Vec<(Digest, u64)>,
    },
}

impl Work<'_> {
    /// The blobs announced to the spool for it.
    fn blobs(&self) -> &[(Digest, u64)] {
        match self {
            Work::Step { blobs, .. } => blobs,
            Work::Mirror { blobs, .. } => blobs,
        }
    }
}

enum Done<'a> {
    Step(&'a Step, Result<CopyReport, CopyError>),
    Mirror(usize, mirrors::Filled),
}

/// Runs every step of `plan` that writes, and fills the mirrors of `mirror_work`, in one pass.
/// `blobs` names the blobs of each image to copy (`Planned::blobs`), announced to the spool.
/// The caller must not call this for a plan with problems (the run refuses as a whole); it
/// panics in debug builds if it does.
pub async fn execute(
    plan: &Plan,
    blobs: &HashMap<Digest, Vec<(Digest, u64)>>,
    stores: &Stores,
    mirror_work: Option<MirrorWork<'_>>,
    options: &ExecuteOptions,
) -> Execution {
    debug_assert!(
        plan.problems.is_empty(),
        "a plan with problems is never run"
    );
    let work = order(plan, blobs, mirror_work);
    if let Some(spool) = &options.spool {
        for item in work.iter().flatten() {
            for (digest, _) in item.blobs() {
                spool.expect(*digest, 1);
            }
        }
    }
    let copiers: tokio::sync::Mutex<HashMap<(String, String), Copier>> = Default::default();
    let copiers = &copiers;
    let mirrors: &[Mirror] = mirror_work.map_or(&[], |work| work.mirrors);

    let run = |item| async move {
        match item {
            Work::Step { step, blobs } => {
                let result = run_step(step, stores, copiers, options).await;
                if let Some(spool) = &options.spool {
                    for (digest, _) in blobs {
                        spool.release(digest);
                    }
                }
                if let Some(callback) = &options.on_step {
                    callback(step, result.as_ref());
                }
                Done::Step(step, result)
            }
            Work::Mirror {
                image,
                mirror,
                blobs,
            } => {
                let filled = mirrors::fill_image(
                    image,
                    &blobs,
                    &mirrors[mirror],
                    options.spool.as_ref(),
                    &options.copy,
                )
                .await;
                Done::Mirror(mirror, filled)
            }
        }
    };
    // `jobs` images at once, each to all its destinations and mirrors at once: one source read
    // feeds them all, and each destination host's window bounds the requests it gets. An image
    // also waits until the spool can hold its blobs beside those of the images moving (one
    // larger than the spool moves alone): its consumers then never find a blob evicted for
    // another image's and fetched again.
    let results: Vec<Done<'_>> = futures::stream::iter(work)
        .map(|group| async move {
            let _admitted = match &options.spool {
                Some(spool) => Some(spool.admit(group_bytes(&group)).await),
                None => None,
            };
            futures::future::join_all(group.into_iter().map(run)).await
        })
        .buffer_unordered(options.jobs.max(1))
        .flat_map(futures::stream::iter)
        .collect()
        .await;

    let mut execution = Execution {
        mirrors: mirrors
            .iter()
            .map(|mirror| mirrors::summary(mirror, mirror_work.map_or(&[], |work| work.images)))
            .collect(),
        ..Execution::default()
    };
    let mut failures = Vec::new();
    for done in results {
        match done {
            Done::Step(_, Ok(report)) => execution.add(&report),
            Done::Step(step, Err(error)) => failures.push(StepFailure {
                step: step.clone(),
                error: error.to_string(),
            }),
            Done::Mirror(mirror, filled) => filled.add_to(&mut execution.mirrors[mirror]),
        }
    }
    failures.sort_by(|a, b| {
        (&a.step.registry, &a.step.image, &a.step.digest).cmp(&(
            &b.step.registry,
            &b.step.image,
            &b.step.digest,
        ))
    });
    for summary in &mut execution.mirrors {
        summary.failures.sort_by_key(|failure| failure.digest);
    }
    execution.failures = failures;
    if let Some(spool) = &options.spool {
        execution.source_reads = spool.stats();
        spool.close();
    }
    execution
}

/// The spool room an image's work may need: its distinct blobs, for every consumer.
fn group_bytes(group: &[Work<'_>]) -> u64 {
    let blobs: HashMap<Digest, u64> = group
        .iter()
        .flat_map(|item| item.blobs().iter().copied())
        .collect();
    blobs.values().sum()
}

/// One image's steps to every destination, and the image itself when mirrors want its blobs.
type ImageWork<'a> = (Vec<&'a Step>, Option<&'a PromotedImage>);

/// The work, one group per image (by source and digest): the image's steps to every destination,
/// then its blobs to every mirror. A blob goes to a mirror with the first image that has it.
fn order<'a>(
    plan: &'a Plan,
    blobs: &'a HashMap<Digest, Vec<(Digest, u64)>>,
    mirror_work: Option<MirrorWork<'a>>,
) -> Vec<Vec<Work<'a>>> {
    let images: &[PromotedImage] = mirror_work.map_or(&[], |work| work.images);
    let mirror_count = mirror_work.map_or(0, |work| work.mirrors.len());
    // The blobs of an image, attached artifacts included when the image was read for mirrors.
    let image_blobs: HashMap<Digest, &[(Digest, u64)]> = blobs
        .iter()
        .map(|(digest, blobs)| (*digest, blobs.as_slice()))
        .chain(
            images
                .iter()
                .map(|image| (image.digest, image.measured.blobs.as_slice())),
        )
        .collect();
    let mut by_image: BTreeMap<(&SourceImage, Digest), ImageWork<'a>> = BTreeMap::new();
    for step in plan.writes() {
        by_image
            .entry((&step.source, step.digest))
            .or_default()
            .0
            .push(step);
    }
    if mirror_count > 0 {
        for image in images {
            by_image.entry((&image.source, image.digest)).or_default().1 = Some(image);
        }
    }
    let mut sent: HashSet<Digest> = HashSet::new();
    let mut work = Vec::new();
    for ((_, digest), (mut steps, image)) in by_image {
        let mut group = Vec::new();
        steps.sort_by(|a, b| (&a.registry, &a.image).cmp(&(&b.registry, &b.image)));
        let announced = image_blobs.get(&digest).copied().unwrap_or_default();
        group.extend(steps.into_iter().map(|step| Work::Step {
            step,
            blobs: if matches!(step.action, crate::plan::Action::Copy) {
                announced
            } else {
                &[]
            },
        }));
        if let Some(image) = image {
            let new: Vec<(Digest, u64)> = image
                .measured
                .blobs
                .iter()
                .filter(|(blob, _)| sent.insert(*blob))
                .copied()
                .collect();
            if !new.is_empty() {
                group.extend((0..mirror_count).map(|mirror| Work::Mirror {
                    image,
                    mirror,
                    blobs: new.clone(),
                }));
            }
        }
        if !group.is_empty() {
            work.push(group);
        }
    }
    work
}

async fn run_step(
    step: &Step,
    stores: &Stores,
    copiers: &tokio::sync::Mutex<HashMap<(String, String), Copier>>,
    options: &ExecuteOptions,
) -> Result<CopyReport, CopyError> {
    let source = stores
        .locate(&step.source.registry, &step.source.image)
        .await
        .map_err(|error: StoreError| {
            CopyError::store("open the source", step.source.registry.to_string(), error)
        })?;
    let destination =
        stores
            .locate(&step.registry, &step.image)
            .await
            .map_err(|error: StoreError| {
                CopyError::store("open the destination", step.registry.to_string(), error)
            })?;
    let copier = {
        let key = (source.store.describe(), destination.store.describe());
        let mut copiers = copiers.lock().await;
        copiers
            .entry(key)
            .or_insert_with(|| {
                let from: Arc<dyn Source> = source.store.clone();
                let mut copier = Copier::new(from, destination.store.clone(), options.copy.clone());
                if let Some(progress) = &options.progress {
                    copier = copier.with_progress(progress.clone());
                }
                if let Some(spool) = &options.spool {
                    copier = copier.with_spool(spool.clone());
                }
                copier
            })
            .clone()
    };
    copier
        .copy(&CopyRequest {
            source_repository: source.repository,
            destination_repository: destination.repository,
            digest: step.digest,
            tags: step.tags.clone(),
            // The inventory found the image missing there.
            missing: matches!(step.action, crate::plan::Action::Copy),
        })
        .await
}

/// The longest wait between two attempts of a mirror upload.
pub(crate) const MAX_BACKOFF: Duration = Duration::from_secs(30);

#[cfg(test)]
mod tests {
    use hoist_oci::{RegistryName, RepositoryPath};

    use super::*;
    use crate::plan::Action;

    fn step(registry: &str, byte: u8, action: Action) -> Step {
        Step {
            registry: RegistryName::parse(registry).unwrap(),
            image: RepositoryPath::parse("app").unwrap(),
            digest: Digest::from_sha256([byte; 32]),
            action,
            tags: Vec::new(),
            tags_present: Vec::new(),
            source: SourceImage {
                registry: RegistryName::parse("gcr.io/staging").unwrap(),
                image: RepositoryPath::parse("app").unwrap(),
            },
            size: None,
            location: Arc::from("m.yaml:1:1"),
        }
    }

    #[test]
    fn each_image_is_one_unit_of_work_with_all_its_destinations() {
        let plan = Plan {
            steps: vec![
                step("a.io/prod", 2, Action::Copy),
                step("a.io/prod", 1, Action::Copy),
                step("b.io/prod", 1, Action::Tag),
                step("b.io/prod", 2, Action::Skip),
                step("c.io/prod", 1, Action::Copy),
                step("c.io/prod", 2, Action::Copy),
            ],
            problems: Vec::new(),
        };
        let layer = (Digest::from_sha256([9; 32]), 10);
        let blobs: HashMap<Digest, Vec<(Digest, u64)>> = [1, 2]
            .into_iter()
            .map(|byte| (Digest::from_sha256([byte; 32]), vec![layer]))
            .collect();
        let groups: Vec<Vec<(String, u8, usize)>> = order(&plan, &blobs, None)
            .iter()
            .map(|group| {
                group
                    .iter()
                    .map(|work| match work {
                        Work::Step { step, blobs } => (
                            step.registry.to_string(),
                            step.digest.as_bytes()[0],
                            blobs.len(),
                        ),
                        Work::Mirror { .. } => unreachable!("no mirrors"),
                    })
                    .collect()
            })
            .collect();
        // The room an image waits for counts each of its blobs once, however many consumers.
        let work = order(&plan, &blobs, None);
        assert_eq!(
            group_bytes(&work[0]),
            10,
            "one 10-byte layer for three steps"
        );
        // One group per image, with every destination that writes; a tag-only step announces
        // no blob to the spool (it reads none).
        assert_eq!(
            groups,
            vec![
                vec![
                    ("a.io/prod".to_owned(), 1, 1),
                    ("b.io/prod".to_owned(), 1, 0),
                    ("c.io/prod".to_owned(), 1, 1),
                ],
                vec![
                    ("a.io/prod".to_owned(), 2, 1),
                    ("c.io/prod".to_owned(), 2, 1)
                ],
            ]
        );
    }
}
