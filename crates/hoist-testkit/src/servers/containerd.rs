//! containerd (Debian's `containerd`) on a socket in a temporary directory, driven with `ctr`.
//!
//! No system service is involved: the daemon gets its own config (`version = 2`, its own `root`,
//! `state`, plugin directory, gRPC and ttrpc sockets; the CRI plugin disabled, since no
//! Kubernetes talks to it) and boots in well under a second. Pulls go through `ctr --address`,
//! so tests see containerd's real resolver and fetcher at work: its redirects, its `HEAD`s, its
//! digest checks.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::Arc;

use super::process::{Log, ServerProcess};
use super::s3::on_path;
use crate::error::{Error, Result};

const DAEMON: &str = "containerd";
const DAEMON_VARIABLE: &str = "HOIST_TEST_CONTAINERD_BINARY";
const CLIENT: &str = "ctr";
const CLIENT_VARIABLE: &str = "HOIST_TEST_CTR_BINARY";
const INSTALL_HINT: &str = "install Debian's containerd package (ci/install-deps.sh does)";

/// A running containerd with its own root, state and socket; killed on drop.
#[derive(Debug)]
pub struct ContainerdServer {
    /// Declared first: the daemon dies before its directory goes.
    process: ServerProcess,
    directory: tempfile::TempDir,
    log: Arc<Log>,
    client: PathBuf,
}

impl ContainerdServer {
    /// Writes the config, starts `containerd --config FILE` and waits until it has booted.
    pub fn start() -> Result<Self> {
        let daemon = find(DAEMON_VARIABLE, DAEMON)?;
        let client = find(CLIENT_VARIABLE, CLIENT)?;
        // Short: a Unix socket path must fit in 108 bytes.
        let directory = tempfile::Builder::new()
            .prefix("hoist-ctd-")
            .tempdir()
            .map_err(|source| Error::io(std::env::temp_dir(), source))?;
        let config_path = directory.path().join("config.toml");
        std::fs::write(&config_path, config(directory.path()))
            .map_err(|source| Error::io(&config_path, source))?;
        let mut command = Command::new(&daemon);
        command.arg("--config").arg(&config_path);
        let log = Arc::<Log>::default();
        let (process, ()) =
            ServerProcess::start(command, &daemon.display().to_string(), &log, |line| {
                line.contains("containerd successfully booted")
                    .then_some(())
            })?;
        Ok(Self {
            process,
            directory,
            log,
            client,
        })
    }

    /// The gRPC socket (`ctr --address`).
    pub fn socket(&self) -> PathBuf {
        self.directory.path().join("containerd.sock")
    }

    /// Runs `ctr --address SOCKET ARGS…` and returns what it printed and how it ended.
    pub fn ctr(&self, args: &[&str]) -> Result<Output> {
        Command::new(&self.client)
            .arg("--address")
            .arg(self.socket())
            .args(args)
            .output()
            .map_err(|source| Error::Spawn {
                program: self.client.display().to_string(),
                source,
            })
    }

    /// Everything the daemon printed so far.
    pub fn log_text(&self) -> String {
        self.log.text()
    }

    /// Whether the daemon still runs.
    pub fn is_running(&mut self) -> bool {
        self.process.is_running()
    }
}

fn config(directory: &Path) -> String {
    let quote = |name: &str| {
        serde_json::to_string(&directory.join(name).to_string_lossy())
            .unwrap_or_else(|_| "\"\"".to_owned())
    };
    format!(
        "version = 2\n\
         root = {root}\n\
         state = {state}\n\
         disabled_plugins = [\"io.containerd.grpc.v1.cri\"]\n\
         \n\
         [grpc]\n  address = {grpc}\n\
         \n\
         [ttrpc]\n  address = {ttrpc}\n\
         \n\
         [plugins.\"io.containerd.internal.v1.opt\"]\n  path = {opt}\n",
        root = quote("root"),
        state = quote("state"),
        grpc = quote("containerd.sock"),
        ttrpc = quote("containerd.sock.ttrpc"),
        opt = quote("opt"),
    )
}

fn find(variable: &str, program: &str) -> Result<PathBuf> {
    if let Some(path) = std::env::var_os(variable) {
        return Ok(PathBuf::from(path));
    }
    on_path(program).ok_or_else(|| Error::ServerStart {
        program: program.to_owned(),
        reason: format!("not found on PATH: {INSTALL_HINT}"),
        log: String::new(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_has_private_sockets_and_no_cri() {
        let text = config(Path::new("/tmp/x"));
        assert!(text.starts_with("version = 2\n"));
        assert!(text.contains("root = \"/tmp/x/root\""));
        assert!(text.contains("state = \"/tmp/x/state\""));
        assert!(text.contains("disabled_plugins = [\"io.containerd.grpc.v1.cri\"]"));
        assert!(text.contains("[grpc]\n  address = \"/tmp/x/containerd.sock\""));
        assert!(text.contains("[ttrpc]\n  address = \"/tmp/x/containerd.sock.ttrpc\""));
    }
}
