//! Hostile pull requests against `hoist check`: each case with its exact exit code and the absence
//! of what must not be printed.

use std::path::Path;
use std::process::Output;
use std::time::{Duration, Instant};

use crate::support::{git, hoist, images, promoter_manifest, repository, write};

const SECRET: &str = "hoist-hostile-secret-8c2e";

fn layout(dir: &Path) {
    write(
        dir,
        "reg/manifests/foo/promoter-manifest.yaml",
        &promoter_manifest("gcr.io/k8s-staging-foo", &["r1.example/prod/foo"]),
    );
    write(
        dir,
        "reg/images/foo/images.yaml",
        &images("foo", &[('a', &["v1"])]),
    );
}

fn everything(output: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

fn check(dir: &Path, extra: &[&str]) -> Output {
    let mut args = vec!["check", "--thin-manifest-dir", "reg", "--base", "HEAD"];
    args.extend_from_slice(extra);
    hoist(dir, &args)
}

#[test]
fn a_link_out_of_the_tree_is_named_and_its_target_never_read() {
    let outside = tempfile::tempdir().unwrap();
    let secret = outside.path().join("credentials.yaml");
    std::fs::write(&secret, format!("- name: {SECRET}\n  dmap: {{}}\n")).unwrap();
    let repo = repository(layout);
    // The pull request adds a project whose images file is a link to a file of the machine.
    write(
        repo.path(),
        "reg/manifests/evil/promoter-manifest.yaml",
        &promoter_manifest("gcr.io/k8s-staging-evil", &["r1.example/prod/evil"]),
    );
    std::fs::create_dir_all(repo.path().join("reg/images/evil")).unwrap();
    std::os::unix::fs::symlink(&secret, repo.path().join("reg/images/evil/images.yaml")).unwrap();
    for extra in [&[][..], &["--output", "json"][..]] {
        let output = check(repo.path(), extra);
        assert_eq!(output.status.code(), Some(1), "{}", everything(&output));
        let text = everything(&output);
        assert!(text.contains("reg/images/evil/images.yaml"), "{text}");
        assert!(text.contains("symbolic link"), "{text}");
        assert!(!text.contains(SECRET), "{text}");
        assert!(
            !text.contains(&outside.path().display().to_string()),
            "{text}"
        );
    }
    // A link to a directory outside, committed: the same, at the base too.
    std::fs::remove_file(repo.path().join("reg/images/evil/images.yaml")).unwrap();
    std::fs::remove_dir(repo.path().join("reg/images/evil")).unwrap();
    std::os::unix::fs::symlink(outside.path(), repo.path().join("reg/images/evil")).unwrap();
    git(repo.path(), &["add", "-A"]);
    git(repo.path(), &["commit", "-qm", "evil"]);
    std::fs::write(&secret, format!("- name: {SECRET}\n")).unwrap();
    let output = check(repo.path(), &["--output", "json"]);
    let text = everything(&output);
    assert!(!text.contains(SECRET), "{text}");
    assert!(
        !text.contains(&outside.path().display().to_string()),
        "{text}"
    );
}

#[test]
fn long_values_are_cut_and_escapes_are_not_echoed() {
    let repo = repository(layout);
    let long = format!("{SECRET}{}", "z".repeat(200_000));
    write(
        repo.path(),
        "reg/images/foo/images.yaml",
        &format!(
            "- name: \"\\e]0;{long}\"\n  dmap:\n    \"sha256:{}\": [\"{long}\"]\n",
            "a".repeat(64)
        ),
    );
    let output = check(repo.path(), &[]);
    assert_eq!(output.status.code(), Some(1), "{}", everything(&output));
    let text = everything(&output);
    assert!(text.len() < 10_000, "{} bytes printed", text.len());
    assert!(!text.contains('\u{1b}'), "{text:.2000}");
    assert!(text.contains("more characters"), "{text:.2000}");
}

#[test]
fn a_policy_pattern_cannot_escape_its_anchors() {
    let repo = repository(|dir| {
        layout(dir);
        write(
            dir,
            "reg/images/foo/images.yaml",
            &images("foo", &[('a', &["v1"]), ('b', &[])]),
        );
    });
    // The change moves v1; a policy tries to allow every move through an unbalanced pattern.
    write(
        repo.path(),
        "reg/images/foo/images.yaml",
        &images("foo", &[('a', &[]), ('b', &["v1"])]),
    );
    write(
        repo.path(),
        "pol/allow.yaml",
        "allow:\n- kind: tag-move\n  match: 'nothing)|(.*'\n  explanation: sneaky\n",
    );
    let output = check(repo.path(), &["--policies", "pol", "--output", "json"]);
    assert_eq!(output.status.code(), Some(1), "{}", everything(&output));
    let report: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    let kinds: Vec<&str> = report["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["kind"].as_str().unwrap())
        .collect();
    assert!(kinds.contains(&"policy-file"), "{report:#}");
    assert!(
        kinds.contains(&"tag-move"),
        "the move is still refused: {report:#}"
    );
}

#[test]
fn deep_nesting_is_a_clear_error() {
    let repo = repository(layout);
    write(
        repo.path(),
        "reg/images/foo/images.yaml",
        &format!("{}1{}", "[".repeat(100_000), "]".repeat(100_000)),
    );
    let output = check(repo.path(), &[]);
    assert_eq!(output.status.code(), Some(1), "{}", everything(&output));
    let text = everything(&output);
    assert!(
        text.contains("nested deeper than 64") || text.contains("YAML syntax error"),
        "{text:.2000}"
    );
    assert!(text.len() < 10_000);
}

#[test]
fn a_cross_product_too_large_is_refused_quickly() {
    let repo = repository(layout);
    // 2,000 registries x 6,000 digests: 12 million edges, refused before they are made.
    let registries: Vec<String> = (0..2_000).map(|i| format!("r{i}.example/prod")).collect();
    let registries: Vec<&str> = registries.iter().map(String::as_str).collect();
    write(
        repo.path(),
        "reg/manifests/foo/promoter-manifest.yaml",
        &promoter_manifest("gcr.io/k8s-staging-foo", &registries),
    );
    let mut text = String::from("- name: foo\n  dmap:\n");
    for i in 0..6_000u32 {
        text.push_str(&format!("    \"sha256:{i:064x}\": []\n"));
    }
    write(repo.path(), "reg/images/foo/images.yaml", &text);
    let started = Instant::now();
    let output = check(repo.path(), &["--output", "json"]);
    assert_eq!(output.status.code(), Some(1), "{}", everything(&output));
    // Generous for a loaded debug build; building the edges would take far longer (and GiBs).
    assert!(started.elapsed() < Duration::from_secs(60));
    let report: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    let limit = report["errors"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["kind"] == "limit")
        .unwrap_or_else(|| panic!("{report:#}"));
    assert!(
        limit["message"].as_str().unwrap().contains("12000000"),
        "{limit}"
    );
}

#[test]
fn a_file_too_large_is_not_read() {
    let repo = repository(layout);
    let file = std::fs::File::create(repo.path().join("reg/images/foo/images.yaml")).unwrap();
    file.set_len(64 << 20).unwrap();
    let output = check(repo.path(), &[]);
    assert_eq!(output.status.code(), Some(1), "{}", everything(&output));
    assert!(everything(&output).contains("larger than 16 MiB"));
}
