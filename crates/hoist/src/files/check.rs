//! The file-manifest part of `hoist check`: load and validate, offline.

use std::collections::BTreeSet;
use std::io::Write as _;

use hoist_files::{FileInput, object_url};

use crate::cli::OutputFormat;
use crate::exit::Outcome;
use crate::report::Finding;

/// What the file manifests hold, and what is wrong with them.
#[derive(Debug, serde::Serialize)]
pub struct FilesCheck {
    pub ok: bool,
    /// Manifests (projects) loaded.
    pub manifests: usize,
    /// Files listed.
    pub files: usize,
    /// Distinct destination filestores.
    pub destinations: usize,
    /// Distinct destination objects (file × destination).
    pub objects: usize,
    pub errors: Vec<Finding>,
    pub warnings: Vec<Finding>,
}

/// Loads and validates the file manifests. Reads only the manifests: no store is asked.
pub fn check(inputs: &[FileInput]) -> FilesCheck {
    let loaded = hoist_files::load(inputs);
    let (errors, warnings) = super::findings(&loaded);
    let destinations: BTreeSet<String> = loaded
        .manifests
        .iter()
        .flat_map(|manifest| manifest.destinations().map(|store| store.url.to_string()))
        .collect();
    let objects: BTreeSet<String> = loaded
        .manifests
        .iter()
        .flat_map(|manifest| {
            manifest.destinations().flat_map(|store| {
                manifest
                    .files
                    .iter()
                    .map(|file| object_url(&store.url, &file.name))
            })
        })
        .collect();
    FilesCheck {
        ok: errors.is_empty(),
        manifests: loaded.manifests.len(),
        files: loaded
            .manifests
            .iter()
            .map(|manifest| manifest.files.len())
            .sum(),
        destinations: destinations.len(),
        objects: objects.len(),
        errors,
        warnings,
    }
}

/// Prints a file-only check and gives its exit code.
pub fn print_check(format: OutputFormat, report: &FilesCheck) -> anyhow::Result<Outcome> {
    let mut out = std::io::stdout().lock();
    match format {
        OutputFormat::Json => {
            serde_json::to_writer_pretty(&mut out, report)?;
            writeln!(out)?;
        }
        OutputFormat::Text => print_text(&mut out, report)?,
    }
    Ok(if report.ok {
        Outcome::Ok
    } else {
        Outcome::Refused
    })
}

/// The text form; also the files section of a check that reads image manifests too.
pub fn print_text(out: &mut impl std::io::Write, report: &FilesCheck) -> std::io::Result<()> {
    writeln!(
        out,
        "hoist check (files): {} file manifest(s), {} file(s) -> {} destination filestore(s), {} object(s)",
        report.manifests, report.files, report.destinations, report.objects
    )?;
    if !report.warnings.is_empty() {
        writeln!(out, "\nwarnings ({}):", report.warnings.len())?;
        for warning in &report.warnings {
            writeln!(out, "  {warning}")?;
        }
    }
    if report.errors.is_empty() {
        writeln!(out, "\nOK")
    } else {
        writeln!(out, "\nerrors ({}):", report.errors.len())?;
        for error in &report.errors {
            writeln!(out, "  {error}")?;
        }
        writeln!(out, "\nFAILED: {} error(s)", report.errors.len())
    }
}
