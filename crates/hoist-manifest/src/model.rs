//! The parsed, validated promoter manifests.

use std::path::Path;
use std::sync::Arc;

use hoist_oci::{Digest, RegistryName, RepositoryPath, Tag};

/// Where something was written: a file, a 1-based line and a 1-based column.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Location {
    /// The file, as the user named it (joined with the layout's relative path).
    pub file: Arc<Path>,
    /// 1-based line.
    pub line: u32,
    /// 1-based column.
    pub column: u32,
}

impl std::fmt::Display for Location {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}:{}", self.file.display(), self.line, self.column)
    }
}

/// One entry of `registries:`.
#[derive(Debug, Clone)]
pub struct Registry {
    /// `name:`.
    pub name: RegistryName,
    /// `src: true`: the registry images are promoted from.
    pub src: bool,
    /// `service-account:`, if given (kept for round-trips; hoist does not impersonate).
    pub service_account: Option<String>,
    /// Where the entry starts.
    pub location: Location,
}

/// One `digest: [tags]` line of an image's `dmap`.
#[derive(Debug, Clone)]
pub struct DigestTags {
    /// The digest to promote.
    pub digest: Digest,
    /// The tags to point at it; empty means promote by digest only.
    pub tags: Vec<Tag>,
    /// Where the digest key is written.
    pub location: Location,
}

/// One entry of `images:` (plain) or of a thin `images.yaml` list.
#[derive(Debug, Clone)]
pub struct Image {
    /// `name:`, the repository path below each registry.
    pub name: RepositoryPath,
    /// `dmap:`, in file order.
    pub dmap: Vec<DigestTags>,
    /// Where the entry starts.
    pub location: Location,
}

/// One promoter manifest: its registries and its images.
///
/// For a plain manifest both come from one file; for a thin layout, `registries` come from
/// `manifests/<p>/promoter-manifest.yaml` and `images` from `images/<p>/images.yaml`.
#[derive(Debug, Clone)]
pub struct Manifest {
    /// The file that holds `registries:`.
    pub manifest_file: Arc<Path>,
    /// The file that holds the images (the same as `manifest_file` for a plain manifest).
    pub images_file: Arc<Path>,
    /// The project name of a thin layout (`<p>`), `None` for a plain manifest.
    pub project: Option<String>,
    /// The registries in file order. Validation guarantees exactly one has `src: true`
    /// when the manifest was loaded without errors.
    pub registries: Vec<Registry>,
    /// The images in file order.
    pub images: Vec<Image>,
}

impl Manifest {
    /// The source registry (the one with `src: true`), if there is exactly one.
    pub fn source(&self) -> Option<&Registry> {
        let mut sources = self.registries.iter().filter(|registry| registry.src);
        match (sources.next(), sources.next()) {
            (Some(source), None) => Some(source),
            _ => None,
        }
    }

    /// The destination registries (all but the source), in file order.
    pub fn destinations(&self) -> impl Iterator<Item = &Registry> {
        self.registries.iter().filter(|registry| !registry.src)
    }
}

/// What the user asked to read.
#[derive(Debug, Clone)]
pub enum Input {
    /// `--manifest FILE`: a plain manifest.
    Plain(std::path::PathBuf),
    /// `--thin-manifest-dir DIR`: a thin layout.
    Thin(std::path::PathBuf),
}

/// How bad a [`Diagnostic`] is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// Worth knowing; does not fail a check.
    Warning,
    /// Fails the check.
    Error,
}

/// One finding about the input: where, which key, which value, and what was expected.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Diagnostic {
    /// Error or warning.
    pub severity: Severity,
    /// The file.
    pub file: Arc<Path>,
    /// 1-based line (0 when the finding is about a whole file or directory).
    pub line: u32,
    /// 1-based column (0 when the finding is about a whole file or directory).
    pub column: u32,
    /// The key path, as in `images[2].dmap["sha256:…"]` or `registries[0].name` ("" for a file).
    pub key_path: String,
    /// The offending value, when there is one (cut to a short length, see [`hoist_yaml::clip`]).
    pub value: Option<String>,
    /// What is wrong and what was expected.
    pub message: String,
    /// The promoter manifest (the project) the finding belongs to: the plain manifest, or a thin
    /// project's `manifests/<p>/promoter-manifest.yaml` (even when that file is missing). `None`
    /// for a finding about the layout as a whole (a stray file at its top, a missing directory).
    #[serde(skip)]
    pub manifest: Option<Arc<Path>>,
}

impl std::fmt::Display for Diagnostic {
    /// `FILE:LINE:COL: error: KEY: MESSAGE (got VALUE)`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.file.display())?;
        if self.line > 0 {
            write!(f, ":{}:{}", self.line, self.column)?;
        }
        let severity = match self.severity {
            Severity::Warning => "warning",
            Severity::Error => "error",
        };
        write!(f, ": {severity}: ")?;
        if !self.key_path.is_empty() {
            write!(f, "{}: ", self.key_path)?;
        }
        f.write_str(&self.message)?;
        if let Some(value) = &self.value {
            write!(f, " (got {value:?})")?;
        }
        Ok(())
    }
}

/// One project: a promoter manifest, found on disk, whether or not it could be loaded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Project {
    /// The thin project's name (`<p>`), or the plain manifest's path as given.
    pub name: String,
    /// Its promoter manifest: the plain manifest, or `DIR/manifests/<p>/promoter-manifest.yaml`
    /// (where it must be, even when it is missing). The identity of the project.
    pub manifest_file: Arc<Path>,
    /// The index of the input ([`Input`]) it was found in.
    pub input: usize,
    /// Whether one of its files or directories was reached through a symbolic link (inside the
    /// tree): its content may then change without its own paths changing.
    pub linked: bool,
}

/// Everything read from the inputs: the manifests (with every entry that parsed and validated),
/// and every diagnostic found on the way. Loading never stops at the first error.
#[derive(Debug, Clone, Default)]
pub struct Loaded {
    /// The manifests, in input order, thin projects sorted by name.
    pub manifests: Vec<Manifest>,
    /// All findings, sorted by file, line, column.
    pub diagnostics: Vec<Diagnostic>,
    /// Every project found, loaded or not, in input order (thin projects sorted by name).
    pub projects: Vec<Project>,
}

impl Loaded {
    /// Renames every file below `from` to the same path below `to`: manifests loaded from a copy
    /// (such as a base revision exported to a temporary directory) then name their files as the
    /// user knows them.
    pub fn rebase(&mut self, from: &Path, to: &Path) {
        let rename = |file: &mut Arc<Path>| {
            if let Ok(rest) = file.strip_prefix(from) {
                // `join("")` would add a trailing separator: a file renamed whole stays a file.
                *file = if rest.as_os_str().is_empty() {
                    Arc::from(to)
                } else {
                    Arc::from(to.join(rest))
                };
            }
        };
        for manifest in &mut self.manifests {
            rename(&mut manifest.manifest_file);
            rename(&mut manifest.images_file);
            for registry in &mut manifest.registries {
                rename(&mut registry.location.file);
            }
            for image in &mut manifest.images {
                rename(&mut image.location.file);
                for entry in &mut image.dmap {
                    rename(&mut entry.location.file);
                }
            }
        }
        for diagnostic in &mut self.diagnostics {
            rename(&mut diagnostic.file);
            if let Some(manifest) = &mut diagnostic.manifest {
                rename(manifest);
            }
        }
        for project in &mut self.projects {
            // A plain manifest's project is named by its path.
            let named_by_path = project.name == project.manifest_file.display().to_string();
            rename(&mut project.manifest_file);
            if named_by_path {
                project.name = project.manifest_file.display().to_string();
            }
        }
    }

    /// Whether any diagnostic is an error.
    pub fn has_errors(&self) -> bool {
        self.diagnostics
            .iter()
            .any(|d| d.severity == Severity::Error)
    }
}

/// The inputs hold at least one error: the whole list of findings, for the caller to print.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{} in the promoter manifests; the first: {}", plural(self.error_count(), "error"), self.first_error())]
pub struct LoadError {
    /// Every diagnostic of the run (warnings included), sorted by file, line, column.
    pub diagnostics: Vec<Diagnostic>,
}

impl LoadError {
    /// How many diagnostics are errors.
    pub fn error_count(&self) -> usize {
        self.errors().count()
    }

    fn errors(&self) -> impl Iterator<Item = &Diagnostic> {
        self.diagnostics
            .iter()
            .filter(|diagnostic| diagnostic.severity == Severity::Error)
    }

    fn first_error(&self) -> String {
        self.errors()
            .next()
            .map(ToString::to_string)
            .unwrap_or_default()
    }
}

fn plural(count: usize, noun: &str) -> String {
    if count == 1 {
        format!("1 {noun}")
    } else {
        format!("{count} {noun}s")
    }
}

impl Loaded {
    /// The manifests if no diagnostic is an error (warnings are dropped: print them first),
    /// else every diagnostic as a [`LoadError`].
    pub fn into_result(self) -> Result<Vec<Manifest>, LoadError> {
        if self.has_errors() {
            Err(LoadError {
                diagnostics: self.diagnostics,
            })
        } else {
            Ok(self.manifests)
        }
    }
}
