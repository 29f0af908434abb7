//! File promotion: kpromo's file promoter (`kpromo run files`), which Kubernetes releases use to
//! promote binaries and tarballs between buckets by sha256.
//!
//! - Inputs ([`FileInput`]): a filestores manifest (`filestores: [{base, service-account,
//!   src}]`) with a file list or a directory of them (`files: [{name, sha256}]`), or the
//!   multi-project layout `filestores/<p>/filepromoter-manifest.yaml` + `manifests/<p>/*.yaml`.
//! - [`load`] reads them strictly (unknown and duplicate keys are errors) and validates them:
//!   exactly one source, at least one destination, bases `gs://`, `s3://` or `file:`, names that
//!   are relative paths, sha256 as 64 hex digits, no destination object promoted with two
//!   different sha256. Every finding is a [`hoist_manifest::Diagnostic`] naming file, line,
//!   column and key, the same as the image manifests give.
//! - [`open_buckets`] opens each filestore as a [`hoist_object::Bucket`] (S3, GCS or a
//!   directory, the blob mirrors' backends and guarantees); [`plan`] reads what is where
//!   (`HEAD`s; existing destination objects are hashed), [`execute`] copies what is missing
//!   (streamed through sha256 verification, create-only), and [`audit`] proves, read-only, that
//!   every destination holds the right bytes.
//!
//! Nothing here knows the command line; the `hoist` binary parses flags and prints.

mod audit;
mod decode;
mod error;
mod load;
mod model;
mod promote;
mod report;

pub use audit::{FileFinding, FileStatus, audit};
pub use error::FilesError;
pub use load::{FILESTORES_FILE, Loaded, load};
pub use model::{FileEntry, FileInput, FileManifest, Filestore, object_url};
pub use promote::{
    Buckets, Copied, CopyCallback, CopyOutcome, FileAction, FilePlan, FileStep, FileTotals,
    execute, execute_with, file_uploads, open_buckets, plan,
};
