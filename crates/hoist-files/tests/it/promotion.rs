//! Promotions and audits against real stores: the source is a directory, the destinations are
//! s3s-fs, fake-gcs-server and another directory.

use std::path::Path;

use hoist_files::{
    CopyOutcome, FileAction, FileInput, FileManifest, FileStatus, audit, execute, load,
    open_buckets, plan,
};
use hoist_object::{OpenOptions, S3Credentials};
use hoist_testkit::{GcsServer, S3Server};

use crate::{sha256_hex, write};

const BUCKET: &str = "k8s-artifacts-prod";

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
        world.s3.create_bucket(BUCKET).unwrap();
        world.gcs.create_bucket(BUCKET).await.unwrap();
        world
    }

    fn root(&self) -> &Path {
        self.dir.path()
    }

    /// A file in the source directory.
    fn stage(&self, name: &str, content: &[u8]) {
        let path = self.root().join("staging").join(name);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, content).unwrap();
    }

    /// Loads a manifest promoting `files` (name, sha256) from the source directory to S3, GCS
    /// and a directory.
    fn manifests(&self, files: &[(&str, String)]) -> Vec<FileManifest> {
        let filestores = write(
            self.root(),
            "filestores.yaml",
            &format!(
                "filestores:\n\
                 - base: file://{}/staging\n  src: true\n\
                 - base: s3://{BUCKET}/binaries/tool\n  endpoint: {}\n  region: us-east-1\n  pathStyle: true\n\
                 - base: gs://{BUCKET}/binaries/tool\n  endpoint: {}\n\
                 - base: file://{}/prod\n",
                self.root().display(),
                self.s3.endpoint_url(),
                self.gcs.endpoint_url(),
                self.root().display()
            ),
        );
        let mut text = String::from("files:\n");
        for (name, sha) in files {
            text.push_str(&format!("- name: {name}\n  sha256: {sha}\n"));
        }
        let files = write(self.root(), "files.yaml", &text);
        let loaded = load(&[FileInput::Split { filestores, files }]);
        assert!(!loaded.has_errors(), "{:#?}", loaded.diagnostics);
        loaded.manifests
    }

    fn options(&self) -> OpenOptions {
        OpenOptions {
            s3_credentials: Some(S3Credentials {
                access_key_id: self.s3.access_key().to_owned(),
                secret_access_key: self.s3.secret_key().to_owned(),
            }),
            ..Default::default()
        }
    }

    /// What each destination holds at `name`: S3, GCS, directory.
    async fn held(&self, name: &str) -> [Option<Vec<u8>>; 3] {
        let key = format!("binaries/tool/{name}");
        [
            std::fs::read(self.s3.object_path(BUCKET, &key)).ok(),
            self.gcs
                .get_object(BUCKET, &key)
                .await
                .unwrap()
                .map(|bytes| bytes.to_vec()),
            std::fs::read(self.root().join("prod").join(name)).ok(),
        ]
    }
}

#[tokio::test]
async fn files_are_promoted_once_verified_and_never_overwritten() {
    let world = World::start().await;
    let tool = vec![7u8; 3 * 1024 * 1024 + 17];
    let notes = b"release notes\n".to_vec();
    world.stage("v1.0/linux/amd64/tool", &tool);
    world.stage("v1.0/NOTES", &notes);
    let manifests = world.manifests(&[
        ("v1.0/linux/amd64/tool", sha256_hex(&tool)),
        ("v1.0/NOTES", sha256_hex(&notes)),
    ]);
    let buckets = open_buckets(&manifests, &world.options()).await.unwrap();

    // First run: everything is copied, byte for byte.
    let first = plan(&manifests, &buckets, 4).await;
    assert_eq!(first.steps.len(), 6);
    assert!(
        first
            .steps
            .iter()
            .all(|step| step.action == FileAction::Copy),
        "{first:#?}"
    );
    let totals = first.totals();
    assert_eq!(totals.len(), 3);
    assert!(
        totals
            .values()
            .all(|total| total.copy == 2 && total.bytes == (tool.len() + notes.len()) as u64)
    );
    let copied = execute(&first, &buckets, 4).await;
    assert_eq!(copied.len(), 6);
    assert!(
        copied
            .iter()
            .all(|copy| copy.outcome == CopyOutcome::Written),
        "{copied:#?}"
    );
    for held in world.held("v1.0/linux/amd64/tool").await {
        assert_eq!(held.as_deref(), Some(tool.as_slice()));
    }
    for held in world.held("v1.0/NOTES").await {
        assert_eq!(held.as_deref(), Some(notes.as_slice()));
    }

    // Re-run: everything is present (hashed), nothing to copy, nothing written.
    let s3_file = world.s3.object_path(BUCKET, "binaries/tool/v1.0/NOTES");
    let before = std::fs::metadata(&s3_file).unwrap().modified().unwrap();
    let again = plan(&manifests, &buckets, 4).await;
    assert!(again.is_complete(), "{again:#?}");
    assert!(execute(&again, &buckets, 4).await.is_empty());
    assert_eq!(
        std::fs::metadata(&s3_file).unwrap().modified().unwrap(),
        before
    );

    // The audit proves it.
    let findings = audit(&manifests, &buckets, 4).await;
    assert_eq!(findings.len(), 6);
    assert!(
        findings
            .iter()
            .all(|finding| finding.status == FileStatus::Ok),
        "{findings:#?}"
    );

    // Someone replaces the GCS copy with other bytes of the same size: the plan reports it,
    // execution leaves it alone, the audit finds it.
    let mut other = notes.clone();
    other[0] ^= 0xff;
    world
        .gcs
        .put_object(BUCKET, "binaries/tool/v1.0/NOTES", other.clone())
        .await
        .unwrap();
    let tampered = plan(&manifests, &buckets, 4).await;
    let problems: Vec<_> = tampered.problems().collect();
    assert_eq!(problems.len(), 1, "{problems:#?}");
    assert_eq!(problems[0].action, FileAction::Mismatched);
    assert!(problems[0].destination.starts_with("gs://"), "{problems:?}");
    assert!(
        problems[0]
            .reason
            .as_deref()
            .unwrap()
            .contains(&sha256_hex(&other))
    );
    assert!(execute(&tampered, &buckets, 4).await.is_empty());
    assert_eq!(
        world.held("v1.0/NOTES").await[1].as_deref(),
        Some(other.as_slice())
    );
    let findings = audit(&manifests, &buckets, 4).await;
    let bad: Vec<_> = findings
        .iter()
        .filter(|finding| finding.status != FileStatus::Ok)
        .collect();
    assert_eq!(bad.len(), 1);
    assert_eq!(bad[0].status, FileStatus::Mismatched);
    assert_eq!(bad[0].found.as_deref(), Some(sha256_hex(&other).as_str()));
}

#[tokio::test]
async fn a_source_with_other_bytes_is_refused_and_nothing_is_written() {
    let world = World::start().await;
    let good = b"the real binary".to_vec();
    let bad = b"a tampered binary!".to_vec();
    world.stage("v2/tool", &bad);
    world.stage("v2/other", &good);
    let manifests = world.manifests(&[
        ("v2/tool", sha256_hex(&good)),
        ("v2/other", sha256_hex(&good)),
        ("v2/missing", sha256_hex(&good)),
    ]);
    let buckets = open_buckets(&manifests, &world.options()).await.unwrap();
    let planned = plan(&manifests, &buckets, 4).await;
    let missing: Vec<_> = planned
        .steps
        .iter()
        .filter(|step| step.action == FileAction::MissingSource)
        .collect();
    assert_eq!(missing.len(), 3, "{planned:#?}");
    let copied = execute(&planned, &buckets, 4).await;
    let for_tool: Vec<_> = copied
        .iter()
        .filter(|copy| copy.destination.ends_with("v2/tool"))
        .collect();
    assert_eq!(for_tool.len(), 3);
    // The first destination found the mismatch; the others were not attempted.
    assert_eq!(
        for_tool
            .iter()
            .filter(|copy| copy.outcome == CopyOutcome::SourceMismatch)
            .count(),
        1,
        "{for_tool:#?}"
    );
    assert_eq!(
        for_tool
            .iter()
            .filter(|copy| copy.outcome == CopyOutcome::Skipped)
            .count(),
        2
    );
    assert_eq!(world.held("v2/tool").await, [None, None, None]);
    // The other file went through.
    for held in world.held("v2/other").await {
        assert_eq!(held.as_deref(), Some(good.as_slice()));
    }
    let findings = audit(&manifests, &buckets, 4).await;
    let missing = findings
        .iter()
        .filter(|finding| finding.status == FileStatus::Missing)
        .count();
    assert_eq!(missing, 6, "v2/tool and v2/missing in three destinations");
}
