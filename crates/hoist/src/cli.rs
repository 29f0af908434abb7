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

    /// Plan a promotion from what the registries hold and, with --confirm, execute it.
    ///
    /// Without --confirm this is a dry run: it reads the registries, prints the plan and writes
    /// nothing. With --confirm the same plan is executed. Any refusal (tag move, digest lost from
    /// the source, policy) stops the whole run before it writes anything.
    ///
    /// With --backends, every blob of every promoted image then goes to every selected blob
    /// mirror (S3, GCS, directories), verified; the dry run shows what each mirror lacks.
    ///
    /// Exit codes: 0 ok, 1 invalid manifests or a refusal (nothing written), 2 usage error,
    /// 3 partial failure (a registry could not be read, or some copies or mirror uploads failed;
    /// re-run to finish).
    Promote(PromoteArgs),

    /// Fill blob mirrors with every blob of every image the manifests promote (back-filling).
    ///
    /// Registries are only read. Without --confirm this is a dry run: it asks each mirror which
    /// blobs it lacks and writes nothing. Blobs already there are skipped; nothing is overwritten.
    ///
    /// Exit codes: 0 ok, 1 invalid manifests, 2 usage error, 3 partial failure (an image could
    /// not be read, or some uploads failed; re-run to finish).
    Mirror(MirrorArgs),

    /// Prove that every destination and mirror holds exactly what the manifests promote.
    ///
    /// For every image: each destination repository has every manifest by digest (bytes verified)
    /// and the wanted tags point at it, with no extra tags; each selected mirror holds every blob
    /// with the right size (with --rehash: the right sha256, streamed). Never writes anything.
    ///
    /// Exit codes: 0 everything matches, 1 a discrepancy (missing, mismatched, tag moved or
    /// missing, extra tag) or invalid manifests, 2 usage error, 3 no discrepancy but something
    /// could not be read.
    Audit(AuditArgs),

    /// Print what a repository holds (tags and their digests) in the images.yaml format.
    ///
    /// Exit codes: 0 ok, 2 usage error, 3 the registry could not be read.
    Snapshot(SnapshotArgs),
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

/// How registries are reached.
#[derive(Debug, Args)]
pub struct RegistryArgs {
    /// Speak plain HTTP (no TLS) to this registry host (HOST[:PORT]). Repeat for several hosts.
    #[arg(long = "insecure-registry", value_name = "HOST")]
    pub insecure_registries: Vec<String>,

    /// Trust the CA certificates in this PEM file too (repeatable).
    #[arg(long = "ca-file", value_name = "FILE")]
    pub ca_files: Vec<PathBuf>,

    /// Read registry credentials from this Docker config.json (default: $DOCKER_CONFIG/config.json
    /// or ~/.docker/config.json).
    #[arg(long = "docker-config", value_name = "FILE")]
    pub docker_config: Option<PathBuf>,

    /// Log in to this registry host with HOIST_REGISTRY_USERNAME and HOIST_REGISTRY_PASSWORD from
    /// the environment (repeatable). Credentials are never printed.
    #[arg(long = "credentials-for", value_name = "HOST")]
    pub credentials_for: Vec<String>,

    /// Reach registry HOST at URL (http(s)://ADDRESS[:PORT]) instead: a mirror, a port-forward,
    /// a local test registry. Manifests keep naming HOST; credentials for HOST go to URL only;
    /// an http:// URL means plain HTTP for that registry alone (repeatable).
    // Parsed later, not by clap: clap's errors quote the value, which may hold a password.
    #[arg(long = "registry-endpoint", value_name = "HOST=URL")]
    pub registry_endpoints: Vec<String>,
}

/// How the work is split over several processes (a Kubernetes Indexed Job).
#[derive(Debug, Args)]
pub struct ShardArgs {
    /// Do only shard I of N (0 <= I < N): the destination repositories whose stable hash of
    /// registry/repository falls in it and, for blob mirrors, the blobs whose digest does.
    #[arg(long, value_name = "I/N", conflicts_with = "shards")]
    pub shard: Option<hoist_plan::Shard>,

    /// Split the work into N shards and do the one JOB_COMPLETION_INDEX names (Kubernetes sets
    /// it in every pod of an Indexed Job).
    #[arg(long, value_name = "N")]
    pub shards: Option<u32>,
}

/// Which blob mirrors to use.
#[derive(Debug, Args)]
pub struct BackendArgs {
    /// The catalogue of blob mirror backends (backends.yaml). Credentials come from each cloud's
    /// standard chain (AWS environment/profile/web identity; GCS application default credentials).
    #[arg(long, value_name = "FILE")]
    pub backends: Option<PathBuf>,

    /// Only the backends whose labels match, like kubectl -l: KEY=VALUE, KEY!=VALUE, KEY, !KEY,
    /// comma-separated (all must hold). Default: every backend.
    #[arg(long, value_name = "SELECTOR", requires = "backends")]
    pub select: Option<String>,
}

#[derive(Debug, Args)]
pub struct MirrorArgs {
    #[command(flatten)]
    pub inputs: ManifestArgs,

    #[command(flatten)]
    pub registries: RegistryArgs,

    #[command(flatten)]
    pub backends: BackendArgs,

    #[command(flatten)]
    pub shard: ShardArgs,

    /// Write the missing blobs. Without it nothing is written.
    #[arg(long)]
    pub confirm: bool,

    /// Images read, and blobs uploaded per mirror, at once (x4).
    #[arg(long, value_name = "N", default_value_t = 8)]
    pub jobs: usize,

    /// Report format.
    #[arg(long, value_enum, default_value_t = OutputFormat::Text)]
    pub output: OutputFormat,
}

#[derive(Debug, Args)]
pub struct AuditArgs {
    #[command(flatten)]
    pub inputs: ManifestArgs,

    #[command(flatten)]
    pub registries: RegistryArgs,

    #[command(flatten)]
    pub backends: BackendArgs,

    #[command(flatten)]
    pub shard: ShardArgs,

    /// Read every mirrored blob and check its sha256 (streamed), not only its size.
    #[arg(long)]
    pub rehash: bool,

    /// Repositories read, and blobs checked per mirror, at once (x4).
    #[arg(long, value_name = "N", default_value_t = 8)]
    pub jobs: usize,

    /// Report format.
    #[arg(long, value_enum, default_value_t = OutputFormat::Text)]
    pub output: OutputFormat,
}

#[derive(Debug, Args)]
pub struct PromoteArgs {
    #[command(flatten)]
    pub inputs: ManifestArgs,

    #[command(flatten)]
    pub registries: RegistryArgs,

    #[command(flatten)]
    pub backends: BackendArgs,

    #[command(flatten)]
    pub shard: ShardArgs,

    /// Policy directory (*.yaml). Default: the policies shipped inside hoist.
    #[arg(long, value_name = "DIR")]
    pub policies: Option<PathBuf>,

    /// Evaluate freeze rules as of this date (YYYY-MM-DD). Default: today (UTC).
    #[arg(long, value_name = "DATE")]
    pub date: Option<chrono::NaiveDate>,

    /// Execute the plan. Without it nothing is written.
    #[arg(long)]
    pub confirm: bool,

    /// Images copied at once (each image × destination is one job).
    #[arg(long, value_name = "N", default_value_t = 8)]
    pub jobs: usize,

    /// Report format (the plan, and with --confirm what was done).
    #[arg(long, value_enum, default_value_t = OutputFormat::Text)]
    pub output: OutputFormat,

    /// No progress on stderr.
    #[arg(short, long)]
    pub quiet: bool,
}

/// Snapshot output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum SnapshotFormat {
    /// images.yaml entries.
    Yaml,
    /// `name@digest,name:tag` lines.
    Csv,
}

#[derive(Debug, Args)]
pub struct SnapshotArgs {
    /// The repository: REGISTRY/IMAGE, such as gcr.io/k8s-staging-foo/bar or oci:DIR/bar.
    #[arg(value_name = "REPOSITORY")]
    pub repository: String,

    /// The registry part of REPOSITORY; the rest is the image name written in the snapshot.
    /// Default: everything before the last '/'.
    #[arg(long, value_name = "REGISTRY")]
    pub registry: Option<String>,

    /// Also list cosign signature, attestation and SBOM tags (sha256-<hex>.sig, ...), which
    /// promotions copy along with their image anyway.
    #[arg(long)]
    pub all_tags: bool,

    #[command(flatten)]
    pub registries: RegistryArgs,

    /// Output format.
    #[arg(long, value_enum, default_value_t = SnapshotFormat::Yaml)]
    pub output: SnapshotFormat,
}
