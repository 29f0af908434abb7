//! `hoist mirror`: fill blob mirrors with every blob of every promoted image, reading the
//! registries only (each blob once, through the spool, for all the mirrors). A dry run without
//! `--confirm`, like `hoist promote`; projects are isolated and `--since REV` selects the added
//! edges, as in `hoist promote`.

use std::collections::HashMap;
use std::io::Write as _;

use hoist_promote::{ExecuteOptions, MirrorWork, Plan, Stores, problem_manifests};

use crate::cli::{MirrorArgs, OutputFormat};
use crate::exit::Outcome;
use crate::mirrors::{self, MirrorsReport};
use crate::projects::{self as project_reports, ProjectReport};
use crate::report::Finding;
use crate::{inputs, registries, shard};

#[derive(Debug, serde::Serialize)]
struct MirrorCommandReport {
    /// Every blob is (or, in a dry run, can be made) in every mirror, and nothing was refused.
    ok: bool,
    /// With `--since`: the revision the edges were selected against.
    #[serde(skip_serializing_if = "Option::is_none")]
    since: Option<String>,
    /// Manifest and conflict errors (of refused projects, or of the run: then nothing was read).
    errors: Vec<Finding>,
    /// Per project, refused ones first.
    projects: Vec<ProjectReport>,
    #[serde(skip_serializing_if = "Option::is_none")]
    mirrors: Option<MirrorsReport>,
    /// With `--shard`/`--shards`: which part of the blobs this run did.
    #[serde(skip_serializing_if = "Option::is_none")]
    shard: Option<hoist_plan::Shard>,
}

pub fn run(args: &MirrorArgs) -> anyhow::Result<Outcome> {
    anyhow::ensure!(
        args.backends.backends.is_some(),
        "hoist mirror needs --backends FILE"
    );
    let inputs = inputs::from_args(&args.inputs)?;
    let config = registries::config(&args.registries)?;
    let shard = shard::from_args(&args.shard)?;
    let runtime = registries::runtime()?;
    let opened = runtime
        .block_on(mirrors::open(
            &args.backends,
            &registries::mirror_options(&args.registries.network),
        ))?
        .expect("--backends was given");
    // Projects are isolated as in promote: an invalid or conflicting project is not mirrored,
    // the others are.
    let loaded = hoist_manifest::load(&inputs);
    let (mut projects, edges) = crate::projects::gated(&loaded);
    let selected = match &args.since.since {
        Some(rev) => Some(crate::projects::since(
            &inputs,
            &loaded,
            &edges,
            Some(&mut projects),
            rev,
        )?),
        None => None,
    };
    let selected = selected.as_ref().unwrap_or(&edges);
    if !projects.run_errors().is_empty() {
        print(
            args.output,
            &MirrorCommandReport {
                ok: false,
                since: args.since.since.clone(),
                errors: projects.errors(),
                projects: project_reports::reports(&projects, &[], &[]),
                mirrors: None,
                shard,
            },
        )?;
        return Ok(Outcome::Refused);
    }
    let admitted = projects.admitted_edges(selected);
    let stores = Stores::new(config);
    let concurrency = args.jobs.max(1) * 4;
    let report = if args.confirm {
        let spool = mirrors::open_spool(&args.spool, args.jobs)?;
        runtime.block_on(async {
            let (mut images, problems) =
                hoist_promote::read_images(&admitted, &stores, concurrency).await;
            if let Some(shard) = &shard {
                mirrors::keep_owned_blobs(&mut images, shard);
            }
            let options = ExecuteOptions {
                jobs: args.jobs,
                spool: Some(spool),
                ..ExecuteOptions::default()
            };
            let work = MirrorWork {
                images: &images,
                mirrors: &opened,
            };
            let execution = hoist_promote::execute(
                &Plan::default(),
                &HashMap::new(),
                &stores,
                Some(work),
                &options,
            )
            .await;
            MirrorsReport::filled(&images, problems, execution.mirrors)
        })
    } else {
        runtime.block_on(mirrors::survey(
            &admitted,
            &stores,
            &opened,
            concurrency,
            shard.as_ref(),
        ))
    };
    let owners = problem_manifests(&report.problems, &admitted);
    let refused = projects.any_refused();
    let complete = report.is_complete();
    print(
        args.output,
        &MirrorCommandReport {
            ok: complete && !refused,
            since: args.since.since.clone(),
            errors: projects.errors(),
            projects: project_reports::reports(&projects, &report.problems, &owners),
            mirrors: Some(report),
            shard,
        },
    )?;
    Ok(if refused {
        Outcome::Refused
    } else if complete {
        Outcome::Ok
    } else {
        Outcome::Partial
    })
}

fn print(format: OutputFormat, report: &MirrorCommandReport) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    match format {
        OutputFormat::Json => {
            serde_json::to_writer_pretty(&mut out, report)?;
            writeln!(out)?;
        }
        OutputFormat::Text => {
            if let Some(mirrors) = &report.mirrors {
                project_reports::print_refused(
                    &mut out,
                    &report.projects,
                    "nothing they promote is written",
                )?;
                writeln!(out, "hoist mirror")?;
                if let Some(shard) = &report.shard {
                    writeln!(out, "shard {shard}: the blobs whose digest falls in it")?;
                }
                mirrors::print_text(&mut out, mirrors)?;
                let to_write = mirrors.backends.iter().any(|summary| summary.to_write > 0);
                if !mirrors.executed && to_write {
                    writeln!(
                        out,
                        "\ndry run: nothing written. Run again with --confirm to write the missing blobs."
                    )?;
                }
            } else {
                for error in &report.errors {
                    writeln!(out, "{error}")?;
                }
                writeln!(
                    out,
                    "refused: {} error(s) in the input that belong to no single project; \
                     nothing was read or written.",
                    report.errors.len()
                )?;
            }
        }
    }
    Ok(())
}
