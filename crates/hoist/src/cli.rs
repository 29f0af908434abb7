//! Command-line flags (clap derive).

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// hoist promotes container images from staging registries to production registries and mirrors,
/// and proves afterwards that every mirror holds exactly the same bytes.
#[derive(Debug, Parser)]
#[command(name = "hoist", version, about, long_about = None, max_term_width = 100)]
pub struct Cli {
    /// More logging on stderr (-v info, -vv debug, -vvv trace). HOIST_LOG overrides.
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Validate manifests and apply policies offline (the presubmit). Needs no network.
    ///
    /// Exit codes: 0 ok, 1 validation or policy failure, 2 usage error.
    Check(CheckArgs),
}

/// Which promoter manifests to read.
#[derive(Debug, Args)]
pub struct ManifestArgs {
    /// A thin-manifest directory: DIR/manifests/<p>/promoter-manifest.yaml + DIR/images/<p>/images.yaml.
    #[arg(long = "thin-manifest-dir", value_name = "DIR")]
    pub thin_manifest_dirs: Vec<PathBuf>,

    /// A plain promoter manifest (registries: + images: in one file).
    #[arg(long = "manifest", value_name = "FILE")]
    pub manifests: Vec<PathBuf>,
}

/// Output format of a report.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum OutputFormat {
    /// A short human summary.
    Text,
    /// Stable JSON (one object).
    Json,
}

#[derive(Debug, Args)]
pub struct CheckArgs {
    #[command(flatten)]
    pub inputs: ManifestArgs,

    /// Policy directory (*.yaml). Default: the policies shipped inside hoist.
    #[arg(long, value_name = "DIR")]
    pub policies: Option<PathBuf>,

    /// Compare with the manifests at this git revision: list what the change adds, refuse tag moves
    /// and removals, and apply blockade rules to the files changed since REV.
    #[arg(long, value_name = "REV")]
    pub base: Option<String>,

    /// Evaluate freeze rules as of this date (YYYY-MM-DD). Default: today (UTC).
    #[arg(long, value_name = "DATE")]
    pub date: Option<chrono::NaiveDate>,

    /// Report format.
    #[arg(long, value_enum, default_value_t = OutputFormat::Text)]
    pub output: OutputFormat,
}
