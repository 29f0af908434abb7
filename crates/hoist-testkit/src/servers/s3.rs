//! An S3-compatible server (`s3s-fs`, storing objects as plain files) on 127.0.0.1.
//!
//! # Finding the binary
//!
//! In this order: the `HOIST_TEST_S3_BINARY` variable; `s3s-fs` on `PATH`;
//! `$CARGO_HOME/bin/s3s-fs` (default `~/.cargo/bin`). `ci/install-mirror-servers.sh` installs it
//! (`cargo install s3s-fs@0.14.1 --locked --features binary`).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;

use rand::RngCore;

use super::process::{Log, ServerProcess};
use crate::error::{Error, Result};

const PROGRAM: &str = "s3s-fs";
const PROGRAM_VARIABLE: &str = "HOIST_TEST_S3_BINARY";
/// What to tell a developer whose machine lacks a server binary.
pub(crate) const INSTALL_HINT: &str = "run ci/install-mirror-servers.sh to install it";

/// A running `s3s-fs` with its own data directory and random credentials; killed on drop.
///
/// Buckets are directories of [`S3Server::data_dir`] and objects plain files in them
/// ([`S3Server::object_path`]), so tests can corrupt or delete objects behind the server's back.
///
/// [`S3Server::anonymous_view`] starts a second server over the same data that takes no
/// credentials, like a public-read bucket that clients are redirected to, and logs every
/// request it routes ([`S3Server::requests`]).
#[derive(Debug)]
pub struct S3Server {
    /// Declared first: fields drop in order, so the process dies before its data goes.
    process: ServerProcess,
    /// Holds the buckets; removed on drop (unless this server is a view of another's).
    directory: DataDirectory,
    log: Arc<Log>,
    port: u16,
    access_key: String,
    secret_key: String,
}

/// The data of a server: its own, or another server's (an anonymous view).
#[derive(Debug)]
enum DataDirectory {
    Owned(tempfile::TempDir),
    Shared(PathBuf),
}

impl DataDirectory {
    fn path(&self) -> &Path {
        match self {
            Self::Owned(directory) => directory.path(),
            Self::Shared(path) => path,
        }
    }
}

/// One S3 operation an anonymous server routed, from its log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct S3Request {
    /// `GetObject`, `HeadObject`, ...
    pub operation: String,
    /// The bucket.
    pub bucket: String,
    /// The object key.
    pub key: String,
}

impl S3Request {
    /// Parses s3s's `resolved route, op: GetObject, s3_path: Object { bucket: "b", key: "k" }`.
    pub fn parse(line: &str) -> Option<Self> {
        let (_, rest) = line.split_once("resolved route, op: ")?;
        let (operation, rest) = rest.split_once(", s3_path: Object { bucket: \"")?;
        let (bucket, rest) = rest.split_once("\", key: \"")?;
        let (key, _) = rest.split_once("\" }")?;
        Some(Self {
            operation: operation.to_owned(),
            bucket: bucket.to_owned(),
            key: key.to_owned(),
        })
    }
}

impl S3Server {
    /// Starts `s3s-fs` on `127.0.0.1` at a port of its choosing and waits until it listens.
    pub fn start() -> Result<Self> {
        let directory = tempfile::Builder::new()
            .prefix("hoist-s3-")
            .tempdir()
            .map_err(|source| Error::io(std::env::temp_dir(), source))?;
        let access_key = format!("hoist{}", random_hex(8));
        let secret_key = random_hex(20);
        Self::launch(DataDirectory::Owned(directory), access_key, secret_key)
    }

    /// Starts another `s3s-fs` over this server's data with no authentication: anyone may read
    /// (and write) anonymously, as clients read a public bucket. It logs each request it routes.
    pub fn anonymous_view(&self) -> Result<Self> {
        Self::launch(
            DataDirectory::Shared(self.directory.path().to_path_buf()),
            String::new(),
            String::new(),
        )
    }

    fn launch(directory: DataDirectory, access_key: String, secret_key: String) -> Result<Self> {
        let program = find_program()?;
        let mut command = Command::new(&program);
        command.args(["--host", "127.0.0.1", "--port", "0"]);
        // It logs its address at info level; at debug every object it writes ("write file"),
        // which [`S3Server::object_writes`] counts.
        if access_key.is_empty() {
            // ...and every routed request.
            command.env("RUST_LOG", "s3s_fs=debug,s3s::ops=debug");
        } else {
            command
                .args(["--access-key", &access_key, "--secret-key", &secret_key])
                .env("RUST_LOG", "s3s_fs=debug");
        }
        command.arg(directory.path());
        let log = Arc::<Log>::default();
        let program_name = program.display().to_string();
        let (process, port) = ServerProcess::start(command, &program_name, &log, running_port)?;
        Ok(Self {
            process,
            directory,
            log,
            port,
            access_key,
            secret_key,
        })
    }

    /// The requests an [`S3Server::anonymous_view`] routed so far, once its log went quiet
    /// (a server with credentials does not log them: empty).
    pub fn requests(&self) -> Vec<S3Request> {
        self.log
            .settled_lines()
            .iter()
            .filter_map(|line| S3Request::parse(line))
            .collect()
    }

    /// `http://127.0.0.1:PORT`, for a client's endpoint URL (path-style addressing).
    pub fn endpoint_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// The access key id the server accepts.
    pub fn access_key(&self) -> &str {
        &self.access_key
    }

    /// The secret access key the server accepts.
    pub fn secret_key(&self) -> &str {
        &self.secret_key
    }

    /// The directory holding the buckets.
    pub fn data_dir(&self) -> &Path {
        self.directory.path()
    }

    /// The file of object `key` in `bucket`.
    pub fn object_path(&self, bucket: &str, key: &str) -> PathBuf {
        self.directory.path().join(bucket).join(key)
    }

    /// Creates an empty bucket (a directory of the data dir).
    pub fn create_bucket(&self, bucket: &str) -> Result<()> {
        let path = self.directory.path().join(bucket);
        std::fs::create_dir_all(&path).map_err(|source| Error::io(path, source))
    }

    /// Everything the server printed so far.
    pub fn log_text(&self) -> String {
        self.log.text()
    }

    /// How many times the server wrote the object `key` of `bucket` (a `PutObject`, or the
    /// completion of a multipart upload), from its own log: a wire-level count of writes.
    pub fn object_writes(&self, bucket: &str, key: &str) -> usize {
        // `... DEBUG s3s_fs::s3: write file, path: /DATA/BUCKET/KEY, size: 9173, ...` (a
        // completed multipart upload names it `to: ...`).
        let path = self.object_path(bucket, key).display().to_string();
        let targets = [format!("path: {path}"), format!("to: {path}")];
        self.log_text()
            .lines()
            .filter(|line| line.contains("write file"))
            .filter(|line| {
                line.split(", ")
                    .any(|field| targets.iter().any(|target| field.trim() == target))
            })
            .count()
    }

    /// Whether the process still runs.
    pub fn is_running(&mut self) -> bool {
        self.process.is_running()
    }
}

fn find_program() -> Result<PathBuf> {
    if let Some(path) = std::env::var_os(PROGRAM_VARIABLE) {
        return Ok(PathBuf::from(path));
    }
    if let Some(path) = on_path(PROGRAM) {
        return Ok(path);
    }
    let cargo_home = std::env::var_os("CARGO_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|home| PathBuf::from(home).join(".cargo")));
    if let Some(path) = cargo_home.map(|home| home.join("bin").join(PROGRAM))
        && path.is_file()
    {
        return Ok(path);
    }
    Err(Error::ServerStart {
        program: PROGRAM.to_owned(),
        reason: format!("not found on PATH nor in $CARGO_HOME/bin: {INSTALL_HINT}"),
        log: String::new(),
    })
}

/// The first executable file called `name` in a `PATH` directory.
pub(crate) fn on_path(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|directory| directory.join(name))
        .find(|candidate| candidate.is_file())
}

fn random_hex(bytes: usize) -> String {
    let mut buffer = vec![0u8; bytes];
    rand::rng().fill_bytes(&mut buffer);
    hex::encode(buffer)
}

/// The port from `server is running at http://127.0.0.1:PORT`.
fn running_port(line: &str) -> Option<u16> {
    let (_, rest) = line.split_once("server is running at http://127.0.0.1:")?;
    let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
    digits.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_routed_requests() {
        let line = r#"  2026-12-04T13:59:11.706095Z DEBUG s3s::ops: resolved route, op: GetObject, s3_path: Object { bucket: "b", key: "containers/images/sha256:abc" }"#;
        assert_eq!(
            S3Request::parse(line),
            Some(S3Request {
                operation: "GetObject".into(),
                bucket: "b".into(),
                key: "containers/images/sha256:abc".into(),
            })
        );
        assert_eq!(
            S3Request::parse("resolved route, op: ListBuckets, s3_path: Root"),
            None
        );
    }

    #[test]
    fn finds_the_port() {
        assert_eq!(
            running_port(
                "  2026-01-01T00:00:00Z  INFO s3s_fs: server is running at http://127.0.0.1:40187"
            ),
            Some(40187)
        );
        assert_eq!(running_port("authentication is enabled"), None);
    }
}
