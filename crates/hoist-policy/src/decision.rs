//! What an evaluation returns: a [`Refusal`] (with the rule and a human reason) or an
//! [`Allowance`].

use std::fmt;

/// Which kind of rule refused something.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum RuleKind {
    /// A blockade: a changed file matches a blocked path.
    Blockade,
    /// A freeze: the destination accepts no writes since a date.
    Freeze,
    /// The destination is outside every allowed destination prefix.
    Destinations,
}

impl fmt::Display for RuleKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            RuleKind::Blockade => "blockade",
            RuleKind::Freeze => "freeze",
            RuleKind::Destinations => "destinations",
        })
    }
}

/// A policy said no.
#[derive(Debug, Clone, PartialEq, Eq, Hash, serde::Serialize)]
pub struct Refusal {
    /// What kind of rule refused.
    pub kind: RuleKind,
    /// The rule(s), as `file.yaml: section[index]` (several joined by `, ` when the refusal
    /// comes from all `destinations` rules together).
    pub rule: String,
    /// What was refused: a changed file's path or a destination (`registry/image`).
    pub subject: String,
    /// Why, for people. For blockades and freezes this is the rule's explanation verbatim.
    pub reason: String,
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}: refused by {} ({}): {}",
            self.subject, self.kind, self.rule, self.reason
        )
    }
}

/// An `allow` rule that lets a tag move or a removal through.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Allowance<'a> {
    /// The rule, as `file.yaml: allow[index]`.
    pub rule: &'a str,
    /// The rule's explanation.
    pub explanation: &'a str,
}

impl fmt::Display for Allowance<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "allowed by {}: {}", self.rule, self.explanation)
    }
}
