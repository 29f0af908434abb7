//! Projects on the command line: `--since REV` (the edges a change added) for promote, mirror and
//! audit, the gate's view of the projects, and the per-project part of the promote, mirror and
//! audit reports (refused projects first).

use std::collections::BTreeSet;

use hoist_gate::{Finding, Projects};
use hoist_manifest::{Input, Loaded};
use hoist_plan::EdgeSet;
use hoist_promote::Problem;

use crate::revision::Revision;

/// The edges of `loaded`, and its projects as the gate judges them: each refused by its own
/// invalid files and its conflicts, and the run by too many edges. (`promote` does the same on
/// the edges a rehearsal redirects.)
pub fn gated(loaded: &Loaded) -> (Projects, EdgeSet) {
    let mut projects = Projects::new(loaded);
    let (edges, too_many) = crate::inputs::compute_edges(loaded);
    if let Some(finding) = too_many {
        projects.refuse_run(finding);
    }
    projects.add_conflicts(&hoist_plan::find_conflicts(&edges), &edges);
    (projects, edges)
}

/// `--since REV`: the edges of `edges` that the manifests add relative to `rev` (the diff of
/// `check --base`). With `projects`, the projects the change neither touches nor adds edges for
/// leave the run: nothing of theirs is read or written, so their old problems refuse nothing.
pub fn since(
    inputs: &[Input],
    loaded: &Loaded,
    edges: &EdgeSet,
    projects: Option<&mut Projects>,
    rev: &str,
) -> anyhow::Result<EdgeSet> {
    let revision = Revision::load(inputs, loaded, rev)?;
    let added = revision.compare(loaded, edges).added(edges);
    if let Some(projects) = projects {
        let with_edges: BTreeSet<u32> = added
            .edges
            .iter()
            .map(|edge| added.origins[edge.origin as usize].manifest)
            .collect();
        projects.leave_out(|project| {
            project
                .manifest
                .is_some_and(|manifest| with_edges.contains(&manifest))
                || revision.changed_projects.contains(&project.name)
        });
    }
    tracing::info!(
        rev,
        edges = added.edges.len(),
        of = edges.edges.len(),
        "selected the edges added since the revision"
    );
    Ok(added)
}

/// One project in a report.
#[derive(Debug, serde::Serialize)]
pub struct ProjectReport {
    /// A thin project's name, or a plain manifest's path.
    pub name: String,
    /// Its promoter manifest.
    pub manifest: String,
    /// `refused` (nothing of it is written), `unchanged` (left out by `--since`), or `ok`.
    pub status: &'static str,
    /// Its invalid files and conflicts.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<Finding>,
    /// The problems of the plan that concern it.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub problems: Vec<Problem>,
}

/// Every project, refused ones first, with its errors and the problems (`owners[i]` are the
/// manifests of `problems[i]`) that concern it.
pub fn reports(
    projects: &Projects,
    problems: &[Problem],
    owners: &[BTreeSet<u32>],
) -> Vec<ProjectReport> {
    projects
        .in_report_order()
        .into_iter()
        .map(|id| {
            let project = &projects.list()[id];
            let concerns = |manifests: &BTreeSet<u32>| {
                manifests
                    .iter()
                    .any(|&manifest| projects.of_manifest(manifest) == Some(id))
            };
            ProjectReport {
                name: project.name.clone(),
                manifest: project.manifest_file.display().to_string(),
                status: if project.is_refused() {
                    "refused"
                } else if !project.in_run {
                    "unchanged"
                } else {
                    "ok"
                },
                errors: if project.in_run {
                    project.errors.clone()
                } else {
                    Vec::new()
                },
                problems: problems
                    .iter()
                    .zip(owners)
                    .filter(|(_, manifests)| concerns(manifests))
                    .map(|(problem, _)| problem.clone())
                    .collect(),
            }
        })
        .collect()
}

/// The refused projects, each with why: printed first, so a log says at once what was held back.
/// `consequence` says what that means for them ("nothing they promote is written").
pub fn print_refused(
    out: &mut impl std::io::Write,
    reports: &[ProjectReport],
    consequence: &str,
) -> std::io::Result<()> {
    let refused: Vec<&ProjectReport> = reports
        .iter()
        .filter(|report| report.status == "refused")
        .collect();
    if refused.is_empty() {
        return Ok(());
    }
    let others = reports
        .iter()
        .filter(|report| report.status == "ok")
        .count();
    writeln!(
        out,
        "refused: {} project(s); {consequence} ({others} other project(s) go on):",
        refused.len()
    )?;
    for report in refused {
        writeln!(out, "  {} ({})", report.name, report.manifest)?;
        for error in &report.errors {
            writeln!(out, "    {error}")?;
        }
        for problem in &report.problems {
            writeln!(out, "    error: {problem}")?;
        }
    }
    writeln!(out)
}
