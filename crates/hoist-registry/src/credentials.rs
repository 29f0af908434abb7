//! [`RegistryCredentials`] and where they come from: flags or environment (the binary builds them
//! with [`RegistryCredentials::new`]) or a Docker `config.json`
//! ([`RegistryCredentials::from_docker_config`]).
//!
//! The Docker file is read the way the Docker CLI reads it
//! (<https://docs.docker.com/reference/cli/docker/login/#credential-stores>): a per-host
//! `credHelpers` entry wins, then a global `credsStore`, then the base64 `auth` in `auths`. A helper
//! is the program `docker-credential-<name>`, given the host on stdin and answering
//! `{"Username": ..., "Secret": ...}` on stdout.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Stdio;

use base64::Engine as _;
use hoist_store::{StoreError, StoreErrorKind};
use serde::Deserialize;
use tokio::io::AsyncWriteExt as _;

/// A username and a password (or token). `Debug` shows the username only.
#[derive(Clone, PartialEq, Eq)]
pub struct RegistryCredentials {
    /// The user name (for token helpers often a fixed word such as `oauth2accesstoken`).
    pub username: String,
    /// The password or access token. Never printed.
    pub password: String,
}

impl std::fmt::Debug for RegistryCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RegistryCredentials")
            .field("username", &self.username)
            .field("password", &"<redacted>")
            .finish()
    }
}

impl RegistryCredentials {
    /// Credentials from flags or the environment.
    pub fn new(username: impl Into<String>, password: impl Into<String>) -> Self {
        Self {
            username: username.into(),
            password: password.into(),
        }
    }

    /// The credentials Docker would use for `host`, from `$DOCKER_CONFIG/config.json` or else
    /// `~/.docker/config.json`. `Ok(None)` when there is no such file or it has nothing for `host`.
    pub async fn from_docker_config(host: &str) -> Result<Option<Self>, StoreError> {
        let Some(path) = docker_config_path() else {
            return Ok(None);
        };
        Self::from_docker_config_file(&path, host).await
    }

    /// Like [`Self::from_docker_config`], from the file at `path`.
    pub async fn from_docker_config_file(
        path: &Path,
        host: &str,
    ) -> Result<Option<Self>, StoreError> {
        let text = match tokio::fs::read(path).await {
            Ok(text) => text,
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(error) => return Err(StoreError::io(path.display().to_string(), error)),
        };
        let config: DockerConfig = serde_json::from_slice(&text).map_err(|error| {
            StoreError::new(
                StoreErrorKind::Io,
                path.display().to_string(),
                "not a valid Docker config.json",
            )
            .with_source(error)
        })?;
        config
            .credentials_for(path, host, &HelperRunner::Path)
            .await
    }
}

/// Where the Docker CLI keeps its configuration.
fn docker_config_path() -> Option<PathBuf> {
    if let Some(directory) = std::env::var_os("DOCKER_CONFIG") {
        return Some(PathBuf::from(directory).join("config.json"));
    }
    std::env::var_os("HOME").map(|home| PathBuf::from(home).join(".docker").join("config.json"))
}

/// The parts of `config.json` that hold credentials.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct DockerConfig {
    #[serde(default)]
    auths: BTreeMap<String, AuthEntry>,
    #[serde(default)]
    cred_helpers: BTreeMap<String, String>,
    #[serde(default)]
    creds_store: Option<String>,
}

/// One `auths` entry. Debug is written by hand: the fields are secrets.
#[derive(Default, Deserialize)]
struct AuthEntry {
    #[serde(default)]
    auth: Option<String>,
    #[serde(default)]
    username: Option<String>,
    #[serde(default)]
    password: Option<String>,
}

impl std::fmt::Debug for AuthEntry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AuthEntry { <redacted> }")
    }
}

/// How a credential helper is found: on `PATH` by name, or (in tests) a given program.
#[derive(Debug)]
enum HelperRunner {
    Path,
    #[cfg(test)]
    Program(PathBuf),
}

impl HelperRunner {
    fn program(&self, helper: &str) -> PathBuf {
        match self {
            Self::Path => PathBuf::from(format!("docker-credential-{helper}")),
            #[cfg(test)]
            Self::Program(program) => program.clone(),
        }
    }
}

impl DockerConfig {
    async fn credentials_for(
        &self,
        path: &Path,
        host: &str,
        runner: &HelperRunner,
    ) -> Result<Option<RegistryCredentials>, StoreError> {
        let helper = self
            .cred_helpers
            .iter()
            .find(|(key, _)| same_host(key, host))
            .map(|(_, helper)| helper)
            .or(self.creds_store.as_ref());
        if let Some(helper) = helper {
            let found = run_helper(&runner.program(helper), host).await?;
            // A credential store holds only some hosts; the others may still be in `auths`.
            if found.is_some()
                || self
                    .cred_helpers
                    .iter()
                    .any(|(key, _)| same_host(key, host))
            {
                return Ok(found);
            }
        }
        let Some(entry) = self
            .auths
            .iter()
            .find(|(key, _)| same_host(key, host))
            .map(|(_, entry)| entry)
        else {
            return Ok(None);
        };
        if let Some(auth) = &entry.auth {
            return decode_auth(auth).map(Some).ok_or_else(|| {
                StoreError::new(
                    StoreErrorKind::Io,
                    path.display().to_string(),
                    format!("the auth entry for {host} is not base64 of user:password"),
                )
            });
        }
        match (&entry.username, &entry.password) {
            (Some(username), Some(password)) => {
                Ok(Some(RegistryCredentials::new(username, password)))
            }
            _ => Ok(None),
        }
    }
}

/// Whether a `config.json` key (`host`, `https://host/v1/`, ...) names `host`. Docker Hub is
/// stored under `https://index.docker.io/v1/` but served from `registry-1.docker.io`.
fn same_host(key: &str, host: &str) -> bool {
    let key = key
        .strip_prefix("https://")
        .or_else(|| key.strip_prefix("http://"))
        .unwrap_or(key);
    let key = key.split('/').next().unwrap_or(key);
    let hub = |name: &str| {
        matches!(
            name,
            "docker.io" | "index.docker.io" | "registry-1.docker.io"
        )
    };
    key.eq_ignore_ascii_case(host) || (hub(key) && hub(host))
}

/// `base64(user:password)` to credentials.
fn decode_auth(auth: &str) -> Option<RegistryCredentials> {
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(auth.trim())
        .ok()?;
    let decoded = String::from_utf8(decoded).ok()?;
    let (username, password) = decoded.split_once(':')?;
    Some(RegistryCredentials::new(username, password))
}

/// What a credential helper answers to `get`.
#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct HelperAnswer {
    username: String,
    secret: String,
}

/// Runs `program get` with `host` on stdin. `Ok(None)` when the helper has nothing for the host.
async fn run_helper(program: &Path, host: &str) -> Result<Option<RegistryCredentials>, StoreError> {
    let subject = program.display().to_string();
    let mut child = tokio::process::Command::new(program)
        .arg("get")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .map_err(|error| StoreError::io(&subject, error))?;
    if let Some(mut stdin) = child.stdin.take() {
        stdin
            .write_all(host.as_bytes())
            .await
            .map_err(|error| StoreError::io(&subject, error))?;
    }
    let output = child
        .wait_with_output()
        .await
        .map_err(|error| StoreError::io(&subject, error))?;
    if !output.status.success() {
        // The helpers' agreed message for an unknown host; anything else is a real failure. The
        // helper's output is not quoted in the error: it could hold a secret.
        if String::from_utf8_lossy(&output.stdout).contains("credentials not found")
            || String::from_utf8_lossy(&output.stderr).contains("credentials not found")
        {
            return Ok(None);
        }
        return Err(StoreError::new(
            StoreErrorKind::Unauthorized,
            subject,
            format!(
                "the credential helper failed for {host} ({})",
                output.status
            ),
        ));
    }
    let answer: HelperAnswer = serde_json::from_slice(&output.stdout).map_err(|_| {
        StoreError::new(
            StoreErrorKind::Protocol,
            &subject,
            format!(
                "the credential helper's answer for {host} is not JSON with Username and Secret"
            ),
        )
    })?;
    Ok(Some(RegistryCredentials::new(
        answer.username,
        answer.secret,
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_hides_the_password() {
        let credentials = RegistryCredentials::new("alice", "hunter2");
        let text = format!("{credentials:?}");
        assert!(text.contains("alice"));
        assert!(!text.contains("hunter2"), "{text}");
    }

    #[test]
    fn hosts_match_docker_keys() {
        assert!(same_host("https://ghcr.io/v1/", "ghcr.io"));
        assert!(same_host("127.0.0.1:5000", "127.0.0.1:5000"));
        assert!(!same_host("127.0.0.1:5000", "127.0.0.1:5001"));
        assert!(same_host(
            "https://index.docker.io/v1/",
            "registry-1.docker.io"
        ));
        assert!(!same_host("gcr.io", "us.gcr.io"));
    }

    async fn write_config(directory: &Path, text: &str) -> PathBuf {
        let path = directory.join("config.json");
        tokio::fs::write(&path, text).await.unwrap();
        path
    }

    #[tokio::test]
    async fn reads_base64_auth() {
        let directory = tempfile::tempdir().unwrap();
        let auth = base64::engine::general_purpose::STANDARD.encode("user:pa:ss");
        let path = write_config(
            directory.path(),
            &format!(r#"{{"auths": {{"https://127.0.0.1:5000": {{"auth": "{auth}"}}}}}}"#),
        )
        .await;
        let found = RegistryCredentials::from_docker_config_file(&path, "127.0.0.1:5000")
            .await
            .unwrap();
        assert_eq!(found, Some(RegistryCredentials::new("user", "pa:ss")));
        let other = RegistryCredentials::from_docker_config_file(&path, "127.0.0.1:6000")
            .await
            .unwrap();
        assert_eq!(other, None);
    }

    #[tokio::test]
    async fn missing_file_is_anonymous() {
        let directory = tempfile::tempdir().unwrap();
        let path = directory.path().join("config.json");
        assert_eq!(
            RegistryCredentials::from_docker_config_file(&path, "h")
                .await
                .unwrap(),
            None
        );
    }

    #[tokio::test]
    async fn runs_a_credential_helper() {
        use std::os::unix::fs::PermissionsExt as _;
        let directory = tempfile::tempdir().unwrap();
        let helper = directory.path().join("docker-credential-test");
        // Answers only for the host it is asked about, checking the `get` protocol.
        std::fs::write(
            &helper,
            "#!/bin/sh\n[ \"$1\" = get ] || exit 2\nread host\nif [ \"$host\" = 127.0.0.1:5000 ]; then \
             echo '{\"ServerURL\":\"x\",\"Username\":\"robot\",\"Secret\":\"s3cret\"}'; \
             else echo 'credentials not found in native keychain'; exit 1; fi\n",
        )
        .unwrap();
        std::fs::set_permissions(&helper, std::fs::Permissions::from_mode(0o755)).unwrap();
        let config: DockerConfig = serde_json::from_str(
            r#"{"credHelpers": {"127.0.0.1:5000": "test"}, "credsStore": "test"}"#,
        )
        .unwrap();
        let runner = HelperRunner::Program(helper);
        let path = directory.path().join("config.json");
        let found = config
            .credentials_for(&path, "127.0.0.1:5000", &runner)
            .await
            .unwrap();
        assert_eq!(found, Some(RegistryCredentials::new("robot", "s3cret")));
        let none = config
            .credentials_for(&path, "127.0.0.1:6000", &runner)
            .await
            .unwrap();
        assert_eq!(none, None);
    }
}
