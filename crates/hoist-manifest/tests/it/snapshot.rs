//! Snapshots: merged, sorted output that loads back to the same data.

use std::fs;
use std::path::Path;

use hoist_manifest::snapshot::Snapshot;
use hoist_manifest::{Input, load};

use crate::support::{digest, fixtures, load_plain};

/// Writes `images_yaml` as project `name` of a thin layout at `dir`, with a minimal manifest.
pub fn write_project(dir: &Path, name: &str, images_yaml: &str) {
    let manifests = dir.join("manifests").join(name);
    let images = dir.join("images").join(name);
    fs::create_dir_all(&manifests).unwrap();
    fs::create_dir_all(&images).unwrap();
    fs::write(
        manifests.join("promoter-manifest.yaml"),
        "registries:\n- name: gcr.io/k8s-staging-test\n  src: true\n- name: us.gcr.io/prod\n",
    )
    .unwrap();
    fs::write(images.join("images.yaml"), images_yaml).unwrap();
}

/// valid.yaml lists `example` twice; the snapshot merges the entries and sorts everything.
#[test]
fn merges_and_sorts_a_manifest() {
    let loaded = load_plain("valid.yaml");
    let snapshot = Snapshot::from_images(&loaded.manifests[0].images);
    let (d1, d2, d3, d4) = (digest('1'), digest('2'), digest('3'), digest('4'));
    assert_eq!(
        snapshot.to_yaml(),
        format!(
            "- name: example\n  dmap:\n    \
             \"{d1}\": [\"latest\", \"v1.0.0\", \"v1.0.1\"]\n    \
             \"{d2}\": [\"v1.1.0\"]\n    \
             \"{d3}\": []\n\
             - name: nested/tool\n  dmap:\n    \
             \"{d4}\": [\"v0.1\"]\n"
        )
    );
    assert_eq!(
        snapshot.to_csv(),
        format!(
            "example@{d1},example:latest\n\
             example@{d1},example:v1.0.0\n\
             example@{d1},example:v1.0.1\n\
             example@{d2},example:v1.1.0\n\
             example@{d3},-\n\
             nested/tool@{d4},nested/tool:v0.1\n"
        )
    );
}

/// to_yaml loads back (as a thin images.yaml) to the same data, and writes the same bytes again.
#[test]
fn yaml_round_trips_through_load() {
    let plain = load_plain("valid.yaml");
    let thin = load(&[Input::Thin(fixtures().join("thin/good"))]);
    let images = plain
        .manifests
        .iter()
        .chain(&thin.manifests)
        .flat_map(|m| &m.images);
    let original = Snapshot::from_images(images);
    assert!(!original.is_empty());
    let text = original.to_yaml();

    let dir = tempfile::tempdir().unwrap();
    write_project(dir.path(), "p", &text);
    let reloaded = load(&[Input::Thin(dir.path().to_owned())]);
    assert!(
        reloaded.diagnostics.is_empty(),
        "{:#?}",
        reloaded.diagnostics
    );
    let again = Snapshot::from_images(&reloaded.manifests[0].images);
    assert_eq!(again, original);
    assert_eq!(again.to_yaml(), text);

    // The empty snapshot loads back as an empty list, too.
    let empty = tempfile::tempdir().unwrap();
    write_project(empty.path(), "p", &Snapshot::new().to_yaml());
    let reloaded = load(&[Input::Thin(empty.path().to_owned())]);
    assert!(reloaded.diagnostics.is_empty());
    assert!(reloaded.manifests[0].images.is_empty());
}
