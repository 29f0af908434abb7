//! `hoist serve` end to end: promote → mirror → serve → pull, with real clients.
//!
//! A multi-arch image is promoted from a staging registry:2 to a production registry:2 and its
//! blobs mirrored into an S3 bucket (s3s-fs) by `hoist promote --backends`. `hoist serve` runs as
//! a process in front of them, with an IP range file that places 127.0.0.0/8 in AWS us-east-2,
//! whose bucket is that one (read anonymously, as clients read the public buckets). skopeo and
//! containerd (`ctr`, on a private socket) pull through it, and the servers' own logs prove
//! where every byte came from: manifests from the registry, blobs from the bucket, and the one
//! blob deleted from the bucket from the registry. Then SIGTERM stops the server cleanly.

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::sync::{Arc, Mutex, mpsc};
use std::time::{Duration, Instant};

use hoist_oci::Digest;
use hoist_testkit::{
    ContainerdServer, Image, ImageBuilder, RegistryOptions, RegistryServer, S3Server, push,
};

use crate::support::write;

const BUCKET: &str = "prod-registry-k8s-io-us-east-2";

/// `hoist serve` as a child process, its stderr collected line by line.
pub struct Serving {
    child: Child,
    /// `http://127.0.0.1:PORT` → `127.0.0.1:PORT`.
    pub host: String,
    lines: Arc<Mutex<Vec<String>>>,
}

impl Serving {
    /// Starts `hoist serve --listen 127.0.0.1:0 ARGS` in `dir` and waits for its address.
    pub fn start(dir: &Path, args: &[&str]) -> Self {
        let mut child = Command::new(env!("CARGO_BIN_EXE_hoist"))
            .arg("serve")
            .args(["--listen", "127.0.0.1:0"])
            .args(args)
            .current_dir(dir)
            .env("NO_COLOR", "1")
            .env_remove("HOIST_LOG")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("hoist serve starts");
        let stderr = child.stderr.take().expect("stderr is piped");
        let lines = Arc::new(Mutex::new(Vec::new()));
        let (address_sender, address) = mpsc::channel();
        let collected = Arc::clone(&lines);
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if let Some(host) = line.strip_prefix("hoist serve: listening on http://") {
                    let _ = address_sender.send(host.to_owned());
                }
                collected.lock().unwrap().push(line);
            }
        });
        let host = address
            .recv_timeout(Duration::from_secs(30))
            .unwrap_or_else(|_| {
                let _ = child.kill();
                panic!("hoist serve did not listen: {:?}", lines.lock().unwrap());
            });
        Self { child, host, lines }
    }

    /// Everything it printed so far.
    pub fn log(&self) -> Vec<String> {
        // Access log lines are written after the response: let the last ones arrive.
        std::thread::sleep(Duration::from_millis(200));
        self.lines.lock().unwrap().clone()
    }

    /// The access log lines of requests whose path ends with `suffix`.
    pub fn requests_for(&self, suffix: &str) -> Vec<String> {
        self.log()
            .into_iter()
            .filter(|line| line.contains("hoist_serve::access"))
            .filter(|line| line.contains(&format!("{suffix} ")))
            .collect()
    }

    /// Sends SIGTERM and waits (at most 30 s) for the process to end.
    pub fn terminate(mut self) -> (ExitStatus, Vec<String>) {
        let status = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .expect("kill runs");
        assert!(status.success());
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                std::thread::sleep(Duration::from_millis(100));
                return (status, self.lines.lock().unwrap().clone());
            }
            assert!(Instant::now() < deadline, "hoist serve ignored SIGTERM");
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Serving {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Staging and production registries, an S3 server and its anonymous view, the files.
struct World {
    source: RegistryServer,
    production: RegistryServer,
    s3: S3Server,
    bucket: S3Server,
    dir: tempfile::TempDir,
    image: Image,
}

impl World {
    /// Pushes a multi-arch image to staging, promotes it to production with its blobs mirrored
    /// to S3 (`hoist promote --backends --confirm`), and writes serve's files.
    async fn promoted(seed: u64) -> Self {
        let source = RegistryServer::start(RegistryOptions::plain()).expect("docker-registry");
        let production = RegistryServer::start(RegistryOptions::plain()).expect("docker-registry");
        let s3 = S3Server::start().expect("s3s-fs");
        s3.create_bucket(BUCKET).unwrap();
        let bucket = s3.anonymous_view().expect("s3s-fs");
        let dir = tempfile::tempdir().unwrap();
        let image = ImageBuilder::new(seed)
            .layers(&[64 * 1024, 300 * 1024])
            .build_multi_arch();
        let endpoint = source.endpoint();
        push(
            &endpoint.client().unwrap(),
            &endpoint,
            "staging/hello",
            &image,
            &["1.0"],
        )
        .await
        .expect("push");
        let world = Self {
            source,
            production,
            s3,
            bucket,
            dir,
            image,
        };
        world.write_files();
        let output = world.promote();
        assert!(output.status.success(), "{}", explain(&output));
        world
    }

    fn write_files(&self) {
        let dir = self.dir.path();
        write(
            dir,
            "promoter-manifest.yaml",
            &format!(
                "registries:\n- name: {}/staging\n  src: true\n- name: {}/prod\nimages:\n- name: hello\n  dmap:\n    \"{}\": [\"1.0\"]\n",
                self.source.host(),
                self.production.host(),
                self.image.digest()
            ),
        );
        // The same bucket twice: written through the S3 API with credentials, read anonymously.
        let backend = |endpoint: &str| {
            format!(
                "backends:\n- name: aws-us-east-2\n  url: s3://{BUCKET}\n  region: us-east-2\n  endpoint: {endpoint}\n  pathStyle: true\n  labels: {{cloud: aws, region: us-east-2}}\n"
            )
        };
        write(dir, "backends.yaml", &backend(&self.s3.endpoint_url()));
        write(
            dir,
            "serve-backends.yaml",
            &backend(&self.bucket.endpoint_url()),
        );
        write(
            dir,
            "ip-ranges.json",
            r#"{"syncToken": "1", "createDate": "2026-01-01-00-00-00",
               "prefixes": [{"ip_prefix": "127.0.0.0/8", "region": "us-east-2", "service": "AMAZON", "network_border_group": "us-east-2"}],
               "ipv6_prefixes": []}"#,
        );
    }

    fn promote(&self) -> Output {
        Command::new(env!("CARGO_BIN_EXE_hoist"))
            .args(["promote", "--manifest", "promoter-manifest.yaml"])
            .args(["--backends", "backends.yaml", "--confirm", "--quiet"])
            .args(["--insecure-registry", &self.source.host()])
            .args(["--insecure-registry", &self.production.host()])
            .current_dir(self.dir.path())
            .env("NO_COLOR", "1")
            .env("DOCKER_CONFIG", self.dir.path().join("no-docker-config"))
            .env("AWS_ACCESS_KEY_ID", self.s3.access_key())
            .env("AWS_SECRET_ACCESS_KEY", self.s3.secret_key())
            .env("AWS_REGION", "us-east-2")
            .env("AWS_EC2_METADATA_DISABLED", "true")
            .env_remove("AWS_PROFILE")
            .output()
            .expect("hoist runs")
    }

    fn serve(&self) -> Serving {
        let upstream = format!("http://{}", self.production.host());
        Serving::start(
            self.dir.path(),
            &[
                "--upstream",
                &upstream,
                "--upstream-path",
                "prod",
                "--backends",
                "serve-backends.yaml",
                "--ip-ranges",
                "ip-ranges.json",
            ],
        )
    }

    /// Every blob of the image (configs and layers of both platforms).
    fn blobs(&self) -> BTreeSet<Digest> {
        self.image
            .blobs()
            .iter()
            .map(|blob| blob.digest())
            .collect()
    }

    /// A layer of the amd64 image, deleted from the bucket behind hoist's back.
    fn delete_from_bucket(&self) -> Digest {
        let layer = self.image.children[0].layers[1].digest();
        let path = self
            .s3
            .object_path(BUCKET, &format!("containers/images/{layer}"));
        std::fs::remove_file(&path).expect("the layer was mirrored");
        layer
    }

    /// Blob digests the production registry served with GET, and whether manifests were read.
    fn registry_reads(&self) -> (BTreeSet<String>, usize) {
        let log = self.production.access_log();
        let blobs = log
            .iter()
            .filter(|entry| entry.method == "GET" && entry.path.contains("/blobs/sha256:"))
            .filter_map(|entry| entry.path.rsplit('/').next().map(str::to_owned))
            .collect();
        let manifests = log
            .iter()
            .filter(|entry| entry.path.starts_with("/v2/prod/hello/manifests/"))
            .filter(|entry| entry.status == 200)
            .count();
        (blobs, manifests)
    }

    /// Blob digests the bucket served with GetObject.
    fn bucket_reads(&self) -> BTreeSet<String> {
        self.bucket
            .requests()
            .into_iter()
            .filter(|request| request.operation == "GetObject" && request.bucket == BUCKET)
            .filter_map(|request| {
                request
                    .key
                    .strip_prefix("containers/images/")
                    .map(str::to_owned)
            })
            .collect()
    }

    /// The proof: manifests from the registry, every blob but `deleted` from the bucket and
    /// never from the registry, `deleted` from the registry.
    fn assert_blobs_came_from_the_bucket(&self, expected: &BTreeSet<Digest>, deleted: &Digest) {
        let (registry_blobs, manifests) = self.registry_reads();
        let bucket_blobs = self.bucket_reads();
        assert!(manifests >= 1, "no manifest was read from the registry");
        for digest in expected {
            let digest = digest.to_string();
            if digest == deleted.to_string() {
                assert!(
                    registry_blobs.contains(&digest),
                    "{digest} not from the registry"
                );
                assert!(!bucket_blobs.contains(&digest), "{digest} from the bucket");
            } else {
                assert!(
                    bucket_blobs.contains(&digest),
                    "{digest} not from the bucket: {bucket_blobs:?}"
                );
                assert!(
                    !registry_blobs.contains(&digest),
                    "{digest} also from the registry"
                );
            }
        }
    }
}

fn explain(output: &Output) -> String {
    format!(
        "exit {:?}\nstdout:\n{}\nstderr:\n{}",
        output.status.code(),
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

/// `skopeo copy --all` through the redirector into an OCI layout.
fn skopeo_copy(host: &str, reference: &str, destination: &Path) -> Output {
    Command::new("skopeo")
        .args(["--insecure-policy", "copy", "--all", "--retry-times", "0"])
        .arg("--src-tls-verify=false")
        .arg(format!("docker://{host}/{reference}"))
        .arg(format!("oci:{}:pulled", destination.display()))
        .output()
        .expect("skopeo runs")
}

/// The blob files of an OCI layout.
fn layout_blobs(layout: &Path) -> BTreeSet<String> {
    std::fs::read_dir(layout.join("blobs/sha256"))
        .unwrap()
        .map(|entry| format!("sha256:{}", entry.unwrap().file_name().to_string_lossy()))
        .collect()
}

#[tokio::test]
async fn skopeo_pulls_through_serve() {
    let world = World::promoted(1101).await;
    let deleted = world.delete_from_bucket();
    let serving = world.serve();
    let pulled = world.dir.path().join("pulled");
    let output = skopeo_copy(&serving.host, "hello:1.0", &pulled);
    assert!(
        output.status.success(),
        "{}\n{:?}",
        explain(&output),
        serving.log()
    );

    // skopeo checked every digest; the layout has every blob and manifest.
    let held = layout_blobs(&pulled);
    for digest in world.blobs() {
        assert!(held.contains(&digest.to_string()), "{digest} missing");
    }
    for manifest in world.image.manifests() {
        assert!(held.contains(&manifest.digest().to_string()));
    }
    world.assert_blobs_came_from_the_bucket(&world.blobs(), &deleted);
    // hoist's access log agrees: mirrored blobs to the bucket, the deleted one upstream.
    let other = world.image.children[0].layers[0].digest();
    let lines = serving.requests_for(&other.to_string());
    assert!(
        lines.iter().any(|line| line.contains("outcome=\"mirror\"")
            && line.contains("backend=\"aws-us-east-2\"")),
        "{lines:?}"
    );
    let lines = serving.requests_for(&deleted.to_string());
    assert!(
        lines
            .iter()
            .any(|line| line.contains("outcome=\"upstream-fallback\"")),
        "{lines:?}"
    );

    let (status, log) = serving.terminate();
    assert!(status.success(), "{status:?}\n{log:?}");
    assert!(
        log.iter().any(|line| line == "hoist serve: stopped"),
        "{log:?}"
    );
}

#[tokio::test]
async fn containerd_pulls_through_serve() {
    let world = World::promoted(1102).await;
    let deleted = world.delete_from_bucket();
    let serving = world.serve();
    let containerd = ContainerdServer::start().expect("containerd");
    let reference = format!("{}/hello:1.0", serving.host);

    // Every platform's content, verified by containerd against the digests.
    let output = containerd
        .ctr(&[
            "content",
            "fetch",
            "--plain-http",
            "--all-platforms",
            &reference,
        ])
        .unwrap();
    assert!(
        output.status.success(),
        "{}\n{:?}",
        explain(&output),
        serving.log()
    );
    let output = containerd.ctr(&["content", "ls", "-q"]).unwrap();
    let stored: BTreeSet<String> = String::from_utf8_lossy(&output.stdout)
        .lines()
        .map(str::to_owned)
        .collect();
    for digest in world.blobs() {
        assert!(
            stored.contains(&digest.to_string()),
            "{digest} not in containerd: {stored:?}"
        );
    }
    world.assert_blobs_came_from_the_bucket(&world.blobs(), &deleted);

    // And a pull that unpacks the amd64 image (a fresh name, the same content, now local).
    let output = containerd
        .ctr(&[
            "images",
            "pull",
            "--plain-http",
            "--platform",
            "linux/amd64",
            "--snapshotter",
            "native",
            &reference,
        ])
        .unwrap();
    assert!(
        output.status.success(),
        "{}\n{}",
        explain(&output),
        containerd.log_text()
    );
    let output = containerd.ctr(&["images", "ls", "-q"]).unwrap();
    assert!(String::from_utf8_lossy(&output.stdout).contains(&reference));

    let (status, _) = serving.terminate();
    assert!(status.success());
}

#[test]
fn usage_errors() {
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "bad-ranges.json",
        r#"{"prefixes": [{"ipv4Prefix": "1.2.3/8", "scope": "x"}]}"#,
    );
    write(
        dir.path(),
        "backends.yaml",
        "backends:\n- {name: a, url: 'file:a', labels: {cloud: aws, region: r, tier: one}}\n- {name: b, url: 'file:b', labels: {cloud: aws, region: r, tier: two}}\n",
    );
    let run = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_hoist"))
            .arg("serve")
            .args(args)
            .current_dir(dir.path())
            .env("NO_COLOR", "1")
            .output()
            .expect("hoist runs")
    };
    for (args, expected) in [
        (&["--upstream", "ftp://x"][..], "http:// or https://"),
        (
            &[
                "--upstream",
                "https://r.example",
                "--ip-ranges",
                "bad-ranges.json",
            ][..],
            "bad-ranges.json: prefixes[0]",
        ),
        (
            &[
                "--upstream",
                "https://r.example",
                "--ip-ranges",
                "missing.json",
            ][..],
            "missing.json",
        ),
        (
            &[
                "--upstream",
                "https://r.example",
                "--backends",
                "backends.yaml",
            ][..],
            "--select",
        ),
        (
            &[
                "--upstream",
                "https://r.example",
                "--backends",
                "backends.yaml",
                "--select",
                "tier=one",
                "--default-backend",
                "b",
            ][..],
            "--default-backend",
        ),
        (
            &[
                "--upstream",
                "https://r.example",
                "--trusted-load-balancer",
                "10.0.0/8",
            ][..],
            "--trusted-load-balancer",
        ),
        (
            &[
                "--upstream",
                "https://r.example",
                "--signature-upstream",
                "r.example",
            ][..],
            "--signature-upstream",
        ),
    ] {
        let output = run(args);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(stderr.contains(expected), "{args:?}: {stderr}");
    }
    // The address is taken.
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let address = taken.local_addr().unwrap().to_string();
    let output = run(&["--upstream", "https://r.example", "--listen", &address]);
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains(&address));
}

/// `--log-format json`: one object per request, with the fields of the access log.
#[test]
fn json_access_log() {
    let dir = tempfile::tempdir().unwrap();
    let serving = Serving::start(
        dir.path(),
        &[
            "--upstream",
            "https://r.example",
            "--log-format",
            "json",
            "--trusted-load-balancer",
        ],
    );
    let digest = format!("sha256:{}", "a".repeat(64));
    let (status, location) = raw_get(
        &serving.host,
        &format!("/v2/pause/blobs/{digest}"),
        &[("X-Forwarded-For", "35.180.1.1, 130.211.0.1")],
    );
    assert_eq!(status, 307);
    assert_eq!(
        location.as_deref(),
        Some(format!("https://r.example/v2/pause/blobs/{digest}").as_str())
    );
    let (status, log) = serving.terminate();
    assert!(status.success());
    let entry: serde_json::Value = log
        .iter()
        .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
        .find(|entry| entry["target"] == "hoist_serve::access")
        .unwrap_or_else(|| panic!("no JSON access log line: {log:?}"));
    assert_eq!(entry["method"], "GET");
    assert_eq!(entry["status"], 307);
    assert_eq!(entry["route"], "blob");
    assert_eq!(entry["outcome"], "no-mirror");
    assert_eq!(entry["peer"], "127.0.0.1");
    assert_eq!(entry["client"], "35.180.1.1");
    assert!(entry["micros"].is_u64());
    assert!(
        entry["location"]
            .as_str()
            .unwrap()
            .starts_with("https://r.example/v2/")
    );
}

/// The path of the embedded demo: no registry, no bucket. The example is promoted to OCI
/// layouts with file: mirrors, and hoist serves both the layout (as the upstream) and the mirror.
#[test]
fn serves_the_embedded_example_with_no_other_server() {
    let dir = tempfile::tempdir().unwrap();
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..");
    let manifests = root.join("manifests/example");
    let backends = root.join("manifests/backends.yaml");
    // The example writes under target/hoist-demo relative to where hoist runs: here, the temp dir.
    std::fs::create_dir_all(dir.path().join("manifests")).unwrap();
    copy_tree(&manifests, &dir.path().join("manifests/example"));
    std::fs::copy(&backends, dir.path().join("manifests/backends.yaml")).unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_hoist"))
        .args(["promote", "--thin-manifest-dir", "manifests/example"])
        .args([
            "--backends",
            "manifests/backends.yaml",
            "--confirm",
            "--quiet",
        ])
        .current_dir(dir.path())
        .env("NO_COLOR", "1")
        .output()
        .expect("hoist runs");
    assert!(output.status.success(), "{}", explain(&output));

    let serving = Serving::start(
        dir.path(),
        &[
            "--upstream",
            "oci:target/hoist-demo/prod-us",
            "--backends",
            "manifests/backends.yaml",
        ],
    );
    let pulled = dir.path().join("pulled");
    let output = skopeo_copy(&serving.host, "hello:1.0", &pulled);
    assert!(
        output.status.success(),
        "{}\n{:?}",
        explain(&output),
        serving.log()
    );
    let log = serving.log();
    let access: Vec<&String> = log
        .iter()
        .filter(|line| line.contains("hoist_serve::access"))
        .collect();
    // Manifests from the layout upstream, every blob from the default mirror (mirror-us).
    assert!(
        access
            .iter()
            .any(|line| line.contains("route=\"layout\"") && line.contains("/manifests/")),
        "{access:?}"
    );
    let blob_redirects: Vec<_> = access
        .iter()
        .filter(|line| line.contains("route=\"blob\""))
        .collect();
    assert!(!blob_redirects.is_empty());
    assert!(
        blob_redirects
            .iter()
            .all(|line| line.contains("outcome=\"mirror\"")
                && line.contains("backend=\"mirror-us\"")),
        "{blob_redirects:?}"
    );
    assert!(
        access
            .iter()
            .any(|line| line.contains("route=\"file-mirror\"") && line.contains("status=200")),
        "{access:?}"
    );
    assert!(
        !access
            .iter()
            .any(|line| line.contains("/_hoist/upstream/") && line.contains("/blobs/")),
        "{access:?}"
    );
    let held = layout_blobs(&pulled);
    let source = layout_blobs(&dir.path().join("target/hoist-demo/prod-us/hello"));
    assert!(
        held.len() >= 3 && held.is_subset(&source),
        "{held:?} not from {source:?}"
    );
    let (status, _) = serving.terminate();
    assert!(status.success());
}

fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_tree(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}

/// A plain HTTP/1.1 GET: the status and the `Location`.
fn raw_get(host: &str, path: &str, headers: &[(&str, &str)]) -> (u16, Option<String>) {
    use std::io::{Read as _, Write as _};
    let mut stream = std::net::TcpStream::connect(host).unwrap();
    let mut request = format!("GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n");
    for (name, value) in headers {
        request.push_str(&format!("{name}: {value}\r\n"));
    }
    request.push_str("\r\n");
    stream.write_all(request.as_bytes()).unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    let status = response
        .split(' ')
        .nth(1)
        .and_then(|code| code.parse().ok())
        .unwrap_or(0);
    let location = response
        .lines()
        .find_map(|line| {
            line.strip_prefix("location: ")
                .or_else(|| line.strip_prefix("Location: "))
        })
        .map(str::to_owned);
    (status, location)
}
