//! Plain manifests (`--manifest FILE`): one passing and one failing case per rule.

use std::fs;

use hoist_manifest::{Input, Severity, load};

use crate::support::{digest, findings, fixtures, image_rows, load_plain, message_at, row};

/// The passing case of every plain rule: quoted, single-quoted and unquoted digests, flow and
/// block tag lists, `[]`, a comment inside a digest list, `src: false`, a service account, a
/// repeated image name that re-tags a digest, and no newline at the end of the file.
#[test]
fn valid_manifest_loads_every_accepted_form() {
    let loaded = load_plain("valid.yaml");
    assert_eq!(findings(&loaded), Vec::<String>::new());
    let [manifest] = loaded.manifests.as_slice() else {
        panic!("expected one manifest: {loaded:#?}")
    };
    assert_eq!(manifest.project, None);
    assert_eq!(manifest.images_file, manifest.manifest_file);
    let registries: Vec<(&str, bool, Option<&str>)> = manifest
        .registries
        .iter()
        .map(|r| (r.name.as_str(), r.src, r.service_account.as_deref()))
        .collect();
    assert_eq!(
        registries,
        [
            ("gcr.io/k8s-staging-example", true, None),
            (
                "us-docker.pkg.dev/k8s-artifacts-prod/images/example",
                false,
                Some("promoter@example.iam.gserviceaccount.com")
            ),
            ("127.0.0.1:5000/prod", false, None),
        ]
    );
    assert_eq!(
        manifest.source().map(|r| r.name.as_str()),
        Some("gcr.io/k8s-staging-example")
    );
    assert_eq!(manifest.destinations().count(), 2);
    let (d1, d2, d3, d4) = (digest('1'), digest('2'), digest('3'), digest('4'));
    assert_eq!(
        image_rows(manifest),
        [
            row(
                "example",
                &[(&d1, &["v1.0.0", "latest"]), (&d2, &["v1.1.0"]), (&d3, &[]),]
            ),
            row("nested/tool", &[(&d4, &["v0.1"])]),
            row("example", &[(&d1, &["v1.0.1"])]),
        ]
    );
    // Locations: the image entry starts at its first key, the digest at its (unquoted) key.
    let second_digest = &manifest.images[0].dmap[1];
    assert_eq!(
        (second_digest.location.line, second_digest.location.column),
        (14, 5)
    );
    assert_eq!(
        second_digest.location.file.as_ref(),
        fixtures().join("plain/valid.yaml")
    );
    assert_eq!(
        (
            manifest.images[1].location.line,
            manifest.images[1].location.column
        ),
        (17, 3)
    );
}

#[test]
fn syntax_errors_have_a_position() {
    let loaded = load_plain("syntax-error.yaml");
    assert_eq!(findings(&loaded), ["plain/syntax-error.yaml:3:7 error"]);
    assert_eq!(
        message_at(&loaded, 3, 7),
        "YAML syntax error: mapping values are not allowed in this context"
    );
    assert!(loaded.manifests.is_empty());
}

#[test]
fn unknown_keys_are_errors() {
    let loaded = load_plain("unknown-keys.yaml");
    assert_eq!(
        findings(&loaded),
        [
            "plain/unknown-keys.yaml:4:3 error registries[0].token",
            "plain/unknown-keys.yaml:10:3 error images[0].tags",
            // A plain manifest names its images inline; imagesPath belongs to thin manifests.
            "plain/unknown-keys.yaml:11:1 error imagesPath",
        ]
    );
    assert_eq!(
        message_at(&loaded, 4, 3),
        "unknown key; expected one of: name, src, service-account"
    );
    assert_eq!(loaded.diagnostics[0].value.as_deref(), Some("token"));
    // The entries themselves are still valid and kept.
    assert_eq!(loaded.manifests[0].registries.len(), 2);
    assert_eq!(loaded.manifests[0].images.len(), 1);
}

#[test]
fn duplicate_keys_are_errors_in_every_map() {
    let loaded = load_plain("duplicate-keys.yaml");
    let d1 = digest('1');
    assert_eq!(
        findings(&loaded),
        [
            "plain/duplicate-keys.yaml:4:3 error registries[0].src".to_owned(),
            "plain/duplicate-keys.yaml:8:3 error images[0].name".to_owned(),
            format!("plain/duplicate-keys.yaml:11:5 error images[0].dmap[\"{d1}\"]"),
            "plain/duplicate-keys.yaml:12:1 error registries".to_owned(),
        ]
    );
    assert_eq!(message_at(&loaded, 4, 3), "duplicate key, first at line 3");
    assert_eq!(
        message_at(&loaded, 11, 5),
        "duplicate digest, first at line 10"
    );
    // The first of two duplicates wins.
    let image = &loaded.manifests[0].images[0];
    assert_eq!(image.name.as_str(), "example");
    assert_eq!(image.dmap.len(), 1);
    assert_eq!(image.dmap[0].tags[0].as_str(), "v1");
}

#[test]
fn wrong_types_are_errors() {
    let loaded = load_plain("wrong-types.yaml");
    let d1 = digest('1');
    assert_eq!(
        findings(&loaded),
        [
            "plain/wrong-types.yaml:3:8 error registries[0].src".to_owned(),
            "plain/wrong-types.yaml:5:8 error registries[1].src".to_owned(),
            "plain/wrong-types.yaml:6:65 error registries[2].service-account".to_owned(),
            // A block list is marked at its first entry.
            "plain/wrong-types.yaml:10:5 error images[0].dmap".to_owned(),
            format!("plain/wrong-types.yaml:13:80 error images[1].dmap[\"{d1}\"]"),
            "plain/wrong-types.yaml:14:9 error images[2].name".to_owned(),
        ]
    );
    assert_eq!(
        message_at(&loaded, 3, 8),
        "expected true or false, found a scalar"
    );
    assert_eq!(loaded.diagnostics[0].value.as_deref(), Some("yes"));
    assert_eq!(
        message_at(&loaded, 10, 5),
        "expected a map of digest to tag list (\"sha256:…\": [\"v1\"]), found a list"
    );

    let loaded = load_plain("wrong-shape.yaml");
    assert_eq!(
        findings(&loaded),
        [
            "plain/wrong-shape.yaml:2:3 error registries",
            "plain/wrong-shape.yaml:3:9 error images",
        ]
    );
    let loaded = load_plain("not-a-map.yaml");
    assert_eq!(findings(&loaded), ["plain/not-a-map.yaml:1:1 error"]);
    assert!(loaded.manifests.is_empty());
}

#[test]
fn missing_keys_and_empty_files_are_errors() {
    let loaded = load_plain("missing-keys.yaml");
    assert_eq!(
        findings(&loaded),
        [
            "plain/missing-keys.yaml:2:3 error registries[0].name",
            "plain/missing-keys.yaml:4:3 error images[0].name",
        ]
    );
    assert_eq!(message_at(&loaded, 2, 3), "missing required key \"name\"");

    let loaded = load_plain("empty.yaml");
    assert_eq!(findings(&loaded), ["plain/empty.yaml:0:0 error"]);
}

#[test]
fn anchors_yaml_tags_and_second_documents_are_rejected() {
    let loaded = load_plain("anchor.yaml");
    // Reported at the anchored value.
    assert_eq!(findings(&loaded), ["plain/anchor.yaml:2:17 error"]);
    assert_eq!(
        message_at(&loaded, 2, 17),
        "YAML anchors (&name) are not allowed"
    );
    let loaded = load_plain("yaml-tag.yaml");
    assert_eq!(findings(&loaded), ["plain/yaml-tag.yaml:3:15 error"]);
    let loaded = load_plain("two-documents.yaml");
    assert_eq!(findings(&loaded), ["plain/two-documents.yaml:5:1 error"]);
}

#[test]
fn exactly_one_registry_is_the_source() {
    let loaded = load_plain("no-source.yaml");
    assert_eq!(
        findings(&loaded),
        ["plain/no-source.yaml:1:1 error registries"]
    );
    assert_eq!(
        message_at(&loaded, 1, 1),
        "no registry has src: true; exactly one registry must be the source"
    );
    assert!(loaded.manifests[0].source().is_none());

    let loaded = load_plain("two-sources.yaml");
    assert_eq!(
        findings(&loaded),
        ["plain/two-sources.yaml:5:8 error registries[1].src"]
    );
    assert_eq!(
        message_at(&loaded, 5, 8),
        "a second source registry (src: true), first at line 3; exactly one registry is the source"
    );
    // The second source is dropped; the first stays the source.
    let manifest = &loaded.manifests[0];
    assert_eq!(manifest.registries.len(), 2);
    assert_eq!(
        manifest.source().map(|r| r.name.as_str()),
        Some("gcr.io/k8s-staging-example")
    );

    let loaded = load_plain("no-registries.yaml");
    assert_eq!(
        findings(&loaded),
        ["plain/no-registries.yaml:1:1 error registries"]
    );
}

/// Names, digests and tags: each invalid one is reported where it is written and dropped; the
/// valid ones around it are kept.
#[test]
fn invalid_values_are_reported_and_dropped() {
    let loaded = load_plain("bad-values.yaml");
    let (d1, d2) = (digest('1'), digest('2'));
    let upper = format!("sha256:{}", "AB".repeat(32));
    let no_prefix = "cfa73b9a4e08b996a6948dfd597b7b5734466a74d49776ccb332bc4db9e6dfa4";
    assert_eq!(
        findings(&loaded),
        [
            "plain/bad-values.yaml:4:9 error registries[1].name".to_owned(),
            "plain/bad-values.yaml:5:9 error registries[2].name".to_owned(),
            // Listed twice with identical fields: the promoter collapses them.
            "plain/bad-values.yaml:7:9 warning registries[4].name".to_owned(),
            "plain/bad-values.yaml:9:20 error registries[5].service-account".to_owned(),
            "plain/bad-values.yaml:11:9 error images[0].name".to_owned(),
            "plain/bad-values.yaml:13:9 error images[1].name".to_owned(),
            format!("plain/bad-values.yaml:17:87 error images[2].dmap[\"{d1}\"][1]"),
            format!("plain/bad-values.yaml:18:5 error images[2].dmap[\"{upper}\"]"),
            "plain/bad-values.yaml:19:5 error images[2].dmap[\"sha256:1234\"]".to_owned(),
            format!("plain/bad-values.yaml:20:5 error images[2].dmap[\"{no_prefix}\"]"),
            format!("plain/bad-values.yaml:21:81 error images[2].dmap[\"{d2}\"][0]"),
            format!("plain/bad-values.yaml:21:95 error images[2].dmap[\"{d2}\"][2]"),
            "plain/bad-values.yaml:22:3 warning images[3].dmap".to_owned(),
        ]
    );
    assert_eq!(
        message_at(&loaded, 4, 9),
        "expected a registry name, found an empty string"
    );
    assert_eq!(
        message_at(&loaded, 5, 9),
        "invalid registry name: a registry name has no scheme (write gcr.io/foo, not https://gcr.io/foo)"
    );
    assert_eq!(
        message_at(&loaded, 7, 9),
        "registry listed twice with identical fields, first at line 6; the promoter uses it \
         once (remove this entry)"
    );
    assert!(message_at(&loaded, 13, 9).starts_with("invalid image name: uppercase letters"));
    assert_eq!(
        message_at(&loaded, 17, 87),
        "tag listed twice for this digest, first at line 17 column 81"
    );
    assert_eq!(
        message_at(&loaded, 18, 5),
        "invalid digest: not lowercase hex; expected sha256: followed by 64 lowercase hex digits"
    );
    assert!(message_at(&loaded, 19, 5).starts_with("invalid digest: 4 hex digits instead of 64"));
    assert!(
        message_at(&loaded, 20, 5).starts_with("invalid digest: missing the \"sha256:\" prefix")
    );
    assert!(message_at(&loaded, 21, 95).starts_with("invalid tag"));
    let value_at = |line, column| {
        loaded
            .diagnostics
            .iter()
            .find(|d| (d.line, d.column) == (line, column))
            .and_then(|d| d.value.clone())
    };
    assert_eq!(value_at(21, 95).as_deref(), Some("has space"));
    assert_eq!(value_at(20, 5).as_deref(), Some(no_prefix));

    let manifest = &loaded.manifests[0];
    let registries: Vec<&str> = manifest
        .registries
        .iter()
        .map(|r| r.name.as_str())
        .collect();
    assert_eq!(
        registries,
        [
            "gcr.io/k8s-staging-example",
            "eu.gcr.io/k8s-artifacts-prod/example"
        ]
    );
    assert_eq!(
        image_rows(manifest),
        [
            row("example", &[(&d1, &["v1"]), (&d2, &["ok"])]),
            row("no-digests", &[]),
        ]
    );
}

/// Repeated image names: splitting and re-tagging are fine (see valid.yaml), a redundant pair is
/// a warning, a tag on two digests of one image is an error.
#[test]
fn repeated_image_names() {
    let loaded = load_plain("repeated-images.yaml");
    let (d1, d2, d4) = (digest('1'), digest('2'), digest('4'));
    assert_eq!(
        findings(&loaded),
        [
            format!("plain/repeated-images.yaml:13:89 warning images[1].dmap[\"{d1}\"][1]"),
            format!("plain/repeated-images.yaml:14:81 error images[1].dmap[\"{d2}\"][0]"),
            format!("plain/repeated-images.yaml:21:81 error images[3].dmap[\"{d4}\"][0]"),
        ]
    );
    assert_eq!(
        message_at(&loaded, 14, 81),
        format!("tag already points at {d1} (line 9); a tag names one digest")
    );
    assert!(message_at(&loaded, 13, 89).contains("redundant"));
    // The conflicting tag is dropped; the redundant one (a warning) is kept.
    let images = &loaded.manifests[0].images;
    assert_eq!(images[1].dmap[0].tags.len(), 2);
    assert!(images[1].dmap[1].tags.is_empty());
}

#[test]
fn display_names_file_line_column_key_and_value() {
    let loaded = load_plain("two-sources.yaml");
    let file = fixtures().join("plain/two-sources.yaml");
    assert_eq!(
        loaded.diagnostics[0].to_string(),
        format!(
            "{}:5:8: error: registries[1].src: a second source registry (src: true), first at \
             line 3; exactly one registry is the source (got \"true\")",
            file.display()
        )
    );
    let error = loaded.into_result().unwrap_err();
    assert_eq!(error.error_count(), 1);
    assert!(
        error
            .to_string()
            .starts_with("1 error in the promoter manifests; the first: ")
    );
    assert_eq!(load_plain("valid.yaml").into_result().unwrap().len(), 1);
    // Warnings alone do not fail.
    let loaded = load(&[Input::Thin(fixtures().join("thin/good"))]);
    assert!(!loaded.has_errors());
}

/// Several inputs: manifests in input order, all diagnostics sorted by file, line, column.
#[test]
fn several_inputs_sort_all_diagnostics() {
    let plain = fixtures().join("plain");
    let loaded = load(&[
        Input::Plain(plain.join("wrong-types.yaml")),
        Input::Plain(plain.join("valid.yaml")),
        Input::Plain(plain.join("bad-values.yaml")),
    ]);
    let keys: Vec<_> = loaded
        .diagnostics
        .iter()
        .map(|d| (d.file.clone(), d.line, d.column))
        .collect();
    let mut sorted = keys.clone();
    sorted.sort();
    assert_eq!(keys, sorted);
    assert_eq!(loaded.diagnostics.len(), 13 + 6);
    let files: Vec<_> = loaded
        .manifests
        .iter()
        .map(|m| m.manifest_file.clone())
        .collect();
    assert_eq!(
        files,
        [
            plain.join("wrong-types.yaml").into(),
            plain.join("valid.yaml").into(),
            plain.join("bad-values.yaml").into(),
        ]
    );
}

/// CRLF line endings and a byte-order mark load, with the same lines and columns.
#[test]
fn crlf_and_byte_order_mark_load() {
    let original = fs::read_to_string(fixtures().join("plain/bad-values.yaml")).unwrap();
    let directory = tempfile::tempdir().unwrap();
    let file = directory.path().join("crlf.yaml");
    fs::write(&file, format!("\u{feff}{}", original.replace('\n', "\r\n"))).unwrap();
    let crlf = load(&[Input::Plain(file.clone())]);
    let reference = load_plain("bad-values.yaml");
    let positions = |loaded: &hoist_manifest::Loaded| {
        loaded
            .diagnostics
            .iter()
            .map(|d| (d.line, d.column, d.key_path.clone(), d.message.clone()))
            .collect::<Vec<_>>()
    };
    assert_eq!(positions(&crlf), positions(&reference));
    assert_eq!(crlf.diagnostics[0].file.as_ref(), file);
}

/// Missing and unreadable files are diagnostics, not panics.
#[test]
fn missing_and_unreadable_files() {
    let directory = tempfile::tempdir().unwrap();
    let missing = directory.path().join("missing.yaml");
    let binary = directory.path().join("binary.yaml");
    fs::write(&binary, b"registries:\n- name: \xff\xfe\n").unwrap();
    let loaded = load(&[
        Input::Plain(missing.clone()),
        Input::Plain(binary.clone()),
        Input::Plain(directory.path().to_owned()),
    ]);
    let found: Vec<(&std::path::Path, u32, Severity, &str)> = loaded
        .diagnostics
        .iter()
        .map(|d| (d.file.as_ref(), d.line, d.severity, d.message.as_str()))
        .collect();
    assert_eq!(found.len(), 3, "{found:#?}");
    assert!(
        found
            .iter()
            .any(|(file, line, severity, message)| *file == directory.path()
                && (*line, *severity) == (0, Severity::Error)
                && message.starts_with("cannot read this file")),
        "{found:#?}"
    );
    assert!(found.contains(&(binary.as_path(), 0, Severity::Error, "not UTF-8 text")));
    assert!(found.contains(&(missing.as_path(), 0, Severity::Error, "no such file")));
    assert!(loaded.manifests.is_empty());
}
