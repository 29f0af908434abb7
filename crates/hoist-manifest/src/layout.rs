//! The thin layout on disk: which projects a `--thin-manifest-dir` holds, and every file that is
//! not where the promoter would look for it.
//!
//! The promoter reads `DIR/manifests/<p>/promoter-manifest.yaml` and `DIR/images/<p>/images.yaml`
//! and silently ignores everything else. A misspelt file beside them (`images/<p>/imaegs.yaml`,
//! found in the real data) is a change that never takes effect, so it is reported, as a warning
//! (the promoter tolerates it) with a "did you mean" for near misses; documentation (`*.md`,
//! `OWNERS`) is not reported. Files directly in `DIR`, `DIR/manifests` or `DIR/images` belong to
//! no project and stay errors. Entries at the top of `DIR` other than YAML files are left alone:
//! the layout usually lives inside a larger repository folder.
//!
//! The tree comes from a pull request, so no file outside it is ever read: a symbolic link whose
//! target lies outside `DIR` is an error naming the link (never its target) and is not followed.

use std::collections::BTreeMap;
use std::fs;
use std::io;
use std::path::{Component, Path, PathBuf};
use std::sync::Arc;

use crate::decode::non_empty_string;
use crate::model::{Diagnostic, Severity};
use crate::report::{Report, file_diagnostic};
use hoist_yaml::{Node, clip};

/// The file a thin project's registries are read from.
pub(crate) const MANIFEST_FILE: &str = "promoter-manifest.yaml";
/// The directory of a thin layout that holds the manifests.
const MANIFESTS_DIR: &str = "manifests";
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
    /// Where the manifest must be (`DIR/manifests/<p>/promoter-manifest.yaml`): the project's
    /// identity, even when the file is missing.
    pub(crate) expected_manifest_file: Arc<Path>,
    /// Where the images file must be (`DIR/images/<p>/images.yaml`), for `imagesPath`.
    pub(crate) expected_images_file: PathBuf,
    /// The layout's directory, resolved: no file outside it is read.
    pub(crate) root: Option<PathBuf>,
    /// Whether a file or directory of the project was reached through a symbolic link.
    pub(crate) linked: bool,
}

/// What one side (`manifests/<p>` or `images/<p>`) holds for a project.
#[derive(Debug)]
enum Side {
    /// A directory without the expected file.
    Empty { linked: bool },
    /// The expected file.
    File { file: Arc<Path>, linked: bool },
}

impl Side {
    fn linked(&self) -> bool {
        match self {
            Side::Empty { linked } | Side::File { linked, .. } => *linked,
        }
    }
}

/// Findings of a layout, each attributed to its project (if any).
struct Found<'a> {
    dir: &'a Path,
    diagnostics: Vec<Diagnostic>,
}

impl Found<'_> {
    /// Where project `name`'s manifest must be.
    fn manifest_of(&self, name: &str) -> Arc<Path> {
        Arc::from(self.dir.join(MANIFESTS_DIR).join(name).join(MANIFEST_FILE))
    }

    fn add(&mut self, severity: Severity, path: PathBuf, project: Option<&str>, message: String) {
        let manifest = project.map(|name| self.manifest_of(name));
        self.diagnostics.push(file_diagnostic(
            severity,
            Arc::from(path),
            manifest,
            message,
        ));
    }

    fn error(&mut self, path: PathBuf, project: Option<&str>, message: String) {
        self.add(Severity::Error, path, project, message);
    }

    fn warning(&mut self, path: PathBuf, project: Option<&str>, message: String) {
        self.add(Severity::Warning, path, project, message);
    }
}

/// Finds the projects of the thin layout at `dir`, sorted by name, and reports every missing or
/// unexpected file.
pub(crate) fn discover(dir: &Path) -> (Vec<Project>, Vec<Diagnostic>) {
    let mut found = Found {
        dir,
        diagnostics: Vec::new(),
    };
    match fs::metadata(dir) {
        Err(error) => {
            found.error(dir.to_owned(), None, describe_io(&error, "directory"));
            return (Vec::new(), found.diagnostics);
        }
        Ok(metadata) if !metadata.is_dir() => {
            found.error(
                dir.to_owned(),
                None,
                "expected a directory (a thin manifest layout), found a file".to_owned(),
            );
            return (Vec::new(), found.diagnostics);
        }
        Ok(_) => {}
    }
    // Every link is judged against the directory as given, resolved once.
    let root = match fs::canonicalize(dir) {
        Ok(root) => root,
        Err(error) => {
            found.error(dir.to_owned(), None, describe_io(&error, "directory"));
            return (Vec::new(), found.diagnostics);
        }
    };
    for entry in entries(dir, &root, None, &mut found) {
        if !entry.is_dir && (entry.name.ends_with(".yaml") || entry.name.ends_with(".yml")) {
            found.error(
                entry.path,
                None,
                "unexpected file: a thin layout reads only manifests/<p>/promoter-manifest.yaml \
                 and images/<p>/images.yaml"
                    .to_owned(),
            );
        }
    }
    let manifests_dir = dir.join(MANIFESTS_DIR);
    if !manifests_dir.is_dir() {
        found.error(
            manifests_dir.clone(),
            None,
            "missing directory: a thin layout keeps its promoter manifests in \
             manifests/<p>/promoter-manifest.yaml"
                .to_owned(),
        );
    }
    let manifests = sides(
        &root,
        &manifests_dir,
        MANIFESTS_DIR,
        MANIFEST_FILE,
        &mut found,
    );
    let images_dir = dir.join(IMAGES_DIR);
    let images = sides(&root, &images_dir, IMAGES_DIR, IMAGES_FILE, &mut found);

    let mut names: Vec<&String> = manifests.keys().chain(images.keys()).collect();
    names.sort();
    names.dedup();
    let mut projects = Vec::new();
    for name in names {
        let expected_images_file = images_dir.join(name).join(IMAGES_FILE);
        let (manifest, images) = (manifests.get(name), images.get(name));
        let file = |side: Option<&Side>| match side {
            Some(Side::File { file, .. }) => Some(Arc::clone(file)),
            _ => None,
        };
        let (manifest_file, images_file) = (file(manifest), file(images));
        let project = Some(name.as_str());
        match (&manifest_file, &images_file) {
            (Some(_), Some(_)) => {}
            (Some(_), None) => found.error(
                expected_images_file.clone(),
                project,
                format!("missing: manifests/{name}/{MANIFEST_FILE} has no images file"),
            ),
            (None, Some(file)) => found.error(
                file.to_path_buf(),
                project,
                format!(
                    "no manifests/{name}/{MANIFEST_FILE} for this images file, so the \
                     promoter would ignore it"
                ),
            ),
            (None, None) => {
                let (side, file) = match manifest {
                    Some(_) => (MANIFESTS_DIR, MANIFEST_FILE),
                    None => (IMAGES_DIR, IMAGES_FILE),
                };
                found.error(
                    dir.join(side).join(name),
                    project,
                    format!("project directory without its {file}"),
                );
            }
        }
        projects.push(Project {
            name: name.clone(),
            manifest_file,
            images_file,
            expected_manifest_file: found.manifest_of(name),
            expected_images_file,
            root: Some(root.clone()),
            linked: manifest.is_some_and(Side::linked) || images.is_some_and(Side::linked),
        });
    }
    (projects, found.diagnostics)
}

/// The project directories under `side_dir` (`DIR/manifests` or `DIR/images`) and whether each
/// holds `expected`; reports files in unexpected places.
fn sides(
    root: &Path,
    side_dir: &Path,
    side: &str,
    expected: &str,
    found: &mut Found<'_>,
) -> BTreeMap<String, Side> {
    let mut sides = BTreeMap::new();
    if !side_dir.is_dir() {
        return sides;
    }
    for project in entries(side_dir, root, None, found) {
        if !project.is_dir {
            if !is_documentation(&project.name) {
                found.error(
                    project.path,
                    None,
                    format!(
                        "unexpected file: {side}/ holds only project directories \
                         {side}/<p>/{expected} (and documentation)"
                    ),
                );
            }
            continue;
        }
        let name = project.name.as_str();
        let mut state = Side::Empty {
            linked: project.linked,
        };
        for entry in entries(&project.path, root, Some(name), found) {
            if !entry.is_dir && entry.name == expected {
                state = Side::File {
                    file: Arc::from(entry.path),
                    linked: project.linked || entry.linked,
                };
                continue;
            }
            if !entry.is_dir && is_documentation(&entry.name) {
                continue;
            }
            // The promoter ignores anything else here, so it is a warning: the project is still
            // promoted, but whatever the stray file says never takes effect.
            let kind = if entry.is_dir { "directory" } else { "file" };
            let hint = if !entry.is_dir && is_near_miss(&entry.name, expected) {
                format!("; did you mean {expected}?")
            } else {
                String::new()
            };
            let message = format!(
                "unexpected {kind} {:?}: {side}/{}/ holds only {expected} (and documentation), \
                 and the promoter ignores everything else{hint}",
                clip(&entry.name),
                clip(name)
            );
            found.warning(entry.path, Some(name), message);
        }
        sides.insert(project.name, state);
    }
    sides
}

/// One entry of a directory of the layout.
struct Entry {
    name: String,
    path: PathBuf,
    /// A directory (following an allowed link).
    is_dir: bool,
    /// Reached through a symbolic link.
    linked: bool,
}

/// The entries of `dir`, sorted; reports a directory it cannot read, and leaves out (reporting
/// them) symbolic links that lead outside `root` or nowhere.
fn entries(dir: &Path, root: &Path, project: Option<&str>, found: &mut Found<'_>) -> Vec<Entry> {
    let listing = match fs::read_dir(dir) {
        Ok(listing) => listing,
        Err(error) => {
            found.error(dir.to_owned(), project, describe_io(&error, "directory"));
            return Vec::new();
        }
    };
    let mut entries = Vec::new();
    for entry in listing {
        let entry = match entry {
            Ok(entry) => entry,
            Err(error) => {
                found.error(dir.to_owned(), project, describe_io(&error, "directory"));
                continue;
            }
        };
        let path = entry.path();
        let name = entry.file_name().to_string_lossy().into_owned();
        // For a project directory itself, the project is its name.
        let owner = project.or(Some(name.as_str())).filter(|_| dir != root);
        let linked = entry.file_type().is_ok_and(|kind| kind.is_symlink());
        if linked {
            // The target is never echoed: it may name (or be) something the tree must not see.
            match fs::canonicalize(&path) {
                Ok(target) if target.starts_with(root) => {}
                Ok(_) => {
                    found.error(
                        path,
                        owner,
                        "symbolic link to a path outside the manifest tree: not followed (a \
                         manifest tree must be self-contained)"
                            .to_owned(),
                    );
                    continue;
                }
                Err(_) => {
                    found.error(
                        path,
                        owner,
                        "symbolic link that leads nowhere: not followed".to_owned(),
                    );
                    continue;
                }
            }
        }
        // Follows links (inside the tree), as the promoter does.
        let is_dir = path.is_dir();
        entries.push(Entry {
            name,
            path,
            is_dir,
            linked,
        });
    }
    entries.sort_by(|a, b| a.name.cmp(&b.name));
    entries
}

/// Whether `name` looks like a misspelling of `expected`: at most two edits (a swap of two
/// neighbouring letters counts as one), or the same stem with another YAML extension.
fn is_near_miss(name: &str, expected: &str) -> bool {
    let stem = |text: &str| {
        text.strip_suffix(".yaml")
            .or_else(|| text.strip_suffix(".yml"))
            .map(str::to_owned)
    };
    if name.len() > 4 * expected.len() {
        return false;
    }
    strsim::osa_distance(&name.to_lowercase(), expected) <= 2
        || stem(&name.to_lowercase()).is_some_and(|stem_name| Some(stem_name) == stem(expected))
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
        io::ErrorKind::InvalidInput => format!("cannot read this {what}: not a regular file"),
        io::ErrorKind::FileTooLarge => format!(
            "cannot read this {what}: larger than {} MiB",
            hoist_yaml::MAX_FILE_BYTES >> 20
        ),
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
    // Lexically different paths may still be one file (symbolic links inside the tree); a path
    // that leaves the tree is never looked at.
    if let (Ok(resolved), Ok(expected)) = (resolved.canonicalize(), expected.canonicalize())
        && project
            .root
            .as_ref()
            .is_some_and(|root| resolved.starts_with(root))
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
    fn near_misses() {
        assert!(is_near_miss("imaegs.yaml", IMAGES_FILE));
        assert!(is_near_miss("image.yaml", IMAGES_FILE));
        assert!(is_near_miss("images.yml", IMAGES_FILE));
        assert!(is_near_miss("Images.yaml", IMAGES_FILE));
        assert!(is_near_miss("promoter-manifest.yml", MANIFEST_FILE));
        assert!(is_near_miss("promoter-manfiest.yaml", MANIFEST_FILE));
        assert!(!is_near_miss("promoter-manifest.yaml", IMAGES_FILE));
        assert!(!is_near_miss("notes.txt", IMAGES_FILE));
    }

    #[test]
    fn documentation_files() {
        assert!(is_documentation("README.md"));
        assert!(is_documentation("OWNERS"));
        assert!(!is_documentation("images.yml"));
        assert!(!is_documentation("OWNERS.yaml"));
    }
}
