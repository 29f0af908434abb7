//! Thin layouts (`--thin-manifest-dir DIR`): the files, where they must be, and `imagesPath`.

use std::fs;

use hoist_manifest::{Input, load};

use crate::support::{digest, findings, fixtures, load_thin, message_at};

/// The passing case of every layout rule: two projects, documentation files (README.md, OWNERS)
/// in several places, an `imagesPath` that names the project's own file, and an images file that
/// holds only a comment.
#[test]
fn valid_layout_loads() {
    let loaded = load_thin("good");
    assert_eq!(findings(&loaded), Vec::<String>::new());
    let projects: Vec<Option<&str>> = loaded
        .manifests
        .iter()
        .map(|m| m.project.as_deref())
        .collect();
    assert_eq!(projects, [Some("alpha"), Some("beta")]);
    let alpha = &loaded.manifests[0];
    let good = fixtures().join("thin/good");
    assert_eq!(
        alpha.manifest_file.as_ref(),
        good.join("manifests/alpha/promoter-manifest.yaml")
    );
    assert_eq!(
        alpha.images_file.as_ref(),
        good.join("images/alpha/images.yaml")
    );
    assert_eq!(
        alpha.source().map(|r| r.name.as_str()),
        Some("gcr.io/k8s-staging-alpha")
    );
    let names: Vec<&str> = alpha.images.iter().map(|i| i.name.as_str()).collect();
    assert_eq!(names, ["alpha", "alpha/helper"]);
    assert_eq!(alpha.images[0].dmap[1].digest.to_string(), digest('2'));
    assert!(loaded.manifests[1].images.is_empty());
}

/// A trailing `/` on DIR changes nothing, and file names are DIR joined with the relative path.
#[test]
fn trailing_slash_on_the_directory() {
    let given = format!("{}/", fixtures().join("thin/bad").display());
    let loaded = load(&[Input::Thin(given.clone().into())]);
    let stray = loaded
        .diagnostics
        .iter()
        .find(|d| d.file.ends_with("stray.yaml"))
        .expect("stray.yaml is reported");
    assert_eq!(
        stray.file.display().to_string(),
        format!("{given}stray.yaml")
    );
    assert_eq!(findings(&loaded), findings(&load_thin("bad")));
    let good = load(&[Input::Thin(
        format!("{}/", fixtures().join("thin/good").display()).into(),
    )]);
    assert_eq!(good.manifests.len(), 2);
    assert!(good.diagnostics.is_empty());
}

/// Every misplaced, misspelt or missing file is reported naming the file and what was expected:
/// a stray file inside a project directory is a warning (the promoter ignores it), the rest are
/// errors.
#[test]
fn misplaced_and_missing_files_are_errors() {
    let loaded = load_thin("bad");
    assert_eq!(
        findings(&loaded),
        [
            // An images file without a manifest: the promoter never reads it.
            "thin/bad/images/delta/images.yaml:0:0 error",
            // Misspelt beside the real file (as k8s-staging-lws in the real data).
            "thin/bad/images/epsilon/imaegs.yaml:0:0 warning",
            // A manifest without images.
            "thin/bad/images/gamma/images.yaml:0:0 error",
            // The manifest put in the images tree: misplaced, and theta has no images file.
            "thin/bad/images/theta/images.yaml:0:0 error",
            "thin/bad/images/theta/promoter-manifest.yaml:0:0 warning",
            // imagesPath naming another project's file.
            "thin/bad/manifests/epsilon/promoter-manifest.yaml:6:13 error imagesPath",
            // A directory inside a project directory.
            "thin/bad/manifests/eta/extra:0:0 warning",
            // A YAML file at the top of manifests/.
            "thin/bad/manifests/notes.yaml:0:0 error",
            // A project directory with only documentation.
            "thin/bad/manifests/zeta:0:0 error",
            // A YAML file at the top of DIR.
            "thin/bad/stray.yaml:0:0 error",
        ]
    );
    let message_for = |suffix: &str| {
        loaded
            .diagnostics
            .iter()
            .find(|d| d.file.ends_with(suffix))
            .map(|d| d.message.as_str())
            .unwrap_or_default()
    };
    assert_eq!(
        message_for("epsilon/imaegs.yaml"),
        "unexpected file \"imaegs.yaml\": images/epsilon/ holds only images.yaml (and \
         documentation), and the promoter ignores everything else; did you mean images.yaml?"
    );
    assert_eq!(
        message_for("theta/promoter-manifest.yaml"),
        "unexpected file \"promoter-manifest.yaml\": images/theta/ holds only images.yaml (and \
         documentation), and the promoter ignores everything else"
    );
    assert_eq!(
        message_for("notes.yaml"),
        "unexpected file: manifests/ holds only project directories \
         manifests/<p>/promoter-manifest.yaml (and documentation)"
    );
    assert_eq!(
        message_for("gamma/images.yaml"),
        "missing: manifests/gamma/promoter-manifest.yaml has no images file"
    );
    assert_eq!(
        message_for("delta/images.yaml"),
        "no manifests/delta/promoter-manifest.yaml for this images file, so the promoter would \
         ignore it"
    );
    assert_eq!(
        message_for("manifests/zeta"),
        "project directory without its promoter-manifest.yaml"
    );
    let bad = fixtures().join("thin/bad");
    assert_eq!(
        message_at(&loaded, 6, 13),
        format!(
            "must name this project's images file {} (write \"../../images/epsilon/images.yaml\" \
             or leave imagesPath out)",
            bad.join("images/epsilon/images.yaml").display(),
        )
    );
    // Only complete projects are returned; a wrong imagesPath does not drop the project (hoist
    // reads the conventional file, and the error fails the check anyway).
    let projects: Vec<Option<&str>> = loaded
        .manifests
        .iter()
        .map(|m| m.project.as_deref())
        .collect();
    assert_eq!(projects, [Some("epsilon"), Some("eta")]);
}

#[test]
fn a_layout_without_manifests_is_an_error() {
    let loaded = load_thin("no-manifests");
    assert_eq!(
        findings(&loaded),
        [
            "thin/no-manifests/images/alpha/images.yaml:0:0 error",
            "thin/no-manifests/manifests:0:0 error",
        ]
    );
}

/// The strict rules apply to thin files as to plain ones; a file that cannot be parsed, or an
/// images file that is not a list, drops its project.
#[test]
fn thin_files_are_decoded_strictly() {
    let loaded = load_thin("broken");
    assert_eq!(
        findings(&loaded),
        [
            "thin/broken/images/alpha/images.yaml:1:1 error images",
            "thin/broken/manifests/alpha/promoter-manifest.yaml:6:13 error imagesPath",
            "thin/broken/manifests/alpha/promoter-manifest.yaml:7:1 error src",
            "thin/broken/manifests/beta/promoter-manifest.yaml:2:9 error",
        ]
    );
    assert_eq!(
        message_at(&loaded, 7, 1),
        "unknown key; expected one of: registries, imagesPath"
    );
    assert!(message_at(&loaded, 2, 9).starts_with("YAML syntax error"));
    assert!(loaded.manifests.is_empty(), "{:#?}", loaded.manifests);
}

#[test]
fn missing_directory_and_file_instead_of_directory() {
    let directory = tempfile::tempdir().unwrap();
    let missing = directory.path().join("missing");
    let file = directory.path().join("file");
    fs::write(&file, "[]\n").unwrap();
    let loaded = load(&[Input::Thin(missing.clone()), Input::Thin(file.clone())]);
    let found: Vec<(&std::path::Path, u32, &str)> = loaded
        .diagnostics
        .iter()
        .map(|d| (d.file.as_ref(), d.line, d.message.as_str()))
        .collect();
    assert_eq!(
        found,
        [
            (
                file.as_path(),
                0,
                "expected a directory (a thin manifest layout), found a file"
            ),
            (missing.as_path(), 0, "no such directory"),
        ]
    );
}
