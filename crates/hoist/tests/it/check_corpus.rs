//! `hoist check` on the real Kubernetes manifests in `../shared/corpus` (skipped when absent).

use crate::support::{copy_tree, corpus, git, hoist, json, repository, stdout};

/// The findings the real registry.k8s.io data deserves, each a true problem of that data:
/// (severity, file suffix, key prefix, why). kpromo tolerates two of them, so they are warnings.
const KNOWN_PROBLEMS: &[(&str, &str, &str, &str)] = &[
    (
        "warning",
        "images/k8s-staging-lws/imaegs.yaml",
        "",
        "a misspelt copy of images.yaml: the promoter ignores it silently, so whatever it lists is never promoted",
    ),
    (
        "error",
        "images/k8s-staging-minikube/images.yaml",
        "images[",
        "a digest written without its sha256: prefix is not a digest",
    ),
    (
        "warning",
        "manifests/k8s-staging-boskos/promoter-manifest.yaml",
        "registries[",
        "us-west1 is listed twice as a destination, identically",
    ),
];

#[test]
fn the_whole_registry_k8s_io_tree_has_only_its_known_problems() {
    let Some(corpus) = corpus() else { return };
    let dir = corpus.join("registry.k8s.io");
    let output = hoist(
        &dir,
        &["check", "--thin-manifest-dir", ".", "--output", "json"],
    );
    let report = json(&output);
    assert_eq!(
        output.status.code(),
        Some(1),
        "the known problems fail the check"
    );

    let errors = report["errors"].as_array().unwrap();
    let warnings = report["warnings"].as_array().unwrap();
    let known = |finding: &serde_json::Value| {
        let file = finding["file"].as_str().unwrap_or_default();
        let key = finding["key"].as_str().unwrap_or_default();
        KNOWN_PROBLEMS
            .iter()
            .any(|(severity, suffix, key_prefix, _)| {
                finding["severity"] == *severity
                    && file.ends_with(suffix)
                    && key.starts_with(key_prefix)
            })
    };
    let unexplained: Vec<&serde_json::Value> = errors.iter().filter(|e| !known(e)).collect();
    assert!(
        unexplained.is_empty(),
        "findings not known to be true problems: {unexplained:#?}"
    );
    for (severity, suffix, _, why) in KNOWN_PROBLEMS {
        assert!(
            errors.iter().chain(warnings).any(|e| e["severity"] == *severity
                && e["file"].as_str().unwrap_or_default().ends_with(suffix)),
            "expected a finding for {suffix} ({why})"
        );
    }
    // No tag is sent to two digests anywhere in the tree.
    assert!(errors.iter().all(|e| e["kind"] != "conflict"));

    // Other warnings: only manifests that still name the frozen legacy gcr.io destinations, a
    // true finding (KEP-3720 froze them; new digests for them will be refused).
    for warning in warnings.iter().filter(|w| !known(w)) {
        let message = warning["message"].as_str().unwrap();
        let legacy = [
            "us.gcr.io/k8s-artifacts-prod",
            "eu.gcr.io/k8s-artifacts-prod",
            "asia.gcr.io/k8s-artifacts-prod",
        ];
        assert!(
            warning["kind"] == "freeze" && legacy.iter().any(|l| message.contains(l)),
            "unexpected warning: {warning}"
        );
    }

    // The scale of the thing: hundreds of thousands of edges over the ~22 Artifact Registry regions.
    assert!(report["counts"]["edges"].as_u64().unwrap() > 100_000);
    assert!(report["counts"]["hosts"].as_u64().unwrap() >= 22);
}

#[test]
fn the_frozen_k8s_gcr_io_tree_loads_cleanly() {
    let Some(corpus) = corpus() else { return };
    let output = hoist(
        &corpus,
        &[
            "check",
            "--thin-manifest-dir",
            "k8s.gcr.io",
            "--output",
            "json",
        ],
    );
    let report = json(&output);
    assert_eq!(report["errors"].as_array().unwrap().len(), 0, "{report:#}");
    assert_eq!(output.status.code(), Some(0));
}

/// Adds a new digest tagged v99.0.0 to the first image of an images.yaml.
fn add_new_digest(images: &std::path::Path) {
    let text = std::fs::read_to_string(images).unwrap();
    let line = format!(
        "  dmap:\n    \"sha256:{}\": [\"v99.0.0\"]\n",
        "f".repeat(64)
    );
    std::fs::write(images, text.replacen("  dmap:\n", &line, 1)).unwrap();
}

#[test]
fn a_change_under_k8s_gcr_io_is_blocked_with_the_explanation() {
    let Some(corpus) = corpus() else { return };
    let repo = repository(|dir| {
        copy_tree(&corpus.join("k8s.gcr.io"), &dir.join("k8s.gcr.io"));
        copy_tree(
            &corpus.join("registry.k8s.io/manifests/k8s-staging-coredns"),
            &dir.join("registry.k8s.io/manifests/k8s-staging-coredns"),
        );
        copy_tree(
            &corpus.join("registry.k8s.io/images/k8s-staging-coredns"),
            &dir.join("registry.k8s.io/images/k8s-staging-coredns"),
        );
    });
    add_new_digest(
        &repo
            .path()
            .join("k8s.gcr.io/images/k8s-staging-kwok/images.yaml"),
    );

    let output = hoist(
        repo.path(),
        &[
            "check",
            "--thin-manifest-dir",
            "k8s.gcr.io",
            "--base",
            "HEAD",
        ],
    );
    assert_eq!(output.status.code(), Some(1));
    let text = stdout(&output);
    assert!(
        text.contains("k8s.gcr.io Image registry is frozen from April 2023. Please update the manifests in registry.k8s.io folder instead"),
        "{text}"
    );
    assert!(
        text.contains("k8s.gcr.io/images/k8s-staging-kwok/images.yaml: error[blockade]"),
        "{text}"
    );
    // The new digest's writes to the legacy registries are refused by the freeze too.
    assert!(text.contains("error[freeze]"), "{text}");

    // The same kind of change in registry.k8s.io is fine: it is listed, and nothing is refused.
    git(repo.path(), &["checkout", "-q", "--", "k8s.gcr.io"]);
    add_new_digest(
        &repo
            .path()
            .join("registry.k8s.io/images/k8s-staging-coredns/images.yaml"),
    );
    let output = hoist(
        repo.path(),
        &[
            "check",
            "--thin-manifest-dir",
            "registry.k8s.io",
            "--base",
            "HEAD",
            "--output",
            "json",
        ],
    );
    assert_eq!(output.status.code(), Some(0), "{}", stdout(&output));
    let report = json(&output);
    let added_tag = report["changes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["kind"] == "add-tag")
        .expect("the new tag is listed");
    assert_eq!(added_tag["tag"], "v99.0.0");
    assert_eq!(added_tag["destinations"].as_array().unwrap().len(), 22);
}
