//! hoist-rehearsal is pure: reading a ConfigMap and rewriting edges needs no runtime and no
//! network (talking to a cluster is the binary's business). Checked on Cargo.lock, which lists
//! every dependency of every target, so nothing async can come in indirectly either.

use std::collections::{BTreeSet, HashMap};
use std::path::PathBuf;

const FORBIDDEN: &[&str] = &["tokio", "reqwest", "futures", "hyper", "h2", "mio", "kube"];

#[test]
fn no_async_or_network_crate_in_the_dependency_tree() {
    let lock =
        std::fs::read_to_string(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../Cargo.lock"))
            .expect("read Cargo.lock");
    // name -> dependency names (of every version: an over-approximation)
    let mut packages: HashMap<String, Vec<String>> = HashMap::new();
    for block in lock.split("[[package]]").skip(1) {
        let Some(name) = block.lines().find_map(|line| {
            line.strip_prefix("name = ")
                .map(|value| value.trim_matches('"').to_owned())
        }) else {
            continue;
        };
        let dependencies = block
            .split_once("dependencies = [")
            .map(|(_, rest)| rest.split(']').next().unwrap_or_default())
            .unwrap_or_default()
            .split(',')
            .filter_map(|entry| entry.trim().trim_matches('"').split(' ').next())
            .filter(|entry| !entry.is_empty())
            .map(str::to_owned);
        packages.entry(name).or_default().extend(dependencies);
    }
    let mut seen = BTreeSet::new();
    let mut pending = vec!["hoist-rehearsal".to_owned()];
    while let Some(name) = pending.pop() {
        if seen.insert(name.clone()) {
            pending.extend(packages.get(&name).cloned().unwrap_or_default());
        }
    }
    assert!(
        seen.contains("hoist-plan") && seen.contains("hoist-yaml"),
        "{seen:?}"
    );
    for name in FORBIDDEN {
        assert!(
            !seen.contains(*name),
            "hoist-rehearsal depends on {name}: {seen:?}"
        );
    }
}
