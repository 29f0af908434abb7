//! The registry double of `ci/bench-reconcile.sh`, as a process of its own (so the benchmark
//! measures hoist's memory alone).
//!
//! Copies a thin manifest tree with twin digests ([`hoist_testkit::twin_corpus`]), optionally
//! takes about one manifest in `--missing-one-in` out of every repository of `--missing-host`,
//! serves every registry the tree names on 127.0.0.1 and writes:
//!
//! - `--endpoints FILE`: `HOST=URL` lines, one per registry host (what `hoist
//!   --registry-endpoint` takes);
//! - `--summary FILE`: JSON: projects kept and dropped, destination repositories, manifests,
//!   and every removed (repository, digest, tags);
//! - `--repositories FILE`: every destination repository, `HOST/PATH` lines;
//!
//! then serves until SIGTERM or SIGINT, and prints the request counts as JSON on stdout.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context as _;
use clap::Parser;
use hoist_testkit::{
    DoubleOptions, DoubleQuota, RegistryDouble, Removed, remove_some, twin_corpus,
};

#[derive(Debug, Parser)]
#[command(about = "Serves a promoter manifest tree, already promoted, as a fleet of registries")]
struct Arguments {
    /// The thin manifest tree to serve (manifests/<p>/, images/<p>/).
    #[arg(long)]
    corpus: PathBuf,
    /// Where to write its copy with twin digests (must not exist); hoist reads this one.
    #[arg(long)]
    tree: PathBuf,
    /// Where to write the HOST=URL lines.
    #[arg(long)]
    endpoints: PathBuf,
    /// Where to write the JSON summary.
    #[arg(long)]
    summary: PathBuf,
    /// Where to write every destination repository (`HOST/PATH` lines), if anywhere.
    #[arg(long)]
    repositories: Option<PathBuf>,
    /// Take manifests out of this host's repositories.
    #[arg(long)]
    missing_host: Option<String>,
    /// About one manifest in this many goes (by digest).
    #[arg(long, default_value_t = 100)]
    missing_one_in: u64,
    /// Latency added to every answer, in milliseconds.
    #[arg(long, default_value_t = 0)]
    latency_ms: u64,
    /// Per-host quota: this many requests per window (none when absent).
    #[arg(long)]
    quota: Option<u64>,
    /// The quota window, in milliseconds.
    #[arg(long, default_value_t = 1000)]
    quota_window_ms: u64,
    /// Tags per tags/list page (all on one page when absent).
    #[arg(long)]
    page_size: Option<usize>,
}

#[derive(Debug, serde::Serialize)]
struct Summary {
    projects: usize,
    dropped: Vec<(String, String)>,
    hosts: usize,
    source_repositories: usize,
    destination_repositories: usize,
    destination_manifests: usize,
    missing: Vec<MissingEntry>,
}

#[derive(Debug, serde::Serialize)]
struct MissingEntry {
    repository: String,
    digest: String,
    tags: Vec<String>,
}

impl From<Removed> for MissingEntry {
    fn from(removed: Removed) -> Self {
        Self {
            repository: removed.repository,
            digest: removed.digest.to_string(),
            tags: removed.tags,
        }
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let arguments = Arguments::parse();
    let mut corpus = twin_corpus(&arguments.corpus, &arguments.tree)
        .with_context(|| format!("cannot copy {}", arguments.corpus.display()))?;
    let missing = match &arguments.missing_host {
        Some(host) => remove_some(&mut corpus.population, host, arguments.missing_one_in),
        None => Vec::new(),
    };
    let (destination_repositories, destination_manifests) = corpus
        .population
        .repositories()
        .filter(|(host, path, _)| !corpus.sources.contains(&format!("{host}/{path}")))
        .fold((0, 0), |(repositories, manifests), (_, _, repository)| {
            (repositories + 1, manifests + repository.manifests.len())
        });
    let summary = Summary {
        projects: corpus.projects.len(),
        dropped: corpus.dropped.clone(),
        hosts: corpus.population.hosts().count(),
        source_repositories: corpus.sources.len(),
        destination_repositories,
        destination_manifests,
        missing: missing.into_iter().map(MissingEntry::from).collect(),
    };
    std::fs::write(&arguments.summary, serde_json::to_vec_pretty(&summary)?)
        .with_context(|| format!("cannot write {}", arguments.summary.display()))?;
    if let Some(path) = &arguments.repositories {
        let lines: String = corpus
            .population
            .repositories()
            .map(|(host, path, _)| format!("{host}/{path}"))
            .filter(|repository| !corpus.sources.contains(repository))
            .map(|repository| repository + "\n")
            .collect();
        std::fs::write(path, lines).with_context(|| format!("cannot write {}", path.display()))?;
    }

    let options = DoubleOptions {
        latency: Duration::from_millis(arguments.latency_ms),
        quota: arguments.quota.map(|requests| DoubleQuota {
            requests,
            per: Duration::from_millis(arguments.quota_window_ms),
        }),
        page_size: arguments.page_size,
        manifest_map: true,
    };
    let double = RegistryDouble::start(corpus.population, options).await?;
    let lines: String = double
        .urls()
        .into_iter()
        .map(|(host, url)| format!("{host}={url}\n"))
        .collect();
    // Written last, through a rename: once the file is there, every host answers.
    let partial = arguments.endpoints.with_extension("partial");
    std::fs::write(&partial, lines)?;
    std::fs::rename(&partial, &arguments.endpoints)?;
    eprintln!(
        "registry-double: {} hosts, {} destination repositories, {} removed; serving",
        summary.hosts,
        summary.destination_repositories,
        summary.missing.len()
    );

    let mut terminate = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    tokio::select! {
        _ = terminate.recv() => {}
        _ = tokio::signal::ctrl_c() => {}
    }
    println!("{}", serde_json::to_string_pretty(&double.counts())?);
    Ok(())
}
