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
    /// nothing. With --confirm the same plan is executed. A problem (invalid manifest, conflict,
    /// tag move, digest lost from the source, policy) refuses the writes of its project (one
    /// promoter manifest), and only those; every other project is promoted.
    ///
    /// With --backends, every blob of every promoted image then goes to every selected blob
    /// mirror (S3, GCS, directories), verified; the dry run shows what each mirror lacks.
    ///
    /// Exit codes: 0 ok, 1 something was refused (nothing of the refused projects written),
    /// 2 usage error, 3 partial failure (a registry could not be read, or some copies or mirror uploads failed;
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
    /// Exit codes: 0 ok, 1 no such repository, 2 usage error, 3 the registry could not be read.
    Snapshot(SnapshotArgs),

    /// Promote files (release binaries, tarballs) between buckets by sha256, as kpromo's file
    /// promoter does: --filestores FILE --files FILE|DIR, or --manifests DIR.
    ///
    /// Without --confirm this is a dry run: it reads every source and destination (existing
    /// destination files are hashed) and prints the plan. With --confirm each missing file is
    /// streamed from the source through a sha256 check into each destination, create-only. A
    /// source whose bytes do not match refuses that file (nothing written); a destination file
    /// with other bytes is reported and never overwritten.
    ///
    /// Exit codes: 0 ok, 1 invalid manifests or a refused file (other bytes in a source or a
    /// destination, a file missing from the source), 2 usage error, 3 partial failure (a store
    /// could not be read or written; re-run to finish).
    PromoteFiles(PromoteFilesArgs),

    /// Run the registry.k8s.io redirector: every registry request gets a 307, blobs to the
    /// mirror of the client's region when it has them, everything else to the upstream.
    ///
    /// Serves until SIGTERM or Ctrl-C, then finishes the requests in flight. Also serves
    /// /healthz, Prometheus /metrics, the blobs of file: backends and, with --upstream oci:DIR,
    /// that layout directory as a read-only registry. One access log line per request on stderr.
    ///
    /// Exit codes: 0 stopped by a signal, 2 usage error (bad flag or file, address in use).
    Serve(ServeArgs),

    /// Print a shell completion script for hoist (bash, zsh, fish, elvish, powershell).
    ///
    /// For example `hoist completions bash > /etc/bash_completion.d/hoist`, or
    /// `source <(hoist completions bash)` in a running shell.
    Completions(CompletionsArgs),

    /// Print hoist's manual page (roff), or write one page per command into a directory.
    ///
    /// `hoist man | man -l -` reads it; `hoist man --dir DIR` writes hoist.1 and
    /// hoist-<command>.1 for every command.
    Man(ManArgs),
}

#[derive(Debug, Args)]
pub struct CompletionsArgs {
    /// The shell to complete in.
    #[arg(value_enum, value_name = "SHELL")]
    pub shell: clap_complete::Shell,
}

#[derive(Debug, Args)]
pub struct ManArgs {
    /// Write hoist.1 and one hoist-<command>.1 per command into this directory instead of
    /// printing hoist.1.
    #[arg(long, value_name = "DIR")]
    pub dir: Option<PathBuf>,
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

    #[command(flatten)]
    pub files: FileManifestArgs,

    /// Policy directory (*.yaml). Default: the policies shipped inside hoist.
    #[arg(long, value_name = "DIR")]
    pub policies: Option<PathBuf>,

    /// Compare with the manifests at this git revision: list what the change adds, refuse tag moves
    /// and removals, and apply blockade rules to the files changed since REV. Findings that exist
    /// at REV too and that the change does not touch are reported as pre-existing and do not fail.
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

    #[command(flatten)]
    pub network: NetworkArgs,

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

    #[command(flatten)]
    pub spool: SpoolArgs,

    /// Images read, and blobs uploaded per mirror, at once (x4).
    #[arg(long, value_name = "N", default_value_t = 8)]
    pub jobs: usize,

    /// Report format.
    #[arg(long, value_enum, default_value_t = OutputFormat::Text)]
    pub output: OutputFormat,

    #[command(flatten)]
    pub since: SinceArgs,
}

#[derive(Debug, Args)]
pub struct AuditArgs {
    #[command(flatten)]
    pub inputs: ManifestArgs,

    #[command(flatten)]
    pub files: FileManifestArgs,

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

    #[command(flatten)]
    pub since: SinceArgs,
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

    #[command(flatten)]
    pub spool: SpoolArgs,

    /// Images copied at once, each to all its destinations and mirrors at once.
    #[arg(long, value_name = "N", default_value_t = 8)]
    pub jobs: usize,

    /// Report format (the plan, and with --confirm what was done).
    #[arg(long, value_enum, default_value_t = OutputFormat::Text)]
    pub output: OutputFormat,

    /// No progress on stderr.
    #[arg(short, long)]
    pub quiet: bool,

    #[command(flatten)]
    pub since: SinceArgs,

    #[command(flatten)]
    pub rehearsal: RehearsalArgs,
}

/// A release rehearsal into the registry of a local cluster (KEP-1755).
#[derive(Debug, Args)]
pub struct RehearsalArgs {
    /// Rehearse: promote every image into the local cluster registry, <host>/<image>, instead of
    /// its destinations (same checks, same plan). The registry comes from the KEP-1755
    /// local-registry-hosting ConfigMap (--local-registry-hosting, or else kubectl).
    #[arg(long, conflicts_with = "backends")]
    pub rehearse: bool,

    /// The local-registry-hosting ConfigMap as `kubectl get configmap -n kube-public
    /// local-registry-hosting -o yaml` (or -o json) prints it; `-` reads stdin. Without it,
    /// --rehearse runs that kubectl command.
    #[arg(long, value_name = "FILE|-", requires = "rehearse")]
    pub local_registry_hosting: Option<PathBuf>,
}

/// File manifests (kpromo's file promoter): a filestores manifest with file lists, or the
/// multi-project layout.
#[derive(Debug, Args)]
pub struct FileManifestArgs {
    /// The filestores manifest (filestores: [{base, service-account, src}]); needs --files.
    #[arg(long, value_name = "FILE", requires = "files")]
    pub filestores: Option<PathBuf>,

    /// A file manifest (files: [{name, sha256}]) or a directory of them (read recursively);
    /// needs --filestores.
    #[arg(long, value_name = "FILE|DIR", requires = "filestores")]
    pub files: Option<PathBuf>,

    /// The multi-project layout: DIR/filestores/<p>/filepromoter-manifest.yaml with the file
    /// manifests of DIR/manifests/<p>/. (Not --manifest, which reads an image manifest.)
    #[arg(long = "manifests", value_name = "DIR")]
    pub file_manifests: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct PromoteFilesArgs {
    #[command(flatten)]
    pub files: FileManifestArgs,

    /// Copy the missing files. Without it nothing is written.
    #[arg(long)]
    pub confirm: bool,

    /// Accepted for kpromo compatibility and ignored: hoist uses each cloud's own credential
    /// chain (AWS environment/profile/web identity, GCS application default credentials) and
    /// impersonates no service account.
    #[arg(long, hide = true)]
    pub use_service_account: bool,

    /// Files read or copied at once.
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

/// Which edges a run covers: all of them, or what a change added.
#[derive(Debug, Args)]
pub struct SinceArgs {
    /// Only the edges the manifests add relative to git revision REV (new digests, new or moved
    /// tags; the same diff as `check --base`): a postsubmit after one merge reads and writes only
    /// what that merge added. Default: every edge (the full reconcile).
    #[arg(long, value_name = "REV")]
    pub since: Option<String>,
}

/// Access log format of `hoist serve`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// `key=value` fields on one line.
    Text,
    /// One JSON object per line.
    Json,
}

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// The registry everything but mirrored blobs is sent to: http(s)://HOST[/PATH] (no trailing
    /// slash needed), or oci:DIR, a directory of OCI layouts (like oci: destinations) that hoist
    /// then serves itself as a read-only registry.
    #[arg(long, value_name = "URL")]
    pub upstream: String,

    /// Inserted after /v2/ in upstream URLs: /v2/NAME/... goes to UPSTREAM/v2/P/NAME/...
    #[arg(long = "upstream-path", value_name = "P", default_value = "")]
    pub upstream_path: String,

    /// Send cosign signature and attestation tags (manifests/sha256-<hex>.sig, .att) to this
    /// registry instead of the upstream (with the same --upstream-path).
    #[arg(long = "signature-upstream", value_name = "URL")]
    pub signature_upstream: Option<String>,

    #[command(flatten)]
    pub backends: BackendArgs,

    /// The backend for clients of no region that has one. Default: the first selected backend.
    #[arg(long = "default-backend", value_name = "NAME", requires = "backends")]
    pub default_backend: Option<String>,

    /// An IP range file in a cloud's published format: AWS ip-ranges.json or Google Cloud
    /// cloud.json (repeatable). Places clients in a cloud (aws, gcp) and region, matched with
    /// the labels cloud and region of the backends.
    #[arg(long = "ip-ranges", value_name = "FILE")]
    pub ip_ranges: Vec<PathBuf>,

    /// The cloud the upstream runs in: blob requests of its clients go to the upstream, not to a
    /// bucket (registry.k8s.io's upstream is Artifact Registry, in gcp). "none" for no cloud.
    #[arg(long = "upstream-cloud", value_name = "CLOUD", default_value = "gcp")]
    pub upstream_cloud: String,

    /// Believe X-Forwarded-For from peers in this network (ADDRESS or CIDR, repeatable; without a
    /// value: from any peer): the client is then its second-to-last entry. Without this flag the
    /// client is always the peer.
    #[arg(
        long = "trusted-load-balancer",
        value_name = "CIDR",
        num_args = 0..=1,
        default_missing_value = "any",
        action = clap::ArgAction::Append
    )]
    pub trusted_load_balancers: Vec<String>,

    /// Address to listen on: HOST:PORT, or :PORT for every interface. Port 0 picks a free port
    /// (the address is printed on stderr).
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:8080")]
    pub listen: String,

    /// Where / redirects.
    #[arg(long = "info-url", value_name = "URL", default_value = hoist_serve::DEFAULT_INFO_URL)]
    pub info_url: String,

    /// How many positive blob existence answers are cached.
    #[arg(long = "blob-cache-size", value_name = "N", default_value_t = hoist_serve::DEFAULT_CACHE_CAPACITY)]
    pub blob_cache_size: u64,

    /// Format of the access log and other log lines on stderr.
    #[arg(long = "log-format", value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
}

// --- Network behaviour: timeouts on silence, request rates -------------------------------------

/// How long to wait, and how fast to go, on the network (registries, and S3/GCS mirrors).
#[derive(Debug, Args)]
pub struct NetworkArgs {
    /// Fail a request (or a body being read) when no byte was sent or received for SECS seconds,
    /// for registries, S3 and GCS. Never a limit on how long a transfer takes while it moves.
    #[arg(long = "idle-timeout", value_name = "SECS", default_value = "60", value_parser = seconds)]
    pub idle_timeout: std::time::Duration,

    /// Give up connecting (TCP and TLS) to a registry, S3 or GCS after SECS seconds.
    #[arg(long = "connect-timeout", value_name = "SECS", default_value = "30", value_parser = seconds)]
    pub connect_timeout: std::time::Duration,

    /// Send at most N requests per second to registry HOST (HOST[:PORT]), repeatable. Without it
    /// hoist adapts to each registry's 429 answers on its own.
    #[arg(long = "max-rps", value_name = "HOST=N", value_parser = host_rate)]
    pub max_rps: Vec<(String, f64)>,
}

/// A positive number of seconds (fractions allowed).
fn seconds(text: &str) -> Result<std::time::Duration, String> {
    match text.parse::<f64>() {
        Ok(value) if value.is_finite() && value > 0.0 && value <= 86_400.0 => {
            Ok(std::time::Duration::from_secs_f64(value))
        }
        _ => Err(format!(
            "{text:?} is not a number of seconds between 0 and 86400"
        )),
    }
}

/// `HOST=N` with a positive rate N.
fn host_rate(text: &str) -> Result<(String, f64), String> {
    let (host, rate) = text
        .split_once('=')
        .ok_or_else(|| format!("{text:?} is not HOST=N"))?;
    if host.is_empty() || host.contains('/') || host.contains(char::is_whitespace) {
        return Err(format!("{host:?} is not a registry host (HOST[:PORT])"));
    }
    match rate.parse::<f64>() {
        Ok(rate) if rate.is_finite() && rate > 0.0 => Ok((host.to_owned(), rate)),
        _ => Err(format!(
            "{rate:?} is not a positive number of requests per second"
        )),
    }
}

/// The spool: where a source blob is staged, once, while it goes to several destinations.
#[derive(Debug, Clone, Args)]
pub struct SpoolArgs {
    /// Directory for the spool's temporary files (unlinked as soon as they are created, so
    /// nothing is ever left behind). Default: the system temporary directory ($TMPDIR).
    #[arg(long = "spool-dir", value_name = "DIR")]
    pub spool_dir: Option<PathBuf>,

    /// The most bytes the spool holds at once, like 2GiB or 512MiB (a larger blob is held
    /// alone). A blob with a single destination left is never spooled.
    #[arg(long = "spool-size", value_name = "SIZE", default_value = "2GiB", value_parser = parse_size)]
    pub spool_size: u64,
}

/// A size in bytes: a number with an optional binary unit (KiB, MiB, GiB, TiB; K, M, G, T).
fn parse_size(text: &str) -> Result<u64, String> {
    let text = text.trim();
    let digits = text
        .find(|character: char| !character.is_ascii_digit())
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(digits);
    let number: u64 = number
        .parse()
        .map_err(|_| format!("{text:?} is not a size like 2GiB or 512MiB"))?;
    let shift = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 0,
        "k" | "kib" => 10,
        "m" | "mib" => 20,
        "g" | "gib" => 30,
        "t" | "tib" => 40,
        other => {
            return Err(format!(
                "unknown size unit {other:?} (use KiB, MiB, GiB or TiB)"
            ));
        }
    };
    number
        .checked_mul(1u64 << shift)
        .filter(|bytes| *bytes > 0)
        .ok_or_else(|| format!("{text:?} is not a positive size that fits in 64 bits"))
}

#[cfg(test)]
mod spool_size_tests {
    use super::parse_size;

    #[test]
    fn sizes_take_binary_units() {
        assert_eq!(parse_size("2GiB"), Ok(2 << 30));
        assert_eq!(parse_size("512MiB"), Ok(512 << 20));
        assert_eq!(parse_size("64m"), Ok(64 << 20));
        assert_eq!(parse_size("4096"), Ok(4096));
        assert!(parse_size("0").is_err());
        assert!(parse_size("2GB").is_err());
        assert!(parse_size("lots").is_err());
    }
}
