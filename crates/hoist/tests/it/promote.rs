//! `hoist promote` end to end, against real registry:2 servers on 127.0.0.1.

use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::{Duration, Instant};

use hoist_oci::Digest;
use hoist_testkit::{
    FaultProxy, Faults, Image, ImageBuilder, RegistryOptions, RegistryServer, push, signature_for,
    skopeo_inspect_raw, validate_copy, validate_tag,
};

use crate::support::{json, stdout, write};

const SOURCE_PATH: &str = "staging";
const DESTINATION_PATH: &str = "prod";

fn registry() -> RegistryServer {
    RegistryServer::start(RegistryOptions::plain()).expect("docker-registry starts")
}

/// One promotion setup: a source registry, destinations, a work directory for the manifest.
struct World {
    source: RegistryServer,
    destinations: Vec<RegistryServer>,
    dir: tempfile::TempDir,
}

impl World {
    fn new(destinations: usize) -> Self {
        Self {
            source: registry(),
            destinations: (0..destinations).map(|_| registry()).collect(),
            dir: tempfile::tempdir().unwrap(),
        }
    }

    async fn push(&self, name: &str, image: &Image, tags: &[&str]) {
        let endpoint = self.source.endpoint();
        let client = endpoint.client().unwrap();
        push(
            &client,
            &endpoint,
            &format!("{SOURCE_PATH}/{name}"),
            image,
            tags,
        )
        .await
        .expect("push to the source");
    }

    /// Writes a plain manifest promoting `images` (name, digest, tags) from `source_host`.
    fn manifest(&self, source_host: &str, images: &[(&str, Digest, &[&str])]) -> PathBuf {
        let mut text = format!("registries:\n- name: {source_host}/{SOURCE_PATH}\n  src: true\n");
        for destination in &self.destinations {
            text.push_str(&format!(
                "- name: {}/{DESTINATION_PATH}\n",
                destination.host()
            ));
        }
        text.push_str("images:\n");
        let mut names: Vec<&str> = images.iter().map(|(name, _, _)| *name).collect();
        names.dedup();
        for name in names {
            text.push_str(&format!("- name: {name}\n  dmap:\n"));
            for (_, digest, tags) in images.iter().filter(|(n, _, _)| *n == name) {
                let tags: Vec<String> = tags.iter().map(|tag| format!("\"{tag}\"")).collect();
                text.push_str(&format!("    \"{digest}\": [{}]\n", tags.join(", ")));
            }
        }
        write(self.dir.path(), "promoter-manifest.yaml", &text)
    }

    /// Runs `hoist promote --manifest M ARGS` with every server (and `extra_hosts`) insecure.
    fn promote(&self, manifest: &Path, args: &[&str], extra_hosts: &[String]) -> Output {
        let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_hoist"));
        command
            .arg("promote")
            .arg("--manifest")
            .arg(manifest)
            .args(args)
            .current_dir(self.dir.path())
            .env("NO_COLOR", "1")
            .env("DOCKER_CONFIG", self.dir.path().join("no-docker-config"));
        let hosts = std::iter::once(self.source.host())
            .chain(self.destinations.iter().map(RegistryServer::host))
            .chain(extra_hosts.iter().cloned());
        for host in hosts {
            command.arg("--insecure-registry").arg(host);
        }
        command.output().expect("hoist runs")
    }

    fn requests(&self) -> Vec<usize> {
        std::iter::once(&self.source)
            .chain(&self.destinations)
            .map(RegistryServer::request_count)
            .collect()
    }

    /// Writes (PUT, POST, PATCH, DELETE) any destination received.
    fn destination_writes(&self) -> usize {
        self.destinations
            .iter()
            .flat_map(RegistryServer::access_log)
            .filter(|entry| !matches!(entry.method.as_str(), "GET" | "HEAD"))
            .count()
    }

    async fn validate(&self, name: &str, digest: Digest, tags: &[&str]) {
        let source_repository = format!("{SOURCE_PATH}/{name}");
        let destination_repository = format!("{DESTINATION_PATH}/{name}");
        for destination in &self.destinations {
            validate_copy(
                &self.source.endpoint(),
                &source_repository,
                &destination.endpoint(),
                &destination_repository,
                digest,
            )
            .await
            .unwrap_or_else(|error| panic!("{name}@{digest} at {}: {error}", destination.host()));
            for tag in tags {
                validate_tag(
                    &destination.endpoint(),
                    &destination_repository,
                    tag,
                    digest,
                )
                .await
                .unwrap_or_else(|error| panic!("{name}:{tag}: {error}"));
            }
        }
    }
}

fn code(output: &Output) -> i32 {
    output.status.code().expect("an exit code")
}

fn explain(output: &Output) -> String {
    format!(
        "exit {:?}\nstdout:\n{}\nstderr:\n{}",
        output.status.code(),
        stdout(output),
        String::from_utf8_lossy(&output.stderr)
    )
}

fn problems(output: &Output) -> Vec<serde_json::Value> {
    json(output)["problems"]
        .as_array()
        .cloned()
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread")]
async fn first_promotion_copies_everything_and_a_rerun_only_reads() {
    let world = World::new(2);
    let shared = hoist_testkit::Layer::random(1, 300_000);
    let multi = ImageBuilder::new(2)
        .shared_layer(&shared)
        .layers(&[200_000, 100_000])
        .build_multi_arch();
    let single = ImageBuilder::new(3)
        .format(hoist_testkit::Format::Docker)
        .shared_layer(&shared)
        .layer(50_000)
        .build();
    let signature = signature_for(&multi, 4);
    world.push("multi", &multi, &["v1"]).await;
    world
        .push("multi", &signature, &[&multi.signature_tag()])
        .await;
    world.push("single", &single, &["1.0"]).await;
    let manifest = world.manifest(
        &world.source.host(),
        &[
            ("multi", multi.digest(), &["v1", "latest"]),
            ("single", single.digest(), &["1.0"]),
        ],
    );

    // The dry run: the plan, exact counts, and no write anywhere.
    let dry = world.promote(&manifest, &["--output", "json"], &[]);
    assert_eq!(code(&dry), 0, "{}", explain(&dry));
    let plan = json(&dry);
    assert_eq!(plan["executed"], false);
    let steps = plan["steps"].as_array().unwrap();
    assert_eq!(steps.len(), 4, "2 images x 2 destinations: {plan:#}");
    let multi_step = steps.iter().find(|step| step["image"] == "multi").unwrap();
    assert_eq!(multi_step["action"], "copy");
    assert_eq!(multi_step["tags"], serde_json::json!(["latest", "v1"]));
    let blobs = multi.blobs();
    assert_eq!(
        multi_step["size"]["manifests"], 3,
        "an index and two children"
    );
    assert_eq!(multi_step["size"]["blobs"], blobs.len() as u64);
    let bytes: u64 = blobs.iter().map(|blob| blob.descriptor.size).sum();
    assert_eq!(multi_step["size"]["bytes"], bytes);
    assert_eq!(world.destination_writes(), 0, "a dry run writes nothing");

    // The real run.
    let run = world.promote(&manifest, &["--confirm", "--quiet"], &[]);
    assert_eq!(code(&run), 0, "{}", explain(&run));
    assert!(
        stdout(&run).contains("done: 4 of 4 promotion(s) (digest × destination repository)"),
        "{}",
        explain(&run)
    );
    world
        .validate("multi", multi.digest(), &["v1", "latest"])
        .await;
    world.validate("single", single.digest(), &["1.0"]).await;
    // The signature travelled with its image, and skopeo agrees on the bytes.
    world
        .validate("multi", signature.digest(), &[&multi.signature_tag()])
        .await;
    let digest_text = multi.digest().to_string();
    assert_eq!(
        skopeo_inspect_raw(&world.destinations[1].endpoint(), "prod/multi", "latest")
            .await
            .unwrap(),
        skopeo_inspect_raw(&world.source.endpoint(), "staging/multi", &digest_text)
            .await
            .unwrap()
    );

    // The re-run: one HEAD per wanted tag per destination, nothing else, nothing written.
    let before = world.requests();
    let writes = world.destination_writes();
    let again = world.promote(&manifest, &["--confirm", "--output", "json"], &[]);
    assert_eq!(code(&again), 0, "{}", explain(&again));
    assert_eq!(json(&again)["steps"].as_array().unwrap().len(), 0);
    let after = world.requests();
    let made: Vec<usize> = after.iter().zip(&before).map(|(a, b)| a - b).collect();
    assert_eq!(made[0], 0, "the source is not read when nothing is copied");
    assert_eq!(made[1..], [3, 3], "3 tags per destination: {made:?}");
    assert_eq!(world.destination_writes(), writes);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_new_tag_is_added_and_a_moved_tag_is_refused() {
    let world = World::new(1);
    let first = ImageBuilder::new(10).layer(100_000).build();
    let second = ImageBuilder::new(11).layer(100_000).build();
    world.push("app", &first, &["v1"]).await;
    world.push("app", &second, &["v2"]).await;
    let host = world.source.host();
    let manifest = world.manifest(&host, &[("app", first.digest(), &["v1"])]);
    assert_eq!(
        code(&world.promote(&manifest, &["--confirm", "-q"], &[])),
        0
    );

    // A tag added to a promoted digest: only the tag is written.
    let manifest = world.manifest(&host, &[("app", first.digest(), &["v1", "stable"])]);
    let plan = world.promote(&manifest, &["--output", "json"], &[]);
    let steps = json(&plan)["steps"].as_array().cloned().unwrap();
    assert_eq!(steps.len(), 1, "{}", explain(&plan));
    assert_eq!(steps[0]["action"], "tag");
    assert_eq!(steps[0]["tags"], serde_json::json!(["stable"]));
    assert_eq!(steps[0]["tags_present"], serde_json::json!(["v1"]));
    let uploads_before = blob_uploads(&world.destinations[0]);
    let run = world.promote(&manifest, &["--confirm", "-q"], &[]);
    assert_eq!(code(&run), 0, "{}", explain(&run));
    world
        .validate("app", first.digest(), &["v1", "stable"])
        .await;
    assert_eq!(blob_uploads(&world.destinations[0]), uploads_before);

    // `stable` moved to another digest: refused, exit 1, nothing written — not even the
    // independent copy of v2.
    let manifest = world.manifest(&host, &[("app", second.digest(), &["v2", "stable"])]);
    let writes = world.destination_writes();
    let refused = world.promote(&manifest, &["--confirm", "--output", "json"], &[]);
    assert_eq!(code(&refused), 1, "{}", explain(&refused));
    let problems = problems(&refused);
    assert_eq!(problems.len(), 1, "{problems:?}");
    assert_eq!(problems[0]["kind"], "tag-move");
    assert_eq!(problems[0]["tag"], "stable");
    assert_eq!(problems[0]["current"], first.digest().to_string());
    assert_eq!(problems[0]["wanted"], second.digest().to_string());
    assert_eq!(world.destination_writes(), writes, "nothing written");
    world.validate("app", first.digest(), &["stable"]).await;
}

fn blob_uploads(server: &RegistryServer) -> usize {
    server
        .access_log()
        .iter()
        .filter(|entry| entry.method == "POST" && entry.path.contains("/blobs/uploads"))
        .count()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_digest_missing_from_the_source_is_an_error_not_a_skip() {
    let world = World::new(1);
    let present = ImageBuilder::new(20).layer(10_000).build();
    let missing = ImageBuilder::new(21).layer(10_000).build();
    world.push("app", &present, &["v1"]).await;
    let manifest = world.manifest(
        &world.source.host(),
        &[
            ("app", present.digest(), &["v1"]),
            ("app", missing.digest(), &["v2"]),
        ],
    );
    let output = world.promote(&manifest, &["--confirm", "--output", "json"], &[]);
    assert_eq!(code(&output), 1, "{}", explain(&output));
    let problems = problems(&output);
    assert_eq!(problems.len(), 1, "{problems:?}");
    assert_eq!(problems[0]["kind"], "lost");
    assert_eq!(problems[0]["digest"], missing.digest().to_string());
    assert!(
        problems[0]["location"]
            .as_str()
            .unwrap()
            .contains("promoter-manifest.yaml:"),
        "{problems:?}"
    );
    assert_eq!(world.destination_writes(), 0, "nothing written");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_frozen_destination_is_refused_before_anything_is_written() {
    let world = World::new(2);
    let image = ImageBuilder::new(30).layer(10_000).build();
    world.push("app", &image, &["v1"]).await;
    let manifest = world.manifest(&world.source.host(), &[("app", image.digest(), &["v1"])]);
    let frozen = format!("{}/{DESTINATION_PATH}", world.destinations[1].host());
    write(
        world.dir.path(),
        "policies/freeze.yaml",
        &format!(
            "freezes:\n  - destinations: [\"{frozen}\"]\n    from: 2020-01-01\n    explanation: this mirror is frozen\n"
        ),
    );
    let output = world.promote(
        &manifest,
        &["--confirm", "--policies", "policies", "--output", "json"],
        &[],
    );
    assert_eq!(code(&output), 1, "{}", explain(&output));
    let problems = problems(&output);
    assert_eq!(problems.len(), 1, "{problems:?}");
    assert_eq!(problems[0]["kind"], "refused");
    assert_eq!(problems[0]["registry"], frozen);
    assert_eq!(problems[0]["reason"], "this mirror is frozen");
    assert_eq!(
        world.destination_writes(),
        0,
        "not even the unfrozen destination"
    );

    // Text output names the rule's explanation too.
    let text = world.promote(&manifest, &["--policies", "policies"], &[]);
    assert_eq!(code(&text), 1);
    assert!(
        stdout(&text).contains("this mirror is frozen"),
        "{}",
        explain(&text)
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_corrupted_blob_fails_its_image_untagged_and_a_rerun_finishes() {
    let world = World::new(1);
    let good = ImageBuilder::new(40).layer(100_000).build();
    let bad = ImageBuilder::new(41).layer(200_000).build();
    world.push("good", &good, &["v1"]).await;
    world.push("bad", &bad, &["v1"]).await;
    let layer = bad.layers[0].digest();
    let proxy = FaultProxy::start(&world.source.host(), Faults::none().corrupt_blob(layer))
        .await
        .unwrap();
    let manifest = world.manifest(
        &proxy.host(),
        &[
            ("good", good.digest(), &["v1"]),
            ("bad", bad.digest(), &["v1"]),
        ],
    );
    let hosts = [proxy.host()];
    let output = world.promote(&manifest, &["--confirm", "--output", "json"], &hosts);
    assert_eq!(code(&output), 3, "partial failure: {}", explain(&output));
    let report = json(&output);
    let failures = report["execution"]["failures"].as_array().unwrap();
    assert_eq!(failures.len(), 1, "{report:#}");
    assert_eq!(failures[0]["step"]["image"], "bad");
    let error = failures[0]["error"].as_str().unwrap();
    assert!(error.contains(&layer.to_string()), "{error}");
    assert!(proxy.injected_count() > 0);
    // The independent image went through; the broken one is not tagged.
    world.validate("good", good.digest(), &["v1"]).await;
    let destination = world.destinations[0].endpoint();
    assert!(
        validate_tag(
            &destination,
            &format!("{DESTINATION_PATH}/bad"),
            "v1",
            bad.digest()
        )
        .await
        .is_err(),
        "nothing tagged for the corrupted image"
    );

    proxy.set_faults(Faults::none());
    let rerun = world.promote(&manifest, &["--confirm", "-q"], &hosts);
    assert_eq!(code(&rerun), 0, "{}", explain(&rerun));
    world.validate("bad", bad.digest(), &["v1"]).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_destination_killed_mid_copy_converges_on_rerun() {
    let mut world = World::new(1);
    let image = ImageBuilder::new(50)
        .layers(&[16 << 20, 16 << 20, 16 << 20])
        .build_multi_arch();
    world.push("big", &image, &["v1"]).await;
    // The source is read at 32 MB/s per connection, so the copy is still moving bytes when the
    // destination dies (on bare loopback it could finish between two looks at the log).
    let proxy = FaultProxy::start(
        &world.source.host(),
        Faults::none().bandwidth(32 * 1024 * 1024),
    )
    .await
    .unwrap();
    let manifest = world.manifest(&proxy.host(), &[("big", image.digest(), &["v1"])]);

    let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_hoist"));
    command
        .args([
            "promote",
            "--confirm",
            "--quiet",
            "--jobs",
            "1",
            "--manifest",
        ])
        .arg(&manifest)
        .current_dir(world.dir.path())
        .env("DOCKER_CONFIG", world.dir.path().join("no-docker-config"))
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    for host in [proxy.host(), world.destinations[0].host()] {
        command.arg("--insecure-registry").arg(host);
    }
    let child = command.spawn().unwrap();
    // Kill the destination once the first blob upload has started.
    let deadline = Instant::now() + Duration::from_secs(60);
    while blob_uploads(&world.destinations[0]) == 0 {
        assert!(Instant::now() < deadline, "no upload started");
        std::thread::sleep(Duration::from_millis(5));
    }
    world.destinations[0].kill();
    let output = child.wait_with_output().unwrap();
    assert_eq!(code(&output), 3, "{}", explain(&output));

    world.destinations[0].restart().unwrap();
    let destination = world.destinations[0].endpoint();
    assert!(
        validate_tag(
            &destination,
            &format!("{DESTINATION_PATH}/big"),
            "v1",
            image.digest()
        )
        .await
        .is_err(),
        "no tag after the failure"
    );
    let rerun = world.promote(&manifest, &["--confirm", "-q"], &[proxy.host()]);
    assert_eq!(code(&rerun), 0, "{}", explain(&rerun));
    world.validate("big", image.digest(), &["v1"]).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_429_with_retry_after_is_waited_for() {
    let world = World::new(1);
    let image = ImageBuilder::new(60).layer(10_000).build();
    world.push("app", &image, &["v1"]).await;
    // The destination answers its first two requests with 429 and `Retry-After: 1`.
    let proxy = FaultProxy::start(
        &world.destinations[0].host(),
        Faults::none().throttle_first(2, 1),
    )
    .await
    .unwrap();
    let mut text = format!(
        "registries:\n- name: {}/{SOURCE_PATH}\n  src: true\n- name: {}/{DESTINATION_PATH}\n",
        world.source.host(),
        proxy.host()
    );
    text.push_str(&format!(
        "images:\n- name: app\n  dmap:\n    \"{}\": [\"v1\"]\n",
        image.digest()
    ));
    let manifest = write(world.dir.path(), "throttled.yaml", &text);
    let started = Instant::now();
    let output = world.promote(&manifest, &["--confirm", "-q"], &[proxy.host()]);
    let elapsed = started.elapsed();
    assert_eq!(code(&output), 0, "{}", explain(&output));
    assert_eq!(proxy.injected_count(), 2);
    assert!(
        elapsed >= Duration::from_secs(1),
        "Retry-After: 1 was waited for ({elapsed:?})"
    );
    world.validate("app", image.digest(), &["v1"]).await;
}
