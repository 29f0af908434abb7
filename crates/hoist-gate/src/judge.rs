//! [`Gate`]: the policy judgement of writes, tag moves and removals, shared by `check` (on what a
//! change of manifests does) and `promote` (on what a run would write).

use std::collections::BTreeMap;

use chrono::NaiveDate;
use hoist_manifest::Loaded;
use hoist_plan::{Change, ChangeKind};
use hoist_policy::{PolicySet, Refusal, RuleKind};

use crate::finding::Finding;

/// The policies, as of one day.
#[derive(Debug, Clone, Copy)]
pub struct Gate<'a> {
    policies: &'a PolicySet,
    date: NaiveDate,
}

/// What the gate says about a tag move or a removal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// An `allow` rule lets it through: the rule and its explanation.
    Allowed { rule: String, explanation: String },
    /// Refused (the default).
    Refused,
}

impl<'a> Gate<'a> {
    /// The gate of `policies`, with freezes evaluated on `date`.
    pub fn new(policies: &'a PolicySet, date: NaiveDate) -> Self {
        Self { policies, date }
    }

    /// The policies.
    pub fn policies(&self) -> &'a PolicySet {
        self.policies
    }

    /// The day freezes are evaluated for.
    pub fn date(&self) -> NaiveDate {
        self.date
    }

    /// Whether anything may be written to `destination` (`registry/image`): `None` when it may,
    /// else the freeze or `destinations` rule that refuses it.
    pub fn write(&self, destination: &str) -> Option<Refusal> {
        self.policies.check_write(destination, self.date)
    }

    /// Whether the tag of `reference` (`registry/image:tag`) may point at another digest.
    pub fn tag_move(&self, reference: &str) -> Verdict {
        match self.policies.allows_tag_move(reference) {
            Some(allowance) => Verdict::Allowed {
                rule: allowance.rule.to_owned(),
                explanation: allowance.explanation.to_owned(),
            },
            None => Verdict::Refused,
        }
    }

    /// Whether `reference` (`registry/image:tag` or `registry/image@digest`) may stop being
    /// promoted.
    pub fn removal(&self, reference: &str) -> Verdict {
        match self.policies.allows_removal(reference) {
            Some(allowance) => Verdict::Allowed {
                rule: allowance.rule.to_owned(),
                explanation: allowance.explanation.to_owned(),
            },
            None => Verdict::Refused,
        }
    }

    /// Blockades on the files a change touches (`repo` is `org/repo`, `branch` the target branch;
    /// unknown values match every rule).
    pub fn changed_files(
        &self,
        repo: Option<&str>,
        branch: Option<&str>,
        files: &[&str],
    ) -> Vec<Finding> {
        self.policies
            .check_changed_files(repo, branch, files)
            .into_iter()
            .map(|refusal| {
                let mut finding = Finding::error("blockade", refusal.reason).rule(refusal.rule);
                finding.file = Some(refusal.subject);
                finding
            })
            .collect()
    }

    /// The judgement of a change against its base: freezes and allowed destinations on what it
    /// writes (one finding per destination), tag moves and removals refused unless an `allow`
    /// rule names them (one finding per image and message, counting destinations).
    pub fn change(&self, changes: &[Change]) -> Vec<Finding> {
        let mut findings = Vec::new();
        let mut writes: BTreeMap<String, (&Change, usize)> = BTreeMap::new();
        for change in changes {
            if matches!(
                change.kind,
                ChangeKind::AddDigest | ChangeKind::AddTag | ChangeKind::MoveTag { .. }
            ) {
                writes
                    .entry(change.destination.to_string())
                    .or_insert((change, 0))
                    .1 += 1;
            }
        }
        for (destination, (change, count)) in writes {
            if let Some(refusal) = self.write(&destination) {
                findings.push(
                    write_refusal(&refusal, &format!("{count} write(s) to {destination}"))
                        .at(&change.location),
                );
            }
        }

        let mut refused: BTreeMap<(String, String), (Finding, usize)> = BTreeMap::new();
        for change in changes {
            let reference = change.reference();
            let tag = change
                .tag
                .as_ref()
                .map(ToString::to_string)
                .unwrap_or_default();
            let (kind, verdict, message) = match &change.kind {
                ChangeKind::MoveTag { from } => (
                    "tag-move",
                    self.tag_move(&reference),
                    format!(
                        "tag {tag} moves from {from} to {}: a promoted tag is never moved (an allow rule of kind tag-move can permit it)",
                        change.digest
                    ),
                ),
                ChangeKind::RemoveDigest => (
                    "removal",
                    self.removal(&reference),
                    format!(
                        "digest {} is removed: promoted digests stay (an allow rule of kind removal can permit it)",
                        change.digest
                    ),
                ),
                ChangeKind::RemoveTag => (
                    "removal",
                    self.removal(&reference),
                    format!(
                        "tag {tag} (at {}) is removed: promoted tags stay (an allow rule of kind removal can permit it)",
                        change.digest
                    ),
                ),
                ChangeKind::AddDigest | ChangeKind::AddTag => continue,
            };
            if verdict != Verdict::Refused {
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
                // The line is the base's, which the file no longer has: name the file only.
                finding.line = None;
                finding.column = None;
            }
            findings.push(finding);
        }
        findings
    }

    /// Without a base, nothing tells new edges from ones promoted long ago, so nothing can be
    /// said to be *written*. Per manifest registry entry, the destinations a policy refuses: a
    /// `destinations` refusal is an error (the manifest names a place hoist may not write to at
    /// all); a freeze is a warning (what was promoted before the freeze is fine; new digests for
    /// it fail with a base and at promotion).
    pub fn named_destinations(&self, loaded: &Loaded) -> Vec<Finding> {
        let mut findings = Vec::new();
        for manifest in &loaded.manifests {
            for registry in manifest.destinations() {
                let mut refused: BTreeMap<String, (Refusal, usize, usize)> = BTreeMap::new();
                for image in &manifest.images {
                    let destination = format!("{}/{}", registry.name, image.name);
                    if let Some(refusal) = self.write(&destination) {
                        let edges: usize = image.dmap.iter().map(|d| d.tags.len().max(1)).sum();
                        let entry = refused
                            .entry(refusal.rule.clone())
                            .or_insert((refusal, 0, 0));
                        entry.1 += 1;
                        entry.2 += edges;
                    }
                }
                for (rule, (refusal, images, edges)) in refused {
                    let frozen = refusal.kind == RuleKind::Freeze;
                    let finding = Finding::error(
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
                    findings.push(if frozen { finding.warning() } else { finding });
                }
            }
        }
        findings
    }
}

/// A freeze or `destinations` refusal of `what` (such as "3 write(s) to r.io/p/foo").
pub fn write_refusal(refusal: &Refusal, what: &str) -> Finding {
    let kind = match refusal.kind {
        RuleKind::Destinations => "destination",
        _ => "freeze",
    };
    Finding::error(kind, format!("{what} refused: {}", refusal.reason)).rule(refusal.rule.clone())
}
