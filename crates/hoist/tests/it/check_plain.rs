//! `hoist check` without `--base`: validation, conflicts, policies, output and exit codes.

use crate::support::{digest, hoist, images, json, promoter_manifest, stdout, write};

fn thin_layout(dir: &std::path::Path, project: &str, destinations: &[&str], body: &str) {
    write(
        dir,
        &format!("manifests/{project}/promoter-manifest.yaml"),
        &promoter_manifest(&format!("gcr.io/k8s-staging-{project}"), destinations),
    );
    write(dir, &format!("images/{project}/images.yaml"), body);
}

#[test]
fn a_valid_thin_layout_passes_and_counts_every_edge() {
    let dir = tempfile::tempdir().unwrap();
    let body = images("foo", &[('a', &["v1", "v1.0"]), ('b', &[])]);
    thin_layout(
        dir.path(),
        "foo",
        &["r1.example/prod/foo", "r2.example/prod/foo"],
        &body,
    );

    // A trailing '/' on the directory works.
    let output = hoist(
        dir.path(),
        &["check", "--thin-manifest-dir", "./", "--output", "json"],
    );
    assert_eq!(output.status.code(), Some(0), "{}", stdout(&output));
    let report = json(&output);
    assert_eq!(report["ok"], true);
    assert_eq!(report["counts"]["manifests"], 1);
    assert_eq!(report["counts"]["digests"], 2);
    // (2 tags + 1 tagless) x 2 destinations.
    assert_eq!(report["counts"]["edges"], 6);
    assert_eq!(
        report["promotions"][0]["image"],
        "gcr.io/k8s-staging-foo/foo"
    );
    assert_eq!(report["promotions"][0]["destinations"], 2);

    let text = hoist(dir.path(), &["check", "--thin-manifest-dir", "."]);
    assert_eq!(text.status.code(), Some(0));
    let text = stdout(&text);
    assert!(
        text.contains("gcr.io/k8s-staging-foo/foo  2 digest(s), 2 tag(s) -> 2 destination(s)"),
        "{text}"
    );
    assert!(text.trim_end().ends_with("OK"), "{text}");
}

#[test]
fn invalid_manifests_fail_with_file_line_and_key() {
    let dir = tempfile::tempdir().unwrap();
    let body = "- name: foo\n  dmap:\n    \"sha256:abc\": [\"v1\"]\n";
    thin_layout(dir.path(), "foo", &["r1.example/prod"], body);
    let output = hoist(
        dir.path(),
        &["check", "--thin-manifest-dir", ".", "--output", "json"],
    );
    assert_eq!(output.status.code(), Some(1));
    let report = json(&output);
    let error = &report["errors"][0];
    assert_eq!(error["kind"], "manifest");
    assert_eq!(error["line"], 3);
    assert!(
        error["file"]
            .as_str()
            .unwrap()
            .ends_with("images/foo/images.yaml"),
        "{error}"
    );
    assert!(
        error["key"].as_str().unwrap().starts_with("images[0].dmap"),
        "{error}"
    );

    let text = stdout(&hoist(dir.path(), &["check", "--thin-manifest-dir", "."]));
    assert!(text.contains("images/foo/images.yaml:3:"), "{text}");
    assert!(text.contains("FAILED: 1 error(s)"), "{text}");
}

#[test]
fn conflicting_digests_for_one_tag_across_manifests_are_reported_with_both_sources() {
    let dir = tempfile::tempdir().unwrap();
    // Two plain manifests whose registries nest: both write r.example/images/kubernetes/pause:3.9.
    let one = format!(
        "registries:\n- name: gcr.io/staging-a\n  src: true\n- name: r.example/images\nimages:\n- name: kubernetes/pause\n  dmap:\n    \"{}\": [\"3.9\"]\n",
        digest('a')
    );
    let two = format!(
        "registries:\n- name: gcr.io/staging-b\n  src: true\n- name: r.example/images/kubernetes\nimages:\n- name: pause\n  dmap:\n    \"{}\": [\"3.9\"]\n",
        digest('b')
    );
    write(dir.path(), "one.yaml", &one);
    write(dir.path(), "two.yaml", &two);
    let output = hoist(
        dir.path(),
        &["check", "--manifest", "one.yaml", "--manifest", "two.yaml"],
    );
    assert_eq!(output.status.code(), Some(1));
    let text = stdout(&output);
    assert!(text.contains("error[conflict]"), "{text}");
    assert!(
        text.contains("r.example/images/kubernetes/pause:3.9"),
        "{text}"
    );
    assert!(
        text.contains("one.yaml:8:") && text.contains("two.yaml:8:"),
        "{text}"
    );

    // The same digest from both is no conflict.
    write(
        dir.path(),
        "two.yaml",
        &two.replace(&digest('b'), &digest('a')),
    );
    let output = hoist(
        dir.path(),
        &["check", "--manifest", "one.yaml", "--manifest", "two.yaml"],
    );
    assert_eq!(output.status.code(), Some(0), "{}", stdout(&output));
}

#[test]
fn usage_errors_exit_2() {
    let dir = tempfile::tempdir().unwrap();
    assert_eq!(hoist(dir.path(), &["check"]).status.code(), Some(2));
    assert_eq!(
        hoist(dir.path(), &["check", "--bogus"]).status.code(),
        Some(2)
    );
    assert_eq!(
        hoist(
            dir.path(),
            &["check", "--manifest", "x.yaml", "--output", "yaml"]
        )
        .status
        .code(),
        Some(2)
    );
    assert_eq!(
        hoist(
            dir.path(),
            &["check", "--manifest", "x.yaml", "--date", "2023-13-01"]
        )
        .status
        .code(),
        Some(2)
    );
}

#[test]
fn a_missing_manifest_is_a_validation_failure_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let output = hoist(dir.path(), &["check", "--manifest", "missing.yaml"]);
    assert_eq!(output.status.code(), Some(1));
    assert!(
        stdout(&output).contains("missing.yaml"),
        "{}",
        stdout(&output)
    );
}

#[test]
fn a_frozen_destination_named_by_a_manifest_is_a_warning_without_base() {
    let dir = tempfile::tempdir().unwrap();
    let body = images("foo", &[('a', &["v1"])]);
    thin_layout(
        dir.path(),
        "foo",
        &["us.gcr.io/k8s-artifacts-prod/foo", "r.example/prod/foo"],
        &body,
    );
    let output = hoist(
        dir.path(),
        &["check", "--thin-manifest-dir", ".", "--output", "json"],
    );
    assert_eq!(output.status.code(), Some(0), "{}", stdout(&output));
    let report = json(&output);
    let warnings = report["warnings"].as_array().unwrap();
    assert_eq!(warnings.len(), 1, "{warnings:?}");
    assert_eq!(warnings[0]["kind"], "freeze");
    assert_eq!(warnings[0]["line"], 4, "the registry entry's line");
    assert!(
        warnings[0]["rule"]
            .as_str()
            .unwrap()
            .starts_with("k8s-gcr-io-freeze.yaml")
    );

    // Before the freeze date there is nothing to say.
    let output = hoist(
        dir.path(),
        &[
            "check",
            "--thin-manifest-dir",
            ".",
            "--output",
            "json",
            "--date",
            "2023-03-31",
        ],
    );
    assert_eq!(json(&output)["warnings"].as_array().unwrap().len(), 0);
}

#[test]
fn a_destination_outside_the_allowed_ones_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let body = images("foo", &[('a', &["v1"])]);
    thin_layout(
        dir.path(),
        "foo",
        &["r.example/prod/foo", "elsewhere.example/foo"],
        &body,
    );
    write(
        dir.path(),
        "policies/destinations.yaml",
        "destinations:\n- prefixes: [r.example/prod]\n  explanation: only r.example/prod is a production registry\n",
    );
    let output = hoist(
        dir.path(),
        &[
            "check",
            "--thin-manifest-dir",
            ".",
            "--policies",
            "policies",
        ],
    );
    assert_eq!(output.status.code(), Some(1), "{}", stdout(&output));
    let text = stdout(&output);
    assert!(
        text.contains("error[destination]") && text.contains("elsewhere.example/foo"),
        "{text}"
    );
    assert!(!text.contains("r.example/prod/foo is refused"), "{text}");
}

#[test]
fn a_broken_policy_file_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let body = images("foo", &[('a', &["v1"])]);
    thin_layout(dir.path(), "foo", &["r.example/prod/foo"], &body);
    write(
        dir.path(),
        "policies/bad.yaml",
        "blockades:\n- blockregexps: [\"(\"]\n  explanation: x\n",
    );
    let output = hoist(
        dir.path(),
        &[
            "check",
            "--thin-manifest-dir",
            ".",
            "--policies",
            "policies",
        ],
    );
    assert_eq!(output.status.code(), Some(1));
    let text = stdout(&output);
    assert!(
        text.contains("error[policy-file]") && text.contains("bad.yaml"),
        "{text}"
    );
}

#[test]
fn a_manifest_path_that_does_not_exist_is_named_without_an_empty_summary() {
    let dir = tempfile::tempdir().unwrap();
    for (flag, kind) in [
        ("--thin-manifest-dir", "no such directory"),
        ("--manifest", "no such file"),
    ] {
        let output = hoist(dir.path(), &["check", flag, "/nonexistent"]);
        assert_eq!(output.status.code(), Some(1), "{flag}: {output:?}");
        let text = stdout(&output);
        assert!(
            text.contains("/nonexistent") && text.contains(kind),
            "{flag}: {text}"
        );
        assert!(
            !text.contains("0 manifest(s)") && !text.contains("promotes:"),
            "no summary of nothing before the error: {text}"
        );
    }
}

#[test]
fn a_missing_backends_file_names_its_cause_once() {
    let dir = tempfile::tempdir().unwrap();
    let manifest = crate::support::write(
        dir.path(),
        "promoter-manifest.yaml",
        "registries:\n- name: oci:src\n  src: true\n- name: oci:dst\nimages: []\n",
    );
    let output = crate::support::hoist(
        dir.path(),
        &[
            "audit",
            "--manifest",
            manifest.to_str().unwrap(),
            "--backends",
            "/nonexistent.yaml",
        ],
    );
    assert_eq!(output.status.code(), Some(2), "{output:?}");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(
        stderr.matches("No such file or directory").count(),
        1,
        "{stderr}"
    );
}
