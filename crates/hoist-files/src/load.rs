//! Finding and reading file manifests: `--filestores FILE --files PATH` and the multi-project
//! layout of `--manifests DIR`, then validation across everything read.
//!
//! kpromo walks `manifests/<p>/` and parses every file it finds, and treats every directory
//! below `filestores/` as a project; a misspelt or misplaced file is silently a change that
//! never takes effect. Here every file out of place is an error, except documentation
//! (`OWNERS`, `OWNERS_ALIASES`, `*.md`) and hidden files (`.gitkeep`). Symbolic links inside a
//! layout are refused: a presubmit reads untrusted trees and must not be led outside them.

use std::collections::{BTreeMap, HashMap};
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use hoist_manifest::{Diagnostic, Severity};

use crate::decode::{decode_files, decode_filestores};
use crate::model::{FileEntry, FileInput, FileManifest, object_url};
use crate::report::{Report, file_diagnostic};

/// The filestores manifest of a project in the multi-project layout.
pub const FILESTORES_FILE: &str = "filepromoter-manifest.yaml";

/// Everything read from the inputs: the manifests (each entry that parsed and validated) and
/// every finding on the way. Loading never stops at the first error.
#[derive(Debug, Clone, Default)]
pub struct Loaded {
    /// The manifests, in input order, projects sorted by name.
    pub manifests: Vec<FileManifest>,
    /// All findings, sorted by file, line, column.
    pub diagnostics: Vec<Diagnostic>,
}

impl Loaded {
    /// Whether any diagnostic is an error.
    pub fn has_errors(&self) -> bool {
        self.diagnostics
            .iter()
            .any(|diagnostic| diagnostic.severity == Severity::Error)
    }
}

/// Reads and validates every input: strict YAML, kpromo's rules, and across manifests no two
/// files sent to the same destination object with different sha256.
pub fn load(inputs: &[FileInput]) -> Loaded {
    let mut loaded = Loaded::default();
    for input in inputs {
        match input {
            FileInput::Split { filestores, files } => {
                let manifest = read_manifest(
                    None,
                    filestores,
                    files,
                    &mut loaded.diagnostics,
                    ListsAt::Given,
                );
                loaded.manifests.extend(manifest);
            }
            FileInput::Projects(dir) => read_projects(dir, &mut loaded),
        }
    }
    find_conflicts(&loaded.manifests, &mut loaded.diagnostics);
    loaded.diagnostics.sort_by(|a, b| {
        (&a.file, a.line, a.column, &a.message).cmp(&(&b.file, b.line, b.column, &b.message))
    });
    loaded.diagnostics.dedup();
    loaded
}

/// Where a manifest's file lists are: given on the command line (a missing path is an error
/// about that path), or a project's `manifests/<p>` (whose absence names the project).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ListsAt {
    Given,
    Project,
}

fn read_manifest(
    project: Option<&str>,
    filestores_path: &Path,
    files_path: &Path,
    diagnostics: &mut Vec<Diagnostic>,
    lists_at: ListsAt,
) -> Option<FileManifest> {
    let filestores_file: Arc<Path> = Arc::from(filestores_path);
    let mut report = Report::new(Arc::clone(&filestores_file));
    let filestores = match read_yaml(&mut report) {
        Some(root) => decode_filestores(&mut report, root.as_ref()),
        None => Vec::new(),
    };
    let filestores_ok = !report
        .diagnostics
        .iter()
        .any(|diagnostic| diagnostic.severity == Severity::Error);
    diagnostics.append(&mut report.diagnostics);

    let lists = match list_files(files_path, lists_at, project) {
        Ok((lists, mut problems)) => {
            diagnostics.append(&mut problems);
            lists
        }
        Err(problem) => {
            diagnostics.push(problem);
            return None;
        }
    };
    let mut files: Vec<FileEntry> = Vec::new();
    let mut first_of: HashMap<String, usize> = HashMap::new();
    let mut lists_ok = true;
    for list in &lists {
        let mut report = Report::new(Arc::from(list.as_path()));
        if let Some(root) = read_yaml(&mut report) {
            for entry in decode_files(&mut report, root.as_ref()) {
                match first_of.get(&entry.name) {
                    None => {
                        first_of.insert(entry.name.clone(), files.len());
                        files.push(entry);
                    }
                    Some(&index) => duplicate(&mut report, &files[index], &entry),
                }
            }
        }
        lists_ok &= !report
            .diagnostics
            .iter()
            .any(|diagnostic| diagnostic.severity == Severity::Error);
        diagnostics.append(&mut report.diagnostics);
    }
    if files.is_empty() && lists_ok {
        let place = match lists.as_slice() {
            [one] => one.clone(),
            _ => files_path.to_owned(),
        };
        let mut problem = file_diagnostic(
            Arc::from(place.as_path()),
            "no files to promote: at least one file (- name: …, sha256: …) must be listed"
                .to_owned(),
        );
        problem.key_path = "files".to_owned();
        diagnostics.push(problem);
    }
    filestores_ok.then(|| FileManifest {
        project: project.map(str::to_owned),
        filestores_file,
        filestores,
        files,
    })
}

/// A name listed twice in one project: the same sha256 is a warning, another one an error.
fn duplicate(report: &mut Report, first: &FileEntry, again: &FileEntry) {
    let same = first.sha256 == again.sha256;
    let diagnostic = Diagnostic {
        manifest: None,
        severity: if same {
            Severity::Warning
        } else {
            Severity::Error
        },
        file: Arc::clone(&again.location.file),
        line: again.location.line,
        column: again.location.column,
        key_path: "files".to_owned(),
        value: Some(again.name.clone()),
        message: if same {
            format!("listed twice (first at {})", first.location)
        } else {
            format!(
                "listed twice with different sha256 (first at {} with {}): one name is one file",
                first.location,
                first.sha256.hex()
            )
        },
    };
    report.diagnostics.push(diagnostic);
}

/// Reads a file and parses its YAML; `None` (with the error reported) when unreadable or not
/// YAML, `Some(None)` when it holds no document.
fn read_yaml(report: &mut Report) -> Option<Option<hoist_yaml::Node>> {
    let text = match fs::read_to_string(&report.file) {
        Ok(text) => text,
        Err(error) => {
            let message = match error.kind() {
                std::io::ErrorKind::NotFound => "no such file".to_owned(),
                std::io::ErrorKind::InvalidData => "not UTF-8 text".to_owned(),
                _ => format!("cannot read: {error}"),
            };
            report.file_error("", message);
            return None;
        }
    };
    match hoist_yaml::parse(&text) {
        Ok(root) => Some(root),
        Err(error) => {
            report.syntax_error(&error);
            None
        }
    }
}

/// The file lists at `path`: the file itself, or every YAML file below the directory in path
/// order, with findings for entries out of place. `Err` when `path` cannot be used at all.
fn list_files(
    path: &Path,
    lists_at: ListsAt,
    project: Option<&str>,
) -> Result<(Vec<PathBuf>, Vec<Diagnostic>), Diagnostic> {
    let metadata = fs::metadata(path).map_err(|error| {
        let message = match (error.kind(), lists_at, project) {
            (std::io::ErrorKind::NotFound, ListsAt::Project, Some(project)) => format!(
                "missing directory: filestores/{project}/{FILESTORES_FILE} has no file \
                 manifests in manifests/{project}/"
            ),
            (std::io::ErrorKind::NotFound, _, _) => "no such file or directory".to_owned(),
            _ => format!("cannot read: {error}"),
        };
        file_diagnostic(Arc::from(path), message)
    })?;
    if !metadata.is_dir() {
        return Ok((vec![path.to_owned()], Vec::new()));
    }
    let mut lists = Vec::new();
    let mut problems = Vec::new();
    walk(path, &mut lists, &mut problems);
    lists.sort();
    Ok((lists, problems))
}

/// Collects the YAML files below `dir`, reporting everything else that is not documentation.
fn walk(dir: &Path, lists: &mut Vec<PathBuf>, problems: &mut Vec<Diagnostic>) {
    for (name, path, kind) in entries(dir, problems) {
        match kind {
            Kind::Directory => walk(&path, lists, problems),
            Kind::File if is_yaml(&name) => lists.push(path),
            Kind::File if is_documentation(&name) => {}
            Kind::File => problems.push(file_diagnostic(
                Arc::from(path.as_path()),
                "unexpected file: file manifests are *.yaml files (OWNERS and *.md are allowed)"
                    .to_owned(),
            )),
            Kind::Link => problems.push(symlink_problem(&path)),
        }
    }
}

fn read_projects(dir: &Path, loaded: &mut Loaded) {
    let problem = |path: &Path, message: String| file_diagnostic(Arc::from(path), message);
    match fs::metadata(dir) {
        Err(error) => {
            let message = if error.kind() == std::io::ErrorKind::NotFound {
                "no such directory".to_owned()
            } else {
                format!("cannot read: {error}")
            };
            loaded.diagnostics.push(problem(dir, message));
            return;
        }
        Ok(metadata) if !metadata.is_dir() => {
            loaded.diagnostics.push(problem(
                dir,
                "expected a directory with filestores/<p>/filepromoter-manifest.yaml and \
                 manifests/<p>/*.yaml, found a file (an image promoter manifest is read with \
                 --manifest FILE)"
                    .to_owned(),
            ));
            return;
        }
        Ok(_) => {}
    }
    let filestores_dir = dir.join("filestores");
    let manifests_dir = dir.join("manifests");
    if !filestores_dir.is_dir() {
        loaded.diagnostics.push(problem(
            &filestores_dir,
            "missing directory: the multi-project layout keeps each project's filestores in \
             filestores/<p>/filepromoter-manifest.yaml"
                .to_owned(),
        ));
        return;
    }
    let mut projects: BTreeMap<String, PathBuf> = BTreeMap::new();
    for (name, path, kind) in entries(&filestores_dir, &mut loaded.diagnostics) {
        match kind {
            Kind::Directory => {
                if project_dir(&path, &mut loaded.diagnostics) {
                    projects.insert(name, path);
                }
            }
            Kind::File if is_documentation(&name) => {}
            Kind::File => loaded.diagnostics.push(problem(
                &path,
                "unexpected file: filestores/ holds one directory per project, \
                 filestores/<p>/filepromoter-manifest.yaml"
                    .to_owned(),
            )),
            Kind::Link => loaded.diagnostics.push(symlink_problem(&path)),
        }
    }
    if manifests_dir.is_dir() {
        for (name, path, kind) in entries(&manifests_dir, &mut loaded.diagnostics) {
            match kind {
                Kind::Directory if projects.contains_key(&name) => {}
                Kind::Directory => loaded.diagnostics.push(problem(
                    &path,
                    format!(
                        "no filestores/{name}/{FILESTORES_FILE} for these file manifests, so \
                         they would never be promoted"
                    ),
                )),
                Kind::File if is_documentation(&name) => {}
                Kind::File => loaded.diagnostics.push(problem(
                    &path,
                    "unexpected file: manifests/ holds one directory per project, \
                     manifests/<p>/*.yaml"
                        .to_owned(),
                )),
                Kind::Link => loaded.diagnostics.push(symlink_problem(&path)),
            }
        }
    }
    for (name, path) in projects {
        let manifest = read_manifest(
            Some(&name),
            &path.join(FILESTORES_FILE),
            &manifests_dir.join(&name),
            &mut loaded.diagnostics,
            ListsAt::Project,
        );
        loaded.manifests.extend(manifest);
    }
}

/// Checks `filestores/<p>/`: its manifest is there and nothing else but documentation. Returns
/// whether the project has its manifest.
fn project_dir(dir: &Path, diagnostics: &mut Vec<Diagnostic>) -> bool {
    let mut found = false;
    for (name, path, kind) in entries(dir, diagnostics) {
        match kind {
            Kind::File if name == FILESTORES_FILE => found = true,
            Kind::File if is_documentation(&name) => {}
            Kind::Link => diagnostics.push(symlink_problem(&path)),
            _ => diagnostics.push(file_diagnostic(
                Arc::from(path.as_path()),
                format!(
                    "unexpected {}: a project's filestores directory holds only {FILESTORES_FILE}",
                    if kind == Kind::Directory {
                        "directory"
                    } else {
                        "file"
                    }
                ),
            )),
        }
    }
    if !found {
        diagnostics.push(file_diagnostic(
            Arc::from(dir.join(FILESTORES_FILE).as_path()),
            "missing: every project directory under filestores/ needs its filestores manifest"
                .to_owned(),
        ));
    }
    found
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Kind {
    File,
    Directory,
    Link,
}

/// The entries of `dir` (hidden ones left out), sorted by name; an unreadable directory is
/// reported.
fn entries(dir: &Path, diagnostics: &mut Vec<Diagnostic>) -> Vec<(String, PathBuf, Kind)> {
    let read = match fs::read_dir(dir) {
        Ok(read) => read,
        Err(error) => {
            diagnostics.push(file_diagnostic(
                Arc::from(dir),
                format!("cannot read the directory: {error}"),
            ));
            return Vec::new();
        }
    };
    let mut found: Vec<(String, PathBuf, Kind)> = read
        .flatten()
        .filter_map(|entry| {
            let name = entry.file_name().to_string_lossy().into_owned();
            if name.starts_with('.') {
                return None;
            }
            let kind = match entry.file_type() {
                Ok(kind) if kind.is_symlink() => Kind::Link,
                Ok(kind) if kind.is_dir() => Kind::Directory,
                _ => Kind::File,
            };
            Some((name, entry.path(), kind))
        })
        .collect();
    found.sort();
    found
}

fn is_yaml(name: &str) -> bool {
    name.ends_with(".yaml") || name.ends_with(".yml")
}

fn is_documentation(name: &str) -> bool {
    name == "OWNERS" || name == "OWNERS_ALIASES" || name.ends_with(".md")
}

fn symlink_problem(path: &Path) -> Diagnostic {
    file_diagnostic(
        Arc::from(path),
        "a symbolic link: links inside a manifest layout are not followed".to_owned(),
    )
}

/// Two manifests sending different sha256 to one destination object is a conflict, reported at
/// the second; the same file promoted twice is fine.
fn find_conflicts(manifests: &[FileManifest], diagnostics: &mut Vec<Diagnostic>) {
    let mut seen: HashMap<String, &FileEntry> = HashMap::new();
    for manifest in manifests {
        for destination in manifest.destinations() {
            for file in &manifest.files {
                let url = object_url(&destination.url, &file.name);
                match seen.get(&url) {
                    None => {
                        seen.insert(url, file);
                    }
                    Some(first) if first.sha256 == file.sha256 => {}
                    Some(first) => diagnostics.push(Diagnostic {
                        manifest: None,
                        severity: Severity::Error,
                        file: Arc::clone(&file.location.file),
                        line: file.location.line,
                        column: file.location.column,
                        key_path: "files".to_owned(),
                        value: Some(file.name.clone()),
                        message: format!(
                            "conflict: {url} is promoted with sha256 {} here and {} at {}",
                            file.sha256.hex(),
                            first.sha256.hex(),
                            first.location
                        ),
                    }),
                }
            }
        }
    }
}
