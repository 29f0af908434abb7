//! The thin layout on disk: which projects a `--thin-manifest-dir` holds, and every file that is
//! not where the promoter would look for it.
//!
//! The promoter reads `DIR/manifests/<p>/promoter-manifest.yaml` and `DIR/images/<p>/images.yaml`
//! and silently ignores everything else, so a misspelt file (`images/<p>/imaegs.yaml`, found in
//! the real data) is a change that never takes effect. Every such file is an error here, except
//! documentation (`*.md`, `OWNERS`). Entries at the top of `DIR` other than YAML files are left
//! alone: the layout usually lives inside a larger repository folder.

use std::collections::BTreeMap;
use std::fs;
use std::io;
use std::path::{Component, Path, PathBuf};
use std::sync::Arc;

use crate::decode::non_empty_string;
use crate::model::Diagnostic;
use crate::report::{Report, file_diagnostic};
use hoist_yaml::Node;

/// The file a thin project's registries are read from.
pub(crate) const MANIFEST_FILE: &str = "promoter-manifest.yaml";
/// The directory of a thin layout that holds the images files.
const IMAGES_DIR: &str = "images";
/// The file a thin project's images are read from.
pub(crate) const IMAGES_FILE: &str = "images.yaml";

/// One project of a thin layout, with the files that exist for it.
///
/// A project missing one of its two files has been reported already; the other file is still
/// read, so that its own problems are reported too.
#[derive(Debug)]
pub(crate) struct Project {
    pub(crate) name: String,
    pub(crate) manifest_file: Option<Arc<Path>>,
    pub(crate) images_file: Option<Arc<Path>>,
    /// Where the images file must be (`DIR/images/<p>/images.yaml`), for `imagesPath`.
    pub(crate) expected_images_file: PathBuf,
}

/// What one side (`manifests/<p>` or `images/<p>`) holds for a project.
#[derive(Debug)]
enum Side {
    /// A directory without the expected file.
    Empty,
    /// The expected file.
    File(Arc<Path>),
}

/// Finds the projects of the thin layout at `dir`, sorted by name, and reports every missing or
/// unexpected file.
pub(crate) fn discover(dir: &Path) -> (Vec<Project>, Vec<Diagnostic>) {
    let mut diagnostics = Vec::new();
    let mut report = |path: PathBuf, message: String| {
        diagnostics.push(file_diagnostic(Arc::from(path), message));
    };
    match fs::metadata(dir) {
        Err(error) => {
            report(dir.to_owned(), describe_io(&error, "directory"));
            return (Vec::new(), diagnostics);
        }
        Ok(metadata) if !metadata.is_dir() => {
            report(
                dir.to_owned(),
                "expected a directory (a thin manifest layout), found a file".to_owned(),
            );
            return (Vec::new(), diagnostics);
        }
        Ok(_) => {}
    }
    for (name, path, is_dir) in entries(dir, &mut report) {
        if !is_dir && (name.ends_with(".yaml") || name.ends_with(".yml")) {
            report(
                path,
                "unexpected file: a thin layout reads only manifests/<p>/promoter-manifest.yaml \
                 and images/<p>/images.yaml"
                    .to_owned(),
            );
        }
    }
    let manifests_dir = dir.join("manifests");
    if !manifests_dir.is_dir() {
        report(
            manifests_dir.clone(),
            "missing directory: a thin layout keeps its promoter manifests in \
             manifests/<p>/promoter-manifest.yaml"
                .to_owned(),
        );
    }
    let manifests = sides(&manifests_dir, "manifests", MANIFEST_FILE, &mut report);
    let images_dir = dir.join(IMAGES_DIR);
    let images = sides(&images_dir, "images", IMAGES_FILE, &mut report);

    let mut names: Vec<&String> = manifests.keys().chain(images.keys()).collect();
    names.sort();
    names.dedup();
    let mut projects = Vec::new();
    for name in names {
        let expected_images_file = images_dir.join(name).join(IMAGES_FILE);
        let (manifest, images) = (manifests.get(name), images.get(name));
        let file = |side: Option<&Side>| match side {
            Some(Side::File(file)) => Some(Arc::clone(file)),
            _ => None,
        };
        let (manifest_file, images_file) = (file(manifest), file(images));
        match (&manifest_file, &images_file) {
            (Some(_), Some(_)) => {}
            (Some(_), None) => report(
                expected_images_file.clone(),
                format!("missing: manifests/{name}/{MANIFEST_FILE} has no images file"),
            ),
            (None, Some(file)) => report(
                file.to_path_buf(),
                format!(
                    "no manifests/{name}/{MANIFEST_FILE} for this images file, so the \
                     promoter would ignore it"
                ),
            ),
            (None, None) => {
                let (side, file) = match manifest {
                    Some(_) => ("manifests", MANIFEST_FILE),
                    None => ("images", IMAGES_FILE),
                };
                report(
                    dir.join(side).join(name),
                    format!("project directory without its {file}"),
                );
                continue;
            }
        }
        projects.push(Project {
            name: name.clone(),
            manifest_file,
            images_file,
            expected_images_file,
        });
    }
    (projects, diagnostics)
}

/// The project directories under `side_dir` (`DIR/manifests` or `DIR/images`) and whether each
/// holds `expected`; reports files in unexpected places.
fn sides(
    side_dir: &Path,
    side: &str,
    expected: &str,
    report: &mut impl FnMut(PathBuf, String),
) -> BTreeMap<String, Side> {
    let mut found = BTreeMap::new();
    if !side_dir.is_dir() {
        return found;
    }
    for (project, project_path, is_dir) in entries(side_dir, report) {
        if !is_dir {
            if !is_documentation(&project) {
                report(
                    project_path,
                    format!(
                        "unexpected file: {side}/ holds only project directories \
                         {side}/<p>/{expected} (and documentation)"
                    ),
                );
            }
            continue;
        }
        let mut state = Side::Empty;
        for (name, path, is_dir) in entries(&project_path, report) {
            if !is_dir && name == expected {
                state = Side::File(Arc::from(path));
            } else if is_dir || !is_documentation(&name) {
                let kind = if is_dir { "directory" } else { "file" };
                report(
                    path,
                    format!(
                        "unexpected {kind}: {side}/{project}/ holds only {expected} \
                         (and documentation)"
                    ),
                );
            }
        }
        found.insert(project, state);
    }
    found
}

/// `(name, path, is_dir)` of each entry of `dir`, sorted; reports a directory it cannot read.
fn entries(dir: &Path, report: &mut impl FnMut(PathBuf, String)) -> Vec<(String, PathBuf, bool)> {
    let listing = match fs::read_dir(dir) {
        Ok(listing) => listing,
        Err(error) => {
            report(dir.to_owned(), describe_io(&error, "directory"));
            return Vec::new();
        }
    };
    let mut entries = Vec::new();
    for entry in listing {
        match entry {
            Ok(entry) => {
                let path = entry.path();
                // Follows symbolic links, as the promoter does.
                let is_dir = path.is_dir();
                let name = entry.file_name().to_string_lossy().into_owned();
                entries.push((name, path, is_dir));
            }
            Err(error) => report(dir.to_owned(), describe_io(&error, "directory")),
        }
    }
    entries.sort();
    entries
}

/// Files that document a layout rather than configure the promoter.
fn is_documentation(name: &str) -> bool {
    name.ends_with(".md") || name == "OWNERS"
}

/// A short, stable description of an I/O error on a file or directory.
pub(crate) fn describe_io(error: &io::Error, what: &str) -> String {
    match error.kind() {
        io::ErrorKind::NotFound => format!("no such {what}"),
        io::ErrorKind::PermissionDenied => format!("cannot read this {what}: permission denied"),
        io::ErrorKind::InvalidData => "not UTF-8 text".to_owned(),
        _ => format!("cannot read this {what}: {error}"),
    }
}

/// Checks that `imagesPath:` (relative to the manifest's directory) names the project's own
/// images file. The promoter would follow any path; hoist reads the conventional file, so a path
/// elsewhere would make the two tools promote different images.
pub(crate) fn check_images_path(report: &mut Report, node: &Node, project: &Project) {
    let Some(manifest_file) = &project.manifest_file else {
        return;
    };
    let expected = &project.expected_images_file;
    let path = "imagesPath".to_owned();
    let Some(text) = non_empty_string(report, node, path.clone(), "a path to images.yaml") else {
        return;
    };
    let base = manifest_file.parent().unwrap_or(Path::new(""));
    let resolved = normalize(&base.join(text));
    if resolved == normalize(expected) {
        return;
    }
    // Lexically different paths may still be one file (symbolic links).
    if let (Ok(resolved), Ok(expected)) = (resolved.canonicalize(), expected.canonicalize())
        && resolved == expected
    {
        return;
    }
    report.error(
        node,
        path,
        format!(
            "must name this project's images file {} (write \"../../{IMAGES_DIR}/{}/{IMAGES_FILE}\" \
             or leave imagesPath out)",
            expected.display(),
            project.name
        ),
    );
}

/// Removes `.` and folds `name/..` without touching the file system.
fn normalize(path: &Path) -> PathBuf {
    let mut parts: Vec<Component> = Vec::new();
    for component in path.components() {
        match component {
            Component::CurDir => {}
            Component::ParentDir if matches!(parts.last(), Some(Component::Normal(_))) => {
                parts.pop();
            }
            other => parts.push(other),
        }
    }
    parts.iter().collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalizes_lexically() {
        assert_eq!(
            normalize(Path::new("d/manifests/p/../../images/p/images.yaml")),
            Path::new("d/images/p/images.yaml")
        );
        assert_eq!(
            normalize(Path::new("../x/./manifests/../images.yaml")),
            Path::new("../x/images.yaml")
        );
        assert_eq!(normalize(Path::new("d/")), Path::new("d"));
    }

    #[test]
    fn documentation_files() {
        assert!(is_documentation("README.md"));
        assert!(is_documentation("OWNERS"));
        assert!(!is_documentation("images.yml"));
        assert!(!is_documentation("OWNERS.yaml"));
    }
}
