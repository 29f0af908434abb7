//! File promotion end to end: `hoist promote-files`, and `hoist check` / `hoist audit` with file
//! manifests, against s3s-fs (S3), fake-gcs-server (GCS) and directories (`file:`) on 127.0.0.1.

use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::SystemTime;

use hoist_testkit::{GcsServer, S3Server};

use crate::support::{json, stdout, write};

const STAGING: &str = "k8s-staging-tool";
const PROD: &str = "k8s-artifacts-prod";

fn sha256_hex(content: &[u8]) -> String {
    hoist_oci::Digest::of(content).hex()
}

/// An S3 and a GCS server, a work directory, and the manifests in it.
struct World {
    s3: S3Server,
    gcs: GcsServer,
    dir: tempfile::TempDir,
}

impl World {
    async fn start() -> Self {
        let world = Self {
            s3: S3Server::start().expect("s3s-fs"),
            gcs: GcsServer::start().expect("fake-gcs-server"),
            dir: tempfile::tempdir().unwrap(),
        };
        for bucket in [STAGING, PROD] {
            world.s3.create_bucket(bucket).unwrap();
            world.gcs.create_bucket(bucket).await.unwrap();
        }
        world
    }

    fn root(&self) -> &Path {
        self.dir.path()
    }

    /// Runs `hoist ARGS` in the work directory with the S3 credentials in the environment, as
    /// the AWS chain reads them, and `env` on top.
    fn hoist(&self, args: &[&str], env: &[(&str, String)]) -> Output {
        let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_hoist"));
        command
            .args(args)
            .current_dir(self.root())
            .env("NO_COLOR", "1")
            .env("AWS_ACCESS_KEY_ID", self.s3.access_key())
            .env("AWS_SECRET_ACCESS_KEY", self.s3.secret_key())
            .env("AWS_REGION", "us-east-1")
            .env("AWS_EC2_METADATA_DISABLED", "true")
            .env_remove("AWS_PROFILE")
            .env_remove("AWS_ENDPOINT_URL")
            .env_remove("AWS_ENDPOINT_URL_S3")
            .env_remove("STORAGE_EMULATOR_HOST");
        for (key, value) in env {
            command.env(key, value);
        }
        command.output().expect("hoist runs")
    }

    /// An object in the staging S3 bucket, written behind the server's back.
    fn stage_s3(&self, key: &str, content: &[u8]) {
        let path = self.s3.object_path(STAGING, key);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, content).unwrap();
    }

    /// What the three destinations of [`Self::split_manifests`] hold at `name`: GCS, the
    /// directory, S3.
    async fn held(&self, name: &str) -> [Option<Vec<u8>>; 3] {
        let key = format!("binaries/tool/{name}");
        [
            self.gcs
                .get_object(PROD, &key)
                .await
                .unwrap()
                .map(|bytes| bytes.to_vec()),
            std::fs::read(self.root().join("prod").join(name)).ok(),
            std::fs::read(self.s3.object_path(PROD, &key)).ok(),
        ]
    }

    /// `filestores.yaml` (source: S3 staging; destinations GCS, a directory, S3 prod, each with
    /// its endpoint) and `files.yaml` listing `files`.
    fn split_manifests(&self, files: &[(&str, String)]) -> (PathBuf, PathBuf) {
        let filestores = write(
            self.root(),
            "filestores.yaml",
            &format!(
                "filestores:\n\
                 - base: s3://{STAGING}/releases/\n  src: true\n  endpoint: {s3}\n  pathStyle: true\n\
                 - base: gs://{PROD}/binaries/tool/\n  service-account: promoter@example.iam.gserviceaccount.com\n  endpoint: {gcs}\n\
                 - base: file:prod\n\
                 - base: s3://{PROD}/binaries/tool\n  endpoint: {s3}\n  pathStyle: true\n",
                s3 = self.s3.endpoint_url(),
                gcs = self.gcs.endpoint_url(),
            ),
        );
        (
            filestores,
            write(self.root(), "files.yaml", &file_list(files)),
        )
    }
}

fn file_list(files: &[(&str, String)]) -> String {
    let mut text = String::from("files:\n");
    for (name, sha) in files {
        text.push_str(&format!("- name: {name}\n  sha256: {sha}\n"));
    }
    text
}

fn modified(path: &Path) -> SystemTime {
    std::fs::metadata(path).unwrap().modified().unwrap()
}

const SPLIT: [&str; 4] = ["--filestores", "filestores.yaml", "--files", "files.yaml"];

fn with<'a>(command: &'a str, extra: &[&'a str]) -> Vec<&'a str> {
    let mut args = vec![command];
    args.extend(SPLIT);
    args.extend(extra);
    args
}

#[tokio::test]
async fn promote_files_copies_once_verified_and_never_overwrites() {
    let world = World::start().await;
    let tool: Vec<u8> = (0..5 * 1024 * 1024 + 3).map(|i| (i % 251) as u8).collect();
    let sums = b"kubectl.sha256 kubectl\n".to_vec();
    world.stage_s3("releases/v1.30.0/bin/linux/amd64/kubectl", &tool);
    world.stage_s3("releases/v1.30.0/SHA256SUMS", &sums);
    world.split_manifests(&[
        ("v1.30.0/bin/linux/amd64/kubectl", sha256_hex(&tool)),
        ("v1.30.0/SHA256SUMS", sha256_hex(&sums)),
    ]);

    // The presubmit: valid, offline.
    let checked = world.hoist(&with("check", &[]), &[]);
    assert_eq!(checked.status.code(), Some(0), "{}", stdout(&checked));
    assert!(stdout(&checked).contains("2 file(s) -> 3 destination filestore(s), 6 object(s)"));

    // Dry run: the plan, nothing written.
    let dry = world.hoist(&with("promote-files", &[]), &[]);
    let text = stdout(&dry);
    assert_eq!(
        dry.status.code(),
        Some(0),
        "{text}\n{}",
        String::from_utf8_lossy(&dry.stderr)
    );
    assert!(text.contains("2 to copy"), "{text}");
    assert!(text.contains("dry run: nothing written"), "{text}");
    assert_eq!(world.held("v1.30.0/SHA256SUMS").await, [None, None, None]);

    // --confirm: every file in every destination, byte for byte.
    let confirmed = world.hoist(&with("promote-files", &["--confirm"]), &[]);
    let text = stdout(&confirmed);
    assert_eq!(
        confirmed.status.code(),
        Some(0),
        "{text}\n{}",
        String::from_utf8_lossy(&confirmed.stderr)
    );
    assert!(text.contains("done: 6 file(s) written"), "{text}");
    for held in world.held("v1.30.0/bin/linux/amd64/kubectl").await {
        assert_eq!(held.as_deref(), Some(tool.as_slice()));
    }
    for held in world.held("v1.30.0/SHA256SUMS").await {
        assert_eq!(held.as_deref(), Some(sums.as_slice()));
    }

    // Re-run: nothing to write, and nothing is written.
    let watched = [
        world.root().join("prod/v1.30.0/SHA256SUMS"),
        world
            .s3
            .object_path(PROD, "binaries/tool/v1.30.0/bin/linux/amd64/kubectl"),
    ];
    let before: Vec<SystemTime> = watched.iter().map(|path| modified(path)).collect();
    let again = world.hoist(
        &with("promote-files", &["--confirm", "--output", "json"]),
        &[],
    );
    assert_eq!(again.status.code(), Some(0), "{}", stdout(&again));
    let report = json(&again);
    assert_eq!(report["ok"], true);
    assert!(
        report["steps"]
            .as_array()
            .unwrap()
            .iter()
            .all(|step| step["action"] == "present"),
        "{report:#}"
    );
    assert_eq!(report["copies"].as_array().unwrap().len(), 0);
    let after: Vec<SystemTime> = watched.iter().map(|path| modified(path)).collect();
    assert_eq!(before, after);

    // The audit proves every destination holds the right bytes.
    let audited = world.hoist(&with("audit", &["--output", "json"]), &[]);
    assert_eq!(audited.status.code(), Some(0), "{}", stdout(&audited));
    let report = json(&audited);
    assert_eq!(report["findings"].as_array().unwrap().len(), 6);
    assert_eq!(report["ok"], true);

    // Someone replaces the GCS copy with other bytes of the same size.
    let mut other = sums.clone();
    other[0] ^= 0x20;
    world
        .gcs
        .put_object(PROD, "binaries/tool/v1.30.0/SHA256SUMS", other.clone())
        .await
        .unwrap();
    let dry = world.hoist(&with("promote-files", &[]), &[]);
    let text = stdout(&dry);
    assert_eq!(dry.status.code(), Some(1), "{text}");
    assert!(
        text.contains(&format!(
            "mismatched     gs://{PROD}/binaries/tool/v1.30.0/SHA256SUMS"
        )),
        "{text}"
    );
    assert!(text.contains("never overwritten"), "{text}");
    let confirmed = world.hoist(&with("promote-files", &["--confirm"]), &[]);
    assert_eq!(confirmed.status.code(), Some(1), "{}", stdout(&confirmed));
    assert_eq!(
        world.held("v1.30.0/SHA256SUMS").await[0].as_deref(),
        Some(other.as_slice()),
        "never overwritten"
    );
    let audited = world.hoist(&with("audit", &[]), &[]);
    let text = stdout(&audited);
    assert_eq!(audited.status.code(), Some(1), "{text}");
    assert!(
        text.contains(&format!(
            "mismatched gs://{PROD}/binaries/tool/v1.30.0/SHA256SUMS"
        )),
        "{text}"
    );
    assert!(text.contains(&sha256_hex(&other)), "{text}");

    // A destination file deleted behind hoist's back is missing for the audit, and the next
    // promotion puts it back.
    std::fs::remove_file(world.root().join("prod/v1.30.0/SHA256SUMS")).unwrap();
    let audited = world.hoist(&with("audit", &[]), &[]);
    assert!(
        stdout(&audited).contains("missing    file:prod/v1.30.0/SHA256SUMS"),
        "{}",
        stdout(&audited)
    );
    let confirmed = world.hoist(&with("promote-files", &["--confirm"]), &[]);
    assert!(
        stdout(&confirmed).contains("done: 1 file(s) written"),
        "{}",
        stdout(&confirmed)
    );
    assert_eq!(
        std::fs::read(world.root().join("prod/v1.30.0/SHA256SUMS")).unwrap(),
        sums
    );
}

#[tokio::test]
async fn a_wrong_sha256_in_the_source_refuses_that_file_and_writes_nothing() {
    let world = World::start().await;
    let real = b"the binary the release manager built".to_vec();
    let swapped = b"a different binary of the same length".to_vec();
    world.stage_s3("releases/v2/tool", &swapped);
    world.stage_s3("releases/v2/README", b"read me\n");
    world.split_manifests(&[
        ("v2/tool", sha256_hex(&real)),
        ("v2/README", sha256_hex(b"read me\n")),
    ]);
    let confirmed = world.hoist(&with("promote-files", &["--confirm"]), &[]);
    let text = stdout(&confirmed);
    assert_eq!(confirmed.status.code(), Some(1), "{text}");
    assert!(text.contains("source-mismatch"), "{text}");
    assert!(
        text.contains("do not match the manifest's sha256"),
        "{text}"
    );
    assert_eq!(
        world.held("v2/tool").await,
        [None, None, None],
        "nothing written"
    );
    // The other file of the same manifest was promoted.
    for held in world.held("v2/README").await {
        assert_eq!(held.as_deref(), Some(&b"read me\n"[..]));
    }
    // No temporary file was left in the directory destination.
    let leftovers: Vec<_> = std::fs::read_dir(world.root().join("prod/v2"))
        .unwrap()
        .flatten()
        .map(|entry| entry.file_name())
        .collect();
    assert_eq!(leftovers, ["README"]);

    // A file missing from the source (and from the destinations) is refused too.
    world.split_manifests(&[("v2/absent", sha256_hex(b"x"))]);
    let dry = world.hoist(&with("promote-files", &[]), &[]);
    assert_eq!(dry.status.code(), Some(1), "{}", stdout(&dry));
    assert!(stdout(&dry).contains("missing-source"), "{}", stdout(&dry));
}

#[tokio::test]
async fn endpoints_can_come_from_the_environment_and_the_multi_project_layout_works() {
    // kpromo's own manifests name only the bucket: the emulators are reached through the
    // variables the cloud SDKs read (AWS_ENDPOINT_URL, STORAGE_EMULATOR_HOST).
    let world = World::start().await;
    let content = b"cri-tools release".to_vec();
    world
        .gcs
        .put_object(STAGING, "releases/v1.0/crictl.tar.gz", content.clone())
        .await
        .unwrap();
    write(
        world.root(),
        "artifacts/filestores/k8s-staging-cri-tools/filepromoter-manifest.yaml",
        &format!(
            "# STAGING PROJECT\nfilestores:\n- base: gs://{STAGING}/releases/\n  src: true\n\
             - base: s3://{PROD}/binaries/cri-tools/\n  service-account: k8s-infra-promoter@k8s-artifacts-prod.iam.gserviceaccount.com\n"
        ),
    );
    write(
        world.root(),
        "artifacts/manifests/k8s-staging-cri-tools/v1.0.yaml",
        &file_list(&[("v1.0/crictl.tar.gz", sha256_hex(&content))]),
    );
    write(
        world.root(),
        "artifacts/manifests/k8s-staging-cri-tools/OWNERS",
        "approvers: []\n",
    );
    let env = [
        ("AWS_ENDPOINT_URL", world.s3.endpoint_url()),
        (
            "STORAGE_EMULATOR_HOST",
            world
                .gcs
                .endpoint_url()
                .trim_start_matches("http://")
                .to_owned(),
        ),
    ];
    let layout = ["--manifests", "artifacts"];
    let checked = world.hoist(&["check", layout[0], layout[1]], &[]);
    assert_eq!(checked.status.code(), Some(0), "{}", stdout(&checked));
    let confirmed = world.hoist(&["promote-files", layout[0], layout[1], "--confirm"], &env);
    assert_eq!(
        confirmed.status.code(),
        Some(0),
        "{}\n{}",
        stdout(&confirmed),
        String::from_utf8_lossy(&confirmed.stderr)
    );
    assert_eq!(
        std::fs::read(
            world
                .s3
                .object_path(PROD, "binaries/cri-tools/v1.0/crictl.tar.gz")
        )
        .unwrap(),
        content
    );
    let audited = world.hoist(&["audit", layout[0], layout[1]], &env);
    assert_eq!(audited.status.code(), Some(0), "{}", stdout(&audited));
    assert!(
        stdout(&audited).contains("audit (files): ok"),
        "{}",
        stdout(&audited)
    );
}

#[test]
fn bad_file_manifests_exit_1_naming_file_and_key() {
    let dir = tempfile::tempdir().unwrap();
    let good_stores = "filestores:\n- base: gs://a-bucket\n  src: true\n- base: file:out\n";
    let good_files = file_list(&[(
        "tool",
        "4f2f040fa2bfe9bea64911a2a756e8a1727a8bfd757c5e031631a6e699fcf246".into(),
    )]);
    let cases: &[(&str, &str, &str)] = &[
        (
            "filestores:\n- base: gs://a-bucket\n  src: yes\n- base: file:out\n",
            "",
            "filestores.yaml:3:8: error[file-manifest]: filestores[0].src: expected true or false",
        ),
        (
            "filestores:\n- base: gs://a-bucket\n- base: file:out\n",
            "",
            "filestores.yaml:1:1: error[file-manifest]: filestores: no source filestore",
        ),
        (
            "filestores:\n- base: ftp://a-bucket\n  src: true\n- base: file:out\n",
            "",
            "filestores.yaml:2:9: error[file-manifest]: filestores[0].base: unsupported base",
        ),
        (
            "",
            "files:\n- name: ../../etc/passwd\n  sha256: 4f2f040fa2bfe9bea64911a2a756e8a1727a8bfd757c5e031631a6e699fcf246\n",
            "files.yaml:2:9: error[file-manifest]: files[0].name: invalid file name",
        ),
        (
            "",
            "files:\n- name: tool\n  sha256: 4f2f040f\n",
            "files.yaml:3:11: error[file-manifest]: files[0].sha256: invalid sha256: 8 characters",
        ),
        (
            "",
            "files:\n- name: tool\n  sha265: 4f2f040fa2bfe9bea64911a2a756e8a1727a8bfd757c5e031631a6e699fcf246\n",
            "files.yaml:3:3: error[file-manifest]: files[0].sha265: unknown key",
        ),
    ];
    for (stores, files, expected) in cases {
        write(
            dir.path(),
            "filestores.yaml",
            if stores.is_empty() {
                good_stores
            } else {
                stores
            },
        );
        write(
            dir.path(),
            "files.yaml",
            if files.is_empty() { &good_files } else { files },
        );
        for command in ["check", "promote-files", "audit"] {
            let output = crate::support::hoist(dir.path(), &with(command, &[]));
            let text = stdout(&output);
            assert_eq!(output.status.code(), Some(1), "{command}: {text}");
            assert!(
                text.contains(expected),
                "{command}: expected {expected:?} in\n{text}"
            );
        }
        // Nothing was written anywhere.
        assert!(!dir.path().join("out").exists());
    }
    // JSON carries file, line, key and value.
    write(dir.path(), "filestores.yaml", good_stores);
    write(
        dir.path(),
        "files.yaml",
        "files:\n- name: tool\n  sha256: nothex\n",
    );
    let output = crate::support::hoist(dir.path(), &with("check", &["--output", "json"]));
    let report = json(&output);
    assert_eq!(report["ok"], false);
    let error = &report["errors"][0];
    assert_eq!(error["file"], "files.yaml");
    assert_eq!(error["line"], 3);
    assert_eq!(error["key"], "files[0].sha256");
    assert_eq!(error["value"], "nothex");
    // Flags: --files needs --filestores; nothing named at all is a usage error.
    let output = crate::support::hoist(dir.path(), &["promote-files", "--files", "files.yaml"]);
    assert_eq!(output.status.code(), Some(2));
    let output = crate::support::hoist(dir.path(), &["promote-files"]);
    assert_eq!(output.status.code(), Some(2));
}
