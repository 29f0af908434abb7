//! The file-manifest part of `hoist audit`: every destination object read and hashed.

use std::collections::BTreeMap;
use std::time::Instant;

use hoist_files::{FileFinding, FileInput, FileStatus};
use hoist_object::OpenOptions;

use crate::report::Finding;

/// Per destination filestore: findings by status.
#[derive(Debug, Default, serde::Serialize)]
pub struct FilestoreCounts {
    pub files: u64,
    pub ok: u64,
    pub missing: u64,
    pub mismatched: u64,
    pub error: u64,
}

/// What the audit of the file manifests found.
#[derive(Debug, serde::Serialize)]
pub struct FilesAudit {
    /// Every destination holds every file with the right bytes.
    pub ok: bool,
    /// Manifest errors; when there are any nothing was read.
    pub errors: Vec<Finding>,
    /// Per destination filestore.
    pub summary: BTreeMap<String, FilestoreCounts>,
    /// Every (file, destination).
    pub findings: Vec<FileFinding>,
    /// Bytes read and hashed.
    pub bytes: u64,
    pub seconds: f64,
}

impl FilesAudit {
    /// A discrepancy (missing or mismatched file) or invalid manifests.
    pub fn has_discrepancy(&self) -> bool {
        !self.errors.is_empty()
            || self.findings.iter().any(|finding| {
                matches!(finding.status, FileStatus::Missing | FileStatus::Mismatched)
            })
    }

    /// Something could not be read.
    pub fn has_errors(&self) -> bool {
        self.findings
            .iter()
            .any(|finding| finding.status == FileStatus::Error)
    }
}

/// Audits the file manifests (only `HEAD` and `GET`), `jobs` objects at a time, on `runtime`.
pub fn audit(
    inputs: &[FileInput],
    runtime: &tokio::runtime::Runtime,
    jobs: usize,
) -> anyhow::Result<FilesAudit> {
    let started = Instant::now();
    let loaded = hoist_files::load(inputs);
    let (errors, _) = super::findings(&loaded);
    let mut report = FilesAudit {
        ok: false,
        errors,
        summary: BTreeMap::new(),
        findings: Vec::new(),
        bytes: 0,
        seconds: 0.0,
    };
    if !report.errors.is_empty() {
        return Ok(report);
    }
    let buckets = runtime.block_on(hoist_files::open_buckets(
        &loaded.manifests,
        &OpenOptions {
            uploads: hoist_files::file_uploads(),
            ..OpenOptions::default()
        },
    ))?;
    report.findings = runtime.block_on(hoist_files::audit(&loaded.manifests, &buckets, jobs));
    for finding in &report.findings {
        let counts = report
            .summary
            .entry(finding.destination_base.clone())
            .or_default();
        counts.files += 1;
        *match finding.status {
            FileStatus::Ok => &mut counts.ok,
            FileStatus::Missing => &mut counts.missing,
            FileStatus::Mismatched => &mut counts.mismatched,
            FileStatus::Error => &mut counts.error,
        } += 1;
        report.bytes += finding.size.unwrap_or(0);
    }
    report.seconds = started.elapsed().as_secs_f64();
    report.ok = !report.has_discrepancy() && !report.has_errors();
    Ok(report)
}

/// The text form of a files audit.
pub fn print_audit(out: &mut impl std::io::Write, report: &FilesAudit) -> std::io::Result<()> {
    if !report.errors.is_empty() {
        for error in &report.errors {
            writeln!(out, "{error}")?;
        }
        return writeln!(
            out,
            "refused: {} error(s) in the file manifests; nothing was read.",
            report.errors.len()
        );
    }
    writeln!(
        out,
        "hoist audit (files): {} file(s) in {} destination filestore(s), each read and hashed",
        report.findings.len(),
        report.summary.len()
    )?;
    let width = report
        .summary
        .keys()
        .map(String::len)
        .max()
        .unwrap_or(0)
        .max("filestore".len());
    writeln!(
        out,
        "\n{:<width$}  {:>6} {:>6} {:>7} {:>10} {:>5}",
        "filestore", "files", "ok", "missing", "mismatched", "error"
    )?;
    for (base, counts) in &report.summary {
        writeln!(
            out,
            "{base:<width$}  {:>6} {:>6} {:>7} {:>10} {:>5}",
            counts.files, counts.ok, counts.missing, counts.mismatched, counts.error
        )?;
    }
    let bad: Vec<&FileFinding> = report
        .findings
        .iter()
        .filter(|finding| finding.status != FileStatus::Ok)
        .collect();
    if !bad.is_empty() {
        writeln!(out, "\ndiscrepancies:")?;
        for finding in &bad {
            let detail = match finding.status {
                FileStatus::Missing => "no such object".to_owned(),
                FileStatus::Mismatched => format!(
                    "{} bytes with sha256 {}, expected sha256 {}",
                    finding.size.unwrap_or(0),
                    finding.found.as_deref().unwrap_or("?"),
                    finding.sha256
                ),
                _ => finding.error.clone().unwrap_or_default(),
            };
            let label = match finding.status {
                FileStatus::Missing => "missing",
                FileStatus::Mismatched => "mismatched",
                _ => "error",
            };
            writeln!(out, "  {label:<10} {}: {detail}", finding.destination)?;
        }
    }
    writeln!(
        out,
        "\naudit (files): {} in {} of {} (file, destination) pair(s); {} read and hashed in {:.2} s; nothing was written.",
        if bad.is_empty() {
            "ok".to_owned()
        } else {
            format!(
                "{} discrepanc{}",
                bad.len(),
                if bad.len() == 1 { "y" } else { "ies" }
            )
        },
        bad.len(),
        report.findings.len(),
        indicatif::HumanBytes(report.bytes),
        report.seconds
    )
}
