//! The deployment examples under `deploy/` cannot rot: every hoist command line in them is parsed
//! with hoist's own flag definitions, and the fields that must agree with those flags are checked.

use std::path::{Path, PathBuf};

use clap::Parser as _;
use hoist_yaml::{Node, NodeKind};

use crate::cli::{Cli, Command};

fn deploy_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../deploy")
}

fn yaml_files(dir: &Path, found: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            yaml_files(&path, found);
        } else if path
            .extension()
            .is_some_and(|ext| ext == "yaml" || ext == "yml")
        {
            found.push(path);
        }
    }
}

fn get<'a>(node: &'a Node, key: &str) -> Option<&'a Node> {
    match &node.kind {
        NodeKind::Mapping(pairs) => pairs
            .iter()
            .find(|(k, _)| k.as_str() == Some(key))
            .map(|(_, value)| value),
        _ => None,
    }
}

fn strings(node: &Node) -> Vec<String> {
    match &node.kind {
        NodeKind::Sequence(items) => items
            .iter()
            .map(|item| item.as_str().expect("a string").to_owned())
            .collect(),
        _ => panic!("line {}: expected a list", node.line),
    }
}

/// A container that runs hoist, with the path of keys that leads to it.
#[derive(Debug)]
struct Invocation {
    /// Keys from the document root (`presubmits`, `spec`, ...).
    path: Vec<String>,
    /// The mapping that holds the container's `command`.
    container: Node,
    /// hoist's arguments, `$(VAR)` replaced by a sample value.
    args: Vec<String>,
}

fn invocations(node: &Node, path: &mut Vec<String>, found: &mut Vec<Invocation>) {
    match &node.kind {
        NodeKind::Mapping(pairs) => {
            if let Some(command) = get(node, "command")
                && strings(command).first().map(String::as_str) == Some("hoist")
            {
                let mut args: Vec<String> = strings(command)[1..].to_vec();
                if let Some(more) = get(node, "args") {
                    args.extend(strings(more));
                }
                let args = args
                    .into_iter()
                    .map(|arg| arg.replace("$(PULL_BASE_SHA)", "0123456789abcdef"))
                    .collect();
                found.push(Invocation {
                    path: path.clone(),
                    container: node.clone(),
                    args,
                });
            }
            for (key, value) in pairs {
                path.push(key.as_str().unwrap_or_default().to_owned());
                invocations(value, path, found);
                path.pop();
            }
        }
        NodeKind::Sequence(items) => {
            for item in items {
                invocations(item, path, found);
            }
        }
        NodeKind::Scalar { .. } => {}
    }
}

fn flag_value<'a>(args: &'a [String], flag: &str) -> Option<&'a str> {
    args.iter()
        .position(|arg| arg == flag)
        .and_then(|at| args.get(at + 1))
        .map(String::as_str)
}

fn integer(node: Option<&Node>) -> Option<u64> {
    node.and_then(Node::as_str)
        .and_then(|text| text.parse().ok())
}

#[test]
fn every_hoist_command_line_in_deploy_parses_and_agrees_with_its_fields() {
    let mut files = Vec::new();
    yaml_files(&deploy_dir(), &mut files);
    files.sort();
    assert!(files.len() >= 2, "deploy/ holds the examples: {files:?}");
    let mut checked = 0;
    let (mut jobs, mut presubmits, mut postsubmits) = (0, 0, 0);
    for file in &files {
        let text = std::fs::read_to_string(file).unwrap();
        let root = hoist_yaml::parse(&text)
            .unwrap_or_else(|error| panic!("{}: {error:?}", file.display()))
            .expect("a document");
        let mut found = Vec::new();
        invocations(&root, &mut Vec::new(), &mut found);
        assert!(!found.is_empty(), "{}: no hoist command", file.display());
        for invocation in &found {
            let where_ = format!(
                "{}:{} ({})",
                file.display(),
                invocation.container.line,
                invocation.path.join(".")
            );
            let cli = Cli::try_parse_from(
                std::iter::once("hoist".to_owned()).chain(invocation.args.iter().cloned()),
            )
            .unwrap_or_else(|error| panic!("{where_}: hoist rejects its arguments:\n{error}"));
            checked += 1;
            match invocation.path.first().map(String::as_str) {
                Some("presubmits") => {
                    presubmits += 1;
                    assert!(
                        matches!(cli.command, Command::Check(ref args) if args.base.is_some()),
                        "{where_}: a presubmit runs `hoist check --base`"
                    );
                }
                Some("postsubmits") => {
                    postsubmits += 1;
                    assert!(
                        matches!(cli.command, Command::Promote(ref args) if args.confirm),
                        "{where_}: a postsubmit runs `hoist promote --confirm`"
                    );
                    assert!(
                        flag_value(&invocation.args, "--since").is_some(),
                        "{where_}: a postsubmit promotes what the merge added (--since)"
                    );
                }
                _ => {}
            }
        }
        if get(&root, "kind").and_then(Node::as_str) == Some("Job") {
            jobs += 1;
            let spec = get(&root, "spec").expect("Job.spec");
            let template = get(spec, "template")
                .and_then(|template| get(template, "spec"))
                .expect("Job.spec.template.spec");
            let where_ = file.display();
            assert_eq!(
                get(spec, "completionMode").and_then(Node::as_str),
                Some("Indexed"),
                "{where_}: --shards needs an Indexed Job (JOB_COMPLETION_INDEX)"
            );
            let completions = integer(get(spec, "completions")).expect("spec.completions");
            for invocation in &found {
                let shards = flag_value(&invocation.args, "--shards")
                    .unwrap_or_else(|| panic!("{where_}: the Job's hoist runs with --shards N"));
                assert_eq!(
                    shards.parse::<u64>().ok(),
                    Some(completions),
                    "{where_}: --shards must equal completions"
                );
            }
            if get(spec, "backoffLimitPerIndex").is_some() {
                assert_eq!(
                    get(template, "restartPolicy").and_then(Node::as_str),
                    Some("Never"),
                    "{where_}: backoffLimitPerIndex requires restartPolicy: Never"
                );
            }
            if let Some(parallelism) = integer(get(spec, "parallelism")) {
                assert!(parallelism <= completions, "{where_}: parallelism");
            }
        }
    }
    assert!(checked >= 4, "{checked} hoist command lines");
    assert!(
        jobs >= 1 && presubmits >= 1 && postsubmits >= 1,
        "an Indexed Job, a presubmit and a postsubmit: {jobs}, {presubmits}, {postsubmits}"
    );
}
