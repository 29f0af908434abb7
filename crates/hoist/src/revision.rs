//! A base revision of the manifests (`check --base REV`, `--since REV`): which files and projects
//! a change touches, and those projects as they were at REV.
//!
//! Only the projects whose files changed are exported (`git archive`) and loaded again; the
//! others are the head's own (see [`hoist_gate::Comparison`]). An unchanged tree costs a
//! `git diff` and nothing more.

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::path::{Path, PathBuf};

use anyhow::Context as _;
use hoist_gate::{Base, Comparison, FileChange, Finding};
use hoist_manifest::{Input, Loaded};
use hoist_plan::EdgeSet;

use crate::git::Repository;

/// What a change did, relative to a base revision.
#[derive(Debug)]
pub struct Revision {
    /// The changed projects as they were at `rev`, their files named as at the head.
    pub loaded: Loaded,
    /// The head's manifests (by index) whose project the change touches.
    pub changed_manifests: HashSet<u32>,
    /// The changed projects' names.
    pub changed_projects: HashSet<String>,
    /// Every file below the inputs that the change touches (named as at the head).
    pub changed: BTreeMap<String, FileChange>,
    /// Per repository: every file the change touches (relative to its top), for blockades.
    pub changed_files: Vec<Vec<String>>,
}

/// One input inside its repository.
struct Located {
    /// Index into the distinct repositories.
    repository: usize,
    /// The input's path relative to the repository's top ("" for the top itself).
    relative: String,
}

impl Revision {
    /// Reads what changed between `rev` and the work tree of the repository (or repositories)
    /// holding `inputs`, and loads the changed projects as they were at `rev`. A usage error
    /// (exit 2) when an input is not in a git repository or `rev` is not a commit.
    pub fn load(inputs: &[Input], head: &Loaded, rev: &str) -> anyhow::Result<Self> {
        let mut repositories: Vec<Repository> = Vec::new();
        let mut located = Vec::new();
        for input in inputs {
            let path = input_path(input);
            let repository = Repository::containing(path)?;
            repository.verify(rev)?;
            let relative = repository.relative(path)?;
            let index = match repositories
                .iter()
                .position(|known| known.top() == repository.top())
            {
                Some(index) => index,
                None => {
                    repositories.push(repository);
                    repositories.len() - 1
                }
            };
            located.push(Located {
                repository: index,
                relative,
            });
        }
        let changed_files = repositories
            .iter()
            .map(|repository| repository.changed_files(rev))
            .collect::<anyhow::Result<Vec<_>>>()?;

        // Per input: the changed files below it, and the projects they belong to.
        let mut changed: BTreeMap<String, FileChange> = BTreeMap::new();
        let mut tracked: Vec<Vec<(String, String)>> = vec![Vec::new(); repositories.len()];
        let mut projects: Vec<BTreeSet<String>> = vec![BTreeSet::new(); inputs.len()];
        for (index, (input, place)) in inputs.iter().zip(&located).enumerate() {
            for file in &changed_files[place.repository] {
                let Some(rest) = below(file, &place.relative) else {
                    continue;
                };
                let head_name = name(&input_path(input).join(rest));
                match input {
                    Input::Plain(_) => {
                        if rest.is_empty() {
                            projects[index].insert(String::new());
                        } else {
                            continue;
                        }
                    }
                    Input::Thin(_) => {
                        let mut parts = rest.split('/');
                        if let (Some("manifests" | "images"), Some(project)) =
                            (parts.next(), parts.next())
                        {
                            projects[index].insert(project.to_owned());
                        }
                    }
                }
                tracked[place.repository].push((file.clone(), head_name.clone()));
                changed.insert(head_name, FileChange::Whole);
            }
            // A project reached through a link may change without its own paths changing.
            for project in head
                .projects
                .iter()
                .filter(|p| p.input == index && p.linked)
            {
                projects[index].insert(project.name.clone());
            }
        }
        for (repository, files) in repositories.iter().zip(&tracked) {
            let paths: Vec<String> = files.iter().map(|(file, _)| file.clone()).collect();
            let lines = repository.changed_lines(rev, &paths)?;
            for (file, head_name) in files {
                if let Some(ranges) = lines.get(file) {
                    changed.insert(head_name.clone(), FileChange::Lines(ranges.clone()));
                }
            }
        }

        // The changed projects at `rev`, exported and loaded again.
        let dir = tempfile::tempdir().context("cannot create a temporary directory")?;
        let mut base_inputs = Vec::new();
        let mut renames: Vec<(PathBuf, PathBuf, usize)> = Vec::new();
        for (index, (input, place)) in inputs.iter().zip(&located).enumerate() {
            if projects[index].is_empty() {
                continue;
            }
            let repository = &repositories[place.repository];
            let candidates: Vec<String> = match input {
                Input::Plain(_) => vec![place.relative.clone()],
                Input::Thin(_) => projects[index]
                    .iter()
                    .flat_map(|project| {
                        ["manifests", "images"]
                            .map(|side| join(&place.relative, &format!("{side}/{project}")))
                    })
                    .collect(),
            };
            let existing = repository.existing(rev, &candidates)?;
            let slot = dir.path().join(index.to_string());
            std::fs::create_dir_all(&slot)?;
            if !existing.is_empty() {
                repository.export_paths(rev, &existing, &slot)?;
            }
            let exported = slot.join(&place.relative);
            match input {
                // A plain manifest new since `rev` has no base: everything in it is added.
                Input::Plain(_) if existing.is_empty() => continue,
                Input::Plain(_) => base_inputs.push(Input::Plain(exported.clone())),
                Input::Thin(_) => {
                    std::fs::create_dir_all(&exported)?;
                    base_inputs.push(Input::Thin(exported.clone()));
                }
            }
            renames.push((exported, input_path(input).to_owned(), index));
        }
        let mut loaded = hoist_manifest::load(&base_inputs);
        for project in &mut loaded.projects {
            project.input = renames[project.input].2;
        }
        for (from, to, _) in &renames {
            loaded.rebase(from, to);
        }

        let mut changed_projects = HashSet::new();
        let mut changed_manifests = HashSet::new();
        for project in &head.projects {
            let touched = projects[project.input].contains(&project.name)
                || (matches!(inputs[project.input], Input::Plain(_))
                    && projects[project.input].contains(""));
            if touched {
                changed_projects.insert(project.name.clone());
            }
        }
        changed_projects.extend(loaded.projects.iter().map(|p| p.name.clone()));
        for (index, manifest) in head.manifests.iter().enumerate() {
            let project = head
                .projects
                .iter()
                .find(|project| project.manifest_file == manifest.manifest_file);
            if project.is_some_and(|project| changed_projects.contains(&project.name)) {
                changed_manifests.insert(index as u32);
            }
        }
        Ok(Self {
            loaded,
            changed_manifests,
            changed_projects,
            changed,
            changed_files,
        })
    }

    /// The comparison of the head with this revision.
    pub fn compare(&self, head: &Loaded, head_edges: &EdgeSet) -> Comparison {
        Comparison::new(
            head,
            head_edges,
            &self.loaded,
            self.changed_manifests.clone(),
        )
    }

    /// What the ratchet knows about the base, with `findings` the base's own.
    pub fn ratchet_base(&self, findings: Vec<Finding>) -> Base {
        Base {
            findings,
            changed: self.changed.clone(),
            changed_projects: self.changed_projects.clone(),
        }
    }
}

fn input_path(input: &Input) -> &Path {
    match input {
        Input::Plain(path) | Input::Thin(path) => path,
    }
}

/// A path as findings name it.
fn name(path: &Path) -> String {
    hoist_yaml::clip(&path.display().to_string()).into_owned()
}

/// `file` relative to `dir` (both relative to a repository's top, `/`-separated): `Some("")` for
/// `dir` itself.
fn below<'a>(file: &'a str, dir: &str) -> Option<&'a str> {
    if dir.is_empty() {
        return Some(file);
    }
    if file == dir {
        return Some("");
    }
    file.strip_prefix(dir)?.strip_prefix('/')
}

fn join(dir: &str, rest: &str) -> String {
    if dir.is_empty() {
        rest.to_owned()
    } else {
        format!("{dir}/{rest}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_below_an_input() {
        assert_eq!(
            below("reg/images/a/images.yaml", "reg"),
            Some("images/a/images.yaml")
        );
        assert_eq!(below("regx/images", "reg"), None);
        assert_eq!(below("reg", "reg"), Some(""));
        assert_eq!(below("a/b", ""), Some("a/b"));
        assert_eq!(join("", "x"), "x");
        assert_eq!(join("d", "x"), "d/x");
    }
}
