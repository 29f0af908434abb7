//! `hoist promote-files`: load, plan (the dry run), and with `--confirm` execute that plan.

use std::collections::BTreeMap;
use std::io::Write as _;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use hoist_files::{Copied, CopyOutcome, FileAction, FilePlan, FileTotals};
use hoist_object::OpenOptions;

use crate::cli::{OutputFormat, PromoteFilesArgs};
use crate::exit::Outcome;
use crate::registries;
use crate::report::Finding;

/// How often a progress line is printed while files are copied.
const PROGRESS_INTERVAL: Duration = Duration::from_secs(5);

#[derive(Debug, serde::Serialize)]
struct PromoteFilesReport<'a> {
    /// Nothing refused and nothing failed.
    ok: bool,
    /// Whether the copies were made (`--confirm`).
    executed: bool,
    /// Manifest errors; when there are any nothing was read.
    errors: Vec<Finding>,
    warnings: Vec<Finding>,
    /// Per destination filestore.
    totals: BTreeMap<String, FileTotals>,
    /// Every (file, destination).
    steps: &'a [hoist_files::FileStep],
    /// With `--confirm`: every copy made or attempted.
    #[serde(skip_serializing_if = "Option::is_none")]
    copies: Option<&'a [Copied]>,
}

pub fn promote(args: &PromoteFilesArgs) -> anyhow::Result<Outcome> {
    let inputs = super::inputs(&args.files);
    anyhow::ensure!(
        !inputs.is_empty(),
        "name the file manifests: --filestores FILE --files FILE|DIR, or --manifests DIR"
    );
    if args.use_service_account {
        tracing::info!(
            "--use-service-account is accepted and ignored: hoist uses each cloud's credential chain"
        );
    }
    let loaded = hoist_files::load(&inputs);
    let (errors, warnings) = super::findings(&loaded);
    let mut report = PromoteFilesReport {
        ok: errors.is_empty(),
        executed: false,
        errors,
        warnings,
        totals: BTreeMap::new(),
        steps: &[],
        copies: None,
    };
    if !report.ok {
        print(args.output, &report)?;
        return Ok(Outcome::Refused);
    }
    let runtime = registries::runtime()?;
    let jobs = args.jobs.max(1);
    let buckets = runtime.block_on(hoist_files::open_buckets(
        &loaded.manifests,
        &OpenOptions {
            uploads: hoist_files::file_uploads(),
            ..OpenOptions::default()
        },
    ))?;
    let plan: FilePlan = runtime.block_on(hoist_files::plan(&loaded.manifests, &buckets, jobs));
    report.totals = plan.totals();
    report.steps = &plan.steps;
    let refused = plan.steps.iter().any(|step| step.action.is_refusal());
    let unreadable = plan
        .steps
        .iter()
        .any(|step| step.action == FileAction::Unreadable);
    if !args.confirm {
        report.ok = !refused && !unreadable;
        print(args.output, &report)?;
        return Ok(outcome(refused, unreadable));
    }
    if args.output == OutputFormat::Text {
        print_plan(&mut std::io::stdout().lock(), &report)?;
    }
    let copies = runtime.block_on(async {
        let progress = Progress::start(&plan, args.quiet);
        let copies =
            hoist_files::execute_with(&plan, &buckets, jobs, &|copied| progress.copied(copied))
                .await;
        progress.finish();
        copies
    });
    let refused = refused || copies.iter().any(|copy| copy.outcome.is_refusal());
    let failed = unreadable
        || copies
            .iter()
            .any(|copy| copy.outcome == CopyOutcome::Failed);
    report.executed = true;
    report.ok = !refused && !failed;
    report.copies = Some(&copies);
    match args.output {
        OutputFormat::Json => print(args.output, &report)?,
        OutputFormat::Text => print_copies(&mut std::io::stdout().lock(), &report, &copies)?,
    }
    Ok(outcome(refused, failed))
}

fn outcome(refused: bool, failed: bool) -> Outcome {
    if refused {
        Outcome::Refused
    } else if failed {
        Outcome::Partial
    } else {
        Outcome::Ok
    }
}

fn print(format: OutputFormat, report: &PromoteFilesReport<'_>) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    match format {
        OutputFormat::Json => {
            serde_json::to_writer_pretty(&mut out, report)?;
            writeln!(out)?;
        }
        OutputFormat::Text if !report.errors.is_empty() => {
            for finding in report.errors.iter().chain(&report.warnings) {
                writeln!(out, "{finding}")?;
            }
            writeln!(
                out,
                "refused: {} error(s) in the file manifests; nothing was read or written.",
                report.errors.len()
            )?;
        }
        OutputFormat::Text => {
            print_plan(&mut out, report)?;
            let problems = report
                .steps
                .iter()
                .filter(|step| !matches!(step.action, FileAction::Copy | FileAction::Present))
                .count();
            let copies = report
                .steps
                .iter()
                .filter(|step| step.action == FileAction::Copy)
                .count();
            if copies == 0 && problems == 0 {
                writeln!(out, "\nnothing to do: every destination holds every file.")?;
            } else if copies > 0 {
                writeln!(
                    out,
                    "\ndry run: nothing written. Run again with --confirm to copy {copies} file(s){}.",
                    if problems > 0 {
                        " (the refused ones stay refused)"
                    } else {
                        ""
                    }
                )?;
            }
        }
    }
    Ok(())
}

fn print_plan(
    out: &mut impl std::io::Write,
    report: &PromoteFilesReport<'_>,
) -> std::io::Result<()> {
    for warning in &report.warnings {
        writeln!(out, "{warning}")?;
    }
    writeln!(
        out,
        "hoist promote-files: {} file(s) to {} destination filestore(s)",
        report
            .steps
            .iter()
            .map(|step| (&step.project, &step.name))
            .collect::<std::collections::BTreeSet<_>>()
            .len(),
        report.totals.len()
    )?;
    for (base, total) in &report.totals {
        writeln!(
            out,
            "\n{base}: {} to copy ({}), {} already there{}{}",
            total.copy,
            indicatif::HumanBytes(total.bytes),
            total.present,
            if total.refused > 0 {
                format!(", {} refused", total.refused)
            } else {
                String::new()
            },
            if total.unreadable > 0 {
                format!(", {} unreadable", total.unreadable)
            } else {
                String::new()
            }
        )?;
        for step in report
            .steps
            .iter()
            .filter(|step| &step.destination_base == base && step.action == FileAction::Copy)
        {
            writeln!(
                out,
                "  copy {}  ({}, sha256 {})",
                step.name,
                indicatif::HumanBytes(step.size.unwrap_or(0)),
                step.sha256
            )?;
        }
    }
    let problems: Vec<_> = report
        .steps
        .iter()
        .filter(|step| !matches!(step.action, FileAction::Copy | FileAction::Present))
        .collect();
    if !problems.is_empty() {
        writeln!(out, "\nproblems:")?;
        for step in problems {
            let label = match step.action {
                FileAction::Mismatched => "mismatched",
                FileAction::MissingSource => "missing-source",
                _ => "unreadable",
            };
            writeln!(
                out,
                "  {label:<14} {}: {} [{}]",
                step.destination,
                step.reason.as_deref().unwrap_or(""),
                step.location
            )?;
        }
    }
    Ok(())
}

fn print_copies(
    out: &mut impl std::io::Write,
    report: &PromoteFilesReport<'_>,
    copies: &[Copied],
) -> std::io::Result<()> {
    let written: Vec<&Copied> = copies
        .iter()
        .filter(|copy| copy.outcome == CopyOutcome::Written)
        .collect();
    let bytes: u64 = written.iter().map(|copy| copy.bytes).sum();
    writeln!(
        out,
        "\ndone: {} file(s) written ({}), {} found already there",
        written.len(),
        indicatif::HumanBytes(bytes),
        copies
            .iter()
            .filter(|copy| copy.outcome == CopyOutcome::Present)
            .count()
    )?;
    let failed: Vec<&Copied> = copies
        .iter()
        .filter(|copy| !copy.outcome.is_done())
        .collect();
    if !failed.is_empty() {
        writeln!(out, "not written ({}):", failed.len())?;
        for copy in failed {
            let label = match copy.outcome {
                CopyOutcome::SourceMismatch => "source-mismatch",
                CopyOutcome::Mismatched => "mismatched",
                CopyOutcome::Skipped => "skipped",
                _ => "failed",
            };
            writeln!(
                out,
                "  {label:<15} {}: {}",
                copy.destination,
                copy.reason.as_deref().unwrap_or("")
            )?;
        }
    }
    if !report.ok {
        writeln!(
            out,
            "\nsome files were not promoted; nothing was overwritten. Fix the refusals, or run \
             again to retry failures."
        )?;
    }
    Ok(())
}

/// Progress of the copies on stderr: a line every few seconds, and one at the end (files are
/// counted when done, so a single large file shows as one step).
struct Progress {
    files: u64,
    bytes: u64,
    done: Arc<(AtomicU64, AtomicU64)>,
    ticker: Option<tokio::task::JoinHandle<()>>,
}

impl Progress {
    /// Must be called inside the runtime (the ticker is a task).
    fn start(plan: &FilePlan, quiet: bool) -> Self {
        let copies = plan
            .steps
            .iter()
            .filter(|step| step.action == FileAction::Copy);
        let (files, bytes) = copies.fold((0, 0), |(files, bytes), step| {
            (files + 1, bytes + step.size.unwrap_or(0))
        });
        let done = Arc::new((AtomicU64::new(0), AtomicU64::new(0)));
        let ticker = (!quiet && files > 0).then(|| {
            let done = done.clone();
            tokio::spawn(async move {
                let mut interval = tokio::time::interval(PROGRESS_INTERVAL);
                interval.tick().await;
                loop {
                    interval.tick().await;
                    eprintln!("hoist: progress: {}", line(&done, files, bytes));
                }
            })
        });
        Self {
            files,
            bytes,
            done,
            ticker,
        }
    }

    fn copied(&self, copied: &Copied) {
        self.done.0.fetch_add(1, Ordering::Relaxed);
        self.done.1.fetch_add(copied.bytes, Ordering::Relaxed);
    }

    fn finish(self) {
        if let Some(ticker) = self.ticker {
            ticker.abort();
            eprintln!(
                "hoist: progress: {}",
                line(&self.done, self.files, self.bytes)
            );
        }
    }
}

fn line(done: &(AtomicU64, AtomicU64), files: u64, bytes: u64) -> String {
    format!(
        "{}/{files} file copies, {} of {} written",
        done.0.load(Ordering::Relaxed),
        indicatif::HumanBytes(done.1.load(Ordering::Relaxed)),
        indicatif::HumanBytes(bytes)
    )
}
