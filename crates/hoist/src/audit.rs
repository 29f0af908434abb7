//! `hoist audit`: prove, read-only, that every destination and every selected mirror holds exactly
//! what the manifests promote. A summary table per backend, every discrepancy, the cost of the
//! mirror checks (blobs/s, MB/s); or all of it as JSON.

use std::collections::{BTreeMap, HashSet};
use std::io::Write as _;
use std::time::Instant;

use hoist_oci::{Digest, Tag};
use hoist_plan::EdgeSet;
use hoist_promote::audit::{self, AuditRow, BackendKind, Discrepancy, MirrorStatistics, Status};
use hoist_promote::{Problem, Stores};

use crate::cli::{AuditArgs, OutputFormat};
use crate::exit::Outcome;
use crate::projects::{self as project_reports, ProjectReport};
use crate::report::Finding;
use crate::shard::{self, ShardReport};
use crate::{files, inputs, mirrors, registries};

/// Per backend: how many rows have each status.
#[derive(Debug, Default, serde::Serialize)]
struct BackendCounts {
    kind: Option<BackendKind>,
    images: u64,
    ok: u64,
    missing: u64,
    mismatched: u64,
    tag_moved: u64,
    tag_missing: u64,
    extra_tag: u64,
    error: u64,
}

impl BackendCounts {
    fn add(&mut self, row: &AuditRow) {
        self.kind = Some(row.kind);
        self.images += 1;
        *match row.status {
            Status::Ok => &mut self.ok,
            Status::Missing => &mut self.missing,
            Status::Mismatched => &mut self.mismatched,
            Status::TagMoved => &mut self.tag_moved,
            Status::TagMissing => &mut self.tag_missing,
            Status::ExtraTag => &mut self.extra_tag,
            Status::Error => &mut self.error,
        } += 1;
    }
}

#[derive(Debug, serde::Serialize)]
struct AuditReport {
    /// No discrepancy and nothing unreadable.
    ok: bool,
    rehash: bool,
    /// Manifest and conflict errors: of refused projects (not audited), and of the run (when one
    /// belongs to no project nothing was read).
    errors: Vec<Finding>,
    /// Per project, refused ones first: an invalid or conflicting project is not audited, the
    /// others are.
    projects: Vec<ProjectReport>,
    /// Promoted images (distinct digests).
    images: usize,
    /// Images that no store could provide (so their blobs are unknown).
    problems: Vec<Problem>,
    /// Per backend (destination registry or mirror name): rows by status.
    summary: BTreeMap<String, BackendCounts>,
    /// Every (image, backend), in (registry, image, digest) then (mirror, image, digest) order.
    rows: Vec<AuditRow>,
    /// What each mirror's check cost.
    mirrors: Vec<MirrorStatistics>,
    seconds: f64,
    /// With file-manifest flags: the audit of the file manifests' destinations.
    #[serde(skip_serializing_if = "Option::is_none")]
    files: Option<files::FilesAudit>,
    /// With `--shard`/`--shards`: which part this run audited (its destination repositories,
    /// and in mirrors the blobs it owns).
    #[serde(skip_serializing_if = "Option::is_none")]
    shard: Option<ShardReport>,
}

pub fn run(args: &AuditArgs) -> anyhow::Result<Outcome> {
    let file_inputs = files::inputs(&args.files);
    if !file_inputs.is_empty() && inputs::is_empty(&args.inputs) {
        return audit_files_only(args, &file_inputs);
    }
    let started = Instant::now();
    let inputs = inputs::from_args(&args.inputs)?;
    let config = registries::config(&args.registries)?;
    let shard = shard::from_args(&args.shard)?;
    let runtime = registries::runtime()?;
    let opened = runtime
        .block_on(mirrors::open(
            &args.backends,
            &registries::mirror_options(&args.registries.network),
        ))?
        .unwrap_or_default();
    let mut report = AuditReport {
        ok: false,
        rehash: args.rehash,
        errors: Vec::new(),
        projects: Vec::new(),
        images: 0,
        problems: Vec::new(),
        summary: BTreeMap::new(),
        rows: Vec::new(),
        mirrors: Vec::new(),
        seconds: 0.0,
        files: None,
        shard: None,
    };
    // Projects are isolated as in promote: an invalid or conflicting project is not audited (and
    // the audit fails), the others are.
    let loaded = hoist_manifest::load(&inputs);
    let (mut projects, edges) = crate::projects::gated(&loaded);
    if !projects.run_errors().is_empty() {
        report.errors = projects.errors();
        report.projects = project_reports::reports(&projects, &[], &[]);
        print(args.output, &report)?;
        return Ok(Outcome::Refused);
    }
    // `--since REV`: audit only what the manifests added since REV; the tags of older edges
    // are still the manifests' own, not extra.
    let (edges, all_edges) = match &args.since.since {
        Some(rev) => (
            crate::projects::since(&inputs, &loaded, &edges, Some(&mut projects), rev)?,
            Some(edges),
        ),
        None => (edges, None),
    };
    let edges = projects.admitted_edges(&edges);
    let refused = projects.any_refused();
    report.errors = projects.errors();
    report.projects = project_reports::reports(&projects, &[], &[]);
    let stores = Stores::new(config);
    let concurrency = args.jobs.max(1) * 4;
    report.shard = shard.map(|shard| ShardReport::new(&shard, &edges));
    // A shard audits the destination repositories it owns and, in mirrors, the blobs it owns;
    // for those it must read every promoted image (any may hold one of its blobs).
    let mine = shard::select(shard.as_ref(), &edges);
    let to_read = if opened.is_empty() { &*mine } else { &edges };
    runtime.block_on(async {
        let (images, problems) = hoist_promote::read_images(to_read, &stores, concurrency).await;
        let mut mirror_images = images.clone();
        if let Some(shard) = &shard {
            mirrors::keep_owned_blobs(&mut mirror_images, shard);
        }
        let registry_rows = audit::audit_registries(&mine, &stores, &images, concurrency);
        let mirror_rows = audit::audit_mirrors(&mirror_images, &opened, args.rehash, concurrency);
        let (registry_rows, (mirror_rows, statistics)) = futures::join!(registry_rows, mirror_rows);
        report.images = images.len() + problems.len();
        report.problems = problems;
        report.rows = registry_rows.into_iter().chain(mirror_rows).collect();
        report.mirrors = statistics;
    });
    if let Some(all_edges) = &all_edges {
        keep_older_tags(&mut report.rows, &edges, all_edges);
    }
    for row in &report.rows {
        let key = match row.kind {
            BackendKind::Registry => format!("{}/{}", row.backend, row.image),
            BackendKind::Mirror => row.backend.clone(),
        };
        report.summary.entry(key).or_default().add(row);
    }
    report.seconds = started.elapsed().as_secs_f64();
    let worst = report.rows.iter().map(|row| row.status).max();
    let discrepancy = worst.is_some_and(|status| status != Status::Ok && status != Status::Error)
        || report
            .problems
            .iter()
            .any(|problem| !problem.is_operational());
    let unreadable = worst == Some(Status::Error) || !report.problems.is_empty();
    if !file_inputs.is_empty() {
        report.files = Some(files::audit(&file_inputs, &runtime, args.jobs.max(1) * 4)?);
    }
    let discrepancy = discrepancy
        || report
            .files
            .as_ref()
            .is_some_and(files::FilesAudit::has_discrepancy);
    let unreadable = unreadable
        || report
            .files
            .as_ref()
            .is_some_and(files::FilesAudit::has_errors);
    report.ok = !discrepancy && !unreadable && !refused;
    print(args.output, &report)?;
    Ok(if discrepancy || refused {
        Outcome::Refused
    } else if unreadable {
        Outcome::Partial
    } else {
        Outcome::Ok
    })
}

/// With `--since`, the audited edges are a subset: a tag that an older edge promotes is not an
/// extra tag, and a row that only held such tags (for a digest not audited) goes.
fn keep_older_tags(rows: &mut Vec<AuditRow>, audited: &EdgeSet, all: &EdgeSet) {
    let promoted: HashSet<(String, &Tag)> = all
        .edges
        .iter()
        .filter_map(|edge| Some((all.destination(edge).to_string(), all.tag(edge)?)))
        .collect();
    let audited_digests: HashSet<Digest> = audited
        .edges
        .iter()
        .map(|edge| audited.origin(edge).digest)
        .collect();
    rows.retain_mut(|row| {
        if row.kind != BackendKind::Registry {
            return true;
        }
        let repository = format!("{}/{}", row.backend, row.image);
        row.discrepancies.retain(|discrepancy| match discrepancy {
            Discrepancy::ExtraTag { tag } => !promoted.contains(&(repository.clone(), tag)),
            _ => true,
        });
        row.status = row
            .discrepancies
            .iter()
            .map(Discrepancy::status)
            .max()
            .unwrap_or(Status::Ok);
        audited_digests.contains(&row.digest) || !row.discrepancies.is_empty()
    });
}

fn print(format: OutputFormat, report: &AuditReport) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    match format {
        OutputFormat::Json => {
            serde_json::to_writer_pretty(&mut out, report)?;
            writeln!(out)?;
        }
        OutputFormat::Text => {
            print_text(&mut out, report)?;
            if let Some(files) = &report.files {
                writeln!(out)?;
                files::print_audit(&mut out, files)?;
            }
        }
    }
    Ok(())
}

/// `hoist audit` with file manifests only.
fn audit_files_only(
    args: &AuditArgs,
    inputs: &[hoist_files::FileInput],
) -> anyhow::Result<Outcome> {
    anyhow::ensure!(
        args.backends.backends.is_none(),
        "--backends audits the blob mirrors of images: name image manifests too          (--thin-manifest-dir DIR or --manifest FILE)"
    );
    let runtime = registries::runtime()?;
    let report = files::audit(inputs, &runtime, args.jobs.max(1) * 4)?;
    let mut out = std::io::stdout().lock();
    match args.output {
        OutputFormat::Json => {
            serde_json::to_writer_pretty(&mut out, &report)?;
            writeln!(out)?;
        }
        OutputFormat::Text => files::print_audit(&mut out, &report)?,
    }
    Ok(if report.has_discrepancy() {
        Outcome::Refused
    } else if report.has_errors() {
        Outcome::Partial
    } else {
        Outcome::Ok
    })
}

fn print_text(out: &mut impl std::io::Write, report: &AuditReport) -> std::io::Result<()> {
    let refused = report
        .projects
        .iter()
        .any(|project| project.status == "refused");
    if refused && !report.rows.is_empty() {
        project_reports::print_refused(
            out,
            &report.projects,
            "their destinations and blobs are not audited",
        )?;
    } else if !report.errors.is_empty() {
        for error in &report.errors {
            writeln!(out, "{error}")?;
        }
        return writeln!(
            out,
            "refused: {} error(s) in the input; nothing was read.",
            report.errors.len()
        );
    }
    let repositories = report
        .summary
        .values()
        .filter(|counts| counts.kind == Some(BackendKind::Registry))
        .count();
    writeln!(
        out,
        "hoist audit: {} digest(s) in {repositories} destination repositor{} and {} mirror(s){}",
        report.images,
        if repositories == 1 { "y" } else { "ies" },
        report.mirrors.len(),
        if report.rehash {
            ", re-hashing blobs"
        } else {
            ""
        }
    )?;
    if let Some(shard) = &report.shard {
        writeln!(out, "{} (and the mirrored blobs it owns)", shard.line())?;
    }
    let width = report
        .summary
        .keys()
        .map(String::len)
        .max()
        .unwrap_or(0)
        .max("backend".len());
    writeln!(
        out,
        "\n{:<width$}  {:<8} {:>7} {:>6} {:>7} {:>10} {:>9} {:>11} {:>9} {:>5}",
        "backend",
        "kind",
        "digests",
        "ok",
        "missing",
        "mismatched",
        "tag-moved",
        "tag-missing",
        "extra-tag",
        "error"
    )?;
    for (backend, counts) in &report.summary {
        let kind = match counts.kind {
            Some(BackendKind::Mirror) => "mirror",
            _ => "registry",
        };
        writeln!(
            out,
            "{backend:<width$}  {kind:<8} {:>7} {:>6} {:>7} {:>10} {:>9} {:>11} {:>9} {:>5}",
            counts.images,
            counts.ok,
            counts.missing,
            counts.mismatched,
            counts.tag_moved,
            counts.tag_missing,
            counts.extra_tag,
            counts.error
        )?;
    }
    let bad: Vec<&AuditRow> = report
        .rows
        .iter()
        .filter(|row| row.status != Status::Ok)
        .collect();
    if !bad.is_empty() || !report.problems.is_empty() {
        writeln!(out, "\ndiscrepancies:")?;
        for row in &bad {
            let place = match row.kind {
                BackendKind::Registry => format!("{}/{}@{}", row.backend, row.image, row.digest),
                BackendKind::Mirror => format!("{}: {}@{}", row.backend, row.image, row.digest),
            };
            for discrepancy in &row.discrepancies {
                writeln!(
                    out,
                    "  {:<11} {place}: {discrepancy}",
                    discrepancy.status().as_str()
                )?;
            }
        }
        for problem in &report.problems {
            writeln!(out, "  {:<11} {problem}", "unreadable")?;
        }
    }
    writeln!(out)?;
    for mirror in &report.mirrors {
        // Without --rehash only HEADs are made, so bytes per second would mean nothing.
        let rate = if mirror.rehashed {
            format!(
                ", {:.1} MB/s",
                mirror.bytes as f64 / 1_000_000.0 / mirror.seconds
            )
        } else {
            String::new()
        };
        writeln!(
            out,
            "{} ({}): {} blob(s), {} {} in {:.2} s: {:.0} blobs/s{rate}",
            mirror.name,
            mirror.url,
            mirror.blobs,
            indicatif::HumanBytes(mirror.bytes),
            if mirror.rehashed {
                "read and hashed"
            } else {
                "checked by size"
            },
            mirror.seconds,
            mirror.blobs as f64 / mirror.seconds,
        )?;
    }
    let bad_discrepancies: usize = bad.iter().map(|row| row.discrepancies.len()).sum();
    if report.ok {
        writeln!(
            out,
            "audit: ok: {} (digest, backend) pair(s) checked in {:.2} s; nothing was written.",
            report.rows.len(),
            report.seconds
        )
    } else {
        writeln!(
            out,
            "audit: {} discrepanc{} in {} of {} (digest, backend) pair(s){}; nothing was written.",
            bad_discrepancies,
            if bad_discrepancies == 1 { "y" } else { "ies" },
            bad.len(),
            report.rows.len(),
            if report.problems.is_empty() {
                String::new()
            } else {
                format!(", {} digest(s) unreadable", report.problems.len())
            }
        )
    }
}
