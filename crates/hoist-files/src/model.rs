//! The loaded file manifests: filestores (where files come from and go to) and files (what is
//! promoted, by sha256).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use hoist_manifest::Location;
use hoist_object::{Backend, BackendOptions, BackendUrl};
use hoist_oci::Digest;

/// One entry of `filestores:`: a bucket (and prefix) or directory.
#[derive(Debug, Clone)]
pub struct Filestore {
    /// `base:` as written (`gs://k8s-staging-kops/kops/releases/`).
    pub base: String,
    /// `base:` parsed.
    pub url: BackendUrl,
    /// `src: true`: the filestore files are promoted from.
    pub src: bool,
    /// `service-account:`, kept for round-trips (hoist uses each cloud's own credential chain and
    /// impersonates nobody).
    pub service_account: Option<String>,
    /// How to reach it beyond its URL (`endpoint:`, `region:`, `pathStyle:`, hoist's additions);
    /// never a credential.
    pub options: BackendOptions,
    /// Where the entry starts.
    pub location: Location,
}

impl Filestore {
    /// The filestore as a `hoist-object` backend, named by its base.
    pub fn backend(&self) -> Backend {
        Backend {
            name: self.base.clone(),
            url: self.url.clone(),
            options: self.options.clone(),
            labels: Default::default(),
        }
    }
}

/// One entry of `files:`.
#[derive(Debug, Clone)]
pub struct FileEntry {
    /// `name:`, the path relative to each filestore's base (`v1.2.3/linux/amd64/kops`).
    pub name: String,
    /// `sha256:`, the only thing hoist trusts about the file's content.
    pub sha256: Digest,
    /// Where the entry starts.
    pub location: Location,
}

/// One project's file manifest: its filestores and the files of every file list.
#[derive(Debug, Clone)]
pub struct FileManifest {
    /// The project (`<p>` of `filestores/<p>/`), `None` for `--filestores FILE --files PATH`.
    pub project: Option<String>,
    /// The file holding `filestores:`.
    pub filestores_file: Arc<Path>,
    /// The filestores in file order. Validation guarantees exactly one source and at least one
    /// destination when the manifest was loaded without errors.
    pub filestores: Vec<Filestore>,
    /// The files of every file list, in path then file order, names unique.
    pub files: Vec<FileEntry>,
}

impl FileManifest {
    /// The source filestore (`src: true`), if there is exactly one.
    pub fn source(&self) -> Option<&Filestore> {
        let mut sources = self.filestores.iter().filter(|store| store.src);
        match (sources.next(), sources.next()) {
            (Some(source), None) => Some(source),
            _ => None,
        }
    }

    /// The destination filestores, in file order.
    pub fn destinations(&self) -> impl Iterator<Item = &Filestore> {
        self.filestores.iter().filter(|store| !store.src)
    }
}

/// What the user asked to read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FileInput {
    /// `--filestores FILE --files PATH`: one filestores manifest and a file list, or a directory
    /// of them (read recursively, in path order).
    Split {
        /// The filestores manifest.
        filestores: PathBuf,
        /// A file list, or a directory of file lists.
        files: PathBuf,
    },
    /// `--manifests DIR`: `DIR/filestores/<p>/filepromoter-manifest.yaml` with the file lists of
    /// `DIR/manifests/<p>/`, for every project `<p>`.
    Projects(PathBuf),
}

/// The URL of `name` below a filestore's base: `gs://bucket/prefix/name`.
pub fn object_url(url: &BackendUrl, name: &str) -> String {
    match url {
        BackendUrl::File { path } => format!("file:{}", path.join(name).display()),
        other => format!("{other}/{name}"),
    }
}
