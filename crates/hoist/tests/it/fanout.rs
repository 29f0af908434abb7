//! Read once, write everywhere, proven on the wire: `hoist promote --confirm --backends` to three
//! registries and three mirrors (S3 by s3s-fs, GCS by fake-gcs-server, a directory) reads each
//! source blob exactly once (the source registry's access log), writes each blob once to each
//! mirror (the S3 and GCS servers' own logs), and a re-run reads and writes nothing.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::process::Output;

use hoist_oci::Digest;
use hoist_testkit::{
    GcsServer, Image, ImageBuilder, Layer, RegistryOptions, RegistryServer, S3Server, push,
    signature_for,
};

use crate::support::{json, stdout, write};

const BUCKET: &str = "fanout-bucket";

struct World {
    source: RegistryServer,
    destinations: [RegistryServer; 3],
    s3: S3Server,
    gcs: GcsServer,
    dir: tempfile::TempDir,
}

impl World {
    async fn start() -> Self {
        let registry = || RegistryServer::start(RegistryOptions::plain()).expect("docker-registry");
        let world = Self {
            source: registry(),
            destinations: [registry(), registry(), registry()],
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
                 - name: s3\n  url: s3://{BUCKET}\n  region: us-east-2\n  endpoint: {}\n  pathStyle: true\n\
                 - name: gcs\n  url: gs://{BUCKET}\n  endpoint: {}\n\
                 - name: local\n  url: file:mirror-local\n",
                world.s3.endpoint_url(),
                world.gcs.endpoint_url()
            ),
        );
        world
    }

    async fn push(&self, repository: &str, image: &Image, tags: &[&str]) {
        let endpoint = self.source.endpoint();
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

    fn manifest(&self, images: &[(&str, Digest, &str)]) -> PathBuf {
        let mut text = format!(
            "registries:\n- name: {}/staging\n  src: true\n",
            self.source.host()
        );
        for destination in &self.destinations {
            text.push_str(&format!("- name: {}/prod\n", destination.host()));
        }
        text.push_str("images:\n");
        for (name, digest, tag) in images {
            text.push_str(&format!(
                "- name: {name}\n  dmap:\n    \"{digest}\": [\"{tag}\"]\n"
            ));
        }
        write(self.dir.path(), "promoter-manifest.yaml", &text)
    }

    fn hoist(&self, args: &[&str]) -> Output {
        let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_hoist"));
        child
            .args(["promote", "--manifest", "promoter-manifest.yaml"])
            .args(["--backends", "backends.yaml", "--jobs", "8"])
            .args(args)
            .current_dir(self.dir.path())
            .env("NO_COLOR", "1")
            .env("DOCKER_CONFIG", self.dir.path().join("no-docker-config"))
            .env("AWS_ACCESS_KEY_ID", self.s3.access_key())
            .env("AWS_SECRET_ACCESS_KEY", self.s3.secret_key())
            .env("AWS_REGION", "us-east-2")
            .env("AWS_EC2_METADATA_DISABLED", "true")
            .env_remove("AWS_PROFILE");
        for server in std::iter::once(&self.source).chain(&self.destinations) {
            child.arg("--insecure-registry").arg(server.host());
        }
        child.output().expect("hoist runs")
    }

    /// Blob GETs per digest that `server` answered.
    fn blob_reads(server: &RegistryServer) -> BTreeMap<Digest, usize> {
        let mut reads = BTreeMap::new();
        for entry in server.access_log() {
            if entry.method == "GET"
                && let Some((_, digest)) = entry.path.split_once("/blobs/")
                && let Ok(digest) = digest.parse()
            {
                *reads.entry(digest).or_default() += 1;
            }
        }
        reads
    }

    /// Writes of `digest` per mirror: S3, GCS (from the servers' logs), and whether the directory
    /// holds it with the right bytes.
    fn mirror_writes(&self, digest: &Digest, content: &[u8]) -> (usize, usize, bool) {
        let key = format!("containers/images/{digest}");
        let local = self
            .dir
            .path()
            .join("mirror-local/containers/images")
            .join(digest.to_string());
        (
            self.s3.object_writes(BUCKET, &key),
            self.gcs.object_writes(BUCKET, &key),
            std::fs::read(local).is_ok_and(|bytes| bytes == content),
        )
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

#[tokio::test(flavor = "multi_thread")]
async fn each_source_blob_is_read_once_for_three_registries_and_three_mirrors() {
    let world = World::start().await;
    // A base layer shared by three images, one of them multi-arch and signed, and one layer
    // larger than the registry client's single-request limit.
    let base = Layer::random(80, 300_000);
    let app = ImageBuilder::new(81)
        .shared_layer(&base)
        .layers(&[6 << 20, 20_000])
        .build_multi_arch();
    let signature = signature_for(&app, 82);
    let tool = ImageBuilder::new(83)
        .shared_layer(&base)
        .layer(50_000)
        .build();
    let agent = ImageBuilder::new(84)
        .shared_layer(&base)
        .layers(&[1 << 20, 9_000])
        .build();
    world.push("staging/app", &app, &["v1"]).await;
    world
        .push("staging/app", &signature, &[&app.signature_tag()])
        .await;
    world.push("staging/tool", &tool, &["v1"]).await;
    world.push("staging/agent", &agent, &["v1"]).await;
    world.manifest(&[
        ("app", app.digest(), "v1"),
        ("tool", tool.digest(), "v1"),
        ("agent", agent.digest(), "v1"),
    ]);
    let mut contents: BTreeMap<Digest, Vec<u8>> = BTreeMap::new();
    for image in [&app, &signature, &tool, &agent] {
        for blob in image.blobs() {
            contents.insert(blob.digest(), blob.to_bytes().to_vec());
        }
    }
    let reads_before = World::blob_reads(&world.source);

    let run = world.hoist(&["--confirm", "--quiet", "--output", "json"]);
    assert_eq!(run.status.code(), Some(0), "{}", explain(&run));
    let report = json(&run);

    // The source: every blob read exactly once, for three registries and three mirrors.
    let reads = World::blob_reads(&world.source);
    for digest in contents.keys() {
        let count = reads.get(digest).copied().unwrap_or(0)
            - reads_before.get(digest).copied().unwrap_or(0);
        assert_eq!(count, 1, "{digest} read {count} times from the source");
    }
    assert_eq!(
        report["execution"]["source_reads"]["fetches"],
        contents.len(),
        "{report:#}"
    );
    // Nothing read back from a destination.
    for destination in &world.destinations {
        assert!(World::blob_reads(destination).is_empty());
    }
    // Every mirror got every blob exactly once, byte for byte.
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    for (digest, content) in &contents {
        assert_eq!(
            world.mirror_writes(digest, content),
            (1, 1, true),
            "{digest}: (S3 writes, GCS writes, in the directory)"
        );
        assert_eq!(
            world
                .gcs
                .get_object(BUCKET, &format!("containers/images/{digest}"))
                .await
                .unwrap()
                .as_deref(),
            Some(content.as_slice())
        );
        assert_eq!(
            std::fs::read(
                world
                    .s3
                    .object_path(BUCKET, &format!("containers/images/{digest}"))
            )
            .unwrap(),
            *content
        );
    }
    for mirror in report["mirrors"]["backends"].as_array().unwrap() {
        assert_eq!(mirror["to_write"], contents.len(), "{mirror}");
        assert!(
            mirror["failures"].as_array().unwrap().is_empty(),
            "{mirror}"
        );
    }
    // Every registry holds faithful copies, tags and the signature.
    for destination in &world.destinations {
        for (name, image) in [("app", &app), ("tool", &tool), ("agent", &agent)] {
            hoist_testkit::validate_copy(
                &world.source.endpoint(),
                &format!("staging/{name}"),
                &destination.endpoint(),
                &format!("prod/{name}"),
                image.digest(),
            )
            .await
            .expect("a faithful copy");
            hoist_testkit::validate_tag(
                &destination.endpoint(),
                &format!("prod/{name}"),
                "v1",
                image.digest(),
            )
            .await
            .expect("the tag");
        }
        hoist_testkit::validate_tag(
            &destination.endpoint(),
            "prod/app",
            &app.signature_tag(),
            signature.digest(),
        )
        .await
        .expect("the signature came along");
    }

    // A re-run reads no blob and writes nothing anywhere.
    let reads_before = World::blob_reads(&world.source);
    let writes_before: BTreeSet<(Digest, (usize, usize, bool))> = contents
        .iter()
        .map(|(digest, content)| (*digest, world.mirror_writes(digest, content)))
        .collect();
    let again = world.hoist(&["--confirm", "--quiet", "--output", "json"]);
    assert_eq!(again.status.code(), Some(0), "{}", explain(&again));
    assert_eq!(
        World::blob_reads(&world.source),
        reads_before,
        "no blob read"
    );
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let writes_after: BTreeSet<_> = contents
        .iter()
        .map(|(digest, content)| (*digest, world.mirror_writes(digest, content)))
        .collect();
    assert_eq!(writes_after, writes_before, "no mirror write");
    assert_eq!(json(&again)["execution"]["source_reads"]["fetches"], 0);
}
