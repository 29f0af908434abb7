//! The `hoist` command line: glue between the libraries, the terminal and the exit code.
//!
//! Everything hoist knows lives in the library crates; this binary parses flags (clap), sets up
//! logging (tracing, to stderr), runs one command and maps its outcome to a documented exit code
//! ([`exit::Outcome`]). Data goes to stdout, logs and progress to stderr.

mod audit;
mod check;
mod cli;
#[cfg(test)]
mod deploy_examples;
mod docs;
mod exit;
mod files;
mod git;
mod inputs;
mod mirror;
mod mirrors;
mod policies;
mod progress;
mod projects;
mod promote;
mod registries;
mod rehearse;
mod report;
mod revision;
mod serve;
mod shard;
mod snapshot;

use std::process::ExitCode;

use clap::Parser as _;

fn main() -> ExitCode {
    let cli = cli::Cli::parse();
    // The server logs every request at info level (its access log), may log JSON, and writes
    // its log from a worker thread, flushed when this guard drops at the end of main.
    let _log_guard = match &cli.command {
        cli::Command::Serve(args) => Some(serve::init_logging(cli.verbose, args.log_format)),
        _ => {
            init_logging(cli.verbose);
            None
        }
    };
    let outcome = match cli.command {
        cli::Command::Check(args) => check::run(&args),
        cli::Command::Promote(args) => promote::run(&args),
        cli::Command::Mirror(args) => mirror::run(&args),
        cli::Command::Audit(args) => audit::run(&args),
        cli::Command::Snapshot(args) => snapshot::run(&args),
        cli::Command::Completions(args) => docs::completions(&args),
        cli::Command::Man(args) => docs::man(&args),
        cli::Command::PromoteFiles(args) => files::promote(&args),
        cli::Command::Serve(args) => serve::run(&args),
    };
    match outcome {
        Ok(outcome) => outcome.into(),
        // A reader that stopped early (`hoist man | head`) is not an error of hoist's.
        Err(error) if is_broken_pipe(&error) => exit::Outcome::Ok.into(),
        Err(error) => {
            eprintln!("hoist: error: {error:#}");
            exit::Outcome::Usage.into()
        }
    }
}

fn is_broken_pipe(error: &anyhow::Error) -> bool {
    error.chain().any(|cause| {
        cause
            .downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
    })
}

fn init_logging(verbose: u8) {
    let default = match verbose {
        0 => "warn",
        1 => "info",
        2 => "debug",
        _ => "trace",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_env("HOIST_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(
            std::env::var_os("NO_COLOR").is_none()
                && std::io::IsTerminal::is_terminal(&std::io::stderr()),
        )
        .init();
}
