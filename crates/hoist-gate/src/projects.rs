//! Per-project isolation: a problem refuses the writes of the project it belongs to, and only
//! those.
//!
//! A *project* is one promoter manifest: a plain manifest file, or a thin layout's
//! `manifests/<p>/promoter-manifest.yaml` with its `images/<p>/images.yaml`. [`Projects`]
//! collects, per project, why it is refused: its invalid files, a conflict with another project
//! (which refuses both), and whatever the caller finds later (a tag move, a lost digest, a policy
//! refusal), attributed through the edges' origins. Every other project goes on. Findings that
//! belong to no project (a policy file that does not load, a stray file at the top of a layout)
//! refuse the whole run: nothing tells which projects they concern.

use std::collections::{BTreeSet, HashMap};
use std::path::Path;
use std::sync::Arc;

use hoist_manifest::{Loaded, Severity};
use hoist_plan::{Conflict, EdgeSet};

use crate::finding::Finding;

/// Index of a project in [`Projects::list`].
pub type ProjectId = usize;

/// One project and why it is refused.
#[derive(Debug, Clone)]
pub struct Project {
    /// A thin project's name, or a plain manifest's path.
    pub name: String,
    /// Its promoter manifest, as given.
    pub manifest_file: Arc<Path>,
    /// Its index in [`Loaded::manifests`] (and so in the edges' origins), when it loaded.
    pub manifest: Option<u32>,
    /// Findings that refuse it (errors of its files, conflicts).
    pub errors: Vec<Finding>,
    /// How many later problems (see [`Projects::refuse`]) refuse it.
    pub problems: usize,
    /// Whether it takes part in the run (`--since` leaves out projects a change does not touch:
    /// their old problems refuse nothing, as nothing of them is written).
    pub in_run: bool,
}

impl Project {
    /// Whether anything refuses it.
    pub fn is_refused(&self) -> bool {
        self.in_run && (!self.errors.is_empty() || self.problems > 0)
    }
}

/// Every project of a run, and which are refused.
#[derive(Debug, Clone, Default)]
pub struct Projects {
    list: Vec<Project>,
    by_file: HashMap<Arc<Path>, ProjectId>,
    by_manifest: HashMap<u32, ProjectId>,
    /// Errors that belong to no project: they refuse the whole run.
    run_errors: Vec<Finding>,
}

impl Projects {
    /// The projects of `loaded`, each refused by the errors of its own files. Warnings refuse
    /// nothing.
    pub fn new(loaded: &Loaded) -> Self {
        let mut projects = Self::default();
        for project in &loaded.projects {
            let id = projects.list.len();
            projects.list.push(Project {
                name: project.name.clone(),
                manifest_file: Arc::clone(&project.manifest_file),
                manifest: None,
                errors: Vec::new(),
                problems: 0,
                in_run: true,
            });
            projects
                .by_file
                .insert(Arc::clone(&project.manifest_file), id);
        }
        for (index, manifest) in loaded.manifests.iter().enumerate() {
            if let Some(&id) = projects.by_file.get(&manifest.manifest_file) {
                projects.list[id].manifest = Some(index as u32);
                projects.by_manifest.insert(index as u32, id);
            }
        }
        for diagnostic in &loaded.diagnostics {
            if diagnostic.severity != Severity::Error {
                continue;
            }
            let finding = Finding::from_diagnostic(diagnostic);
            match diagnostic
                .manifest
                .as_ref()
                .and_then(|file| projects.by_file.get(file))
            {
                Some(&id) => {
                    let name = projects.list[id].name.clone();
                    projects.list[id].errors.push(finding.project(name));
                }
                None => projects.run_errors.push(finding),
            }
        }
        projects
    }

    /// The project a manifest (by its index in [`Loaded::manifests`]) belongs to.
    pub fn of_manifest(&self, manifest: u32) -> Option<ProjectId> {
        self.by_manifest.get(&manifest).copied()
    }

    /// The name of a manifest's project, for findings.
    pub fn name_of_manifest(&self, manifest: u32) -> Option<&str> {
        self.of_manifest(manifest)
            .map(|id| self.list[id].name.as_str())
    }

    /// Adds the conflicts of `edges`: each refuses the project(s) of its two origins.
    pub fn add_conflicts(&mut self, conflicts: &[Conflict], edges: &EdgeSet) {
        for conflict in conflicts {
            let finding = Finding::error("conflict", conflict.to_string()).at(&conflict.second.1);
            let manifests: BTreeSet<u32> = [conflict.origins.0, conflict.origins.1]
                .iter()
                .map(|&origin| edges.origins[origin as usize].manifest)
                .collect();
            for manifest in manifests {
                match self.of_manifest(manifest) {
                    Some(id) => {
                        let name = self.list[id].name.clone();
                        self.list[id].errors.push(finding.clone().project(name));
                    }
                    None => self.run_errors.push(finding.clone()),
                }
            }
        }
    }

    /// Adds an error that belongs to no project (it refuses the whole run).
    pub fn refuse_run(&mut self, finding: Finding) {
        self.run_errors.push(finding);
    }

    /// Counts one more problem against the projects of `manifests`.
    pub fn refuse(&mut self, manifests: impl IntoIterator<Item = u32>) {
        let ids: BTreeSet<ProjectId> = manifests
            .into_iter()
            .filter_map(|manifest| self.of_manifest(manifest))
            .collect();
        for id in ids {
            self.list[id].problems += 1;
        }
    }

    /// Leaves out of the run every project `keep` does not keep.
    pub fn leave_out(&mut self, keep: impl Fn(&Project) -> bool) {
        for project in &mut self.list {
            project.in_run = keep(project);
        }
    }

    /// Errors that belong to no project. When there are any, nothing may be written.
    pub fn run_errors(&self) -> &[Finding] {
        &self.run_errors
    }

    /// Every project, in load order.
    pub fn list(&self) -> &[Project] {
        &self.list
    }

    /// The manifests (by index) of refused projects.
    pub fn refused_manifests(&self) -> BTreeSet<u32> {
        self.list
            .iter()
            .filter(|project| project.is_refused())
            .filter_map(|project| project.manifest)
            .collect()
    }

    /// Whether the project of `manifest` is refused (a manifest of no known project is).
    pub fn is_refused(&self, manifest: u32) -> bool {
        self.of_manifest(manifest)
            .is_none_or(|id| self.list[id].is_refused())
    }

    /// Whether anything is refused: a project, or the run.
    pub fn any_refused(&self) -> bool {
        !self.run_errors.is_empty() || self.list.iter().any(Project::is_refused)
    }

    /// Every error, of the run and of each project in the run, sorted for output.
    pub fn errors(&self) -> Vec<Finding> {
        let mut errors: Vec<Finding> = self
            .run_errors
            .iter()
            .chain(
                self.list
                    .iter()
                    .filter(|project| project.in_run)
                    .flat_map(|project| &project.errors),
            )
            .cloned()
            .collect();
        crate::finding::sort(&mut errors);
        errors.dedup();
        errors
    }

    /// Projects by name, refused ones first: the order reports list them in.
    pub fn in_report_order(&self) -> Vec<ProjectId> {
        let mut ids: Vec<ProjectId> = (0..self.list.len()).collect();
        ids.sort_by(|&a, &b| {
            let (a, b) = (&self.list[a], &self.list[b]);
            (!a.is_refused(), &a.name).cmp(&(!b.is_refused(), &b.name))
        });
        ids
    }

    /// The edges of projects in the run that are not refused.
    pub fn admitted_edges(&self, edges: &EdgeSet) -> EdgeSet {
        let admitted: BTreeSet<u32> = self
            .list
            .iter()
            .filter(|project| project.in_run && !project.is_refused())
            .filter_map(|project| project.manifest)
            .collect();
        edges.select(|edge| admitted.contains(&edges.origins[edge.origin as usize].manifest))
    }
}
