//! `hoist promote --rehearse`: a small step before planning that redirects every edge into the
//! local cluster registry of the KEP-1755 ConfigMap, allows plain HTTP to it only when it is on
//! this machine, and says afterwards how the cluster pulls what was pushed.
//!
//! Everything else of `promote` (checks, plan, policy gate, execution) runs unchanged on the
//! redirected edges.

use std::io::Read as _;
use std::net::ToSocketAddrs as _;
use std::path::Path;
use std::process::Command;

use anyhow::Context as _;
use hoist_plan::EdgeSet;
use hoist_promote::StoreConfig;
use hoist_rehearsal::{CONFIG_MAP_NAME, CONFIG_MAP_NAMESPACE, LocalRegistryHosting};

use crate::cli::RehearsalArgs;

/// How long kubectl may take to answer.
const KUBECTL_TIMEOUT: &str = "20s";

/// A rehearsal: the local registry, and where its description came from.
#[derive(Debug)]
pub struct Rehearsal {
    hosting: LocalRegistryHosting,
    /// The file, `-`, or the kubectl command the ConfigMap was read from.
    origin: String,
}

/// The rehearsal part of a promote report.
#[derive(Debug, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RehearsalReport {
    /// Where the ConfigMap was read from.
    pub config_map: String,
    /// What it says.
    pub local_registry_hosting: LocalRegistryHosting,
    /// Whether hoist spoke plain HTTP to the registry (only when it is on this machine).
    pub plain_http: bool,
    /// Every promoted reference as the cluster pulls it (`hostFromContainerRuntime`, else
    /// `host`), tags first, then digests.
    pub pulls: Vec<String>,
}

impl Rehearsal {
    /// The rehearsal the flags ask for, or `None` without `--rehearse`. The ConfigMap comes from
    /// `--local-registry-hosting FILE|-`, or else from kubectl (a usage error when neither works).
    pub fn from_args(args: &RehearsalArgs) -> anyhow::Result<Option<Self>> {
        if !args.rehearse {
            return Ok(None);
        }
        let (text, origin) = match &args.local_registry_hosting {
            Some(path) if path == Path::new("-") => {
                let mut text = String::new();
                std::io::stdin()
                    .read_to_string(&mut text)
                    .context("cannot read the ConfigMap from stdin")?;
                (text, "-".to_owned())
            }
            Some(path) => (
                std::fs::read_to_string(path)
                    .with_context(|| format!("cannot read {}", path.display()))?,
                path.display().to_string(),
            ),
            None => from_kubectl()?,
        };
        let hosting = LocalRegistryHosting::parse(&text, &origin)?;
        for note in &hosting.notes {
            tracing::info!("{origin}: {note}");
        }
        Ok(Some(Self { hosting, origin }))
    }

    /// The edges redirected into the local registry.
    pub fn redirect(&self, edges: &EdgeSet) -> EdgeSet {
        hoist_rehearsal::redirect(edges, &self.hosting.registry())
    }

    /// Plain HTTP to the local registry when (and only when) it is on this machine: a loopback
    /// address or `localhost` name that resolves to loopback addresses only. Any other host gets
    /// verified TLS, and `--insecure-registry` naming it is refused.
    pub fn configure(&self, config: &mut StoreConfig) -> anyhow::Result<bool> {
        let host = &self.hosting.host;
        if !hoist_rehearsal::is_loopback_host(host) {
            anyhow::ensure!(
                !config.insecure_hosts.contains(host),
                "--insecure-registry {host}: a rehearsal speaks plain HTTP only to a registry on \
                 this machine (a loopback address or localhost); {host} gets verified TLS"
            );
            return Ok(false);
        }
        let with_port = if host.contains(':') && !host.ends_with(']') {
            host.clone()
        } else {
            format!("{host}:443")
        };
        if let Ok(addresses) = with_port.to_socket_addrs() {
            let outside: Vec<_> = addresses
                .filter(|address| !address.ip().is_loopback())
                .collect();
            anyhow::ensure!(
                outside.is_empty(),
                "the local registry {host} resolves to {outside:?}, not only to loopback \
                 addresses: refusing to speak plain HTTP to it"
            );
        }
        config.insecure_hosts.insert(host.clone());
        Ok(true)
    }

    /// What to report once the plan (or execution) is known.
    pub fn report(&self, edges: &EdgeSet, plain_http: bool) -> RehearsalReport {
        let pull_host = self.hosting.pull_host();
        let mut tagged = std::collections::BTreeSet::new();
        let mut by_digest = std::collections::BTreeSet::new();
        for edge in &edges.edges {
            let image = &edges.origin(edge).image;
            match edges.tag(edge) {
                Some(tag) => tagged.insert(format!("{pull_host}/{image}:{tag}")),
                None => {
                    by_digest.insert(format!("{pull_host}/{image}@{}", edges.origin(edge).digest))
                }
            };
        }
        RehearsalReport {
            config_map: self.origin.clone(),
            local_registry_hosting: self.hosting.clone(),
            plain_http,
            pulls: tagged.into_iter().chain(by_digest).collect(),
        }
    }
}

/// Prints how the cluster pulls the rehearsed images.
pub fn print_text(out: &mut impl std::io::Write, report: &RehearsalReport) -> std::io::Result<()> {
    let hosting = &report.local_registry_hosting;
    writeln!(
        out,
        "\nrehearsal: the local registry {} ({}, localRegistryHosting.v{}{})",
        hosting.host,
        report.config_map,
        hosting.version,
        if report.plain_http {
            ", plain HTTP on this machine"
        } else {
            ", TLS"
        }
    )?;
    let from = if hosting.host_from_container_runtime.is_some() {
        "hostFromContainerRuntime"
    } else {
        "host"
    };
    writeln!(
        out,
        "the cluster pulls them from {} ({from}):",
        hosting.pull_host()
    )?;
    for reference in &report.pulls {
        writeln!(out, "  {reference}")?;
    }
    if let Some(network) = &hosting.host_from_cluster_network {
        writeln!(
            out,
            "pods inside the cluster reach the registry as {network}"
        )?;
    }
    if let Some(help) = &hosting.help {
        writeln!(out, "help: {help}")?;
    }
    Ok(())
}

/// Reads the ConfigMap with kubectl, from the current context.
fn from_kubectl() -> anyhow::Result<(String, String)> {
    let arguments = [
        "get",
        "configmap",
        "--namespace",
        CONFIG_MAP_NAMESPACE,
        CONFIG_MAP_NAME,
        "--output",
        "yaml",
        "--request-timeout",
        KUBECTL_TIMEOUT,
    ];
    let command = format!("kubectl {}", arguments.join(" "));
    let output = Command::new("kubectl")
        .args(arguments)
        .output()
        .map_err(|error| {
            anyhow::anyhow!(
                "--rehearse needs the {CONFIG_MAP_NAMESPACE}/{CONFIG_MAP_NAME} ConfigMap: give it \
                 with --local-registry-hosting FILE (or - for stdin), or put kubectl on PATH \
                 (running it failed: {error})"
            )
        })?;
    anyhow::ensure!(
        output.status.success(),
        "{command} failed ({}): {}\ngive the ConfigMap with --local-registry-hosting FILE instead",
        output.status,
        String::from_utf8_lossy(&output.stderr).trim()
    );
    let text = String::from_utf8(output.stdout).context("kubectl printed something not UTF-8")?;
    Ok((text, command))
}
