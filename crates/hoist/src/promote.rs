//! `hoist promote`: plan from what the registries hold, gate on policies, and with `--confirm`
//! execute the same plan. The plan goes to stdout (text or JSON), progress to stderr.
//!
//! With `--backends`, the blob mirrors come after the registries: the dry run surveys them, and
//! `--confirm` fills them with every blob of every promoted image (not only those copied now: a
//! mirror added later is back-filled, and `HEAD` skips make re-runs cheap).

use std::collections::{BTreeMap, HashSet};
use std::io::Write as _;
use std::sync::Arc;

use hoist_manifest::Severity;
use hoist_oci::RegistryName;
use hoist_plan::{EdgeSet, find_conflicts};
use hoist_promote::{
    Action, ExecuteOptions, Execution, PlanOptions, Planned, Problem, RegistryTotals, Step, Stores,
};

use crate::cli::{OutputFormat, PromoteArgs};
use crate::exit::Outcome;
use crate::mirrors::{self, MirrorsReport};
use crate::progress::{PhaseProgress, Reporter};
use crate::report::{self, Finding};
use crate::shard::{self, ShardReport};
use crate::{inputs, policies, registries};

#[derive(Debug, serde::Serialize)]
struct PromoteReport<'a> {
    /// Nothing refused and nothing failed.
    ok: bool,
    /// Whether the plan was executed (`--confirm`).
    executed: bool,
    date: chrono::NaiveDate,
    policy_files: Vec<String>,
    /// Manifest, conflict and policy-file errors; when there are any there is no plan.
    errors: Vec<Finding>,
    /// Per destination registry.
    totals: BTreeMap<RegistryName, RegistryTotals>,
    /// The steps that write, in plan order (skips are only counted in `totals`).
    steps: Vec<&'a Step>,
    problems: &'a [Problem],
    #[serde(skip_serializing_if = "Option::is_none")]
    execution: Option<&'a Execution>,
    /// With `--backends`: what the mirrors lack (dry run) or what was written to them.
    #[serde(skip_serializing_if = "Option::is_none")]
    mirrors: Option<MirrorsReport>,
    /// With `--shard`/`--shards`: which part of the work this run did.
    #[serde(skip_serializing_if = "Option::is_none")]
    shard: Option<ShardReport>,
}

pub fn run(args: &PromoteArgs) -> anyhow::Result<Outcome> {
    let inputs = inputs::from_args(&args.inputs)?;
    let date = args.date.unwrap_or_else(|| chrono::Utc::now().date_naive());
    let config = registries::config(&args.registries)?;
    let shard = shard::from_args(&args.shard)?;

    let loaded = hoist_manifest::load(&inputs);
    let mut errors: Vec<Finding> = loaded
        .diagnostics
        .iter()
        .filter(|diagnostic| diagnostic.severity == Severity::Error)
        .map(Finding::from_diagnostic)
        .collect();
    let edges = EdgeSet::compute(&loaded.manifests);
    for conflict in find_conflicts(&edges) {
        errors.push(Finding::error("conflict", conflict.to_string()).at(&conflict.second.1));
    }
    let policy_set = match policies::load(args.policies.as_deref()) {
        Ok(set) => set,
        Err(policy_errors) => {
            errors.extend(
                policy_errors
                    .iter()
                    .map(|error| Finding::error("policy-file", error.to_string())),
            );
            hoist_policy::PolicySet::empty()
        }
    };
    let mut report = PromoteReport {
        ok: errors.is_empty(),
        executed: false,
        date,
        policy_files: policy_set.files().to_vec(),
        errors,
        totals: BTreeMap::new(),
        steps: Vec::new(),
        problems: &[],
        execution: None,
        mirrors: None,
        shard: shard.map(|shard| ShardReport::new(&shard, &edges)),
    };
    if !report.ok {
        report::sort(&mut report.errors);
        print(args.output, &report)?;
        return Ok(Outcome::Refused);
    }

    let stores = Stores::new(config);
    let runtime = registries::runtime()?;
    let opened = runtime.block_on(mirrors::open(&args.backends))?;
    let concurrency = args.jobs.max(1) * 4;
    // A shard plans and writes the destination repositories it owns; its mirrors, the blobs it
    // owns, of every promoted image.
    let mine = shard::select(shard.as_ref(), &edges);
    let planned: Planned = runtime.block_on(async {
        let progress = PhaseProgress::start("inventory", args.quiet);
        let options = PlanOptions {
            concurrency: args.jobs.max(1) * 4,
            date,
            progress: Some(progress.callback()),
        };
        let planned = hoist_promote::plan(&mine, &stores, &policy_set, &options).await;
        progress.finish();
        planned
    });
    let plan = &planned.plan;
    report.totals = plan.totals(&planned.blobs);
    report.steps = plan.writes().collect();
    report.problems = &plan.problems;

    if !plan.problems.is_empty() {
        report.ok = false;
        print(args.output, &report)?;
        let operational = plan.problems.iter().all(Problem::is_operational);
        return Ok(if operational {
            Outcome::Partial
        } else {
            Outcome::Refused
        });
    }
    let run_mirrors = |skip: &HashSet<hoist_oci::Digest>| {
        opened.as_ref().map(|opened| {
            runtime.block_on(mirrors::run(
                &edges,
                &stores,
                opened,
                args.confirm,
                skip,
                concurrency,
                shard.as_ref(),
            ))
        })
    };
    if !args.confirm || plan.is_noop() {
        let nothing = Execution::default();
        report.executed = args.confirm;
        if args.confirm {
            report.execution = Some(&nothing);
        }
        report.mirrors = run_mirrors(&HashSet::new());
        report.ok = report
            .mirrors
            .as_ref()
            .is_none_or(MirrorsReport::is_complete);
        print(args.output, &report)?;
        return Ok(if report.ok {
            Outcome::Ok
        } else {
            Outcome::Partial
        });
    }

    // Text: the plan first, so a log shows what is about to happen before it happens.
    if args.output == OutputFormat::Text {
        print_plan(&mut std::io::stdout().lock(), &report)?;
    }
    let (images, bytes) = report
        .totals
        .values()
        .fold((0, 0), |(images, bytes), total| {
            (images + total.copies + total.tag_only, bytes + total.bytes)
        });
    let execution = runtime.block_on(async {
        let reporter = Arc::new(Reporter::start(images, bytes, args.quiet));
        let on_step = {
            let reporter = reporter.clone();
            Arc::new(move |step: &Step, result: Result<&_, &_>| {
                reporter.step_done();
                if let Err(error) = result {
                    tracing::warn!("{}/{}@{}: {error}", step.registry, step.image, step.digest);
                }
            })
        };
        let options = ExecuteOptions {
            jobs: args.jobs,
            copy: Default::default(),
            progress: Some(reporter.copy_progress()),
            on_step: Some(on_step),
        };
        let execution = hoist_promote::execute(plan, &stores, &options).await;
        drop(options);
        if let Ok(reporter) = Arc::try_unwrap(reporter) {
            reporter.finish();
        }
        execution
    });
    // Mirrors after the registries; an image whose copy failed waits for the re-run.
    let failed: HashSet<hoist_oci::Digest> = execution
        .failures
        .iter()
        .map(|failure| failure.step.digest)
        .collect();
    report.mirrors = run_mirrors(&failed);
    report.executed = true;
    report.ok = execution.failures.is_empty()
        && report
            .mirrors
            .as_ref()
            .is_none_or(MirrorsReport::is_complete);
    report.execution = Some(&execution);
    match args.output {
        OutputFormat::Json => print(args.output, &report)?,
        OutputFormat::Text => {
            let mut out = std::io::stdout().lock();
            print_execution(&mut out, &execution)?;
            if let Some(mirrors) = &report.mirrors {
                mirrors::print_text(&mut out, mirrors)?;
            }
        }
    }
    Ok(if report.ok {
        Outcome::Ok
    } else {
        Outcome::Partial
    })
}

fn print(format: OutputFormat, report: &PromoteReport<'_>) -> anyhow::Result<()> {
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    match format {
        OutputFormat::Json => {
            serde_json::to_writer_pretty(&mut out, report)?;
            writeln!(out)?;
        }
        OutputFormat::Text => {
            for error in &report.errors {
                writeln!(out, "{}", finding_line(error))?;
            }
            if report.errors.is_empty() {
                print_plan(&mut out, report)?;
                if !report.problems.is_empty() {
                    writeln!(
                        out,
                        "\nrefused: {} problem(s); nothing was written.",
                        report.problems.len()
                    )?;
                } else if report.steps.is_empty() {
                    writeln!(out, "\nnothing to do: every destination is complete.")?;
                }
                if let Some(mirrors) = &report.mirrors {
                    mirrors::print_text(&mut out, mirrors)?;
                }
                let mirrors_to_write = report.mirrors.as_ref().is_some_and(|mirrors| {
                    mirrors.backends.iter().any(|summary| summary.to_write > 0)
                });
                if report.problems.is_empty()
                    && !report.executed
                    && (!report.steps.is_empty() || mirrors_to_write)
                {
                    writeln!(
                        out,
                        "\ndry run: nothing written. Run again with --confirm to execute this plan."
                    )?;
                }
            } else {
                writeln!(
                    out,
                    "refused: {} error(s) in the input; nothing was read or written.",
                    report.errors.len()
                )?;
            }
        }
    }
    Ok(())
}

fn finding_line(finding: &Finding) -> String {
    let place = match (&finding.file, finding.line, finding.column) {
        (Some(file), Some(line), Some(column)) => format!("{file}:{line}:{column}: "),
        (Some(file), _, _) => format!("{file}: "),
        _ => String::new(),
    };
    format!("{place}error[{}]: {}", finding.kind, finding.message)
}

fn print_plan(out: &mut impl std::io::Write, report: &PromoteReport<'_>) -> std::io::Result<()> {
    writeln!(
        out,
        "hoist promote: {} destination registr{}; policies: {} (as of {})",
        report.totals.len(),
        if report.totals.len() == 1 { "y" } else { "ies" },
        if report.policy_files.is_empty() {
            "none".to_owned()
        } else {
            report.policy_files.join(", ")
        },
        report.date
    )?;
    if let Some(shard) = &report.shard {
        writeln!(out, "{}", shard.line())?;
    }
    for (registry, total) in &report.totals {
        writeln!(
            out,
            "\n{registry}: {} to copy ({} manifest(s), {} blob(s), {}), {} to tag, {} already there; {} tag(s) to add",
            total.copies,
            total.manifests,
            total.blobs,
            indicatif::HumanBytes(total.bytes),
            total.tag_only,
            total.skips,
            total.tags
        )?;
        for step in report
            .steps
            .iter()
            .filter(|step| &step.registry == registry)
        {
            let action = match step.action {
                Action::Copy => "copy",
                Action::Tag => "tag ",
                Action::Skip => "skip",
            };
            let tags = if step.tags.is_empty() {
                String::from("no tags")
            } else {
                format!(
                    "tags {}",
                    step.tags
                        .iter()
                        .map(|tag| tag.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                )
            };
            let size = step
                .size
                .map(|size| {
                    format!(
                        " ({} blob(s), {})",
                        size.blobs,
                        indicatif::HumanBytes(size.bytes)
                    )
                })
                .unwrap_or_default();
            writeln!(
                out,
                "  {action} {}@{}  {tags}{size}",
                step.image, step.digest
            )?;
        }
    }
    if !report.problems.is_empty() {
        writeln!(out, "\nproblems:")?;
        for problem in report.problems {
            writeln!(out, "  error: {problem}")?;
        }
    }
    Ok(())
}

fn print_execution(out: &mut impl std::io::Write, execution: &Execution) -> std::io::Result<()> {
    writeln!(
        out,
        "\ndone: {} image(s) promoted; {} manifest(s) pushed, {} blob(s) uploaded ({}), {} mounted, {} already there; {} tag(s) set; {} signature/attestation artifact(s)",
        execution.completed,
        execution.manifests_pushed,
        execution.blobs_uploaded,
        indicatif::HumanBytes(execution.bytes_uploaded),
        execution.blobs_mounted,
        execution.blobs_skipped,
        execution.tags_set,
        execution.attached
    )?;
    if !execution.failures.is_empty() {
        writeln!(
            out,
            "failed: {} image(s); nothing was tagged for them. Run again to finish:",
            execution.failures.len()
        )?;
        for failure in &execution.failures {
            let step = &failure.step;
            writeln!(
                out,
                "  {}/{}@{}: {}",
                step.registry, step.image, step.digest, failure.error
            )?;
        }
    }
    Ok(())
}
