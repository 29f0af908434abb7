//! The shipped `policies/` directory: the k8s.gcr.io freeze of KEP-3720.

use std::path::Path;

use chrono::NaiveDate;
use hoist_policy::{PolicySet, RuleKind};

use crate::repo_root;

const EXPLANATION: &str = "k8s.gcr.io Image registry is frozen from April 2023. Please update the manifests in registry.k8s.io folder instead";

fn shipped() -> PolicySet {
    PolicySet::load_dir(&repo_root().join("policies")).unwrap_or_else(|errors| {
        panic!("the shipped policies do not load: {errors:#?}");
    })
}

fn day(text: &str) -> NaiveDate {
    text.parse().unwrap()
}

#[test]
fn blocks_k8s_gcr_io_manifests_with_the_prow_explanation() {
    let set = shipped();
    for repo in [Some("kubernetes/k8s.io"), None] {
        let refusals = set.check_changed_files(
            repo,
            Some("main"),
            &["k8s.gcr.io/images/k8s-staging-kwok/images.yaml"],
        );
        assert_eq!(refusals.len(), 1, "{repo:?}");
        assert_eq!(refusals[0].kind, RuleKind::Blockade);
        assert_eq!(refusals[0].rule, "k8s-gcr-io-freeze.yaml: blockades[0]");
        assert_eq!(
            refusals[0].subject,
            "k8s.gcr.io/images/k8s-staging-kwok/images.yaml"
        );
        assert_eq!(refusals[0].reason, EXPLANATION);
    }
}

#[test]
fn does_not_block_registry_k8s_io_or_other_repositories() {
    let set = shipped();
    let files = [
        "registry.k8s.io/images/k8s-staging-kwok/images.yaml",
        "registry.k8s.io/manifests/k8s-staging-kwok/promoter-manifest.yaml",
    ];
    assert!(
        set.check_changed_files(Some("kubernetes/k8s.io"), None, &files)
            .is_empty()
    );
    let frozen = ["k8s.gcr.io/images/k8s-staging-kwok/images.yaml"];
    assert!(
        set.check_changed_files(Some("kubernetes/kubernetes"), None, &frozen)
            .is_empty()
    );
}

#[test]
fn freezes_the_legacy_gcr_destinations_from_april_2023() {
    let set = shipped();
    for destination in [
        "us.gcr.io/k8s-artifacts-prod/kwok",
        "eu.gcr.io/k8s-artifacts-prod/kwok",
        "asia.gcr.io/k8s-artifacts-prod/kwok",
    ] {
        let refusal = set
            .check_write(destination, day("2024-01-01"))
            .expect(destination);
        assert_eq!(refusal.kind, RuleKind::Freeze);
        assert_eq!(refusal.rule, "k8s-gcr-io-freeze.yaml: freezes[0]");
        assert!(refusal.reason.contains("KEP-3720"), "{}", refusal.reason);
        assert!(set.check_write(destination, day("2023-04-01")).is_some());
        assert_eq!(set.check_write(destination, day("2023-03-31")), None);
    }
    assert_eq!(
        set.check_write("us.gcr.io/k8s-artifacts-prodx", day("2024-01-01")),
        None
    );
    assert_eq!(
        set.check_write("us.gcr.io/k8s-artifacts-prodx/kwok", day("2024-01-01")),
        None
    );
    assert_eq!(
        set.check_write(
            "us-central1-docker.pkg.dev/k8s-artifacts-prod/images/kwok",
            day("2024-01-01")
        ),
        None
    );
}

/// The real kubernetes/k8s.io corpus, when present: every file under `k8s.gcr.io/` is blocked,
/// none under `registry.k8s.io/`.
#[test]
fn real_corpus_folders() {
    let corpus = repo_root().join("../shared/corpus/k8s.io");
    if !corpus.exists() {
        println!("skipping: no corpus at {}", corpus.display());
        return;
    }
    let set = shipped();
    let mut files = Vec::new();
    collect(&corpus, &corpus, &mut files);
    let mut legacy = 0;
    for file in &files {
        let refused = !set
            .check_changed_files(Some("kubernetes/k8s.io"), Some("main"), &[file])
            .is_empty();
        let expected = file.starts_with("k8s.gcr.io/");
        legacy += usize::from(expected);
        assert_eq!(refused, expected, "{file}");
    }
    assert!(legacy > 0, "the corpus has no k8s.gcr.io/ files");
}

fn collect(root: &Path, dir: &Path, files: &mut Vec<String>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            collect(root, &path, files);
        } else {
            let relative = path.strip_prefix(root).unwrap();
            files.push(relative.to_string_lossy().replace('\\', "/"));
        }
    }
}
