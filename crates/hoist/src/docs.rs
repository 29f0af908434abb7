//! `hoist completions` and `hoist man`: shell completions (clap_complete) and manual pages
//! (clap_mangen), generated from the same clap definitions the parser uses, so they cannot
//! drift from the flags hoist really takes.

use std::io::Write as _;

use anyhow::Context as _;
use clap::CommandFactory as _;

use crate::cli::{Cli, CompletionsArgs, ManArgs};
use crate::exit::Outcome;

pub fn completions(args: &CompletionsArgs) -> anyhow::Result<Outcome> {
    let mut command = Cli::command();
    let mut out = std::io::stdout().lock();
    clap_complete::generate(args.shell, &mut command, "hoist", &mut out);
    out.flush()?;
    Ok(Outcome::Ok)
}

pub fn man(args: &ManArgs) -> anyhow::Result<Outcome> {
    // `hoist help` only repeats --help: no page of its own, and none listed.
    let command = Cli::command().disable_help_subcommand(true);
    match &args.dir {
        None => {
            let mut out = std::io::stdout().lock();
            clap_mangen::Man::new(command).render(&mut out)?;
            out.flush()?;
        }
        Some(dir) => {
            std::fs::create_dir_all(dir)
                .with_context(|| format!("cannot create {}", dir.display()))?;
            clap_mangen::generate_to(command, dir)
                .with_context(|| format!("cannot write manual pages into {}", dir.display()))?;
        }
    }
    Ok(Outcome::Ok)
}
