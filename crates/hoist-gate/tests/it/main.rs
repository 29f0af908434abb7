//! Integration tests of the one gate: manifests loaded from real files, judged as `check` and
//! `promote` judge them.

use std::collections::{BTreeMap, HashSet};
use std::path::Path;

use chrono::NaiveDate;
use hoist_gate::{Base, Comparison, FileChange, Finding, Gate, Projects, Verdict};
use hoist_manifest::{Input, Loaded, Severity};
use hoist_plan::{EdgeSet, find_conflicts};
use hoist_policy::PolicySet;

fn digest(c: char) -> String {
    format!("sha256:{}", c.to_string().repeat(64))
}

fn write(dir: &Path, relative: &str, text: &str) {
    let path = dir.join(relative);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, text).unwrap();
}

/// A thin project `name` promoting `image` with `(digest char, tags)` to r.example/prod.
fn project(dir: &Path, name: &str, image: &str, dmap: &[(char, &[&str])]) {
    write(
        dir,
        &format!("manifests/{name}/promoter-manifest.yaml"),
        &format!("registries:\n- name: gcr.io/{name}\n  src: true\n- name: r.example/prod\n"),
    );
    let mut images = format!("- name: {image}\n  dmap:\n");
    for (c, tags) in dmap {
        let tags: Vec<String> = tags.iter().map(|t| format!("\"{t}\"")).collect();
        images.push_str(&format!("    \"{}\": [{}]\n", digest(*c), tags.join(", ")));
    }
    write(dir, &format!("images/{name}/images.yaml"), &images);
}

fn load(dir: &Path) -> Loaded {
    hoist_manifest::load(&[Input::Thin(dir.to_owned())])
}

fn day() -> NaiveDate {
    NaiveDate::from_ymd_opt(2026, 1, 1).unwrap()
}

#[test]
fn check_and_promote_ask_the_same_gate() {
    let policies = PolicySet::from_str(
        "p.yaml",
        "freezes:\n- destinations: [r.example/frozen]\n  from: 2020-01-01\n  explanation: frozen\n\
         allow:\n- kind: tag-move\n  match: 'r\\.example/prod/app:v1'\n  explanation: rebuilt\n",
    )
    .unwrap();
    let gate = Gate::new(&policies, day());
    assert!(gate.write("r.example/prod/app").is_none());
    let refusal = gate.write("r.example/frozen/app").unwrap();
    assert_eq!(refusal.reason, "frozen");
    assert!(matches!(
        gate.tag_move("r.example/prod/app:v1"),
        Verdict::Allowed { .. }
    ));
    assert_eq!(gate.tag_move("r.example/prod/app:v2"), Verdict::Refused);
    assert_eq!(gate.removal("r.example/prod/app:v1"), Verdict::Refused);
}

#[test]
fn a_change_is_judged_once_per_destination_and_image() {
    let base_dir = tempfile::tempdir().unwrap();
    project(
        base_dir.path(),
        "a",
        "app",
        &[('1', &["v1"]), ('2', &["v2"])],
    );
    let head_dir = tempfile::tempdir().unwrap();
    project(head_dir.path(), "a", "app", &[('3', &["v1"]), ('2', &[])]);
    let (base, head) = (load(base_dir.path()), load(head_dir.path()));
    let changes = hoist_plan::diff(
        &EdgeSet::compute(&base.manifests),
        &EdgeSet::compute(&head.manifests),
    );
    let policies = PolicySet::empty();
    let findings = Gate::new(&policies, day()).change(&changes);
    let kinds: Vec<(&str, &str)> = findings
        .iter()
        .map(|f| (f.kind, f.message.as_str()))
        .collect();
    assert_eq!(findings.len(), 3, "{kinds:#?}");
    assert!(
        kinds
            .iter()
            .any(|(kind, message)| *kind == "tag-move" && message.starts_with("app: tag v1 moves"))
    );
    assert!(
        kinds.iter().filter(|(kind, _)| *kind == "removal").count() == 2,
        "the digest of v1 and the tag v2: {kinds:#?}"
    );
}

#[test]
fn the_ratchet_sets_aside_what_the_change_does_not_touch() {
    let found = |kind: &'static str, file: &str, line: u32, key: &str, project: Option<&str>| {
        let mut finding = Finding::error(kind, "something").key(key);
        finding.file = Some(file.to_owned());
        finding.line = (line > 0).then_some(line);
        finding.column = (line > 0).then_some(1);
        finding.project = project.map(str::to_owned);
        finding
    };
    let base = Base {
        // At the base, entry 2 had the bad key; the change inserted an entry before it.
        findings: vec![found(
            "manifest",
            "d/images/a/images.yaml",
            7,
            "images[2].dmap[\"x\"]",
            Some("a"),
        )],
        changed: BTreeMap::from([
            (
                "d/images/a/images.yaml".to_owned(),
                FileChange::Lines(vec![(3, 4)]),
            ),
            ("d/stray.yaml".to_owned(), FileChange::Whole),
        ]),
        changed_projects: HashSet::from(["a".to_owned()]),
    };
    let head = vec![
        // Renumbered, not touched: pre-existing.
        found(
            "manifest",
            "d/images/a/images.yaml",
            9,
            "images[3].dmap[\"x\"]",
            Some("a"),
        ),
        // On a changed line: counts.
        found(
            "manifest",
            "d/images/a/images.yaml",
            4,
            "images[1].dmap[\"y\"]",
            Some("a"),
        ),
        // In a project the change does not touch: pre-existing.
        found(
            "manifest",
            "d/images/b/images.yaml",
            4,
            "images[0].name",
            Some("b"),
        ),
        // A layout finding: counts when its path changed, not otherwise.
        found("manifest", "d/stray.yaml", 0, "", None),
        found("manifest", "d/other.yaml", 0, "", None),
        // Judgements of the change are never pre-existing.
        found("tag-move", "d/images/b/images.yaml", 4, "", None),
    ];
    let ratcheted = base.ratchet(head);
    let lines = |list: &[Finding]| -> Vec<String> {
        list.iter()
            .map(|f| {
                format!(
                    "{} {}:{}",
                    f.kind,
                    f.file.as_deref().unwrap(),
                    f.line.unwrap_or(0)
                )
            })
            .collect()
    };
    assert_eq!(
        lines(&ratcheted.pre_existing),
        [
            "manifest d/images/a/images.yaml:9",
            "manifest d/images/b/images.yaml:4",
            "manifest d/other.yaml:0"
        ]
    );
    assert_eq!(
        lines(&ratcheted.findings),
        [
            "manifest d/images/a/images.yaml:4",
            "manifest d/stray.yaml:0",
            "tag-move d/images/b/images.yaml:4"
        ]
    );
}

#[test]
fn a_comparison_of_one_changed_project_sees_only_its_destinations() {
    let base_dir = tempfile::tempdir().unwrap();
    project(base_dir.path(), "a", "app", &[('1', &["v1"])]);
    project(base_dir.path(), "b", "lib", &[('5', &["v5"])]);
    let head_dir = tempfile::tempdir().unwrap();
    project(
        head_dir.path(),
        "a",
        "app",
        &[('1', &["v1"]), ('2', &["v2"])],
    );
    project(head_dir.path(), "b", "lib", &[('5', &["v5"])]);
    let head = load(head_dir.path());
    let head_edges = EdgeSet::compute(&head.manifests);
    // The base of the changed project only, as `check --base` loads it.
    std::fs::remove_dir_all(base_dir.path().join("manifests/b")).unwrap();
    std::fs::remove_dir_all(base_dir.path().join("images/b")).unwrap();
    let base = load(base_dir.path());
    let comparison = Comparison::new(&head, &head_edges, &base, HashSet::from([0]));
    assert_eq!(comparison.compared_destinations(), Some(1));
    let changes = comparison.changes(&head_edges);
    let kinds: Vec<String> = changes
        .iter()
        .map(|c| format!("{:?} {}", c.kind, c.reference()))
        .collect();
    assert_eq!(
        kinds,
        [
            format!("AddDigest r.example/prod/app@{}", digest('2')),
            "AddTag r.example/prod/app:v2".to_owned()
        ]
    );
    let added = comparison.added(&head_edges);
    assert_eq!(added.edges.len(), 1);
    assert_eq!(
        added.origin(&added.edges[0]).digest.to_string(),
        digest('2')
    );
    // Nothing changed: nothing compared, nothing added.
    let none = Comparison::new(&head, &head_edges, &Loaded::default(), HashSet::new());
    assert_eq!(none.compared_destinations(), Some(0));
    assert!(none.changes(&head_edges).is_empty());
    assert!(none.added(&head_edges).edges.is_empty());
}

#[test]
fn projects_are_refused_by_their_own_errors_and_by_conflicts_with_others() {
    let dir = tempfile::tempdir().unwrap();
    project(dir.path(), "good", "app", &[('1', &["v1"])]);
    project(dir.path(), "left", "shared", &[('2', &["v2"])]);
    project(dir.path(), "right", "shared", &[('3', &["v2"])]);
    write(
        dir.path(),
        "images/broken/images.yaml",
        "- name: x\n  dmap:\n    \"not-a-digest\": []\n",
    );
    write(
        dir.path(),
        "manifests/broken/promoter-manifest.yaml",
        "registries:\n- name: gcr.io/broken\n  src: true\n- name: r.example/prod\n",
    );
    let loaded = load(dir.path());
    let edges = EdgeSet::compute(&loaded.manifests);
    let mut projects = Projects::new(&loaded);
    projects.add_conflicts(&find_conflicts(&edges), &edges);
    assert!(projects.run_errors().is_empty());
    let status: Vec<(String, bool)> = projects
        .in_report_order()
        .into_iter()
        .map(|id| {
            let project = &projects.list()[id];
            (project.name.clone(), project.is_refused())
        })
        .collect();
    assert_eq!(
        status,
        [
            ("broken".to_owned(), true),
            ("left".to_owned(), true),
            ("right".to_owned(), true),
            ("good".to_owned(), false),
        ]
    );
    let admitted = projects.admitted_edges(&edges);
    let images: HashSet<String> = admitted
        .edges
        .iter()
        .map(|edge| admitted.origin(edge).image.to_string())
        .collect();
    assert_eq!(images, HashSet::from(["app".to_owned()]));
    let errors = projects.errors();
    assert!(errors.iter().all(|e| e.severity == Severity::Error));
    assert!(errors.iter().any(|e| e.kind == "conflict"));

    // A stray file at the top belongs to no project: the whole run is refused.
    write(dir.path(), "stray.yaml", "x: 1\n");
    let projects = Projects::new(&load(dir.path()));
    assert_eq!(projects.run_errors().len(), 1);
    assert!(projects.any_refused());
}

/// The gate is pure: no async runtime or network client anywhere in its dependency tree (walked
/// through Cargo.lock, which over-approximates: every target, dev-dependencies included), so
/// `check` judges without a runtime and `promote` judges the same way.
#[test]
fn the_gate_depends_on_nothing_async() {
    let lock =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../../Cargo.lock"))
            .unwrap();
    let mut dependencies: std::collections::HashMap<String, Vec<String>> = Default::default();
    for block in lock.split("[[package]]").skip(1) {
        let Some(name) = block.lines().find_map(|line| {
            line.strip_prefix("name = ")
                .map(|name| name.trim_matches('"').to_owned())
        }) else {
            continue;
        };
        let listed = block
            .split_once("dependencies = [")
            .map(|(_, rest)| rest.split(']').next().unwrap_or_default())
            .unwrap_or_default()
            .split(',')
            .map(|entry| entry.trim().trim_matches('"'))
            .filter(|entry| !entry.is_empty())
            .map(|entry| entry.split(' ').next().unwrap().to_owned());
        dependencies.entry(name).or_default().extend(listed);
    }
    let mut seen = std::collections::BTreeSet::new();
    let mut pending = vec!["hoist-gate".to_owned()];
    while let Some(name) = pending.pop() {
        if seen.insert(name.clone()) {
            pending.extend(dependencies.get(&name).cloned().unwrap_or_default());
        }
    }
    assert!(
        seen.contains("hoist-policy") && seen.contains("hoist-plan"),
        "{seen:?}"
    );
    for forbidden in [
        "tokio",
        "reqwest",
        "futures",
        "hyper",
        "mio",
        "hoist-promote",
    ] {
        assert!(
            !seen.contains(forbidden),
            "hoist-gate depends on {forbidden}: {seen:?}"
        );
    }
}
