//! Loading: kpromo's formats, strictly, with every error naming file, line and key.

use std::path::Path;

use hoist_files::{FileInput, Loaded, load};
use hoist_manifest::Severity;
use hoist_object::BackendUrl;

use crate::write;

const SHA_A: &str = "4f2f040fa2bfe9bea64911a2a756e8a1727a8bfd757c5e031631a6e699fcf246";
const SHA_B: &str = "2d4f26491e0e470236f73a0b8d6828db017eab988cd102fc19afe31f1f56aff7";

const FILESTORES: &str = "filestores:
- base: gs://k8s-staging-cri-tools/releases/
  src: true
- base: gs://k8s-artifacts-prod/binaries/cri-tools/
  service-account: k8s-infra-promoter@k8s-artifacts-prod.iam.gserviceaccount.com
- base: s3://k8s-artifacts-prod/binaries/cri-tools
";

fn files(entries: &[(&str, &str)]) -> String {
    let mut text = String::from("files:\n");
    for (name, sha) in entries {
        text.push_str(&format!("- name: {name}\n  sha256: {sha}\n"));
    }
    text
}

fn split(dir: &Path, filestores: &str, files: &str) -> Loaded {
    let filestores = write(dir, "filestores.yaml", filestores);
    let files = write(dir, "files.yaml", files);
    load(&[FileInput::Split { filestores, files }])
}

/// `file:line: key: message` of every error, file names relative to `dir`.
fn errors(loaded: &Loaded, dir: &Path) -> Vec<String> {
    loaded
        .diagnostics
        .iter()
        .filter(|diagnostic| diagnostic.severity == Severity::Error)
        .map(|diagnostic| {
            let file = diagnostic
                .file
                .strip_prefix(dir)
                .unwrap_or(&diagnostic.file);
            format!(
                "{}:{}: {}: {}",
                file.display(),
                diagnostic.line,
                diagnostic.key_path,
                diagnostic.message
            )
        })
        .collect()
}

#[test]
fn kpromos_documented_example_loads() {
    let dir = tempfile::tempdir().unwrap();
    let loaded = split(
        dir.path(),
        FILESTORES,
        &files(&[
            ("vegetables/artichoke", SHA_A),
            ("vegetables/beetroot", SHA_B),
        ]),
    );
    assert!(!loaded.has_errors(), "{:#?}", loaded.diagnostics);
    let [manifest] = loaded.manifests.as_slice() else {
        panic!("{:?}", loaded.manifests)
    };
    let source = manifest.source().unwrap();
    assert_eq!(
        source.url,
        BackendUrl::Gcs {
            bucket: "k8s-staging-cri-tools".into(),
            prefix: "releases".into()
        }
    );
    assert_eq!(manifest.destinations().count(), 2);
    assert_eq!(
        manifest.filestores[1].service_account.as_deref(),
        Some("k8s-infra-promoter@k8s-artifacts-prod.iam.gserviceaccount.com")
    );
    assert_eq!(manifest.files.len(), 2);
    assert_eq!(manifest.files[0].name, "vegetables/artichoke");
    assert_eq!(manifest.files[0].sha256.hex(), SHA_A);
    assert_eq!(manifest.files[1].location.line, 4);
}

#[test]
fn a_directory_of_file_lists_is_read_in_path_order() {
    let dir = tempfile::tempdir().unwrap();
    let filestores = write(dir.path(), "filestores.yaml", FILESTORES);
    write(dir.path(), "files/v2.yaml", &files(&[("v2/tool", SHA_B)]));
    write(dir.path(), "files/a/v1.yml", &files(&[("v1/tool", SHA_A)]));
    write(dir.path(), "files/OWNERS", "approvers: [someone]\n");
    write(dir.path(), "files/README.md", "# files\n");
    write(dir.path(), "files/.gitkeep", "");
    write(dir.path(), "files/empty.yaml", "# nothing yet\n");
    let loaded = load(&[FileInput::Split {
        filestores,
        files: dir.path().join("files"),
    }]);
    assert!(!loaded.has_errors(), "{:#?}", loaded.diagnostics);
    let names: Vec<&str> = loaded.manifests[0]
        .files
        .iter()
        .map(|file| file.name.as_str())
        .collect();
    assert_eq!(names, ["v1/tool", "v2/tool"]);
}

#[test]
fn the_multi_project_layout_loads_every_project() {
    let dir = tempfile::tempdir().unwrap();
    for project in ["k8s-staging-kops", "k8s-staging-cri-tools"] {
        write(
            dir.path(),
            &format!("filestores/{project}/filepromoter-manifest.yaml"),
            &format!(
                "filestores:\n- base: gs://{project}/releases/\n  src: true\n- base: gs://k8s-artifacts-prod/binaries/{project}/\n"
            ),
        );
        write(
            dir.path(),
            &format!("manifests/{project}/1.0.yaml"),
            &files(&[("1.0/tool", SHA_A)]),
        );
        write(
            dir.path(),
            &format!("manifests/{project}/OWNERS"),
            "approvers: []\n",
        );
    }
    write(dir.path(), "filestores/OWNERS", "approvers: []\n");
    let loaded = load(&[FileInput::Projects(dir.path().to_owned())]);
    assert!(!loaded.has_errors(), "{:#?}", loaded.diagnostics);
    let projects: Vec<_> = loaded
        .manifests
        .iter()
        .map(|manifest| manifest.project.as_deref().unwrap())
        .collect();
    assert_eq!(projects, ["k8s-staging-cri-tools", "k8s-staging-kops"]);
}

#[test]
fn every_mistake_names_file_line_and_key() {
    let cases: &[(&str, &str, &str)] = &[
        // (filestores, files, expected error)
        (
            "filestores:\n- base: gs://a-bucket\n  src: true\n  colour: blue\n- base: gs://b-bucket\n",
            "",
            "filestores.yaml:4: filestores[0].colour: unknown key",
        ),
        (
            "filestores:\n- base: gs://a-bucket\n- base: gs://b-bucket\n",
            "",
            "filestores.yaml:1: filestores: no source filestore",
        ),
        (
            "filestores:\n- base: gs://a-bucket\n  src: true\n- base: gs://b-bucket\n  src: true\n",
            "",
            "filestores.yaml:4: filestores[1].src: a second source filestore",
        ),
        (
            "filestores:\n- base: gs://a-bucket\n  src: true\n",
            "",
            "filestores.yaml:1: filestores: no destination filestore",
        ),
        (
            "filestores:\n- base: https://a.example.com/x\n  src: true\n- base: gs://b-bucket\n",
            "",
            "filestores.yaml:2: filestores[0].base: unsupported base",
        ),
        (
            "filestores:\n- base: gs://a-bucket\n  src: \"true\"\n- base: gs://b-bucket\n",
            "",
            "filestores.yaml:3: filestores[0].src: expected true or false",
        ),
        (
            "filestores:\n- src: true\n- base: gs://b-bucket\n",
            "",
            "filestores.yaml:2: filestores[0].base: missing required key",
        ),
        (
            "filestores:\n- base: gs://a-bucket\n  src: true\n- base: gs://a-bucket/\n",
            "",
            "filestores.yaml:4: filestores[1].base: the same base",
        ),
        (
            "filestores:\n- base: gs://a-bucket\n  src: true\n- base: gs://b-bucket\n  region: us-east-1\n",
            "",
            "filestores.yaml:5: filestores[1].region: region applies only to s3:// bases",
        ),
        (
            "filestores:\n- base: gs://a-bucket\n  src: true\n- base: gs://b-bucket\nfiles: []\n",
            "",
            "filestores.yaml:5: files: files are not allowed in a filestores manifest",
        ),
        (
            "filestores:\n- base: gs://a-bucket\n  src: true\n  src: false\n- base: gs://b-bucket\n",
            "",
            "filestores.yaml:4: filestores[0].src: duplicate key",
        ),
        (
            "",
            "files:\n- name: ../etc/passwd\n  sha256: 4f2f040fa2bfe9bea64911a2a756e8a1727a8bfd757c5e031631a6e699fcf246\n",
            "files.yaml:2: files[0].name: invalid file name",
        ),
        (
            "",
            "files:\n- name: /abs/tool\n  sha256: 4f2f040fa2bfe9bea64911a2a756e8a1727a8bfd757c5e031631a6e699fcf246\n",
            "files.yaml:2: files[0].name: invalid file name",
        ),
        (
            "",
            "files:\n- name: tool\n  sha256: abcd\n",
            "files.yaml:3: files[0].sha256: invalid sha256: 4 characters",
        ),
        (
            "",
            "files:\n- name: tool\n  sha256: zzzz040fa2bfe9bea64911a2a756e8a1727a8bfd757c5e031631a6e699fcf246\n",
            "files.yaml:3: files[0].sha256: invalid sha256: not hex",
        ),
        (
            "",
            "files:\n- name: tool\n",
            "files.yaml:2: files[0].sha256: missing required key",
        ),
        (
            "",
            "files:\n- name: tool\n  sha256: 4f2f040fa2bfe9bea64911a2a756e8a1727a8bfd757c5e031631a6e699fcf246\n  size: 3\n",
            "files.yaml:4: files[0].size: unknown key",
        ),
        (
            "",
            "files: []\n",
            "files.yaml:0: files: no files to promote",
        ),
        (
            "",
            "files:\n- name: tool\n  sha256: 4f2f040fa2bfe9bea64911a2a756e8a1727a8bfd757c5e031631a6e699fcf246\n- name: tool\n  sha256: 2d4f26491e0e470236f73a0b8d6828db017eab988cd102fc19afe31f1f56aff7\n",
            "files.yaml:4: files: listed twice with different sha256",
        ),
        (
            "",
            "filestores: []\nfiles:\n- name: tool\n  sha256: 4f2f040fa2bfe9bea64911a2a756e8a1727a8bfd757c5e031631a6e699fcf246\n",
            "files.yaml:1: filestores: filestores are not allowed in a file manifest",
        ),
        (
            "",
            "files: {name: x}\n",
            "files.yaml:1: files: expected a list of files",
        ),
        (
            "",
            "files:\n- name: [x\n",
            "files.yaml:3: : YAML syntax error",
        ),
    ];
    let good_filestores =
        "filestores:\n- base: gs://a-bucket\n  src: true\n- base: gs://b-bucket\n";
    let good_files = files(&[("tool", SHA_A)]);
    for (filestores, file_list, expected) in cases {
        let dir = tempfile::tempdir().unwrap();
        let filestores = if filestores.is_empty() {
            good_filestores
        } else {
            filestores
        };
        let file_list = if file_list.is_empty() {
            good_files.as_str()
        } else {
            file_list
        };
        let loaded = split(dir.path(), filestores, file_list);
        let found = errors(&loaded, dir.path());
        assert!(
            found.iter().any(|error| error.starts_with(expected)),
            "expected {expected:?} in {found:#?}"
        );
    }
}

#[test]
fn layout_mistakes_are_errors() {
    let dir = tempfile::tempdir().unwrap();
    let stores = "filestores:\n- base: gs://a-bucket\n  src: true\n- base: gs://b-bucket\n";
    write(
        dir.path(),
        "filestores/good/filepromoter-manifest.yaml",
        stores,
    );
    write(
        dir.path(),
        "manifests/good/v1.yaml",
        &files(&[("tool", SHA_A)]),
    );
    write(dir.path(), "manifests/good/notes.txt", "hello\n");
    // A project without file manifests, one without filestores, a misspelt file.
    write(
        dir.path(),
        "filestores/lonely/filepromoter-manifest.yaml",
        stores,
    );
    write(
        dir.path(),
        "manifests/orphan/v1.yaml",
        &files(&[("tool", SHA_A)]),
    );
    write(
        dir.path(),
        "filestores/typo/filepromotor-manifest.yaml",
        stores,
    );
    #[cfg(unix)]
    std::os::unix::fs::symlink("/etc/hostname", dir.path().join("manifests/good/link.yaml"))
        .unwrap();
    let loaded = load(&[FileInput::Projects(dir.path().to_owned())]);
    let found = errors(&loaded, dir.path()).join("\n");
    for expected in [
        "manifests/good/notes.txt:0: : unexpected file",
        "manifests/lonely:0: : missing directory: filestores/lonely/filepromoter-manifest.yaml has no file manifests",
        "manifests/orphan:0: : no filestores/orphan/filepromoter-manifest.yaml",
        "filestores/typo/filepromotor-manifest.yaml:0: : unexpected file",
        "filestores/typo/filepromoter-manifest.yaml:0: : missing",
        #[cfg(unix)]
        "manifests/good/link.yaml:0: : a symbolic link",
    ] {
        assert!(
            found.contains(expected),
            "expected {expected:?} in\n{found}"
        );
    }
    // The good project still loads.
    assert!(
        loaded
            .manifests
            .iter()
            .any(|manifest| manifest.project.as_deref() == Some("good"))
    );
    // Not a layout at all: a file, or a directory without filestores/.
    let file = write(dir.path(), "promoter-manifest.yaml", "registries: []\n");
    let found = errors(&load(&[FileInput::Projects(file)]), dir.path()).join("\n");
    assert!(found.contains("--manifest FILE"), "{found}");
    let empty = tempfile::tempdir().unwrap();
    let found = errors(
        &load(&[FileInput::Projects(empty.path().to_owned())]),
        empty.path(),
    );
    assert!(found[0].contains("missing directory"), "{found:?}");
}

#[test]
fn two_manifests_sending_different_bytes_to_one_object_conflict() {
    let dir = tempfile::tempdir().unwrap();
    for (project, sha) in [("one", SHA_A), ("two", SHA_B)] {
        write(
            dir.path(),
            &format!("filestores/{project}/filepromoter-manifest.yaml"),
            &format!(
                "filestores:\n- base: gs://staging-{project}\n  src: true\n- base: gs://prod-bucket/bin\n"
            ),
        );
        write(
            dir.path(),
            &format!("manifests/{project}/v1.yaml"),
            &files(&[("v1/tool", sha)]),
        );
    }
    let loaded = load(&[FileInput::Projects(dir.path().to_owned())]);
    let found = errors(&loaded, dir.path());
    assert_eq!(found.len(), 1, "{found:#?}");
    assert!(
        found[0]
            .starts_with("manifests/two/v1.yaml:2: files: conflict: gs://prod-bucket/bin/v1/tool"),
        "{found:?}"
    );
}
