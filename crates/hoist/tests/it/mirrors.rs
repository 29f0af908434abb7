//! Blob mirrors end to end: `hoist promote --backends`, `hoist mirror` and `hoist audit` against
//! real servers on 127.0.0.1: registry:2 (source and destination), s3s-fs (S3),
//! fake-gcs-server (GCS) and a directory (file:).

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Output;

use hoist_oci::Digest;
use hoist_testkit::{
    GcsServer, Image, ImageBuilder, RegistryOptions, RegistryServer, S3Server, push,
};

use crate::support::{json, stdout, write};

const BUCKET: &str = "mirror-bucket";
const PREFIX: &str = "prod";

/// A source and a destination registry, an S3 and a GCS server, a directory, and the files.
struct Mirrors {
    source: RegistryServer,
    destination: RegistryServer,
    s3: S3Server,
    gcs: GcsServer,
    dir: tempfile::TempDir,
}

impl Mirrors {
    async fn start() -> Self {
        let world = Self {
            source: RegistryServer::start(RegistryOptions::plain()).expect("docker-registry"),
            destination: RegistryServer::start(RegistryOptions::plain()).expect("docker-registry"),
            s3: S3Server::start().expect("s3s-fs"),
            gcs: GcsServer::start().expect("fake-gcs-server"),
            dir: tempfile::tempdir().unwrap(),
        };
        world.s3.create_bucket(BUCKET).unwrap();
        world.gcs.create_bucket(BUCKET).await.unwrap();
        write(
            world.dir.path(),
            "backends.yaml",
            &format!(
                "backends:\n\
                 - name: s3-us\n  url: s3://{BUCKET}/{PREFIX}\n  region: us-east-2\n  endpoint: {}\n  pathStyle: true\n  labels: {{cloud: aws, region: us}}\n\
                 - name: gcs-eu\n  url: gs://{BUCKET}/{PREFIX}\n  endpoint: {}\n  labels: {{cloud: gcp, region: eu}}\n\
                 - name: local\n  url: file:mirror-local\n  labels: {{cloud: none}}\n",
                world.s3.endpoint_url(),
                world.gcs.endpoint_url()
            ),
        );
        world
    }

    async fn push(&self, server: &RegistryServer, repository: &str, image: &Image, tags: &[&str]) {
        let endpoint = server.endpoint();
        push(
            &endpoint.client().unwrap(),
            &endpoint,
            repository,
            image,
            tags,
        )
        .await
        .expect("push");
    }

    fn manifest(&self, images: &[(&str, Digest, &[&str])]) -> PathBuf {
        let mut text = format!(
            "registries:\n- name: {}/staging\n  src: true\n- name: {}/prod\nimages:\n",
            self.source.host(),
            self.destination.host()
        );
        for (name, digest, tags) in images {
            let tags: Vec<String> = tags.iter().map(|tag| format!("\"{tag}\"")).collect();
            text.push_str(&format!(
                "- name: {name}\n  dmap:\n    \"{digest}\": [{}]\n",
                tags.join(", ")
            ));
        }
        write(self.dir.path(), "promoter-manifest.yaml", &text)
    }

    /// Runs `hoist COMMAND --manifest promoter-manifest.yaml --backends backends.yaml ARGS` with
    /// the S3 credentials in the environment, as the AWS chain reads them.
    fn hoist(&self, command: &str, args: &[&str]) -> Output {
        let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_hoist"));
        child
            .args([command, "--manifest", "promoter-manifest.yaml"])
            .args(["--backends", "backends.yaml"])
            .args(args)
            .current_dir(self.dir.path())
            .env("NO_COLOR", "1")
            .env("DOCKER_CONFIG", self.dir.path().join("no-docker-config"))
            .env("AWS_ACCESS_KEY_ID", self.s3.access_key())
            .env("AWS_SECRET_ACCESS_KEY", self.s3.secret_key())
            .env("AWS_REGION", "us-east-2")
            .env("AWS_EC2_METADATA_DISABLED", "true")
            .env_remove("AWS_PROFILE");
        for host in [self.source.host(), self.destination.host()] {
            child.arg("--insecure-registry").arg(host);
        }
        child.output().expect("hoist runs")
    }

    fn key(digest: &Digest) -> String {
        format!("{PREFIX}/containers/images/{digest}")
    }

    fn local_path(&self, digest: &Digest) -> PathBuf {
        self.dir
            .path()
            .join("mirror-local/containers/images")
            .join(digest.to_string())
    }

    /// The bytes of `digest` in each mirror (`None` where it is missing), S3, GCS, file.
    async fn held(&self, digest: &Digest) -> [Option<Vec<u8>>; 3] {
        [
            std::fs::read(self.s3.object_path(BUCKET, &Self::key(digest))).ok(),
            self.gcs
                .get_object(BUCKET, &Self::key(digest))
                .await
                .unwrap()
                .map(|bytes| bytes.to_vec()),
            std::fs::read(self.local_path(digest)).ok(),
        ]
    }

    /// Everything the S3 server and the directory hold (path → bytes), to prove nothing changed.
    fn files(&self) -> BTreeMap<PathBuf, Vec<u8>> {
        let mut out = BTreeMap::new();
        for root in [self.s3.data_dir(), &self.dir.path().join("mirror-local")] {
            collect(root, &mut out);
        }
        out
    }

    fn registry_writes(&self) -> usize {
        [&self.source, &self.destination]
            .iter()
            .flat_map(|server| server.access_log())
            .filter(|entry| !matches!(entry.method.as_str(), "GET" | "HEAD"))
            .count()
    }
}

fn collect(dir: &Path, out: &mut BTreeMap<PathBuf, Vec<u8>>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            collect(&path, out);
        } else {
            out.insert(path.clone(), std::fs::read(&path).unwrap());
        }
    }
}

fn explain(output: &Output) -> String {
    format!(
        "exit {:?}\nstdout:\n{}\nstderr:\n{}",
        output.status.code(),
        stdout(output),
        String::from_utf8_lossy(&output.stderr)
    )
}

fn code(output: &Output) -> i32 {
    output.status.code().expect("an exit code")
}

/// The rows of an audit that are not ok.
fn bad_rows(output: &Output) -> Vec<serde_json::Value> {
    json(output)["rows"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|row| row["status"] != "ok")
        .cloned()
        .collect()
}

/// Runs an audit and checks it wrote nothing: registries saw only GET/HEAD, and the S3 data,
/// the GCS objects and the directory are byte for byte what they were.
async fn audit(world: &Mirrors, args: &[&str], blobs: &BTreeSet<(Digest, u64)>) -> Output {
    let files = world.files();
    let writes = world.registry_writes();
    let mut gcs = Vec::new();
    for (digest, _) in blobs {
        gcs.push(world.held(digest).await[1].clone());
    }
    let output = world.hoist("audit", &[&["--output", "json"], args].concat());
    assert_eq!(
        world.files(),
        files,
        "the audit wrote to S3 or the directory"
    );
    assert_eq!(
        world.registry_writes(),
        writes,
        "the audit wrote to a registry"
    );
    for ((digest, _), before) in blobs.iter().zip(gcs) {
        assert_eq!(world.held(digest).await[1], before, "GCS {digest} changed");
    }
    output
}

#[tokio::test(flavor = "multi_thread")]
async fn mirrors_are_filled_audited_and_repaired() {
    let world = Mirrors::start().await;
    let shared = hoist_testkit::Layer::random(60, 20_000);
    let app = ImageBuilder::new(61)
        .shared_layer(&shared)
        .layer(30_000)
        .build_multi_arch();
    let tool = ImageBuilder::new(62)
        .shared_layer(&shared)
        .layer(10_000)
        .build();
    world
        .push(&world.source, "staging/app", &app, &["v1"])
        .await;
    world
        .push(&world.source, "staging/tool", &tool, &["1.0"])
        .await;
    world.manifest(&[
        ("app", app.digest(), &["v1"]),
        ("tool", tool.digest(), &["1.0"]),
    ]);
    let blobs: BTreeSet<(Digest, u64)> = app
        .blobs()
        .into_iter()
        .chain(tool.blobs())
        .map(|blob| (blob.digest(), blob.descriptor.size))
        .collect();
    let total: u64 = blobs.iter().map(|(_, size)| size).sum();

    // The dry run: every mirror lacks every blob; nothing is written anywhere.
    let dry = world.hoist("promote", &["--output", "json"]);
    assert_eq!(code(&dry), 0, "{}", explain(&dry));
    let report = json(&dry);
    let backends = report["mirrors"]["backends"].as_array().unwrap();
    assert_eq!(backends.len(), 3);
    for backend in backends {
        assert_eq!(backend["to_write"], blobs.len() as u64, "{backend}");
        assert_eq!(backend["bytes_to_write"], total, "{backend}");
    }
    assert!(world.files().is_empty(), "a dry run writes nothing");

    // --select picks by label: only the GCS mirror.
    let selected = world.hoist("mirror", &["--select", "cloud=gcp", "--output", "json"]);
    assert_eq!(code(&selected), 0, "{}", explain(&selected));
    let names: Vec<String> = json(&selected)["mirrors"]["backends"]
        .as_array()
        .unwrap()
        .iter()
        .map(|backend| backend["name"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(names, ["gcs-eu"]);

    // The promotion: registries, then every blob in every mirror, byte for byte.
    let run = world.hoist("promote", &["--confirm", "--quiet", "--output", "json"]);
    assert_eq!(code(&run), 0, "{}", explain(&run));
    for (digest, _) in &blobs {
        let content = app
            .blobs()
            .into_iter()
            .chain(tool.blobs())
            .find(|blob| blob.digest() == *digest)
            .unwrap()
            .to_bytes()
            .to_vec();
        for (mirror, held) in ["s3", "gcs", "file"].iter().zip(world.held(digest).await) {
            assert_eq!(held.as_ref(), Some(&content), "{mirror} {digest}");
        }
    }

    // A re-run writes nothing to the mirrors.
    let again = world.hoist("promote", &["--confirm", "--output", "json"]);
    assert_eq!(code(&again), 0, "{}", explain(&again));
    for backend in json(&again)["mirrors"]["backends"].as_array().unwrap() {
        assert_eq!(backend["to_write"], 0, "{backend}");
        assert_eq!(backend["present"], blobs.len() as u64, "{backend}");
    }

    // A clean audit, which writes nothing.
    let clean = audit(&world, &["--rehash"], &blobs).await;
    assert_eq!(code(&clean), 0, "{}", explain(&clean));
    assert_eq!(json(&clean)["rows"].as_array().unwrap().len(), 2 + 2 * 3);

    // A blob deleted from the S3 bucket: the audit reports exactly it, for each image holding it.
    let (lost, lost_size) = *blobs
        .iter()
        .find(|(digest, _)| *digest == shared.digest())
        .unwrap();
    std::fs::remove_file(world.s3.object_path(BUCKET, &Mirrors::key(&lost))).unwrap();
    let found = audit(&world, &[], &blobs).await;
    assert_eq!(code(&found), 1, "{}", explain(&found));
    let bad = bad_rows(&found);
    assert_eq!(bad.len(), 2, "app and tool share the layer: {bad:#?}");
    for row in &bad {
        assert_eq!(row["backend"], "s3-us");
        assert_eq!(row["status"], "missing");
        assert_eq!(
            row["discrepancies"],
            serde_json::json!([{"kind": "blob-missing", "digest": lost.to_string(), "size": lost_size}])
        );
    }
    let text = world.hoist("audit", &[]);
    assert_eq!(code(&text), 1);
    assert!(
        stdout(&text).contains(&format!("blob {lost} ({lost_size} bytes) missing")),
        "{}",
        explain(&text)
    );

    // `hoist mirror --confirm` repairs it: one blob written, to S3 only.
    let repair = world.hoist("mirror", &["--confirm", "--output", "json"]);
    assert_eq!(code(&repair), 0, "{}", explain(&repair));
    let written: BTreeMap<String, u64> = json(&repair)["mirrors"]["backends"]
        .as_array()
        .unwrap()
        .iter()
        .map(|backend| {
            (
                backend["name"].as_str().unwrap().to_owned(),
                backend["to_write"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        written,
        BTreeMap::from([
            ("gcs-eu".into(), 0),
            ("local".into(), 0),
            ("s3-us".into(), 1)
        ])
    );
    let clean = audit(&world, &[], &blobs).await;
    assert_eq!(code(&clean), 0, "{}", explain(&clean));

    // A corrupted GCS object (same size, other bytes): only --rehash sees it.
    let own_layer = tool
        .layers
        .iter()
        .find(|layer| layer.digest() != shared.digest())
        .unwrap();
    let corrupt = *blobs
        .iter()
        .find(|(digest, _)| *digest == own_layer.digest())
        .unwrap();
    let mut bytes = world.held(&corrupt.0).await[1].clone().unwrap();
    bytes[100] ^= 0xff;
    world
        .gcs
        .put_object(BUCKET, &Mirrors::key(&corrupt.0), bytes.clone())
        .await
        .unwrap();
    let sized = audit(&world, &[], &blobs).await;
    assert_eq!(code(&sized), 0, "sizes match: {}", explain(&sized));
    let rehashed = audit(&world, &["--rehash"], &blobs).await;
    assert_eq!(code(&rehashed), 1, "{}", explain(&rehashed));
    let bad = bad_rows(&rehashed);
    assert_eq!(bad.len(), 1, "{bad:#?}");
    assert_eq!(bad[0]["backend"], "gcs-eu");
    assert_eq!(bad[0]["image"], "tool");
    assert_eq!(bad[0]["status"], "mismatched");
    assert_eq!(bad[0]["discrepancies"][0]["kind"], "blob-hash");
    assert_eq!(bad[0]["discrepancies"][0]["digest"], corrupt.0.to_string());
    assert_eq!(
        bad[0]["discrepancies"][0]["found"],
        Digest::of(&bytes).to_string()
    );
    // Put the right bytes back (a repair run would not: mirrors never overwrite an object).
    world
        .gcs
        .put_object(
            BUCKET,
            &Mirrors::key(&corrupt.0),
            world.held(&corrupt.0).await[0].clone().unwrap(),
        )
        .await
        .unwrap();

    // A tag moved behind hoist's back in the destination, and a tag nobody promotes.
    let intruder = ImageBuilder::new(63).layer(5_000).build();
    world
        .push(&world.destination, "prod/app", &intruder, &["v1", "hotfix"])
        .await;
    let moved = audit(&world, &[], &blobs).await;
    assert_eq!(code(&moved), 1, "{}", explain(&moved));
    let bad = bad_rows(&moved);
    assert_eq!(bad.len(), 2, "{bad:#?}");
    let app_row = bad
        .iter()
        .find(|row| row["digest"] == app.digest().to_string())
        .unwrap();
    assert_eq!(app_row["status"], "tag-moved");
    assert_eq!(
        app_row["discrepancies"],
        serde_json::json!([{"kind": "tag-moved", "tag": "v1", "current": intruder.digest().to_string()}])
    );
    let extra = bad
        .iter()
        .find(|row| row["digest"] == intruder.digest().to_string())
        .unwrap();
    assert_eq!(extra["status"], "extra-tag");
    assert_eq!(
        extra["discrepancies"],
        serde_json::json!([{"kind": "extra-tag", "tag": "hotfix"}])
    );
    let text = world.hoist("audit", &[]);
    assert!(stdout(&text).contains("tag v1 moved"), "{}", explain(&text));
}

/// Audit throughput on about 200 MiB of blobs in S3, GCS and a directory; prints the promotion
/// and the audit as a person sees them. Run with
/// `cargo test -p hoist --release --test it -- --ignored audit_throughput --nocapture`.
#[tokio::test(flavor = "multi_thread")]
#[ignore = "a measurement, not a check: about 200 MiB per mirror"]
async fn audit_throughput() {
    let world = Mirrors::start().await;
    let sizes: Vec<u64> = std::iter::repeat_n(25 * 1024 * 1024, 8).collect();
    let image = ImageBuilder::new(70).layers(&sizes).build();
    let small = ImageBuilder::new(71)
        .layers(&[40_000, 3_000])
        .build_multi_arch();
    world
        .push(&world.source, "staging/big", &image, &["v1"])
        .await;
    world
        .push(&world.source, "staging/small", &small, &["1.0", "latest"])
        .await;
    world.manifest(&[
        ("big", image.digest(), &["v1"]),
        ("small", small.digest(), &["1.0", "latest"]),
    ]);
    let run = world.hoist("promote", &["--confirm", "--quiet"]);
    assert_eq!(code(&run), 0, "{}", explain(&run));
    println!("$ hoist promote ... --confirm\n{}", stdout(&run));
    for args in [&[][..], &["--rehash"][..]] {
        let audit = world.hoist("audit", args);
        assert_eq!(code(&audit), 0, "{}", explain(&audit));
        println!("$ hoist audit ... {}\n{}", args.join(" "), stdout(&audit));
    }
    let lost = small.children[0].layers[0].digest();
    std::fs::remove_file(world.s3.object_path(BUCKET, &Mirrors::key(&lost))).unwrap();
    let found = world.hoist("audit", &[]);
    assert_eq!(code(&found), 1, "{}", explain(&found));
    println!(
        "$ hoist audit ... (a blob deleted from S3)\n{}",
        stdout(&found)
    );
}
