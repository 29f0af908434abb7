//! hoist-policy is pure: no async runtime, no network client, neither directly nor through any
//! dependency. (`hoist-policy` never depends on anything async; see STYLE.md.)

use std::collections::{BTreeSet, HashMap};

use crate::repo_root;

/// Crates that mean async or network I/O. (Not `futures-util`: Cargo.lock lists the
/// dependencies of every target and of features enabled anywhere in the workspace, and `js-sys`,
/// which chrono uses on wasm only, may pull it in there.)
const FORBIDDEN: &[&str] = &[
    "tokio",
    "reqwest",
    "futures",
    "async-std",
    "hyper",
    "h2",
    "mio",
    "ureq",
    "oci-client",
    "hoist-manifest",
];

#[test]
fn manifest_declares_no_async_or_network_dependency() {
    let manifest = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/Cargo.toml"))
        .expect("read Cargo.toml");
    let mut section = String::new();
    let mut declared = Vec::new();
    for line in manifest.lines().map(str::trim) {
        if line.starts_with('[') {
            section = line.trim_matches(['[', ']']).to_owned();
            continue;
        }
        if section.ends_with("dependencies")
            && let Some((name, _)) = line.split_once(['=', '.'])
            && !name.trim().is_empty()
        {
            declared.push(name.trim().to_owned());
        }
    }
    assert!(
        declared.contains(&"regex".to_owned()),
        "the parser found no dependency: {declared:?}"
    );
    for name in &declared {
        assert!(
            !FORBIDDEN.contains(&name.as_str()),
            "hoist-policy must not depend on {name}"
        );
    }
}

/// Walks Cargo.lock from hoist-policy through every dependency, so a forbidden crate cannot
/// sneak in through hoist-oci or a third-party crate either. The lock over-approximates (all
/// targets, dev-dependencies included), so passing here is a strong guarantee.
#[test]
fn no_async_or_network_crate_in_the_dependency_tree() {
    let lock = std::fs::read_to_string(repo_root().join("Cargo.lock")).expect("read Cargo.lock");
    // name -> [(version, dependency entries)]
    let mut packages: HashMap<String, Vec<(String, Vec<String>)>> = HashMap::new();
    for block in lock.split("[[package]]").skip(1) {
        let value = |key: &str| {
            block.lines().find_map(|line| {
                line.strip_prefix(key)
                    .and_then(|rest| rest.trim().strip_prefix('='))
                    .map(|v| v.trim().trim_matches('"').to_owned())
            })
        };
        let (Some(name), Some(version)) = (value("name "), value("version ")) else {
            continue;
        };
        let dependencies = block
            .split_once("dependencies = [")
            .map(|(_, rest)| rest.split(']').next().unwrap_or_default())
            .unwrap_or_default()
            .split(',')
            .map(|entry| entry.trim().trim_matches('"').to_owned())
            .filter(|entry| !entry.is_empty())
            .collect();
        packages
            .entry(name)
            .or_default()
            .push((version, dependencies));
    }

    let mut seen = BTreeSet::new();
    let mut pending = vec!["hoist-policy".to_owned()];
    while let Some(entry) = pending.pop() {
        // An entry is `name` or, when several versions exist, `name version`.
        let mut parts = entry.split(' ');
        let name = parts.next().unwrap_or_default().to_owned();
        let version = parts.next();
        if !seen.insert(entry.clone()) {
            continue;
        }
        let versions = packages
            .get(&name)
            .unwrap_or_else(|| panic!("{name} not in Cargo.lock"));
        for (found, dependencies) in versions {
            if version.is_none_or(|v| v == found) {
                pending.extend(dependencies.iter().cloned());
            }
        }
    }
    let names: BTreeSet<&str> = seen.iter().map(|e| e.split(' ').next().unwrap()).collect();
    assert!(
        names.contains("regex") && names.contains("hoist-oci"),
        "{names:?}"
    );
    for name in FORBIDDEN {
        assert!(
            !names.contains(name),
            "hoist-policy depends on {name} through: {names:?}"
        );
    }
}
