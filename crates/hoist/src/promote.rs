//! `hoist promote`: plan from what the registries hold, gate on policies, and with `--confirm`
//! execute the same plan. The plan goes to stdout (text or JSON), progress to stderr.
//!
//! Projects (promoter manifests) are isolated: `hoist-gate` refuses a project for its own invalid
//! files and conflicts, `hoist-promote` attributes each problem of the plan to the projects that
//! make it, and only the admitted plan (what the other projects want) runs. With `--since REV`
//! only the edges added since REV are planned.
//!
//! With `--backends`, the dry run also surveys the blob mirrors, and `--confirm` fills them in the
//! same pass as the registries with every blob of every promoted image (not only those copied
//! now: a mirror added later is back-filled, and `HEAD` skips make re-runs cheap). One spool
//! reads each source blob once for every destination registry and mirror.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write as _;
use std::sync::Arc;

use hoist_gate::Projects;
use hoist_oci::RegistryName;
use hoist_plan::find_conflicts;
use hoist_promote::{
    Action, ExecuteOptions, Execution, MirrorWork, Plan, PlanOptions, Planned, Problem,
    RegistryTotals, Step, Stores, admit, problem_manifests,
};

use crate::cli::{OutputFormat, PromoteArgs};
use crate::exit::Outcome;
use crate::mirrors::{self, MirrorsReport};
use crate::progress::{PhaseProgress, Reporter};
use crate::projects::{self as project_reports, ProjectReport};
use crate::report::Finding;
use crate::shard::{self, ShardReport};
use crate::{inputs, policies, registries, rehearse};

#[derive(Debug, serde::Serialize)]
struct PromoteReport<'a> {
    /// Nothing refused and nothing failed.
    ok: bool,
    /// Whether the plan was executed (`--confirm`).
    executed: bool,
    date: chrono::NaiveDate,
    policy_files: Vec<String>,
    /// With `--since`: the revision the edges were selected against.
    #[serde(skip_serializing_if = "Option::is_none")]
    since: Option<&'a str>,
    /// Manifest, conflict and policy-file errors (of refused projects, and of the run: when one
    /// belongs to no project there is no plan at all).
    errors: Vec<Finding>,
    /// Per project, refused ones first: its status, its errors and its problems.
    projects: Vec<ProjectReport>,
    /// Per destination registry, for the projects that go on.
    totals: BTreeMap<RegistryName, RegistryTotals>,
    /// The steps that write, in plan order (skips are only counted in `totals`).
    steps: Vec<&'a Step>,
    /// Every problem of the plan (each also under its projects).
    problems: &'a [Problem],
    #[serde(skip_serializing_if = "Option::is_none")]
    execution: Option<&'a Execution>,
    /// With `--backends`: what the mirrors lack (dry run) or what was written to them.
    #[serde(skip_serializing_if = "Option::is_none")]
    mirrors: Option<MirrorsReport>,
    /// With `--rehearse`: the local registry, and how the cluster pulls what was promoted.
    #[serde(skip_serializing_if = "Option::is_none")]
    rehearsal: Option<rehearse::RehearsalReport>,
    /// With `--shard`/`--shards`: which part of the work this run did.
    #[serde(skip_serializing_if = "Option::is_none")]
    shard: Option<ShardReport>,
}

pub fn run(args: &PromoteArgs) -> anyhow::Result<Outcome> {
    let inputs = inputs::from_args(&args.inputs)?;
    let date = args.date.unwrap_or_else(|| chrono::Utc::now().date_naive());
    let mut config = registries::config(&args.registries)?;
    // A rehearsal redirects the edges before anything else sees them (see rehearse.rs).
    let rehearsal = rehearse::Rehearsal::from_args(&args.rehearsal)?;
    let plain_http = match &rehearsal {
        Some(rehearsal) => rehearsal.configure(&mut config)?,
        None => false,
    };
    let shard = shard::from_args(&args.shard)?;

    // The gate's view of the projects: each refused by its own invalid files and conflicts.
    let loaded = hoist_manifest::load(&inputs);
    let mut projects = Projects::new(&loaded);
    let (original, too_many) = inputs::compute_edges(&loaded);
    // A rehearsal plans (and finds conflicts) where the bytes really go; `--since` compares the
    // manifests as written, so it selects on the original edges and is redirected after.
    let redirected = rehearsal
        .as_ref()
        .map(|rehearsal| rehearsal.redirect(&original));
    let edges = redirected.as_ref().unwrap_or(&original);
    if let Some(finding) = too_many {
        projects.refuse_run(finding);
    }
    projects.add_conflicts(&find_conflicts(edges), edges);
    let policy_set = match policies::load(args.policies.as_deref()) {
        Ok(set) => set,
        Err(policy_errors) => {
            for error in &policy_errors {
                projects.refuse_run(Finding::error("policy-file", error.to_string()));
            }
            hoist_policy::PolicySet::empty()
        }
    };
    let selected = match &args.since.since {
        Some(rev) => {
            let added =
                crate::projects::since(&inputs, &loaded, &original, Some(&mut projects), rev)?;
            Some(match &rehearsal {
                Some(rehearsal) => rehearsal.redirect(&added),
                None => added,
            })
        }
        None => None,
    };
    let selected = selected.as_ref().unwrap_or(edges);
    let mut report = PromoteReport {
        ok: false,
        executed: false,
        date,
        policy_files: policy_set.files().to_vec(),
        since: args.since.since.as_deref(),
        errors: projects.errors(),
        projects: Vec::new(),
        totals: BTreeMap::new(),
        steps: Vec::new(),
        problems: &[],
        execution: None,
        mirrors: None,
        rehearsal: None,
        shard: shard.map(|shard| ShardReport::new(&shard, selected)),
    };
    if !projects.run_errors().is_empty() {
        report.projects = project_reports::reports(&projects, &[], &[]);
        print(args.output, &report, None)?;
        return Ok(Outcome::Refused);
    }

    let stores = Stores::new(config);
    let runtime = registries::runtime()?;
    let opened = runtime.block_on(mirrors::open(
        &args.backends,
        &registries::mirror_options(&args.registries.network),
    ))?;
    let concurrency = args.jobs.max(1) * 4;
    // Invalid projects are not even read; the plan's problems refuse theirs in turn. A shard
    // plans and writes the destination repositories it owns; its mirrors, the blobs it owns, of
    // every promoted image.
    let planned_edges = projects.admitted_edges(&shard::select(shard.as_ref(), selected));
    let planned: Planned = runtime.block_on(async {
        let progress = PhaseProgress::start("inventory", args.quiet);
        let options = PlanOptions {
            concurrency,
            date,
            progress: Some(progress.callback()),
        };
        let planned = hoist_promote::plan(&planned_edges, &stores, &policy_set, &options).await;
        progress.finish();
        planned
    });
    let plan = &planned.plan;
    let owners = problem_manifests(&plan.problems, &planned_edges);
    // A problem no manifest accounts for cannot be isolated: it holds back everything.
    let unattributed = owners.iter().any(BTreeSet::is_empty);
    for manifests in &owners {
        projects.refuse(manifests.iter().copied());
    }
    let admitted = if unattributed {
        Plan::default()
    } else {
        admit(plan, &planned_edges, &projects.refused_manifests())
    };
    let final_edges = projects.admitted_edges(selected);
    report.errors = projects.errors();
    report.projects = project_reports::reports(&projects, &plan.problems, &owners);
    report.totals = admitted.totals(&planned.blobs);
    report.steps = admitted.writes().collect();
    report.rehearsal = rehearsal
        .as_ref()
        .map(|rehearsal| rehearsal.report(&final_edges, plain_http));
    report.problems = &plan.problems;
    let refused = unattributed || projects.any_refused();
    // Refusals of the input (1) weigh more than what a re-run may fix (3).
    let refusal = unattributed
        || !report.errors.is_empty()
        || plan
            .problems
            .iter()
            .any(|problem| !problem.is_operational());
    let outcome = |failed: bool| {
        if refusal {
            Outcome::Refused
        } else if refused || failed {
            Outcome::Partial
        } else {
            Outcome::Ok
        }
    };

    if !args.confirm || (admitted.is_noop() && opened.is_none()) {
        let nothing = Execution::default();
        report.executed = args.confirm;
        if args.confirm {
            report.execution = Some(&nothing);
        }
        report.mirrors = opened.as_ref().map(|opened| {
            runtime.block_on(mirrors::survey(
                &final_edges,
                &stores,
                opened,
                concurrency,
                shard.as_ref(),
            ))
        });
        let mirrors_complete = report
            .mirrors
            .as_ref()
            .is_none_or(MirrorsReport::is_complete);
        report.ok = !refused && mirrors_complete;
        print(args.output, &report, Some(refused))?;
        return Ok(outcome(!mirrors_complete));
    }
    let spool = mirrors::open_spool(&args.spool, args.jobs)?;

    // Text: the plan first, so a log shows what is about to happen before it happens.
    if args.output == OutputFormat::Text {
        let mut out = std::io::stdout().lock();
        project_reports::print_refused(
            &mut out,
            &report.projects,
            "nothing they promote is written",
        )?;
        print_plan(&mut out, &report)?;
    }
    let (images, bytes) = report
        .totals
        .values()
        .fold((0, 0), |(images, bytes), total| {
            (images + total.copies + total.tag_only, bytes + total.bytes)
        });
    // Registries and mirrors in one pass: each source blob is read once for all of them.
    let (mut execution, mirror_images, mirror_problems) = runtime.block_on(async {
        let (mirror_images, mirror_problems) = match &opened {
            Some(_) => {
                let (mut images, problems) =
                    hoist_promote::read_images(&final_edges, &stores, concurrency).await;
                if let Some(shard) = &shard {
                    mirrors::keep_owned_blobs(&mut images, shard);
                }
                (images, problems)
            }
            None => Default::default(),
        };
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
            spool: Some(spool),
        };
        let work = opened.as_ref().map(|opened| MirrorWork {
            images: &mirror_images,
            mirrors: opened,
        });
        let execution =
            hoist_promote::execute(&admitted, &planned.blobs, &stores, work, &options).await;
        drop(options);
        if let Ok(reporter) = Arc::try_unwrap(reporter) {
            reporter.finish();
        }
        (execution, mirror_images, mirror_problems)
    });
    if opened.is_some() {
        let backends = std::mem::take(&mut execution.mirrors);
        report.mirrors = Some(MirrorsReport::filled(
            &mirror_images,
            mirror_problems,
            backends,
        ));
    }
    report.executed = true;
    let complete = execution.failures.is_empty()
        && report
            .mirrors
            .as_ref()
            .is_none_or(MirrorsReport::is_complete);
    report.ok = !refused && complete;
    report.execution = Some(&execution);
    match args.output {
        OutputFormat::Json => print(args.output, &report, Some(refused))?,
        OutputFormat::Text => {
            let mut out = std::io::stdout().lock();
            if admitted.is_noop() {
                writeln!(out, "\nnothing to do: every destination is complete.")?;
            } else {
                print_execution(&mut out, &execution)?;
            }
            if let Some(mirrors) = &report.mirrors {
                mirrors::print_text(&mut out, mirrors)?;
            }
            if refused {
                writeln!(
                    out,
                    "\nrefused: {} project(s); see above. Nothing they promote was written.",
                    report
                        .projects
                        .iter()
                        .filter(|project| project.status == "refused")
                        .count()
                )?;
            }
            if let Some(rehearsal) = &report.rehearsal {
                rehearse::print_text(&mut out, rehearsal)?;
            }
        }
    }
    Ok(outcome(!complete))
}

/// Prints the report; `refused` is `None` when the input itself was refused (no plan).
fn print(
    format: OutputFormat,
    report: &PromoteReport<'_>,
    refused: Option<bool>,
) -> anyhow::Result<()> {
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    match format {
        OutputFormat::Json => {
            serde_json::to_writer_pretty(&mut out, report)?;
            writeln!(out)?;
        }
        OutputFormat::Text => {
            let Some(refused) = refused else {
                for error in &report.errors {
                    writeln!(out, "{}", finding_line(error))?;
                }
                writeln!(
                    out,
                    "refused: {} error(s) in the input that belong to no single project; \
                     nothing was read or written.",
                    report.errors.len()
                )?;
                return Ok(());
            };
            project_reports::print_refused(
                &mut out,
                &report.projects,
                "nothing they promote is written",
            )?;
            print_plan(&mut out, report)?;
            if refused {
                writeln!(
                    out,
                    "\nrefused: {} project(s); nothing they promote is written.",
                    report
                        .projects
                        .iter()
                        .filter(|project| project.status == "refused")
                        .count()
                )?;
            } else if report.steps.is_empty() {
                writeln!(out, "\nnothing to do: every destination is complete.")?;
            }
            if let Some(mirrors) = &report.mirrors {
                mirrors::print_text(&mut out, mirrors)?;
            }
            let mirrors_to_write = report
                .mirrors
                .as_ref()
                .is_some_and(|mirrors| mirrors.backends.iter().any(|summary| summary.to_write > 0));
            if !report.executed && (!report.steps.is_empty() || mirrors_to_write) {
                writeln!(
                    out,
                    "\ndry run: nothing written. Run again with --confirm to execute this plan."
                )?;
            }
            if let Some(rehearsal) = &report.rehearsal {
                rehearse::print_text(&mut out, rehearsal)?;
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
    // Problems are listed under their projects; one that no project accounts for, here.
    let unlisted: Vec<&Problem> = report
        .problems
        .iter()
        .filter(|problem| {
            !report
                .projects
                .iter()
                .any(|project| project.problems.contains(problem))
        })
        .collect();
    if !unlisted.is_empty() {
        writeln!(out, "\nproblems:")?;
        for problem in unlisted {
            writeln!(out, "  error: {problem}")?;
        }
    }
    Ok(())
}

fn print_execution(out: &mut impl std::io::Write, execution: &Execution) -> std::io::Result<()> {
    writeln!(
        out,
        "\ndone: {} of {} promotion(s) (digest × destination repository); {} manifest(s) pushed, {} blob(s) uploaded ({}), {} mounted, {} already there; {} tag(s) set; {} signature/attestation artifact(s)",
        execution.completed,
        execution.completed + execution.failures.len(),
        execution.manifests_pushed,
        execution.blobs_uploaded,
        indicatif::HumanBytes(execution.bytes_uploaded),
        execution.blobs_mounted,
        execution.blobs_skipped,
        execution.tags_set,
        execution.attached
    )?;
    let reads = &execution.source_reads;
    if reads.fetches > 0 {
        writeln!(
            out,
            "read from the sources: {} blob(s), {}",
            reads.fetches,
            indicatif::HumanBytes(reads.bytes_fetched),
        )?;
    }
    if !execution.failures.is_empty() {
        writeln!(
            out,
            "failed: {} promotion(s) (digest × destination repository); nothing was tagged for them. Run again to finish:",
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
