//! `hoist mirror`: fill blob mirrors with every blob of every promoted image, reading the
//! registries only. A dry run without `--confirm`, like `hoist promote`.

use std::collections::HashSet;
use std::io::Write as _;

use hoist_promote::Stores;

use crate::cli::{MirrorArgs, OutputFormat};
use crate::exit::Outcome;
use crate::mirrors::{self, MirrorsReport};
use crate::report::Finding;
use crate::{inputs, registries, shard};

#[derive(Debug, serde::Serialize)]
struct MirrorCommandReport {
    /// Every blob is (or, in a dry run, can be made) in every mirror.
    ok: bool,
    /// Manifest and conflict errors; when there are any nothing was read.
    errors: Vec<Finding>,
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
                    shard,
                },
            )?;
            return Ok(Outcome::Refused);
        }
    };
    let stores = Stores::new(config);
    let report = runtime.block_on(mirrors::run(
        &edges,
        &stores,
        &opened,
        args.confirm,
        &HashSet::new(),
        args.jobs.max(1) * 4,
        shard.as_ref(),
    ));
    let ok = report.is_complete();
    print(
        args.output,
        &MirrorCommandReport {
            ok,
            errors: Vec::new(),
            mirrors: Some(report),
            shard,
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
                match &report.shard {
                    Some(shard) => writeln!(
                        out,
                        "hoist mirror: shard {shard}: the blobs whose digest falls in it"
                    )?,
                    None => writeln!(out, "hoist mirror")?,
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
