//! `hoist check`: the offline presubmit. Loads and validates manifests, computes edges and
//! conflicts, and applies the policies; with `--base REV` it also judges the change itself.

use std::collections::BTreeMap;
use std::io::Write as _;
use std::path::PathBuf;

use anyhow::Context as _;
use hoist_manifest::{Input, Loaded, Location, Severity};
use hoist_plan::{Change, ChangeKind, EdgeSet, find_conflicts};
use hoist_policy::PolicySet;

use crate::cli::{CheckArgs, OutputFormat};
use crate::exit::Outcome;
use crate::git::Repository;
use crate::report::{self, Finding};
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
    let mut findings = Vec::new();

    let loaded = hoist_manifest::load(&inputs);
    findings.extend(loaded.diagnostics.iter().map(Finding::from_diagnostic));
    let edges = EdgeSet::compute(&loaded.manifests);
    for conflict in find_conflicts(&edges) {
        findings.push(Finding::error("conflict", conflict.to_string()).at(&conflict.second.1));
    }

    let policy_set = match policies::load(args.policies.as_deref()) {
        Ok(set) => set,
        Err(errors) => {
            findings.extend(
                errors
                    .iter()
                    .map(|error| Finding::error("policy-file", error.to_string())),
            );
            PolicySet::empty()
        }
    };

    let (promotions, changes) = match &args.base {
        None => {
            findings.extend(named_frozen_destinations(&policy_set, &loaded, date));
            (summarise(&loaded), None)
        }
        Some(rev) => {
            let changes = judge_change(&inputs, rev, &policy_set, &edges, date, &mut findings)?;
            (summarise_additions(&changes), Some(group_changes(&changes)))
        }
    };

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

/// Without `--base`, check cannot tell new edges from ones promoted long ago, so it cannot say
/// that anything *would be written*. It reports, per manifest registry entry, the destinations a
/// policy refuses: a `destinations` refusal is an error (the manifest names a place hoist may not
/// write to at all); a freeze is a warning here (the edges already promoted before the freeze are
/// fine; a change that adds edges is refused with `--base`, and `promote` refuses any real write).
fn named_frozen_destinations(
    policy_set: &PolicySet,
    loaded: &Loaded,
    date: chrono::NaiveDate,
) -> Vec<Finding> {
    let mut findings = Vec::new();
    for manifest in &loaded.manifests {
        for registry in manifest.destinations() {
            let mut refused: BTreeMap<String, (hoist_policy::Refusal, usize, usize)> =
                BTreeMap::new();
            for image in &manifest.images {
                let destination = format!("{}/{}", registry.name, image.name);
                if let Some(refusal) = policy_set.check_write(&destination, date) {
                    let edges: usize = image.dmap.iter().map(|d| d.tags.len().max(1)).sum();
                    let entry = refused
                        .entry(refusal.rule.clone())
                        .or_insert((refusal, 0, 0));
                    entry.1 += 1;
                    entry.2 += edges;
                }
            }
            for (rule, (refusal, images, edges)) in refused {
                let frozen = refusal.kind == hoist_policy::RuleKind::Freeze;
                let mut finding = Finding::error(
                    if frozen { "freeze" } else { "destination" },
                    format!(
                        "destination {} is refused for {images} image(s) ({edges} edge(s)): {}{}",
                        registry.name,
                        refusal.reason,
                        if frozen {
                            " (new digests or tags for it fail `check --base` and `promote`)"
                        } else {
                            ""
                        }
                    ),
                )
                .at(&registry.location)
                .rule(rule);
                if frozen {
                    finding.severity = Severity::Warning;
                }
                findings.push(finding);
            }
        }
    }
    findings
}

/// Refusals of freeze and destination rules, one per destination written to.
fn frozen_writes(
    policy_set: &PolicySet,
    writes: &[(String, Location, usize)],
    date: chrono::NaiveDate,
) -> Vec<Finding> {
    writes
        .iter()
        .filter_map(|(destination, location, count)| {
            let refusal = policy_set.check_write(destination, date)?;
            let kind = match refusal.kind {
                hoist_policy::RuleKind::Destinations => "destination",
                _ => "freeze",
            };
            let message = format!(
                "{count} write(s) to {destination} refused: {}",
                refusal.reason
            );
            Some(
                Finding::error(kind, message)
                    .at(location)
                    .rule(refusal.rule),
            )
        })
        .collect()
}

/// `--base REV`: loads the manifests at REV, diffs, and applies blockades, freezes, tag-move and
/// removal rules to the change. Returns the changes.
fn judge_change(
    inputs: &[Input],
    rev: &str,
    policy_set: &PolicySet,
    edges: &EdgeSet,
    date: chrono::NaiveDate,
    findings: &mut Vec<Finding>,
) -> anyhow::Result<Vec<Change>> {
    let base_dir = tempfile::tempdir().context("cannot create a temporary directory")?;
    let mut base_inputs = Vec::new();
    let mut repositories: Vec<Repository> = Vec::new();
    for input in inputs {
        let path = match input {
            Input::Plain(path) | Input::Thin(path) => path,
        };
        let repository = Repository::containing(path)?;
        repository.verify(rev)?;
        let relative = repository.relative(path)?;
        let slot = base_dir.path().join(base_inputs.len().to_string());
        std::fs::create_dir_all(&slot)?;
        // A path that did not exist at REV has an empty base: everything in it is added.
        if repository.export(rev, &relative, &slot)? {
            let exported: PathBuf = slot.join(&relative);
            base_inputs.push(match input {
                Input::Plain(_) => Input::Plain(exported),
                Input::Thin(_) => Input::Thin(exported),
            });
        }
        if !repositories
            .iter()
            .any(|known| known.top() == repository.top())
        {
            repositories.push(repository);
        }
    }
    let base_loaded = hoist_manifest::load(&base_inputs);
    if base_loaded.has_errors() {
        let mut warning = Finding::error(
            "manifest",
            format!("the manifests at {rev} have errors of their own; compared with what loads"),
        );
        warning.severity = Severity::Warning;
        findings.push(warning);
    }
    let base_edges = EdgeSet::compute(&base_loaded.manifests);
    let changes = hoist_plan::diff(&base_edges, edges);

    // Blockades on the files the change touches. Prow sets REPO_OWNER/REPO_NAME/PULL_BASE_REF.
    let repo = match (std::env::var("REPO_OWNER"), std::env::var("REPO_NAME")) {
        (Ok(owner), Ok(name)) => Some(format!("{owner}/{name}")),
        _ => None,
    };
    let branch = std::env::var("PULL_BASE_REF").ok();
    for repository in &repositories {
        let files = repository.changed_files(rev)?;
        let files: Vec<&str> = files.iter().map(String::as_str).collect();
        for refusal in policy_set.check_changed_files(repo.as_deref(), branch.as_deref(), &files) {
            let mut finding = Finding::error("blockade", refusal.reason).rule(refusal.rule);
            finding.file = Some(refusal.subject);
            findings.push(finding);
        }
    }

    // Freezes and allowed destinations, on what the change writes.
    let mut writes: BTreeMap<String, (Location, usize)> = BTreeMap::new();
    for change in &changes {
        if matches!(
            change.kind,
            ChangeKind::AddDigest | ChangeKind::AddTag | ChangeKind::MoveTag { .. }
        ) {
            writes
                .entry(change.destination.to_string())
                .or_insert_with(|| (change.location.clone(), 0))
                .1 += 1;
        }
    }
    let writes: Vec<_> = writes.into_iter().map(|(d, (l, c))| (d, l, c)).collect();
    findings.extend(frozen_writes(policy_set, &writes, date));

    // Tag moves and removals, refused unless an allow rule names them.
    let mut refused: BTreeMap<(String, String), (Finding, usize)> = BTreeMap::new();
    for change in &changes {
        let reference = change.reference();
        let tag = change
            .tag
            .as_ref()
            .map(ToString::to_string)
            .unwrap_or_default();
        let (kind, allowed, message) = match &change.kind {
            ChangeKind::MoveTag { from } => (
                "tag-move",
                policy_set.allows_tag_move(&reference).is_some(),
                format!(
                    "tag {tag} moves from {from} to {}: a promoted tag is never moved (an allow rule of kind tag-move can permit it)",
                    change.digest
                ),
            ),
            ChangeKind::RemoveDigest => (
                "removal",
                policy_set.allows_removal(&reference).is_some(),
                format!(
                    "digest {} is removed: promoted digests stay (an allow rule of kind removal can permit it)",
                    change.digest
                ),
            ),
            ChangeKind::RemoveTag => (
                "removal",
                policy_set.allows_removal(&reference).is_some(),
                format!(
                    "tag {tag} (at {}) is removed: promoted tags stay (an allow rule of kind removal can permit it)",
                    change.digest
                ),
            ),
            ChangeKind::AddDigest | ChangeKind::AddTag => continue,
        };
        if allowed {
            continue;
        }
        let key = (change.destination.image.to_string(), message.clone());
        refused
            .entry(key)
            .or_insert_with(|| (Finding::error(kind, message).at(&change.location), 0))
            .1 += 1;
    }
    for ((image, _), (mut finding, destinations)) in refused {
        finding.message = format!(
            "{image}: {} ({destinations} destination(s))",
            finding.message
        );
        if finding.kind == "removal" {
            // The location is in the base's temporary copy; name the file as the user knows it.
            finding.file = None;
            finding.line = None;
            finding.column = None;
        }
        findings.push(finding);
    }
    Ok(changes)
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
    if report.errors.is_empty() {
        writeln!(out, "\nOK")?;
    } else {
        writeln!(out, "\nerrors ({}):", report.errors.len())?;
        for error in &report.errors {
            writeln!(out, "  {error}")?;
        }
        writeln!(out, "\nFAILED: {} error(s)", report.errors.len())?;
    }
    Ok(())
}
