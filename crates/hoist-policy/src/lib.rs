//! Promotion policies: rules kept as YAML files in a directory, and their evaluation.
//!
//! A [`PolicySet`] is every rule of every `*.yaml`/`*.yml` file in a policy directory
//! (`policies/` by default). It answers four questions, each with the rule that decided and a
//! reason written for people:
//!
//! - [`PolicySet::check_changed_files`]: does a change touch a blocked path? (**blockades**, the
//!   Prow `blockade` plugin's rule: a file matching a block regexp and no exception regexp);
//! - [`PolicySet::check_write`]: may anything be written to this destination today?
//!   (**freezes** from a date on, and the allowed **destinations** prefixes);
//! - [`PolicySet::allows_tag_move`] and [`PolicySet::allows_removal`]: is this reference an
//!   exception (**allow** rules) to the default refusal of tag moves and removals?
//!
//! Loading is strict and reports every problem at once with its file, line and key
//! ([`PolicyError`]). The crate is pure: no async, no network, no I/O beyond reading the policy
//! files. The file format is described in this crate's `README.md`.

mod decision;
mod error;
mod rules;
mod schema;
mod yaml;

use std::path::Path;

use chrono::NaiveDate;

pub use decision::{Allowance, Refusal, RuleKind};
pub use error::{Location, PolicyError};
use rules::AllowKind;
use schema::Rules;

/// Every rule of a policy directory, compiled and ready to evaluate.
#[derive(Debug, Default)]
pub struct PolicySet {
    rules: Rules,
    /// The files the rules came from, in load order (bare file names).
    files: Vec<String>,
}

impl PolicySet {
    /// No rules: nothing blocked, nothing frozen, every destination allowed, and (by default)
    /// every tag move and removal refused.
    pub fn empty() -> Self {
        Self::default()
    }

    /// Loads every `*.yaml` and `*.yml` file directly in `dir` (sorted by name, not recursive;
    /// other files and sub-directories are ignored). Every error of every file is reported.
    pub fn load_dir(dir: &Path) -> Result<PolicySet, Vec<PolicyError>> {
        let io_error = |path: &Path, source| {
            vec![PolicyError::Io {
                path: path.to_owned(),
                source,
            }]
        };
        let entries = std::fs::read_dir(dir).map_err(|source| io_error(dir, source))?;
        let mut paths = Vec::new();
        for entry in entries {
            let entry = entry.map_err(|source| io_error(dir, source))?;
            let path = entry.path();
            let is_policy = matches!(
                path.extension().and_then(|e| e.to_str()),
                Some("yaml" | "yml")
            );
            if is_policy && path.is_file() {
                paths.push(path);
            }
        }
        paths.sort();

        let mut set = PolicySet::empty();
        let mut errors = Vec::new();
        for path in paths {
            let name = path
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            let text = match std::fs::read_to_string(&path) {
                Ok(text) => text,
                Err(source) => {
                    errors.push(PolicyError::Io { path, source });
                    continue;
                }
            };
            match schema::read(&path.display().to_string(), &name, &text) {
                Ok(rules) => set.add(name, rules),
                Err(file_errors) => errors.extend(file_errors),
            }
        }
        if errors.is_empty() {
            Ok(set)
        } else {
            Err(errors)
        }
    }

    /// Loads one policy file's text; `name` stands for the file in rule names and errors.
    pub fn from_str(name: &str, text: &str) -> Result<PolicySet, Vec<PolicyError>> {
        let rules = schema::read(name, name, text)?;
        let mut set = PolicySet::empty();
        set.add(name.to_owned(), rules);
        Ok(set)
    }

    /// Appends the files and rules of `other` after this set's (as if loaded later). Used to
    /// combine sets loaded with [`PolicySet::from_str`], such as policies embedded in a binary.
    pub fn merge(&mut self, other: PolicySet) {
        self.files.extend(other.files);
        self.append(other.rules);
    }

    fn add(&mut self, file: String, rules: Rules) {
        self.files.push(file);
        self.append(rules);
    }

    fn append(&mut self, rules: Rules) {
        self.rules.blockades.extend(rules.blockades);
        self.rules.freezes.extend(rules.freezes);
        self.rules.allows.extend(rules.allows);
        self.rules.destinations.extend(rules.destinations);
    }

    /// The policy files loaded, by bare name, in load order (including files with no rules).
    pub fn files(&self) -> &[String] {
        &self.files
    }

    /// How many rules of all kinds there are.
    pub fn rule_count(&self) -> usize {
        self.rules.blockades.len()
            + self.rules.freezes.len()
            + self.rules.allows.len()
            + self.rules.destinations.len()
    }

    /// Whether there are no rules at all.
    pub fn is_empty(&self) -> bool {
        self.rule_count() == 0
    }

    /// The blockade refusals for a change touching `files` (repository-relative paths) in
    /// `repo` (`org/repo`) on `branch`; empty when the change may go in.
    ///
    /// One refusal per (file, blockade) pair, files in the given order. When `repo` or `branch`
    /// is `None` (not known, e.g. a local run outside any pull request), rules restricted to
    /// some repositories or branches still apply: refusing too much is safer than missing a
    /// frozen path.
    pub fn check_changed_files(
        &self,
        repo: Option<&str>,
        branch: Option<&str>,
        files: &[&str],
    ) -> Vec<Refusal> {
        let applicable: Vec<_> = self
            .rules
            .blockades
            .iter()
            .filter(|blockade| blockade.applies_to(repo, branch))
            .collect();
        let mut refusals = Vec::new();
        for file in files {
            for blockade in applicable.iter().filter(|b| b.blocks(file)) {
                refusals.push(Refusal {
                    kind: RuleKind::Blockade,
                    rule: blockade.rule.clone(),
                    subject: (*file).to_owned(),
                    reason: blockade.explanation.clone(),
                });
            }
        }
        refusals
    }

    /// Whether a write (new digest or tag) to `destination` (the full `registry/image`) is
    /// allowed on `today`; `None` when it is.
    ///
    /// Freezes are checked first (the first matching one refuses), then, when any
    /// `destinations` rule exists, the destination must lie below one of their prefixes
    /// (path-component boundaries: `a/b` covers `a/b/c`, not `a/bc`). Only prefix comparisons,
    /// no regexps: this is called once per distinct destination of a large corpus.
    pub fn check_write(&self, destination: &str, today: NaiveDate) -> Option<Refusal> {
        if let Some(freeze) = self
            .rules
            .freezes
            .iter()
            .find(|freeze| freeze.freezes(destination, today))
        {
            return Some(Refusal {
                kind: RuleKind::Freeze,
                rule: freeze.rule.clone(),
                subject: destination.to_owned(),
                reason: freeze.explanation.clone(),
            });
        }
        let allowed = &self.rules.destinations;
        if allowed.is_empty() || allowed.iter().any(|rule| rule.allows(destination)) {
            return None;
        }
        let prefixes: Vec<&str> = allowed
            .iter()
            .flat_map(|rule| rule.prefixes.iter().map(|prefix| prefix.as_str()))
            .collect();
        let mut explanations: Vec<&str> = Vec::new();
        for rule in allowed {
            if !explanations.contains(&rule.explanation.as_str()) {
                explanations.push(&rule.explanation);
            }
        }
        Some(Refusal {
            kind: RuleKind::Destinations,
            rule: allowed
                .iter()
                .map(|rule| rule.rule.as_str())
                .collect::<Vec<_>>()
                .join(", "),
            subject: destination.to_owned(),
            reason: format!(
                "not below any allowed destination ({}): {}",
                prefixes.join(", "),
                explanations.join(" / ")
            ),
        })
    }

    /// The `allow` rule that lets the tag of `reference` (`registry/image:tag`) move to another
    /// digest; `None` means the move must be refused (the default).
    pub fn allows_tag_move(&self, reference: &str) -> Option<Allowance<'_>> {
        self.allowance(AllowKind::TagMove, reference)
    }

    /// The `allow` rule that lets `reference` (`registry/image:tag` or `registry/image@digest`)
    /// be removed from its destination; `None` means the removal must be refused (the default).
    pub fn allows_removal(&self, reference: &str) -> Option<Allowance<'_>> {
        self.allowance(AllowKind::Removal, reference)
    }

    fn allowance(&self, kind: AllowKind, reference: &str) -> Option<Allowance<'_>> {
        self.rules
            .allows
            .iter()
            .find(|allow| allow.kind == kind && allow.pattern.is_match(reference))
            .map(|allow| Allowance {
                rule: &allow.rule,
                explanation: &allow.explanation,
            })
    }
}
