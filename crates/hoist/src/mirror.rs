//! `hoist mirror`: fill blob mirrors with every blob of every promoted image, reading the
//! registries only (each blob once, through the spool, for all the mirrors). A dry run without
//! `--confirm`, like `hoist promote`.

use std::collections::HashMap;
use std::io::Write as _;

use hoist_promote::{ExecuteOptions, MirrorWork, Plan, Stores};

use crate::cli::{MirrorArgs, OutputFormat};
use crate::exit::Outcome;
use crate::mirrors::{self, MirrorsReport};
use crate::report::Finding;
use crate::{inputs, registries};

#[derive(Debug, serde::Serialize)]
struct MirrorCommandReport {
    /// Every blob is (or, in a dry run, can be made) in every mirror.
    ok: bool,
    /// Manifest and conflict errors; when there are any nothing was read.
    errors: Vec<Finding>,
    #[serde(skip_serializing_if = "Option::is_none")]
    mirrors: Option<MirrorsReport>,
}

pub fn run(args: &MirrorArgs) -> anyhow::Result<Outcome> {
    anyhow::ensure!(
        args.backends.backends.is_some(),
        "hoist mirror needs --backends FILE"
    );
    let inputs = inputs::from_args(&args.inputs)?;
    let config = registries::config(&args.registries)?;
    let runtime = registries::runtime()?;
    let opened = runtime
        .block_on(mirrors::open(&args.backends))?
        .expect("--backends was given");
    let edges = match inputs::load_edges(&inputs) {
        Ok(edges) => edges,
        Err(errors) => {
            print(
                args.output,
                &MirrorCommandReport {
                    ok: false,
                    errors,
                    mirrors: None,
                },
            )?;
            return Ok(Outcome::Refused);
        }
    };
    let stores = Stores::new(config);
    let concurrency = args.jobs.max(1) * 4;
    let report = if args.confirm {
        let spool = mirrors::open_spool(&args.spool)?;
        runtime.block_on(async {
            let (images, problems) = hoist_promote::read_images(&edges, &stores, concurrency).await;
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
        runtime.block_on(mirrors::survey(&edges, &stores, &opened, concurrency))
    };
    let ok = report.is_complete();
    print(
        args.output,
        &MirrorCommandReport {
            ok,
            errors: Vec::new(),
            mirrors: Some(report),
        },
    )?;
    Ok(if ok { Outcome::Ok } else { Outcome::Partial })
}

fn print(format: OutputFormat, report: &MirrorCommandReport) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    match format {
        OutputFormat::Json => {
            serde_json::to_writer_pretty(&mut out, report)?;
            writeln!(out)?;
        }
        OutputFormat::Text => {
            for error in &report.errors {
                writeln!(out, "{error}")?;
            }
            if let Some(mirrors) = &report.mirrors {
                writeln!(out, "hoist mirror")?;
                mirrors::print_text(&mut out, mirrors)?;
                let to_write = mirrors.backends.iter().any(|summary| summary.to_write > 0);
                if !mirrors.executed && to_write {
                    writeln!(
                        out,
                        "\ndry run: nothing written. Run again with --confirm to write the missing blobs."
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
