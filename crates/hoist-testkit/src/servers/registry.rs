//! A real OCI registry (`docker-registry serve`, distribution 2.8) on 127.0.0.1.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;

use rand::RngCore;

use super::process::{AccessLogEntry, Log, ServerProcess};
use super::tls::make_certificates;
use crate::endpoint::{Credentials, Endpoint};
use crate::error::{Error, Result};

/// The registry binary, looked up on `PATH` (Debian's `docker-registry` package).
const PROGRAM: &str = "docker-registry";
/// Overrides [`PROGRAM`] with another path, for machines that install it elsewhere.
const PROGRAM_VARIABLE: &str = "HOIST_TEST_REGISTRY_BINARY";
/// bcrypt cost of the htpasswd entry. The registry checks the hash on every request, so the
/// minimum cost keeps benchmarks measuring the copy rather than bcrypt.
const BCRYPT_COST: u32 = 4;

/// How to run a [`RegistryServer`]: plain HTTP by default, optionally with basic auth or TLS.
#[derive(Debug, Clone, Default)]
pub struct RegistryOptions {
    basic_auth: Option<Credentials>,
    tls: bool,
    program: Option<PathBuf>,
}

impl RegistryOptions {
    /// Plain HTTP, no auth.
    pub fn plain() -> Self {
        Self::default()
    }

    /// Requires HTTP basic auth with this user (an htpasswd file with a bcrypt hash).
    pub fn with_basic_auth(mut self, username: &str, password: &str) -> Self {
        self.basic_auth = Some(Credentials {
            username: username.to_owned(),
            password: password.to_owned(),
        });
        self
    }

    /// Runs this program instead of `docker-registry` from `PATH` (or the
    /// `HOIST_TEST_REGISTRY_BINARY` variable); it gets `serve CONFIG`.
    pub fn with_program(mut self, program: impl Into<PathBuf>) -> Self {
        self.program = Some(program.into());
        self
    }

    /// Serves HTTPS with a certificate signed by a fresh test CA.
    pub fn with_tls(mut self) -> Self {
        self.tls = true;
        self
    }
}

/// A running `docker-registry` with its own storage directory; killed on drop.
///
/// The full output is kept: [`RegistryServer::access_log`] lists every request, so tests and
/// benchmarks can count what a copy cost.
#[derive(Debug)]
pub struct RegistryServer {
    options: RegistryOptions,
    /// Holds storage, config, htpasswd and certificates; removed on drop.
    directory: tempfile::TempDir,
    ca_pem: Option<Arc<str>>,
    log: Arc<Log>,
    process: Option<ServerProcess>,
    port: u16,
    /// Upload sessions are signed with it; kept across restarts so they stay valid.
    http_secret: String,
}

impl RegistryServer {
    /// Starts a registry on `127.0.0.1` at a free port and waits until it listens.
    pub fn start(options: RegistryOptions) -> Result<Self> {
        let directory = tempfile::Builder::new()
            .prefix("hoist-registry-")
            .tempdir()
            .map_err(|source| Error::io(std::env::temp_dir(), source))?;
        let ca_pem = if options.tls {
            let certificates = make_certificates()?;
            write(&directory.path().join("ca.pem"), &certificates.ca_pem)?;
            write(
                &directory.path().join("server.pem"),
                &certificates.server_pem,
            )?;
            write(
                &directory.path().join("server-key.pem"),
                &certificates.server_key_pem,
            )?;
            Some(Arc::from(certificates.ca_pem))
        } else {
            None
        };
        if let Some(credentials) = &options.basic_auth {
            let hash = bcrypt::hash(&credentials.password, BCRYPT_COST).map_err(|error| {
                Error::Credentials {
                    what: "the htpasswd file",
                    reason: error.to_string(),
                }
            })?;
            write(
                &directory.path().join("htpasswd"),
                &format!("{}:{hash}\n", credentials.username),
            )?;
        }
        let mut secret = [0u8; 16];
        rand::rng().fill_bytes(&mut secret);
        let mut server = Self {
            options,
            directory,
            ca_pem,
            log: Arc::default(),
            process: None,
            port: 0,
            http_secret: hex::encode(secret),
        };
        server.launch(0)?;
        Ok(server)
    }

    /// `127.0.0.1:PORT`.
    pub fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// How clients reach this server: scheme, credentials (if it has auth) and CA (if TLS).
    pub fn endpoint(&self) -> Endpoint {
        let endpoint = match &self.ca_pem {
            Some(pem) => Endpoint::https(self.host(), Arc::clone(pem)),
            None => Endpoint::http(self.host()),
        };
        match &self.options.basic_auth {
            Some(credentials) => {
                endpoint.with_credentials(&credentials.username, &credentials.password)
            }
            None => endpoint,
        }
    }

    /// A reqwest client set up for this server (trusts its CA; credentials are per request,
    /// see [`Endpoint`]).
    pub fn client(&self) -> Result<reqwest::Client> {
        self.endpoint().client()
    }

    /// The PEM file of the CA that signed the server certificate (TLS servers only).
    pub fn ca_path(&self) -> Option<PathBuf> {
        self.ca_pem
            .as_ref()
            .map(|_| self.directory.path().join("ca.pem"))
    }

    /// The registry's storage root (survives [`RegistryServer::restart`]).
    pub fn storage_dir(&self) -> PathBuf {
        self.directory.path().join("storage")
    }

    /// Every request served so far (across restarts), once the log went quiet for 50 ms.
    pub fn access_log(&self) -> Vec<AccessLogEntry> {
        self.log
            .settled_lines()
            .iter()
            .filter_map(|line| AccessLogEntry::parse(line))
            .collect()
    }

    /// How many requests were served so far (see [`RegistryServer::access_log`]).
    pub fn request_count(&self) -> usize {
        self.access_log().len()
    }

    /// Everything the server printed so far.
    pub fn log_text(&self) -> String {
        self.log.text()
    }

    /// Whether the process is running.
    pub fn is_running(&mut self) -> bool {
        self.process.as_mut().is_some_and(ServerProcess::is_running)
    }

    /// Kills the server abruptly (SIGKILL), as a crash would; storage stays.
    pub fn kill(&mut self) {
        if let Some(mut process) = self.process.take() {
            process.kill();
        }
    }

    /// Stops the server; the same as [`RegistryServer::kill`]: the registry keeps no state that a
    /// graceful stop would save.
    pub fn stop(&mut self) {
        self.kill();
    }

    /// Starts the server again on the same storage, on the same port when it is still free
    /// (else on a new one: read [`RegistryServer::host`] again).
    pub fn restart(&mut self) -> Result<()> {
        self.kill();
        let port = self.port;
        if self.launch(port).is_err() {
            self.launch(0)?;
        }
        Ok(())
    }

    fn launch(&mut self, port: u16) -> Result<()> {
        let config_path = self.directory.path().join("config.yml");
        write(&config_path, &self.config(port))?;
        let program = match &self.options.program {
            Some(program) => program.to_string_lossy().into_owned(),
            None => std::env::var(PROGRAM_VARIABLE).unwrap_or_else(|_| PROGRAM.to_owned()),
        };
        let mut command = Command::new(&program);
        command.arg("serve").arg(&config_path);
        let (process, port) = ServerProcess::start(command, &program, &self.log, listening_port)?;
        self.process = Some(process);
        self.port = port;
        Ok(())
    }

    fn config(&self, port: u16) -> String {
        let quote = |path: &Path| {
            serde_json::to_string(&path.to_string_lossy()).unwrap_or_else(|_| "\"\"".to_owned())
        };
        let directory = self.directory.path();
        let mut config = format!(
            "version: 0.1\n\
             storage:\n  filesystem:\n    rootdirectory: {storage}\n  delete:\n    enabled: true\n\
             http:\n  addr: 127.0.0.1:{port}\n  secret: {secret}\n",
            storage = quote(&self.storage_dir()),
            secret = self.http_secret,
        );
        if self.options.tls {
            config.push_str(&format!(
                "  tls:\n    certificate: {}\n    key: {}\n",
                quote(&directory.join("server.pem")),
                quote(&directory.join("server-key.pem")),
            ));
        }
        config.push_str("log:\n  level: info\n  accesslog:\n    disabled: false\n");
        if self.options.basic_auth.is_some() {
            config.push_str(&format!(
                "auth:\n  htpasswd:\n    realm: hoist\n    path: {}\n",
                quote(&directory.join("htpasswd")),
            ));
        }
        config
    }
}

impl Drop for RegistryServer {
    fn drop(&mut self) {
        // Before the storage directory goes: fields drop in declaration order.
        self.kill();
    }
}

/// The port from the registry's `listening on 127.0.0.1:PORT` line.
fn listening_port(line: &str) -> Option<u16> {
    let (_, rest) = line.split_once("listening on 127.0.0.1:")?;
    let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
    digits.parse().ok()
}

fn write(path: &Path, content: &str) -> Result<()> {
    std::fs::write(path, content).map_err(|source| Error::io(path, source))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_port() {
        assert_eq!(
            listening_port(
                r#"time="t" level=info msg="listening on 127.0.0.1:40187" go.version=1"#
            ),
            Some(40187)
        );
        assert_eq!(listening_port("listening on [::]:5000"), None);
    }
}
