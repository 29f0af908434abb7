//! The ratchet of `check --base REV`: what a change did not cause does not fail it.
//!
//! A finding is *pre-existing* when it exists at REV too and the change does not touch it. It is
//! shown and counted, in its own list, and does not fail the check; everything else counts as
//! before. So a presubmit can be adopted on a repository with old problems (the real
//! registry.k8s.io tree has three), and each pull request answers only for what it does.
//!
//! "Exists at REV": the same kind, file, key and value. List positions are left out of the key
//! (`images[].dmap["…"]`), because inserting an entry renumbers the ones after it without
//! touching them. Findings of a project none of whose files changed exist at REV by construction
//! (the same files give the same findings), so only changed projects are loaded again.
//!
//! "Touches": a change touches a finding when it changes the line the finding is on, or, for a
//! finding about a whole file or directory, anything at or below that path.

use std::collections::{BTreeMap, HashSet};

use crate::finding::Finding;

/// What a change did to one file (named as findings name it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FileChange {
    /// New, deleted, or changed in a way lines cannot describe: everything in it is touched.
    Whole,
    /// These line ranges (inclusive, 1-based, as the file is now) were added or changed.
    Lines(Vec<(u32, u32)>),
}

/// What the ratchet knows about the base revision.
#[derive(Debug, Clone, Default)]
pub struct Base {
    /// The findings of what was loaded again at the base (the changed projects, and conflicts),
    /// with files named as at the head.
    pub findings: Vec<Finding>,
    /// Every file the change touches, named as findings name them.
    pub changed: BTreeMap<String, FileChange>,
    /// The projects (by name, as [`Finding::project`]) whose files the change touches.
    pub changed_projects: HashSet<String>,
}

/// Findings split by the ratchet.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Ratcheted {
    /// What the change introduces or touches: these count.
    pub findings: Vec<Finding>,
    /// What exists at the base too and the change does not touch: shown, not counted.
    pub pre_existing: Vec<Finding>,
}

/// The identity of a finding across revisions: kind, file, key without list positions, value.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct Identity {
    kind: &'static str,
    file: Option<String>,
    key: Option<String>,
    value: Option<String>,
}

impl Identity {
    fn of(finding: &Finding) -> Self {
        Self {
            kind: finding.kind,
            file: finding.file.clone(),
            key: finding.key.as_deref().map(without_positions),
            value: finding.value.clone(),
        }
    }
}

/// `images[3].dmap["x"][0]` → `images[].dmap["x"][]`: list positions out, quoted keys kept.
fn without_positions(key: &str) -> String {
    let mut out = String::with_capacity(key.len());
    let mut chars = key.chars().peekable();
    while let Some(character) = chars.next() {
        out.push(character);
        if character == '[' && chars.peek().is_some_and(char::is_ascii_digit) {
            while chars.peek().is_some_and(char::is_ascii_digit) {
                chars.next();
            }
        } else if character == '"' {
            // Copy a quoted key whole (it may hold brackets and digits).
            while let Some(quoted) = chars.next() {
                out.push(quoted);
                if quoted == '\\' {
                    if let Some(escaped) = chars.next() {
                        out.push(escaped);
                    }
                } else if quoted == '"' {
                    break;
                }
            }
        }
    }
    out
}

impl Base {
    /// Whether the change touches `finding`.
    fn touches(&self, finding: &Finding) -> bool {
        let Some(file) = &finding.file else {
            // About no file (a policy file error, a limit): never pre-existing.
            return true;
        };
        match finding.line {
            Some(line) => match self.changed.get(file) {
                None => false,
                Some(FileChange::Whole) => true,
                Some(FileChange::Lines(ranges)) => ranges
                    .iter()
                    .any(|&(first, last)| (first..=last).contains(&line)),
            },
            // A whole file or directory: touched when it, or anything below it, changed.
            None => {
                let below = format!("{}/", file.trim_end_matches('/'));
                self.changed
                    .keys()
                    .any(|changed| changed == file || changed.starts_with(&below))
            }
        }
    }

    /// Splits `findings` (of the head) into those that count and the pre-existing ones.
    pub fn ratchet(&self, findings: Vec<Finding>) -> Ratcheted {
        let known: HashSet<Identity> = self.findings.iter().map(Identity::of).collect();
        let mut ratcheted = Ratcheted::default();
        for finding in findings {
            let unchanged_project = finding.kind == "manifest"
                && finding
                    .project
                    .as_ref()
                    .is_some_and(|project| !self.changed_projects.contains(project));
            let pre_existing = match finding.kind {
                // Loading a project depends on its files only: unchanged files, same findings.
                "manifest" if unchanged_project => true,
                // A finding about the layout (no project) depends only on that path's entry.
                "manifest" if finding.project.is_none() => !self.touches(&finding),
                "manifest" | "conflict" => {
                    known.contains(&Identity::of(&finding)) && !self.touches(&finding)
                }
                // Judgements of the change itself (blockades, freezes, moves, removals) and
                // policy file errors are never pre-existing.
                _ => false,
            };
            if pre_existing {
                ratcheted.pre_existing.push(finding);
            } else {
                ratcheted.findings.push(finding);
            }
        }
        ratcheted
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions_leave_the_key() {
        assert_eq!(
            without_positions("images[3].dmap[\"sha[1]\"][12]"),
            "images[].dmap[\"sha[1]\"][]"
        );
        assert_eq!(
            without_positions("registries[22].name"),
            "registries[].name"
        );
        assert_eq!(without_positions(""), "");
    }
}
