//! Real registry:2 servers on 127.0.0.1 for the tests, and a tiny fake HTTP server for what a real
//! registry will not do on demand (429s, redirects to storage, bearer tokens, GCR tag maps).
//!
//! TODO: these move to hoist-testkit once it is ready; they are kept small and self-contained here
//! so this crate's tests do not wait on it.

use std::collections::HashMap;
use std::io::{BufRead as _, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use hoist_registry::{RegistryOptions, RegistryStore, RetryPolicy};
use tempfile::TempDir;
use tokio::io::{AsyncBufReadExt as _, AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpListener;

/// A `docker-registry serve` process with its own storage, killed on drop.
#[derive(Debug)]
pub struct Registry {
    child: Child,
    /// `127.0.0.1:PORT`.
    pub host: String,
    directory: TempDir,
    /// The CA that signed the server's certificate, for TLS registries.
    pub ca_file: Option<PathBuf>,
}

/// Users of htpasswd registries.
pub const USER: &str = "hoist-user";
pub const PASSWORD: &str = "correct horse";

impl Registry {
    /// A plain-HTTP registry without auth.
    pub fn start() -> Self {
        Self::start_with(false, false)
    }

    /// A registry that wants Basic auth (`USER`/`PASSWORD`).
    pub fn start_htpasswd() -> Self {
        Self::start_with(false, true)
    }

    /// A registry serving TLS with a certificate for 127.0.0.1 signed by a fresh CA.
    pub fn start_tls() -> Self {
        Self::start_with(true, false)
    }

    fn start_with(tls: bool, htpasswd: bool) -> Self {
        let directory = tempfile::tempdir().expect("temp dir");
        let root = directory.path().join("storage");
        let mut config = format!(
            "version: 0.1\nstorage:\n  filesystem: {{rootdirectory: {}}}\n  delete: {{enabled: true}}\n\
             http:\n  addr: 127.0.0.1:0\n",
            root.display()
        );
        let mut ca_file = None;
        if tls {
            let (ca, certificate, key) = write_certificates(directory.path());
            config.push_str(&format!(
                "  tls: {{certificate: {}, key: {}}}\n",
                certificate.display(),
                key.display()
            ));
            ca_file = Some(ca);
        }
        if htpasswd {
            let output = Command::new("htpasswd")
                .args(["-Bbn", USER, PASSWORD])
                .output()
                .expect("htpasswd runs");
            assert!(output.status.success(), "htpasswd failed");
            let file = directory.path().join("htpasswd");
            std::fs::write(&file, output.stdout).unwrap();
            config.push_str(&format!(
                "auth:\n  htpasswd: {{realm: r, path: {}}}\n",
                file.display()
            ));
        }
        config.push_str("log:\n  level: info\n");
        let config_file = directory.path().join("config.yml");
        std::fs::write(&config_file, config).unwrap();
        let mut child = Command::new("docker-registry")
            .arg("serve")
            .arg(&config_file)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("docker-registry starts");
        let stderr = child.stderr.take().unwrap();
        let (sender, receiver) = std::sync::mpsc::channel();
        // Reads the log to the end, so that the server never blocks on a full pipe.
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if let Some(rest) = line.split("listening on ").nth(1) {
                    let address: String = rest
                        .chars()
                        .take_while(|c| *c != ',' && *c != '"')
                        .collect();
                    let _ = sender.send(address);
                }
            }
        });
        let host = receiver
            .recv_timeout(Duration::from_secs(20))
            .expect("the registry says where it listens");
        Self {
            child,
            host,
            directory,
            ca_file,
        }
    }

    /// The storage directory of a repository's open upload sessions.
    pub fn uploads_dir(&self, repository: &str) -> PathBuf {
        self.directory
            .path()
            .join("storage/docker/registry/v2/repositories")
            .join(repository)
            .join("_uploads")
    }

    /// How many upload sessions of `repository` are open. A cancelled session (`DELETE`) loses
    /// its `data` and `startedat` files, though registry:2 leaves an empty hash-state directory.
    pub fn open_uploads(&self, repository: &str) -> usize {
        let Ok(entries) = std::fs::read_dir(self.uploads_dir(repository)) else {
            return 0;
        };
        entries
            .filter_map(Result::ok)
            .filter(|entry| entry.path().join("startedat").exists())
            .count()
    }

    /// Options for this server: plain HTTP unless TLS, few quick retries.
    pub fn options(&self) -> RegistryOptions {
        RegistryOptions {
            insecure: self.ca_file.is_none(),
            ca_files: self.ca_file.iter().cloned().collect(),
            retry: quick_retries(),
            ..RegistryOptions::default()
        }
    }

    /// A store for this server with [`Self::options`].
    pub fn store(&self) -> RegistryStore {
        RegistryStore::new(&self.host, self.options()).expect("store")
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Retries that keep tests fast.
pub fn quick_retries() -> RetryPolicy {
    RetryPolicy {
        max_attempts: 3,
        base_delay: Duration::from_millis(20),
        max_delay: Duration::from_secs(5),
    }
}

/// A CA and a leaf certificate for 127.0.0.1 it signed (rustls refuses a self-signed CA as leaf).
fn write_certificates(directory: &Path) -> (PathBuf, PathBuf, PathBuf) {
    use rcgen::{
        BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, KeyUsagePurpose,
    };
    let ca_key = KeyPair::generate().unwrap();
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(DnType::CommonName, "hoist test CA");
    ca_params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    let ca_certificate = ca_params.self_signed(&ca_key).unwrap();
    let issuer = Issuer::new(ca_params, ca_key);
    let leaf_key = KeyPair::generate().unwrap();
    let mut leaf_params = CertificateParams::new(vec!["127.0.0.1".to_owned()]).unwrap();
    leaf_params
        .distinguished_name
        .push(DnType::CommonName, "127.0.0.1");
    let leaf_certificate = leaf_params.signed_by(&leaf_key, &issuer).unwrap();
    let ca = directory.join("ca.pem");
    let certificate = directory.join("server.pem");
    let key = directory.join("server-key.pem");
    std::fs::write(&ca, ca_certificate.pem()).unwrap();
    std::fs::write(&certificate, leaf_certificate.pem()).unwrap();
    std::fs::write(&key, leaf_key.serialize_pem()).unwrap();
    (ca, certificate, key)
}

/// A request the fake server received.
#[derive(Debug, Clone)]
pub struct SeenRequest {
    pub method: String,
    /// Path and query.
    pub target: String,
    /// Lowercase names.
    pub headers: HashMap<String, String>,
}

/// What the fake server answers.
#[derive(Debug, Clone)]
pub struct Answer {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    /// How long to wait before answering.
    pub delay: Duration,
}

impl Answer {
    pub fn new(status: u16) -> Self {
        Self {
            status,
            headers: Vec::new(),
            body: Vec::new(),
            delay: Duration::ZERO,
        }
    }

    pub fn header(mut self, name: &str, value: &str) -> Self {
        self.headers.push((name.to_owned(), value.to_owned()));
        self
    }

    pub fn body(mut self, body: impl Into<Vec<u8>>) -> Self {
        self.body = body.into();
        self
    }

    pub fn delay(mut self, delay: Duration) -> Self {
        self.delay = delay;
        self
    }
}

type Handler = dyn Fn(&SeenRequest, usize) -> Answer + Send + Sync;

/// An HTTP/1.1 server on a loopback address that answers each request with `handler(request,
/// index)` and records what it saw. One request per connection.
#[derive(Debug)]
pub struct Fake {
    /// `IP:PORT`.
    pub host: String,
    seen: Arc<Mutex<Vec<SeenRequest>>>,
    in_flight: Arc<InFlight>,
    task: tokio::task::JoinHandle<()>,
}

/// Requests being answered now, and the most at once.
#[derive(Debug, Default)]
struct InFlight {
    now: AtomicUsize,
    most: AtomicUsize,
}

impl Fake {
    pub async fn start(
        ip: &str,
        handler: impl Fn(&SeenRequest, usize) -> Answer + Send + Sync + 'static,
    ) -> Self {
        let listener = TcpListener::bind((ip, 0))
            .await
            .expect("bind a loopback port");
        let host = listener.local_addr().unwrap().to_string();
        let seen: Arc<Mutex<Vec<SeenRequest>>> = Arc::default();
        let in_flight: Arc<InFlight> = Arc::default();
        let handler: Arc<Handler> = Arc::new(handler);
        let task = {
            let seen = seen.clone();
            let in_flight = in_flight.clone();
            tokio::spawn(async move {
                while let Ok((stream, _)) = listener.accept().await {
                    let seen = seen.clone();
                    let handler = handler.clone();
                    let in_flight = in_flight.clone();
                    tokio::spawn(async move {
                        let _ = serve_one(stream, &seen, &in_flight, &*handler).await;
                    });
                }
            })
        };
        Self {
            host,
            seen,
            in_flight,
            task,
        }
    }

    /// The requests so far, in order.
    pub fn seen(&self) -> Vec<SeenRequest> {
        self.seen.lock().unwrap().clone()
    }

    /// The most requests that were being answered at the same time.
    pub fn most_at_once(&self) -> usize {
        self.in_flight.most.load(Ordering::SeqCst)
    }
}

impl Drop for Fake {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn serve_one(
    stream: tokio::net::TcpStream,
    seen: &Mutex<Vec<SeenRequest>>,
    in_flight: &InFlight,
    handler: &Handler,
) -> std::io::Result<()> {
    let mut reader = tokio::io::BufReader::new(stream);
    let mut line = String::new();
    reader.read_line(&mut line).await?;
    let mut parts = line.split_whitespace();
    let method = parts.next().unwrap_or_default().to_owned();
    let target = parts.next().unwrap_or_default().to_owned();
    let mut headers = HashMap::new();
    loop {
        let mut header = String::new();
        reader.read_line(&mut header).await?;
        let header = header.trim_end();
        if header.is_empty() {
            break;
        }
        if let Some((name, value)) = header.split_once(':') {
            headers.insert(name.trim().to_ascii_lowercase(), value.trim().to_owned());
        }
    }
    let length: usize = headers
        .get("content-length")
        .and_then(|value| value.parse().ok())
        .unwrap_or(0);
    let mut body = vec![0; length];
    reader.read_exact(&mut body).await?;
    let request = SeenRequest {
        method,
        target,
        headers,
    };
    let index = {
        let mut seen = seen.lock().unwrap();
        seen.push(request.clone());
        seen.len() - 1
    };
    let answer = handler(&request, index);
    let now = in_flight.now.fetch_add(1, Ordering::SeqCst) + 1;
    in_flight.most.fetch_max(now, Ordering::SeqCst);
    tokio::time::sleep(answer.delay).await;
    in_flight.now.fetch_sub(1, Ordering::SeqCst);
    let mut head = format!("HTTP/1.1 {} X\r\nConnection: close\r\n", answer.status);
    for (name, value) in &answer.headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    if !answer
        .headers
        .iter()
        .any(|(name, _)| name.eq_ignore_ascii_case("content-length"))
    {
        head.push_str(&format!("Content-Length: {}\r\n", answer.body.len()));
    }
    head.push_str("\r\n");
    let mut stream = reader.into_inner();
    stream.write_all(head.as_bytes()).await?;
    if request_has_body(&request.method) {
        stream.write_all(&answer.body).await?;
    }
    stream.shutdown().await
}

fn request_has_body(method: &str) -> bool {
    method != "HEAD"
}
