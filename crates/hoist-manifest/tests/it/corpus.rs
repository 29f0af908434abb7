//! The real promoter manifests of kubernetes/k8s.io, copied beside the repository (see its
//! SOURCE.md). Skipped, with a message, when the copy is absent.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::Instant;

use hoist_manifest::snapshot::Snapshot;
use hoist_manifest::{Input, Loaded, Manifest, Severity, load};

/// `<repo>/../shared/corpus/k8s.io/<tree>`, if present.
fn corpus(tree: &str) -> Option<PathBuf> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../../shared/corpus/k8s.io")
        .join(tree);
    if path.is_dir() {
        Some(path)
    } else {
        println!("skipping: the k8s.io corpus is not at {}", path.display());
        None
    }
}

fn load_tree(dir: &Path) -> Loaded {
    let start = Instant::now();
    let loaded = load(&[Input::Thin(dir.to_owned())]);
    println!("loaded {} in {:?}", dir.display(), start.elapsed());
    loaded
}

/// Each finding as (file relative to the tree, key path, severity).
fn finding_set(loaded: &Loaded, dir: &Path) -> BTreeSet<(String, String, Severity)> {
    loaded
        .diagnostics
        .iter()
        .map(|d| {
            let file = d.file.strip_prefix(dir).unwrap_or(&d.file);
            (file.display().to_string(), d.key_path.clone(), d.severity)
        })
        .collect()
}

fn project<'a>(loaded: &'a Loaded, name: &str) -> &'a Manifest {
    loaded
        .manifests
        .iter()
        .find(|m| m.project.as_deref() == Some(name))
        .unwrap_or_else(|| panic!("project {name} not loaded"))
}

/// The merged tags of `image@digest` in a project.
fn tags_of(manifest: &Manifest, image: &str, digest: &str) -> Vec<String> {
    let snapshot = Snapshot::from_images(&manifest.images);
    snapshot
        .images()
        .filter(|(name, _)| name.as_str() == image)
        .flat_map(|(_, digests)| digests.iter())
        .filter(|(candidate, _)| candidate.to_string() == digest)
        .flat_map(|(_, tags)| tags.iter().map(ToString::to_string))
        .collect()
}

#[test]
fn registry_k8s_io_findings_are_exactly_the_known_problems() {
    let Some(dir) = corpus("registry.k8s.io") else {
        return;
    };
    let loaded = load_tree(&dir);
    let expected: BTreeSet<(String, String, Severity)> = [
        // A misspelt copy beside images.yaml: the promoter never reads it.
        // A warning: the promoter ignores it.
        ("images/k8s-staging-lws/imaegs.yaml", "", Severity::Warning),
        // A digest written without its "sha256:" prefix.
        (
            "images/k8s-staging-minikube/images.yaml",
            "images[2].dmap[\"cfa73b9a4e08b996a6948dfd597b7b5734466a74d49776ccb332bc4db9e6dfa4\"]",
            Severity::Error,
        ),
        // us-west1-docker.pkg.dev/k8s-artifacts-prod/images/boskos listed twice, identically:
        // a warning, as the promoter collapses the two entries.
        (
            "manifests/k8s-staging-boskos/promoter-manifest.yaml",
            "registries[22].name",
            Severity::Warning,
        ),
    ]
    .into_iter()
    .map(|(file, key, severity)| (file.to_owned(), key.to_owned(), severity))
    .collect();
    assert_eq!(
        finding_set(&loaded, &dir),
        expected,
        "{:#?}",
        loaded.diagnostics
    );

    // Every project with both files is loaded.
    let projects = std::fs::read_dir(dir.join("manifests"))
        .unwrap()
        .filter(|entry| {
            let entry = entry.as_ref().unwrap();
            entry.path().is_dir()
                && dir
                    .join("images")
                    .join(entry.file_name())
                    .join("images.yaml")
                    .is_file()
        })
        .count();
    assert_eq!(loaded.manifests.len(), projects);
    assert!(loaded.manifests.iter().all(|m| m.source().is_some()));

    // The oddities that are not problems are read correctly.
    // Unquoted digests (kops).
    let kops = project(&loaded, "k8s-staging-kops");
    assert_eq!(
        tags_of(
            kops,
            "dns-controller",
            "sha256:77fc6667f8abf1ef6678fa453ac08b67db7fc229d0434f9c05ebebef447a45e7"
        ),
        ["1.19.0-alpha.2"]
    );
    // A comment inside a digest list (e2e-test-images): the entry after it is read.
    let e2e = project(&loaded, "k8s-staging-e2e-test-images");
    assert!(e2e.images.iter().flat_map(|i| &i.dmap).any(|entry| {
        entry.digest.to_string()
            == "sha256:cc249acbd34692826b2b335335615e060fdb3c0bca4954507aa3a1d1194de253"
            && entry.tags.iter().any(|t| t.as_str() == "2.47")
    }));
    // CRLF line endings (npd).
    assert!(!project(&loaded, "k8s-staging-npd").images.is_empty());
    // A digest re-listed in a later release block with the next tag (etcdadm): both tags.
    let etcdadm = project(&loaded, "k8s-staging-etcdadm");
    assert_eq!(
        tags_of(
            etcdadm,
            "etcd-backup",
            "sha256:1443fa4a3dedacee34d738472be208e05552c52260761006ec50b4c4cd0f7c9f"
        ),
        ["v3.0.20220128", "v3.0.20220203"]
    );
    // The duplicate registry is dropped once; the rest of boskos stands.
    let boskos = project(&loaded, "k8s-staging-boskos");
    let west1 = boskos
        .registries
        .iter()
        .filter(|r| r.name.as_str() == "us-west1-docker.pkg.dev/k8s-artifacts-prod/images/boskos")
        .count();
    assert_eq!(west1, 1);
    // minikube keeps its valid digests.
    assert!(
        project(&loaded, "k8s-staging-minikube")
            .images
            .iter()
            .any(|i| !i.dmap.is_empty())
    );
}

#[test]
fn k8s_gcr_io_loads() {
    let Some(dir) = corpus("k8s.gcr.io") else {
        return;
    };
    let loaded = load_tree(&dir);
    // The frozen tree writes imagesPath: "../../images/<p>/images.yaml", which resolves to the
    // conventional file. kmm's images.yaml names an image without any digest: accepted by the
    // promoter (it promotes nothing), so a warning.
    let expected: BTreeSet<(String, String, Severity)> = [(
        "images/k8s-staging-kmm/images.yaml".to_owned(),
        "images[0].dmap".to_owned(),
        Severity::Warning,
    )]
    .into_iter()
    .collect();
    assert_eq!(
        finding_set(&loaded, &dir),
        expected,
        "{:#?}",
        loaded.diagnostics
    );
    assert!(!loaded.has_errors());
    let projects: Vec<&str> = loaded
        .manifests
        .iter()
        .filter_map(|m| m.project.as_deref())
        .collect();
    assert!(projects.contains(&"k8s-staging-kwok"), "{projects:?}");
    assert!(loaded.manifests.iter().all(|m| m.source().is_some()));
}

/// Every project of registry.k8s.io written as a snapshot and loaded back gives the same data.
#[test]
fn registry_k8s_io_snapshots_round_trip() {
    let Some(dir) = corpus("registry.k8s.io") else {
        return;
    };
    let loaded = load_tree(&dir);
    let out = tempfile::tempdir().unwrap();
    let mut originals = Vec::new();
    for manifest in &loaded.manifests {
        let name = manifest.project.clone().unwrap();
        let snapshot = Snapshot::from_images(&manifest.images);
        crate::snapshot::write_project(out.path(), &name, &snapshot.to_yaml());
        originals.push((name, snapshot));
    }
    let reloaded = load(&[Input::Thin(out.path().to_owned())]);
    assert!(
        reloaded.diagnostics.is_empty(),
        "{:#?}",
        reloaded.diagnostics
    );
    assert_eq!(reloaded.manifests.len(), originals.len());
    for (manifest, (name, original)) in reloaded.manifests.iter().zip(&originals) {
        assert_eq!(manifest.project.as_ref(), Some(name));
        assert_eq!(&Snapshot::from_images(&manifest.images), original, "{name}");
    }
}
