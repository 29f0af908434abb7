//! File promotion on the command line: `hoist promote-files`, and the file-manifest part of
//! `hoist check` and `hoist audit` (`--filestores FILE --files PATH` or `--manifests DIR`, the
//! same flags as promote-files).

mod audit;
mod check;
mod promote;

pub use audit::{FilesAudit, audit, print_audit};
pub use check::{FilesCheck, check, print_check, print_text as print_check_text};
pub use promote::promote;

use hoist_files::{FileInput, Loaded};
use hoist_manifest::Severity;

use crate::cli::FileManifestArgs;
use crate::report::Finding;

/// The file-manifest inputs the flags name (none when no file flag is given). clap makes
/// `--filestores` and `--files` require each other.
pub fn inputs(args: &FileManifestArgs) -> Vec<FileInput> {
    let mut inputs = Vec::new();
    if let (Some(filestores), Some(files)) = (&args.filestores, &args.files) {
        inputs.push(FileInput::Split {
            filestores: filestores.clone(),
            files: files.clone(),
        });
    }
    if let Some(dir) = &args.file_manifests {
        inputs.push(FileInput::Projects(dir.clone()));
    }
    inputs
}

/// Every finding of loading, as command findings of kind `file-manifest`, errors first.
pub fn findings(loaded: &Loaded) -> (Vec<Finding>, Vec<Finding>) {
    let mut findings: Vec<Finding> = loaded
        .diagnostics
        .iter()
        .map(|diagnostic| {
            let mut finding = Finding::from_diagnostic(diagnostic);
            finding.kind = "file-manifest";
            finding
        })
        .collect();
    crate::report::sort(&mut findings);
    findings
        .into_iter()
        .partition(|finding| finding.severity == Severity::Error)
}
