//! Executing a [`Plan`]: every step that writes becomes one [`Copier::copy`], run concurrently
//! (bounded), with failures collected per step so that independent work goes on.
//!
//! One [`Copier`] serves each (source store, destination store) pair for the whole run, so a
//! blob that several images need in one destination repository is uploaded once, and the same
//! image is copied to all its destinations at about the same time (steps run in image order).

use std::collections::HashMap;
use std::sync::Arc;

use futures::StreamExt as _;
use hoist_copy::{Copier, CopyError, CopyOptions, CopyReport, CopyRequest, Progress};
use hoist_store::{Source, StoreError};

use crate::plan::{Plan, Step};
use crate::stores::Stores;

/// Called when a step ends, successfully or not.
pub type StepCallback = Arc<dyn Fn(&Step, Result<&CopyReport, &CopyError>) + Send + Sync>;

/// How a plan is executed.
#[derive(Clone, Default)]
pub struct ExecuteOptions {
    /// Steps (image × destination) in flight at once.
    pub jobs: usize,
    /// How each image is copied.
    pub copy: CopyOptions,
    /// Blob-level progress for bars and logs.
    pub progress: Option<Progress>,
    /// Step-level progress.
    pub on_step: Option<StepCallback>,
}

impl std::fmt::Debug for ExecuteOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ExecuteOptions")
            .field("jobs", &self.jobs)
            .field("copy", &self.copy)
            .finish_non_exhaustive()
    }
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

/// Runs every step of `plan` that writes. The caller must not call this for a plan with
/// problems (the run refuses as a whole); it panics in debug builds if it does.
pub async fn execute(plan: &Plan, stores: &Stores, options: &ExecuteOptions) -> Execution {
    debug_assert!(
        plan.problems.is_empty(),
        "a plan with problems is never run"
    );
    let mut steps: Vec<&Step> = plan.writes().collect();
    steps.sort_by(|a, b| {
        (&a.source, &a.digest, &a.registry, &a.image).cmp(&(
            &b.source,
            &b.digest,
            &b.registry,
            &b.image,
        ))
    });
    let copiers: tokio::sync::Mutex<HashMap<(String, String), Copier>> = Default::default();
    let copiers = &copiers;

    let results: Vec<(&Step, Result<CopyReport, CopyError>)> = futures::stream::iter(steps)
        .map(|step| async move {
            let result = run_step(step, stores, copiers, options).await;
            if let Some(callback) = &options.on_step {
                callback(step, result.as_ref());
            }
            (step, result)
        })
        .buffer_unordered(options.jobs.max(1))
        .collect()
        .await;

    let mut execution = Execution::default();
    let mut failures = Vec::new();
    for (step, result) in results {
        match result {
            Ok(report) => execution.add(&report),
            Err(error) => failures.push(StepFailure {
                step: step.clone(),
                error: error.to_string(),
            }),
        }
    }
    failures.sort_by(|a, b| {
        (&a.step.registry, &a.step.image, &a.step.digest).cmp(&(
            &b.step.registry,
            &b.step.image,
            &b.step.digest,
        ))
    });
    execution.failures = failures;
    execution
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
                let copier = Copier::new(from, destination.store.clone(), options.copy.clone());
                match &options.progress {
                    Some(progress) => copier.with_progress(progress.clone()),
                    None => copier,
                }
            })
            .clone()
    };
    copier
        .copy(&CopyRequest {
            source_repository: source.repository,
            destination_repository: destination.repository,
            digest: step.digest,
            tags: step.tags.clone(),
        })
        .await
}
