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
            errors
                .iter()
                .chain(warnings)
                .any(|e| e["severity"] == *severity
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

/// The real registry.k8s.io tree, in a git repository as is.
fn corpus_repository(corpus: &std::path::Path) -> tempfile::TempDir {
    repository(|dir| {
        copy_tree(
            &corpus.join("registry.k8s.io"),
            &dir.join("registry.k8s.io"),
        )
    })
}

fn check_base(dir: &std::path::Path) -> std::process::Output {
    hoist(
        dir,
        &[
            "check",
            "--thin-manifest-dir",
            "registry.k8s.io",
            "--base",
            "HEAD",
            "--output",
            "json",
        ],
    )
}

/// The three findings the tree has had for years, as (file suffix, severity).
const PRE_EXISTING: [(&str, &str); 3] = [
    ("images/k8s-staging-lws/imaegs.yaml", "warning"),
    ("images/k8s-staging-minikube/images.yaml", "error"),
    (
        "manifests/k8s-staging-boskos/promoter-manifest.yaml",
        "warning",
    ),
];

fn assert_the_three_pre_existing(report: &serde_json::Value) {
    let pre_existing = report["pre_existing"]
        .as_array()
        .expect("a pre_existing list");
    assert_eq!(pre_existing.len(), 3, "{pre_existing:#?}");
    for (suffix, severity) in PRE_EXISTING {
        assert!(
            pre_existing
                .iter()
                .any(|finding| finding["severity"] == severity
                    && finding["file"].as_str().unwrap().ends_with(suffix)),
            "{suffix}: {pre_existing:#?}"
        );
    }
}

#[test]
fn an_unchanged_tree_passes_with_its_three_pre_existing_findings() {
    let Some(corpus) = corpus() else { return };
    let repo = corpus_repository(&corpus);
    let output = check_base(repo.path());
    let report = json(&output);
    assert_eq!(output.status.code(), Some(0), "{report:#}");
    assert_eq!(report["ok"], true);
    assert_eq!(report["errors"].as_array().unwrap().len(), 0, "{report:#}");
    assert_eq!(report["changes"].as_array().unwrap().len(), 0);
    assert_the_three_pre_existing(&report);

    // Text: shown, counted, and not failing.
    let text = stdout(&hoist(
        repo.path(),
        &[
            "check",
            "--thin-manifest-dir",
            "registry.k8s.io",
            "--base",
            "HEAD",
        ],
    ));
    assert!(text.contains("pre-existing (3)"), "{text}");
    assert!(text.contains("imaegs.yaml"), "{text}");
    assert!(
        text.contains("OK (3 pre-existing finding(s) not counted)"),
        "{text}"
    );
}

#[test]
fn a_bad_digest_added_to_another_project_fails_naming_only_that() {
    let Some(corpus) = corpus() else { return };
    let repo = corpus_repository(&corpus);
    let images = repo
        .path()
        .join("registry.k8s.io/images/k8s-staging-coredns/images.yaml");
    let text = std::fs::read_to_string(&images).unwrap();
    let bad = "0123456789abcdef".repeat(4);
    std::fs::write(
        &images,
        text.replacen(
            "  dmap:\n",
            &format!("  dmap:\n    \"{bad}\": [\"v99.0.0\"]\n"),
            1,
        ),
    )
    .unwrap();
    let output = check_base(repo.path());
    let report = json(&output);
    assert_eq!(output.status.code(), Some(1), "{report:#}");
    let errors = report["errors"].as_array().unwrap();
    assert_eq!(errors.len(), 1, "{errors:#?}");
    assert!(
        errors[0]["file"]
            .as_str()
            .unwrap()
            .ends_with("images/k8s-staging-coredns/images.yaml"),
        "{errors:#?}"
    );
    assert_eq!(errors[0]["value"], bad);
    assert!(
        errors[0]["message"]
            .as_str()
            .unwrap()
            .contains("missing the \"sha256:\" prefix")
    );
    assert_the_three_pre_existing(&report);
}

#[test]
fn a_tag_move_in_coredns_fails() {
    let Some(corpus) = corpus() else { return };
    let repo = corpus_repository(&corpus);
    let images = repo
        .path()
        .join("registry.k8s.io/images/k8s-staging-coredns/images.yaml");
    let text = std::fs::read_to_string(&images).unwrap();
    // Move the tags of the first digest line to a new digest: the old digest keeps none.
    let line = text
        .lines()
        .find(|line| line.trim_start().starts_with("\"sha256:") && !line.ends_with("[]"))
        .expect("a tagged digest");
    let (digest, tags) = line.split_once(": ").unwrap();
    let tag = tags
        .trim_matches(|c| c == '[' || c == ']' || c == '"')
        .split('"')
        .next()
        .unwrap();
    let indent = &line[..line.len() - line.trim_start().len()];
    let replacement = format!(
        "{digest}: []\n{indent}\"sha256:{}\": {tags}",
        "e".repeat(64)
    );
    let moved = text.replacen(line, &replacement, 1);
    std::fs::write(&images, moved).unwrap();
    let output = check_base(repo.path());
    let report = json(&output);
    assert_eq!(output.status.code(), Some(1), "{report:#}");
    let errors = report["errors"].as_array().unwrap();
    assert!(
        errors.iter().any(|e| e["kind"] == "tag-move"
            && e["message"]
                .as_str()
                .unwrap()
                .contains(&format!("tag {tag} moves"))),
        "{errors:#?}"
    );
    assert!(
        errors.iter().all(|e| e["kind"] != "manifest"),
        "the edit itself is valid: {errors:#?}"
    );
    assert_the_three_pre_existing(&report);
}
