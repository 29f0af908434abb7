//! [`load`]: from inputs to manifests and diagnostics, one file per rayon task.

use std::path::Path;
use std::sync::Arc;

use rayon::prelude::*;

use crate::decode::{decode_images_file, decode_plain, decode_thin_manifest};
use crate::layout::{self, Project, check_images_path, describe_io};
use crate::model::{self, Diagnostic, Input, Loaded, Manifest, Severity};
use crate::report::{Report, file_diagnostic};
use hoist_yaml::{self as yaml, Node};

/// Reads and validates every input. Never panics and never stops at the first problem: every
/// finding is in [`Loaded::diagnostics`] (sorted by file, line, column), and every manifest whose
/// files could be parsed as YAML is in [`Loaded::manifests`] with its invalid entries left out.
///
/// A thin project is returned only when both of its files exist and parse; the other file of an
/// incomplete project is still checked.
pub fn load(inputs: &[Input]) -> Loaded {
    let mut diagnostics = Vec::new();
    let mut jobs = Vec::new();
    let mut projects = Vec::new();
    for (index, input) in inputs.iter().enumerate() {
        match input {
            Input::Plain(file) => {
                let file: Arc<Path> = Arc::from(file.as_path());
                projects.push(model::Project {
                    name: file.display().to_string(),
                    manifest_file: Arc::clone(&file),
                    input: index,
                    linked: false,
                });
                if leaves_its_directory(&file) {
                    diagnostics.push(file_diagnostic(
                        Severity::Error,
                        Arc::clone(&file),
                        Some(Arc::clone(&file)),
                        "symbolic link to a path outside the manifest's directory: not followed"
                            .to_owned(),
                    ));
                } else {
                    jobs.push(Job::Plain(file));
                }
            }
            Input::Thin(dir) => {
                let (found_projects, found) = layout::discover(dir);
                diagnostics.extend(found);
                projects.extend(found_projects.iter().map(|project| model::Project {
                    name: project.name.clone(),
                    manifest_file: Arc::clone(&project.expected_manifest_file),
                    input: index,
                    linked: project.linked,
                }));
                jobs.extend(found_projects.into_iter().map(Job::Thin));
            }
        }
    }
    // Files differ wildly in size (one registry.k8s.io images.yaml is a third of the corpus), so
    // let rayon balance the work; `collect` keeps the input order.
    let results: Vec<(Option<Manifest>, Vec<Diagnostic>)> = jobs.par_iter().map(Job::run).collect();
    let mut manifests = Vec::with_capacity(results.len());
    for (manifest, found) in results {
        manifests.extend(manifest);
        diagnostics.extend(found);
    }
    // Stable: findings at one position keep the order they were made in.
    diagnostics.sort_by(|a, b| (&a.file, a.line, a.column).cmp(&(&b.file, b.line, b.column)));
    Loaded {
        manifests,
        diagnostics,
        projects,
    }
}

/// Whether a plain manifest named on the command line is a symbolic link out of its directory.
/// In a presubmit the file comes from the pull request, which could point it at any file of the
/// machine; the link's target is never read (nor echoed).
fn leaves_its_directory(file: &Path) -> bool {
    let is_link = std::fs::symlink_metadata(file).is_ok_and(|meta| meta.file_type().is_symlink());
    if !is_link {
        return false;
    }
    let parent = match file.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent,
        _ => Path::new("."),
    };
    match (std::fs::canonicalize(file), std::fs::canonicalize(parent)) {
        (Ok(target), Ok(parent)) => !target.starts_with(parent),
        _ => true,
    }
}

#[derive(Debug)]
enum Job {
    Plain(Arc<Path>),
    Thin(Project),
}

impl Job {
    fn run(&self) -> (Option<Manifest>, Vec<Diagnostic>) {
        match self {
            Job::Plain(file) => load_plain(file),
            Job::Thin(project) => load_project(project),
        }
    }
}

/// Reads and parses one file. `None` when it cannot be read or is not valid YAML (reported);
/// `Some(None)` when it holds no document.
fn read_tree(report: &mut Report) -> Option<Option<Node>> {
    let text = match yaml::read_text(&report.file) {
        Ok(text) => text,
        Err(error) => {
            report.file_error(describe_io(&error, "file"));
            return None;
        }
    };
    match yaml::parse(&text) {
        Ok(tree) => Some(tree),
        Err(error) => {
            report.syntax_error(&error);
            None
        }
    }
}

fn load_plain(file: &Arc<Path>) -> (Option<Manifest>, Vec<Diagnostic>) {
    let mut report = Report::new(Arc::clone(file), Some(Arc::clone(file)));
    let manifest = read_tree(&mut report).and_then(|tree| {
        let (registries, images) = decode_plain(&mut report, tree.as_ref())?;
        Some(Manifest {
            manifest_file: Arc::clone(file),
            images_file: Arc::clone(file),
            project: None,
            registries,
            images,
        })
    });
    (manifest, report.diagnostics)
}

fn load_project(project: &Project) -> (Option<Manifest>, Vec<Diagnostic>) {
    let mut diagnostics = Vec::new();
    let owner = Some(Arc::clone(&project.expected_manifest_file));
    let registries = project.manifest_file.as_ref().and_then(|file| {
        let mut report = Report::new(Arc::clone(file), owner.clone());
        let registries = read_tree(&mut report).and_then(|tree| {
            let (registries, images_path) = decode_thin_manifest(&mut report, tree.as_ref())?;
            if let Some(node) = images_path {
                check_images_path(&mut report, node, project);
            }
            Some(registries)
        });
        diagnostics.append(&mut report.diagnostics);
        registries
    });
    let images = project.images_file.as_ref().and_then(|file| {
        let mut report = Report::new(Arc::clone(file), owner.clone());
        let images =
            read_tree(&mut report).and_then(|tree| decode_images_file(&mut report, tree.as_ref()));
        diagnostics.append(&mut report.diagnostics);
        images
    });
    let manifest = match (
        &project.manifest_file,
        registries,
        &project.images_file,
        images,
    ) {
        (Some(manifest_file), Some(registries), Some(images_file), Some(images)) => {
            Some(Manifest {
                manifest_file: Arc::clone(manifest_file),
                images_file: Arc::clone(images_file),
                project: Some(project.name.clone()),
                registries,
                images,
            })
        }
        _ => None,
    };
    (manifest, diagnostics)
}
