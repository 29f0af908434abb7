//! `hoist check`: the offline presubmit. Loads and validates manifests, computes edges and
//! conflicts, and applies the policies; with `--base REV` it also judges the change itself
//! (through the one gate, `hoist-gate`) and sets aside what the change did not cause.

use std::collections::BTreeMap;
use std::io::Write as _;

use hoist_gate::Gate;
use hoist_manifest::{Loaded, Severity};
use hoist_plan::{Change, ChangeKind, Conflict, EdgeSet, find_conflicts};
use hoist_policy::PolicySet;

use crate::cli::{CheckArgs, OutputFormat};
use crate::exit::Outcome;
use crate::report::{self, Finding};
use crate::revision::Revision;
use crate::{files, inputs, policies};

/// Figures about what was read.
#[derive(Debug, Default, serde::Serialize)]
struct Counts {
    manifests: usize,
    images: usize,
    digests: usize,
    tags: usize,
    /// Distinct destination registry names.
    destinations: usize,
    /// Distinct destination hosts (regions).
    hosts: usize,
    edges: usize,
}

/// What one source image promotes.
#[derive(Debug, serde::Serialize)]
struct ImageSummary {
    /// `source-registry/image` (without `--base`), or the image name (with it).
    image: String,
    digests: usize,
    tags: usize,
    destinations: usize,
}

/// A change against the base, grouped over destinations.
#[derive(Debug, serde::Serialize)]
struct ChangeSummary {
    kind: ChangeKind,
    image: String,
    digest: hoist_oci::Digest,
    #[serde(skip_serializing_if = "Option::is_none")]
    tag: Option<hoist_oci::Tag>,
    destinations: Vec<String>,
}

#[derive(Debug, serde::Serialize)]
struct CheckReport {
    ok: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    base: Option<String>,
    date: chrono::NaiveDate,
    policy_files: Vec<String>,
    counts: Counts,
    /// Without --base: everything the manifests promote. With --base: only what the change adds.
    promotions: Vec<ImageSummary>,
    #[serde(skip_serializing_if = "Option::is_none")]
    changes: Option<Vec<ChangeSummary>>,
    errors: Vec<Finding>,
    warnings: Vec<Finding>,
    /// With --base: findings that exist at the base too and that the change does not touch.
    /// Shown and counted here; they do not fail the check.
    #[serde(skip_serializing_if = "Option::is_none")]
    pre_existing: Option<Vec<Finding>>,
    /// With file-manifest flags: the file manifests' check.
    #[serde(skip_serializing_if = "Option::is_none")]
    files: Option<files::FilesCheck>,
}

pub fn run(args: &CheckArgs) -> anyhow::Result<Outcome> {
    // File manifests alone are checked on their own (see files/check.rs).
    let file_inputs = files::inputs(&args.files);
    if !file_inputs.is_empty() && inputs::is_empty(&args.inputs) {
        return files::print_check(args.output, &files::check(&file_inputs));
    }
    let inputs = inputs::from_args(&args.inputs)?;
    let date = args.date.unwrap_or_else(|| chrono::Utc::now().date_naive());

    let loaded = hoist_manifest::load(&inputs);
    let name_of = |manifest: &Option<std::sync::Arc<std::path::Path>>| {
        let file = manifest.as_ref()?;
        loaded
            .projects
            .iter()
            .find(|project| &project.manifest_file == file)
            .map(|project| project.name.clone())
    };
    // The tree's own findings: what the ratchet may call pre-existing.
    let mut findings: Vec<Finding> = loaded
        .diagnostics
        .iter()
        .map(|diagnostic| {
            let finding = Finding::from_diagnostic(diagnostic);
            match name_of(&diagnostic.manifest) {
                Some(name) => finding.project(name),
                None => finding,
            }
        })
        .collect();
    let (edges, too_many) = inputs::compute_edges(&loaded);
    let conflicts = find_conflicts(&edges);
    findings.extend(conflicts.iter().map(conflict_finding));

    // Findings about the policies and the run itself: never pre-existing.
    let mut run_findings: Vec<Finding> = too_many.into_iter().collect();
    let policy_set = match policies::load(args.policies.as_deref()) {
        Ok(set) => set,
        Err(errors) => {
            run_findings.extend(
                errors
                    .iter()
                    .map(|error| Finding::error("policy-file", error.to_string())),
            );
            PolicySet::empty()
        }
    };
    let gate = Gate::new(&policy_set, date);

    let (promotions, changes, pre_existing) = match &args.base {
        None => {
            run_findings.extend(gate.named_destinations(&loaded));
            (summarise(&loaded), None, None)
        }
        Some(rev) => {
            let revision = Revision::load(&inputs, &loaded, rev)?;
            let comparison = revision.compare(&loaded, &edges);
            let changes = comparison.changes(&edges);
            run_findings.extend(gate.change(&changes));
            run_findings.extend(blockades(&gate, &revision));

            // The base's own findings, for the ratchet: the changed projects', and the base's
            // conflicts when the head has any.
            let mut base_findings: Vec<Finding> = revision
                .loaded
                .diagnostics
                .iter()
                .map(Finding::from_diagnostic)
                .collect();
            if !conflicts.is_empty() {
                base_findings.extend(
                    comparison
                        .base_conflicts(&loaded, &revision.loaded)
                        .iter()
                        .map(conflict_finding),
                );
            }
            let ratcheted = revision.ratchet_base(base_findings).ratchet(findings);
            findings = ratcheted.findings;
            let mut pre_existing = ratcheted.pre_existing;
            report::sort(&mut pre_existing);
            (
                summarise_additions(&changes),
                Some(group_changes(&changes)),
                Some(pre_existing),
            )
        }
    };
    findings.extend(run_findings);

    report::sort(&mut findings);
    let (errors, warnings): (Vec<Finding>, Vec<Finding>) = findings
        .into_iter()
        .partition(|finding| finding.severity == Severity::Error);
    let files_check = (!file_inputs.is_empty()).then(|| files::check(&file_inputs));
    let report = CheckReport {
        ok: errors.is_empty() && files_check.as_ref().is_none_or(|check| check.ok),
        base: args.base.clone(),
        date,
        policy_files: policy_set.files().to_vec(),
        counts: count(&loaded, &edges),
        promotions,
        changes,
        errors,
        warnings,
        pre_existing,
        files: files_check,
    };
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    match args.output {
        OutputFormat::Json => {
            serde_json::to_writer_pretty(&mut out, &report)?;
            writeln!(out)?;
        }
        OutputFormat::Text => {
            print_text(&mut out, &report)?;
            if let Some(files) = &report.files {
                writeln!(out)?;
                files::print_check_text(&mut out, files)?;
            }
        }
    }
    Ok(if report.ok {
        Outcome::Ok
    } else {
        Outcome::Refused
    })
}

/// A conflict as a finding: keyed by the reference and valued by its two digests, so that the
/// ratchet recognises the same conflict at the base.
fn conflict_finding(conflict: &Conflict) -> Finding {
    let mut finding = Finding::error("conflict", conflict.to_string())
        .at(&conflict.second.1)
        .key(conflict.reference.clone());
    finding.value = Some(format!("{} {}", conflict.first.0, conflict.second.0));
    finding
}

/// Blockades on the files the change touches. Prow sets REPO_OWNER/REPO_NAME/PULL_BASE_REF.
fn blockades(gate: &Gate<'_>, revision: &Revision) -> Vec<Finding> {
    let repo = match (std::env::var("REPO_OWNER"), std::env::var("REPO_NAME")) {
        (Ok(owner), Ok(name)) => Some(format!("{owner}/{name}")),
        _ => None,
    };
    let branch = std::env::var("PULL_BASE_REF").ok();
    let mut findings = Vec::new();
    for files in &revision.changed_files {
        let files: Vec<&str> = files.iter().map(String::as_str).collect();
        findings.extend(gate.changed_files(repo.as_deref(), branch.as_deref(), &files));
    }
    findings
}

fn count(loaded: &Loaded, edges: &EdgeSet) -> Counts {
    let registries: std::collections::HashSet<&hoist_oci::RegistryName> = loaded
        .manifests
        .iter()
        .flat_map(|m| m.destinations())
        .map(|r| &r.name)
        .collect();
    let hosts: std::collections::HashSet<&str> =
        registries.iter().filter_map(|r| r.host()).collect();
    Counts {
        manifests: loaded.manifests.len(),
        images: loaded.manifests.iter().map(|m| m.images.len()).sum(),
        digests: edges.origins.len(),
        tags: loaded
            .manifests
            .iter()
            .flat_map(|m| &m.images)
            .flat_map(|i| &i.dmap)
            .map(|d| d.tags.len())
            .sum(),
        destinations: registries.len(),
        hosts: hosts.len(),
        edges: edges.edges.len(),
    }
}

fn summarise(loaded: &Loaded) -> Vec<ImageSummary> {
    let mut by_source: BTreeMap<String, ImageSummary> = BTreeMap::new();
    for manifest in &loaded.manifests {
        let Some(source) = manifest.source() else {
            continue;
        };
        let destinations = manifest.destinations().count();
        for image in &manifest.images {
            let name = format!("{}/{}", source.name, image.name);
            let summary = by_source.entry(name.clone()).or_insert(ImageSummary {
                image: name,
                digests: 0,
                tags: 0,
                destinations,
            });
            summary.digests += image.dmap.len();
            summary.tags += image.dmap.iter().map(|d| d.tags.len()).sum::<usize>();
            summary.destinations = summary.destinations.max(destinations);
        }
    }
    by_source.into_values().collect()
}

/// What a change adds to one image, over all destinations.
#[derive(Default)]
struct Additions {
    digests: std::collections::BTreeSet<hoist_oci::Digest>,
    tags: std::collections::BTreeSet<hoist_oci::Tag>,
    registries: std::collections::BTreeSet<String>,
}

fn summarise_additions(changes: &[Change]) -> Vec<ImageSummary> {
    let mut by_image: BTreeMap<String, Additions> = BTreeMap::new();
    for change in changes {
        let entry = by_image
            .entry(change.destination.image.to_string())
            .or_default();
        match (&change.kind, &change.tag) {
            (ChangeKind::AddDigest, _) => {
                entry.digests.insert(change.digest);
            }
            (ChangeKind::AddTag, Some(tag)) => {
                entry.tags.insert(tag.clone());
            }
            _ => continue,
        }
        entry
            .registries
            .insert(change.destination.registry.to_string());
    }
    by_image
        .into_iter()
        .map(|(image, additions)| ImageSummary {
            image,
            digests: additions.digests.len(),
            tags: additions.tags.len(),
            destinations: additions.registries.len(),
        })
        .collect()
}

fn group_changes(changes: &[Change]) -> Vec<ChangeSummary> {
    let mut groups: BTreeMap<
        (
            String,
            Option<hoist_oci::Tag>,
            hoist_oci::Digest,
            ChangeKind,
        ),
        Vec<String>,
    > = BTreeMap::new();
    for change in changes {
        groups
            .entry((
                change.destination.image.to_string(),
                change.tag.clone(),
                change.digest,
                change.kind.clone(),
            ))
            .or_default()
            .push(change.destination.registry.to_string());
    }
    groups
        .into_iter()
        .map(|((image, tag, digest, kind), destinations)| ChangeSummary {
            kind,
            image,
            digest,
            tag,
            destinations,
        })
        .collect()
}

fn print_text(out: &mut impl std::io::Write, report: &CheckReport) -> std::io::Result<()> {
    let counts = &report.counts;
    if counts.manifests == 0 && !report.errors.is_empty() {
        // Nothing could be read (a path that is not there): a summary of nothing would only
        // hide the reason.
        for error in &report.errors {
            writeln!(out, "{error}")?;
        }
        return writeln!(out, "\nFAILED: {} error(s)", report.errors.len());
    }
    writeln!(
        out,
        "hoist check: {} manifest(s), {} image(s), {} digest(s), {} tag(s) -> {} destination registries{}, {} edge(s)",
        counts.manifests,
        counts.images,
        counts.digests,
        counts.tags,
        counts.destinations,
        if counts.hosts > 0 {
            format!(" on {} host(s)", counts.hosts)
        } else {
            String::new()
        },
        counts.edges
    )?;
    writeln!(
        out,
        "policies: {} (as of {})",
        if report.policy_files.is_empty() {
            "none".into()
        } else {
            report.policy_files.join(", ")
        },
        report.date
    )?;
    match (&report.base, &report.changes) {
        (Some(base), Some(changes)) => {
            writeln!(
                out,
                "\nchanges against {base}: {}",
                if changes.is_empty() { "none" } else { "" }
            )?;
            for change in changes {
                let what = match &change.tag {
                    Some(tag) => format!("{}:{tag} -> {}", change.image, change.digest),
                    None => format!("{}@{}", change.image, change.digest),
                };
                let kind = serde_json::to_value(&change.kind)
                    .ok()
                    .and_then(|v| match v {
                        serde_json::Value::String(s) => Some(s),
                        serde_json::Value::Object(map) => map.keys().next().cloned(),
                        _ => None,
                    });
                writeln!(
                    out,
                    "  {:<13} {what}  ({} destination(s))",
                    kind.unwrap_or_default(),
                    change.destinations.len()
                )?;
            }
        }
        _ => {
            writeln!(out, "\npromotes:")?;
            for image in &report.promotions {
                writeln!(
                    out,
                    "  {}  {} digest(s), {} tag(s) -> {} destination(s)",
                    image.image, image.digests, image.tags, image.destinations
                )?;
            }
        }
    }
    if !report.warnings.is_empty() {
        writeln!(out, "\nwarnings ({}):", report.warnings.len())?;
        for warning in &report.warnings {
            writeln!(out, "  {warning}")?;
        }
    }
    if let Some(pre_existing) = report.pre_existing.as_ref().filter(|list| !list.is_empty()) {
        writeln!(
            out,
            "\npre-existing ({}): at {} too and not touched by this change, so not counted:",
            pre_existing.len(),
            report.base.as_deref().unwrap_or("the base")
        )?;
        for finding in pre_existing {
            writeln!(out, "  {finding}")?;
        }
    }
    let set_aside = report.pre_existing.as_ref().map_or(0, Vec::len);
    if report.errors.is_empty() {
        if set_aside > 0 {
            writeln!(
                out,
                "\nOK ({set_aside} pre-existing finding(s) not counted)"
            )?;
        } else {
            writeln!(out, "\nOK")?;
        }
    } else {
        writeln!(out, "\nerrors ({}):", report.errors.len())?;
        for error in &report.errors {
            writeln!(out, "  {error}")?;
        }
        writeln!(out, "\nFAILED: {} error(s)", report.errors.len())?;
    }
    Ok(())
}
