//! Per-project isolation and `--since`, end to end against real registry:2 servers on 127.0.0.1.

use std::path::Path;
use std::process::Output;

use hoist_oci::Digest;
use hoist_testkit::{
    Image, ImageBuilder, RegistryOptions, RegistryServer, push, validate_copy, validate_tag,
};

use crate::support::{git, json, repository, stdout, write};

const SOURCE_PATH: &str = "staging";
const DESTINATION_PATH: &str = "prod";

struct World {
    source: RegistryServer,
    destination: RegistryServer,
}

impl World {
    fn new() -> Self {
        let start = || RegistryServer::start(RegistryOptions::plain()).expect("registry starts");
        Self {
            source: start(),
            destination: start(),
        }
    }

    async fn push(&self, server: &RegistryServer, repository: &str, image: &Image, tags: &[&str]) {
        let endpoint = server.endpoint();
        let client = endpoint.client().unwrap();
        push(&client, &endpoint, repository, image, tags)
            .await
            .expect("push");
    }

    /// A thin project `name` promoting `image` (`(digest, tags)` lines) from the source.
    fn project(&self, dir: &Path, name: &str, image: &str, dmap: &[(Digest, &[&str])]) {
        write(
            dir,
            &format!("reg/manifests/{name}/promoter-manifest.yaml"),
            &format!(
                "registries:\n- name: {}/{SOURCE_PATH}\n  src: true\n- name: {}/{DESTINATION_PATH}\n",
                self.source.host(),
                self.destination.host()
            ),
        );
        let mut text = format!("- name: {image}\n  dmap:\n");
        for (digest, tags) in dmap {
            let tags: Vec<String> = tags.iter().map(|tag| format!("\"{tag}\"")).collect();
            text.push_str(&format!("    \"{digest}\": [{}]\n", tags.join(", ")));
        }
        write(dir, &format!("reg/images/{name}/images.yaml"), &text);
    }

    fn hoist(&self, dir: &Path, args: &[&str]) -> Output {
        let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_hoist"));
        command
            .args(args)
            .args(["--thin-manifest-dir", "reg"])
            .current_dir(dir)
            .env("NO_COLOR", "1")
            .env("DOCKER_CONFIG", dir.join("no-docker-config"));
        for host in [self.source.host(), self.destination.host()] {
            command.arg("--insecure-registry").arg(host);
        }
        command.output().expect("hoist runs")
    }

    fn destination_writes(&self) -> Vec<String> {
        self.destination
            .access_log()
            .into_iter()
            .filter(|entry| !matches!(entry.method.as_str(), "GET" | "HEAD"))
            .map(|entry| format!("{} {}", entry.method, entry.path))
            .collect()
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
async fn a_tag_move_refuses_its_project_and_the_other_is_promoted() {
    let world = World::new();
    let dir = tempfile::tempdir().unwrap();
    let alpha = ImageBuilder::new(70)
        .layers(&[40_000, 20_000])
        .build_multi_arch();
    let beta = ImageBuilder::new(71).layer(30_000).build();
    let already = ImageBuilder::new(72).layer(10_000).build();
    world
        .push(&world.source, "staging/alpha", &alpha, &["v1"])
        .await;
    world
        .push(&world.source, "staging/beta", &beta, &["v1"])
        .await;
    // beta's v1 already names another image in production: promoting would move it.
    world
        .push(&world.destination, "prod/beta", &already, &["v1"])
        .await;
    world.project(dir.path(), "alpha", "alpha", &[(alpha.digest(), &["v1"])]);
    world.project(dir.path(), "beta", "beta", &[(beta.digest(), &["v1"])]);
    let writes_before = world.destination_writes().len();

    // The dry run already says which project is refused, and writes nothing.
    let dry = world.hoist(dir.path(), &["promote"]);
    assert_eq!(dry.status.code(), Some(1), "{}", explain(&dry));
    let text = stdout(&dry);
    let refused_at = text.find("refused: 1 project(s)").expect("refused listed");
    let plan_at = text.find("hoist promote:").expect("the plan");
    assert!(refused_at < plan_at, "refused projects come first: {text}");
    assert!(text.contains("  beta ("), "{text}");
    assert!(text.contains("tag move refused"), "{text}");
    assert!(
        text.contains(&format!("copy alpha@{}", alpha.digest())),
        "{text}"
    );
    assert!(!text.contains(&format!("beta@{}", beta.digest())), "{text}");
    assert_eq!(world.destination_writes().len(), writes_before);

    let run = world.hoist(
        dir.path(),
        &["promote", "--confirm", "--quiet", "--output", "json"],
    );
    assert_eq!(run.status.code(), Some(1), "{}", explain(&run));
    let report = json(&run);
    let projects = report["projects"].as_array().unwrap();
    assert_eq!(projects.len(), 2, "{report:#}");
    assert_eq!(projects[0]["name"], "beta");
    assert_eq!(projects[0]["status"], "refused");
    assert_eq!(projects[0]["problems"][0]["kind"], "tag-move");
    assert_eq!(projects[1]["name"], "alpha");
    assert_eq!(projects[1]["status"], "ok");
    assert_eq!(report["execution"]["completed"], 1, "{report:#}");

    // alpha is in production, byte for byte; beta's repository is as it was.
    validate_copy(
        &world.source.endpoint(),
        "staging/alpha",
        &world.destination.endpoint(),
        "prod/alpha",
        alpha.digest(),
    )
    .await
    .unwrap();
    validate_tag(
        &world.destination.endpoint(),
        "prod/alpha",
        "v1",
        alpha.digest(),
    )
    .await
    .unwrap();
    validate_tag(
        &world.destination.endpoint(),
        "prod/beta",
        "v1",
        already.digest(),
    )
    .await
    .unwrap();
    let beta_writes: Vec<String> = world
        .destination_writes()
        .into_iter()
        .skip(writes_before)
        .filter(|line| line.contains("/prod/beta/"))
        .collect();
    assert!(
        beta_writes.is_empty(),
        "nothing written for beta: {beta_writes:?}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_conflict_between_two_projects_refuses_both_and_not_a_third() {
    let world = World::new();
    let dir = tempfile::tempdir().unwrap();
    let one = ImageBuilder::new(73).layer(10_000).build();
    let two = ImageBuilder::new(74).layer(10_000).build();
    let three = ImageBuilder::new(75).layer(10_000).build();
    for (repository, image) in [
        ("staging/shared", &one),
        ("staging/shared", &two),
        ("staging/solo", &three),
    ] {
        world.push(&world.source, repository, image, &[]).await;
    }
    world.project(dir.path(), "left", "shared", &[(one.digest(), &["v1"])]);
    world.project(dir.path(), "right", "shared", &[(two.digest(), &["v1"])]);
    world.project(dir.path(), "solo", "solo", &[(three.digest(), &["v3"])]);
    let run = world.hoist(
        dir.path(),
        &["promote", "--confirm", "--quiet", "--output", "json"],
    );
    assert_eq!(run.status.code(), Some(1), "{}", explain(&run));
    let report = json(&run);
    let status: Vec<(String, String)> = report["projects"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (
                p["name"].as_str().unwrap().to_owned(),
                p["status"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert_eq!(
        status,
        [
            ("left".to_owned(), "refused".to_owned()),
            ("right".to_owned(), "refused".to_owned()),
            ("solo".to_owned(), "ok".to_owned()),
        ]
    );
    assert_eq!(report["projects"][0]["errors"][0]["kind"], "conflict");
    validate_tag(
        &world.destination.endpoint(),
        "prod/solo",
        "v3",
        three.digest(),
    )
    .await
    .unwrap();
    assert!(
        world
            .destination_writes()
            .iter()
            .all(|line| !line.contains("/prod/shared/")),
        "{:?}",
        world.destination_writes()
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn since_reads_and_writes_only_what_the_change_added() {
    let world = World::new();
    let alpha = ImageBuilder::new(80).layer(20_000).build();
    let alpha2 = ImageBuilder::new(81).layers(&[20_000, 5_000]).build();
    let beta = ImageBuilder::new(82).layer(20_000).build();
    world
        .push(&world.source, "staging/alpha", &alpha, &["v1"])
        .await;
    world
        .push(&world.source, "staging/alpha", &alpha2, &["v2"])
        .await;
    world
        .push(&world.source, "staging/beta", &beta, &["v1"])
        .await;
    let repo = repository(|dir| {
        world.project(dir, "alpha", "alpha", &[(alpha.digest(), &["v1"])]);
        world.project(dir, "beta", "beta", &[(beta.digest(), &["v1"])]);
    });
    let first = world.hoist(repo.path(), &["promote", "--confirm", "--quiet"]);
    assert_eq!(first.status.code(), Some(0), "{}", explain(&first));

    // One merge adds a digest to alpha.
    world.project(
        repo.path(),
        "alpha",
        "alpha",
        &[(alpha.digest(), &["v1"]), (alpha2.digest(), &["v2"])],
    );
    git(repo.path(), &["commit", "-qam", "alpha v2"]);

    let (source_before, destination_before) = (
        world.source.access_log().len(),
        world.destination.access_log().len(),
    );
    let dry = world.hoist(
        repo.path(),
        &["promote", "--since", "HEAD~1", "--output", "json"],
    );
    assert_eq!(dry.status.code(), Some(0), "{}", explain(&dry));
    let steps = json(&dry)["steps"].as_array().cloned().unwrap();
    assert_eq!(steps.len(), 1, "{steps:#?}");
    assert_eq!(steps[0]["digest"], alpha2.digest().to_string());
    let run = world.hoist(
        repo.path(),
        &["promote", "--since", "HEAD~1", "--confirm", "--quiet"],
    );
    assert_eq!(run.status.code(), Some(0), "{}", explain(&run));
    validate_copy(
        &world.source.endpoint(),
        "staging/alpha",
        &world.destination.endpoint(),
        "prod/alpha",
        alpha2.digest(),
    )
    .await
    .unwrap();

    // The access logs: only alpha's new edge was asked about, at both ends.
    let source: Vec<String> = world.source.access_log()[source_before..]
        .iter()
        .map(|entry| format!("{} {}", entry.method, entry.path))
        .collect();
    let destination: Vec<String> = world.destination.access_log()[destination_before..]
        .iter()
        .map(|entry| format!("{} {}", entry.method, entry.path))
        .collect();
    for line in source.iter().chain(&destination) {
        assert!(
            !line.contains("/beta/") && !line.contains(&alpha.digest().to_string()),
            "a request for an edge the change did not add: {line}\nsource: {source:#?}\ndestination: {destination:#?}"
        );
    }
    // Both runs asked about the added tag.
    let tag_heads = destination
        .iter()
        .filter(|line| line.starts_with("HEAD ") && line.ends_with("/prod/alpha/manifests/v2"))
        .count();
    assert!(tag_heads >= 2, "{destination:#?}");

    // Without --since, the full reconcile asks about beta and alpha v1 too.
    let before = world.destination.access_log().len();
    let full = world.hoist(repo.path(), &["promote"]);
    assert_eq!(full.status.code(), Some(0), "{}", explain(&full));
    let full_requests: Vec<String> = world.destination.access_log()[before..]
        .iter()
        .map(|entry| entry.path.clone())
        .collect();
    assert!(
        full_requests
            .iter()
            .any(|path| path.contains("/prod/beta/"))
    );

    // audit --since checks only the added image; mirror --since is covered by the same selection.
    let audit = world.hoist(
        repo.path(),
        &["audit", "--since", "HEAD~1", "--output", "json"],
    );
    assert_eq!(audit.status.code(), Some(0), "{}", explain(&audit));
    let rows = json(&audit)["rows"].as_array().cloned().unwrap();
    assert_eq!(rows.len(), 1, "{rows:#?}");
    assert_eq!(rows[0]["digest"], alpha2.digest().to_string());

    // mirror --since fills a mirror with the added image's blobs only.
    write(
        repo.path(),
        "backends.yaml",
        "backends:\n- name: local\n  url: file:mirror\n",
    );
    let mirror = world.hoist(
        repo.path(),
        &[
            "mirror",
            "--since",
            "HEAD~1",
            "--backends",
            "backends.yaml",
            "--confirm",
        ],
    );
    assert_eq!(mirror.status.code(), Some(0), "{}", explain(&mirror));
    let mirrored: std::collections::BTreeSet<String> =
        std::fs::read_dir(repo.path().join("mirror/containers/images"))
            .unwrap()
            .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
    let blobs = |image: &Image| -> std::collections::BTreeSet<String> {
        image
            .blobs()
            .iter()
            .map(|blob| blob.digest().to_string())
            .collect()
    };
    assert_eq!(mirrored, blobs(&alpha2));
    std::fs::remove_file(repo.path().join("backends.yaml")).unwrap();

    // Nothing added since HEAD: nothing to do, nothing asked.
    let before = (
        world.source.access_log().len(),
        world.destination.access_log().len(),
    );
    let none = world.hoist(repo.path(), &["promote", "--since", "HEAD", "--confirm"]);
    assert_eq!(none.status.code(), Some(0), "{}", explain(&none));
    assert_eq!(
        (
            world.source.access_log().len(),
            world.destination.access_log().len()
        ),
        before
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn mirror_fills_the_valid_projects_and_refuses_the_invalid_one() {
    let world = World::new();
    let dir = tempfile::tempdir().unwrap();
    let alpha = ImageBuilder::new(90).layer(15_000).build();
    let beta = ImageBuilder::new(91).layer(15_000).build();
    world
        .push(&world.source, "staging/alpha", &alpha, &["v1"])
        .await;
    world
        .push(&world.source, "staging/beta", &beta, &["v1"])
        .await;
    world.project(dir.path(), "alpha", "alpha", &[(alpha.digest(), &["v1"])]);
    world.project(dir.path(), "beta", "beta", &[(beta.digest(), &["v1"])]);
    // beta's images file gains a line that is not valid: its project is refused.
    let beta_images = dir.path().join("reg/images/beta/images.yaml");
    let text = std::fs::read_to_string(&beta_images).unwrap();
    std::fs::write(&beta_images, format!("{text}    \"not-a-digest\": []\n")).unwrap();
    write(
        dir.path(),
        "backends.yaml",
        "backends:\n- name: local\n  url: file:mirror\n",
    );
    let output = world.hoist(
        dir.path(),
        &[
            "mirror",
            "--backends",
            "backends.yaml",
            "--confirm",
            "--output",
            "json",
        ],
    );
    assert_eq!(output.status.code(), Some(1), "{}", explain(&output));
    let report = json(&output);
    assert_eq!(report["projects"][0]["name"], "beta");
    assert_eq!(report["projects"][0]["status"], "refused");
    assert_eq!(report["projects"][1]["status"], "ok");
    let held = |image: &Image| {
        image
            .blobs()
            .iter()
            .filter(|blob| {
                dir.path()
                    .join("mirror/containers/images")
                    .join(blob.digest().to_string())
                    .is_file()
            })
            .count()
    };
    assert_eq!(held(&alpha), alpha.blobs().len(), "alpha is mirrored");
    assert_eq!(held(&beta), 0, "nothing of beta is mirrored");
}

#[tokio::test(flavor = "multi_thread")]
async fn audit_checks_the_valid_projects_and_names_the_invalid_one() {
    let world = World::new();
    let dir = tempfile::tempdir().unwrap();
    let alpha = ImageBuilder::new(92).layer(15_000).build();
    let beta = ImageBuilder::new(93).layer(15_000).build();
    for (repository, image) in [("alpha", &alpha), ("beta", &beta)] {
        world
            .push(
                &world.source,
                &format!("staging/{repository}"),
                image,
                &["v1"],
            )
            .await;
        world
            .push(
                &world.destination,
                &format!("prod/{repository}"),
                image,
                &["v1"],
            )
            .await;
    }
    world.project(dir.path(), "alpha", "alpha", &[(alpha.digest(), &["v1"])]);
    world.project(dir.path(), "beta", "beta", &[(beta.digest(), &["v1"])]);
    // Both promoted and in place: the audit passes.
    let clean = world.hoist(dir.path(), &["audit", "--output", "json"]);
    assert_eq!(clean.status.code(), Some(0), "{}", explain(&clean));
    // beta's images file gains a line that is not valid: beta is not audited, alpha still is,
    // and the audit fails naming beta.
    let beta_images = dir.path().join("reg/images/beta/images.yaml");
    let text = std::fs::read_to_string(&beta_images).unwrap();
    std::fs::write(&beta_images, format!("{text}    \"not-a-digest\": []\n")).unwrap();
    let output = world.hoist(dir.path(), &["audit", "--output", "json"]);
    assert_eq!(output.status.code(), Some(1), "{}", explain(&output));
    let report = json(&output);
    assert_eq!(report["ok"], false);
    assert_eq!(report["projects"][0]["name"], "beta");
    assert_eq!(report["projects"][0]["status"], "refused");
    assert_eq!(report["projects"][1]["name"], "alpha");
    assert_eq!(report["projects"][1]["status"], "ok");
    let rows = report["rows"].as_array().cloned().unwrap();
    let audited: Vec<(&str, &str)> = rows
        .iter()
        .map(|row| {
            (
                row["image"].as_str().unwrap(),
                row["status"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(audited, vec![("alpha", "ok")], "{rows:?}");
    assert!(
        report["errors"]
            .as_array()
            .unwrap()
            .iter()
            .any(|error| error.to_string().contains("beta")),
        "{}",
        report["errors"]
    );
    // The text report says so first.
    let text = world.hoist(dir.path(), &["audit"]);
    assert_eq!(text.status.code(), Some(1), "{}", explain(&text));
    let printed = stdout(&text);
    assert!(
        printed.starts_with("refused: 1 project(s); their destinations and blobs are not audited"),
        "{printed}"
    );
    assert!(printed.contains("alpha"), "{printed}");
}
