//! Redirecting edges into the local registry.

use hoist_manifest::{Input, load};
use hoist_oci::RegistryName;
use hoist_plan::{EdgeSet, find_conflicts};
use hoist_rehearsal::redirect;

fn digest(character: char) -> String {
    format!("sha256:{}", character.to_string().repeat(64))
}

fn edges(text: &str) -> EdgeSet {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("promoter-manifest.yaml");
    std::fs::write(&path, text).unwrap();
    let loaded = load(&[Input::Plain(path)]);
    assert!(!loaded.has_errors(), "{:?}", loaded.diagnostics);
    EdgeSet::compute(&loaded.manifests)
}

fn described(set: &EdgeSet) -> Vec<String> {
    set.edges
        .iter()
        .map(|edge| {
            let tag = set.tag(edge).map_or("-".to_owned(), ToString::to_string);
            format!(
                "{} {} {tag}",
                set.destination(edge),
                &set.origin(edge).digest.hex()[..1]
            )
        })
        .collect()
}

#[test]
fn every_image_goes_to_host_slash_image_once() {
    let set = edges(&format!(
        "registries:\n- name: gcr.io/k8s-staging-foo\n  src: true\n- name: us.gcr.io/prod/images\n- name: eu.gcr.io/prod/images\nimages:\n- name: foo\n  dmap:\n    \"{}\": [\"v1\", \"latest\"]\n    \"{}\": []\n- name: sub/bar\n  dmap:\n    \"{}\": [\"1.0\"]\n",
        digest('a'),
        digest('b'),
        digest('c')
    ));
    assert_eq!(set.edges.len(), 2 * 4);
    let host = RegistryName::parse("localhost:5001").unwrap();
    let rehearsal = redirect(&set, &host);
    assert_eq!(
        described(&rehearsal),
        [
            "localhost:5001/foo a v1",
            "localhost:5001/foo a latest",
            "localhost:5001/foo b -",
            "localhost:5001/sub/bar c 1.0",
        ]
    );
    assert_eq!(rehearsal.destinations.len(), 2);
    // Origins (sources, locations) are untouched: the plan reads the same sources.
    assert_eq!(rehearsal.origins.len(), set.origins.len());
    assert_eq!(
        rehearsal.origins[0].source.as_str(),
        "gcr.io/k8s-staging-foo"
    );
}

#[test]
fn tags_that_meet_in_the_local_registry_are_conflicts() {
    // Two projects promote different digests as foo:v1 to different registries: fine for real,
    // a conflict once both go to localhost/foo.
    let set = edges(&format!(
        "registries:\n- name: gcr.io/staging\n  src: true\n- name: r.io/a\nimages:\n- name: foo\n  dmap:\n    \"{}\": [\"v1\"]\n",
        digest('a')
    ));
    let other = edges(&format!(
        "registries:\n- name: gcr.io/staging2\n  src: true\n- name: r.io/b\nimages:\n- name: foo\n  dmap:\n    \"{}\": [\"v1\"]\n",
        digest('b')
    ));
    let mut both = set.clone();
    // Merge the second set in (as loading both manifests would).
    let offset = both.origins.len() as u32;
    let destination_offset = both.destinations.len() as u32;
    both.origins.extend(other.origins.iter().cloned());
    both.destinations.extend(other.destinations.iter().cloned());
    let tag = both
        .tags
        .iter()
        .position(|tag| tag.as_str() == "v1")
        .unwrap() as u32;
    both.edges
        .extend(other.edges.iter().map(|edge| hoist_plan::Edge {
            origin: edge.origin + offset,
            destination: edge.destination + destination_offset,
            tag,
        }));
    assert!(find_conflicts(&both).is_empty());
    let rehearsal = redirect(&both, &RegistryName::parse("127.0.0.1:5000").unwrap());
    assert_eq!(find_conflicts(&rehearsal).len(), 1);
}
