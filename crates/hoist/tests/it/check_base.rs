//! `hoist check --base REV`: what a change adds, moves and removes, and blockades.

use std::path::Path;

use crate::support::{git, hoist, images, json, promoter_manifest, repository, stdout, write};

const DESTINATIONS: &[&str] = &["r1.example/prod/foo", "r2.example/prod/foo"];

fn layout(dir: &Path, dmap: &[(char, &[&str])]) {
    write(
        dir,
        "reg/manifests/foo/promoter-manifest.yaml",
        &promoter_manifest("gcr.io/k8s-staging-foo", DESTINATIONS),
    );
    write(dir, "reg/images/foo/images.yaml", &images("foo", dmap));
}

fn check(dir: &Path, extra: &[&str]) -> std::process::Output {
    let mut args = vec![
        "check",
        "--thin-manifest-dir",
        "reg",
        "--base",
        "HEAD",
        "--output",
        "json",
    ];
    args.extend_from_slice(extra);
    hoist(dir, &args)
}

#[test]
fn an_addition_is_listed_per_destination_and_passes() {
    let repo = repository(|dir| layout(dir, &[('a', &["v1"])]));
    layout(repo.path(), &[('a', &["v1"]), ('b', &["v2"])]);
    let output = check(repo.path(), &[]);
    assert_eq!(output.status.code(), Some(0), "{}", stdout(&output));
    let report = json(&output);
    let changes = report["changes"].as_array().unwrap();
    let kinds: Vec<&str> = changes
        .iter()
        .map(|c| c["kind"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, ["add-digest", "add-tag"], "{changes:?}");
    assert_eq!(changes[1]["tag"], "v2");
    assert_eq!(changes[1]["destinations"].as_array().unwrap().len(), 2);
    assert_eq!(
        report["promotions"][0]["digests"], 1,
        "only what the change adds"
    );

    // Nothing changed: no changes at all.
    git(repo.path(), &["add", "-A"]);
    git(repo.path(), &["commit", "-q", "-m", "add v2"]);
    let report = json(&check(repo.path(), &[]));
    assert_eq!(report["changes"].as_array().unwrap().len(), 0);
}

#[test]
fn a_tag_move_is_refused_unless_a_policy_allows_it() {
    let repo = repository(|dir| layout(dir, &[('a', &["v1"]), ('b', &[])]));
    layout(repo.path(), &[('a', &[]), ('b', &["v1"])]);
    let output = check(repo.path(), &[]);
    assert_eq!(output.status.code(), Some(1), "{}", stdout(&output));
    let report = json(&output);
    let errors = report["errors"].as_array().unwrap();
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert_eq!(errors[0]["kind"], "tag-move");
    assert!(
        errors[0]["message"]
            .as_str()
            .unwrap()
            .contains("(2 destination(s))"),
        "{errors:?}"
    );
    assert_eq!(
        errors[0]["line"], 4,
        "the line of the digest the tag moves to"
    );

    write(
        repo.path(),
        "allow/allow.yaml",
        "allow:\n- kind: tag-move\n  match: 'r[12]\\.example/prod/foo/foo:v1'\n  explanation: v1 was pushed from a broken build\n",
    );
    let output = check(repo.path(), &["--policies", "allow"]);
    assert_eq!(output.status.code(), Some(0), "{}", stdout(&output));
}

#[test]
fn removals_are_refused_unless_a_policy_allows_them() {
    let repo = repository(|dir| layout(dir, &[('a', &["v1"]), ('b', &["v2"])]));
    layout(repo.path(), &[('a', &["v1"])]);
    let output = check(repo.path(), &[]);
    assert_eq!(output.status.code(), Some(1), "{}", stdout(&output));
    let kinds: Vec<String> = json(&output)["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            format!(
                "{} {}",
                e["kind"].as_str().unwrap(),
                e["message"].as_str().unwrap()
            )
        })
        .collect();
    assert_eq!(kinds.len(), 2, "the digest and its tag: {kinds:?}");
    assert!(
        kinds.iter().all(|k| k.starts_with("removal foo: ")),
        "{kinds:?}"
    );

    write(
        repo.path(),
        "allow/allow.yaml",
        "allow:\n- kind: removal\n  match: '.*/foo/foo[:@].*'\n  explanation: retired\n",
    );
    let output = check(repo.path(), &["--policies", "allow"]);
    assert_eq!(output.status.code(), Some(0), "{}", stdout(&output));
}

#[test]
fn adding_to_a_frozen_destination_is_refused() {
    let frozen = ["us.gcr.io/k8s-artifacts-prod/foo", "r1.example/prod/foo"];
    let write_layout = |dir: &Path, dmap: &[(char, &[&str])]| {
        write(
            dir,
            "reg/manifests/foo/promoter-manifest.yaml",
            &promoter_manifest("gcr.io/k8s-staging-foo", &frozen),
        );
        write(dir, "reg/images/foo/images.yaml", &images("foo", dmap));
    };
    let repo = repository(|dir| write_layout(dir, &[('a', &["v1"])]));
    // Unchanged: the old edges were promoted before the freeze; nothing is refused.
    assert_eq!(check(repo.path(), &[]).status.code(), Some(0));

    write_layout(repo.path(), &[('a', &["v1"]), ('b', &["v2"])]);
    let output = check(repo.path(), &[]);
    assert_eq!(output.status.code(), Some(1), "{}", stdout(&output));
    let errors = json(&output)["errors"].as_array().unwrap().clone();
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert_eq!(errors[0]["kind"], "freeze");
    assert!(
        errors[0]["message"]
            .as_str()
            .unwrap()
            .contains("us.gcr.io/k8s-artifacts-prod/foo/foo"),
        "{errors:?}"
    );
    // The same change before the freeze date passes.
    assert_eq!(
        check(repo.path(), &["--date", "2023-03-01"]).status.code(),
        Some(0)
    );
}

#[test]
fn blockades_apply_to_the_files_the_change_touches() {
    let repo = repository(|dir| {
        layout(dir, &[('a', &["v1"])]);
        write(dir, "legacy/notes.txt", "old\n");
    });
    write(
        repo.path(),
        "pol/block.yaml",
        "blockades:\n- blockregexps: ['^legacy/']\n  exceptionregexps: ['^legacy/README']\n  explanation: legacy is read-only\n",
    );
    // An exception is not blocked.
    write(repo.path(), "legacy/README.md", "new\n");
    let output = check(repo.path(), &["--policies", "pol"]);
    assert_eq!(output.status.code(), Some(0), "{}", stdout(&output));

    write(repo.path(), "legacy/notes.txt", "changed\n");
    let output = check(repo.path(), &["--policies", "pol"]);
    assert_eq!(output.status.code(), Some(1));
    let errors = json(&output)["errors"].as_array().unwrap().clone();
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert_eq!(errors[0]["kind"], "blockade");
    assert_eq!(errors[0]["file"], "legacy/notes.txt");
    assert_eq!(errors[0]["message"], "legacy is read-only");
}

#[test]
fn a_bad_base_is_a_usage_error() {
    let repo = repository(|dir| layout(dir, &[('a', &["v1"])]));
    let output = hoist(
        repo.path(),
        &[
            "check",
            "--thin-manifest-dir",
            "reg",
            "--base",
            "no-such-rev",
        ],
    );
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains("no-such-rev"));

    let not_a_repo = tempfile::tempdir().unwrap();
    layout(not_a_repo.path(), &[('a', &["v1"])]);
    let output = hoist(
        not_a_repo.path(),
        &["check", "--thin-manifest-dir", "reg", "--base", "HEAD"],
    );
    assert_eq!(output.status.code(), Some(2));
}

#[test]
fn a_plain_manifest_is_compared_with_its_base_and_named_as_the_user_knows_it() {
    let plain = |dmap: &[(char, &[&str])]| {
        let mut text = promoter_manifest("gcr.io/k8s-staging-foo", DESTINATIONS);
        text.push_str("images:\n");
        for line in images("foo", dmap).lines() {
            text.push_str(&format!("{line}\n"));
        }
        text
    };
    let repo = repository(|dir| {
        write(
            dir,
            "plain/promoter-manifest.yaml",
            &plain(&[('a', &["v1"]), ('b', &[])]),
        );
    });
    write(
        repo.path(),
        "plain/promoter-manifest.yaml",
        &plain(&[('a', &[]), ('b', &["v1"])]),
    );
    let output = hoist(
        repo.path(),
        &[
            "check",
            "--manifest",
            "plain/promoter-manifest.yaml",
            "--base",
            "HEAD",
            "--output",
            "json",
        ],
    );
    assert_eq!(output.status.code(), Some(1), "{}", stdout(&output));
    let report = json(&output);
    let errors = report["errors"].as_array().unwrap();
    assert!(
        errors
            .iter()
            .any(|e| e["kind"] == "tag-move" && e["file"] == "plain/promoter-manifest.yaml"),
        "{errors:#?}"
    );
    // Both removals name the file as given, never a temporary copy.
    for error in errors {
        assert_eq!(error["file"], "plain/promoter-manifest.yaml", "{errors:#?}");
    }
}
