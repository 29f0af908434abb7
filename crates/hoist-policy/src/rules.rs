//! The four rule kinds, compiled, and what each one decides about a single subject.
//!
//! Every rule keeps its name (`file.yaml: blockades[0]`) and its explanation so that a decision
//! can always say which rule made it and why.

use chrono::NaiveDate;
use hoist_oci::RegistryName;
use regex::Regex;

/// A Prow-style blockade: changed files matching a block regexp and no exception regexp are
/// refused. See <https://github.com/kubernetes-sigs/prow/tree/main/pkg/plugins/blockade>.
#[derive(Debug, Clone)]
pub(crate) struct Blockade {
    pub(crate) rule: String,
    /// `org` or `org/repo` entries; `None` when the rule names no repositories.
    pub(crate) repos: Option<Vec<String>>,
    pub(crate) branch: Option<Regex>,
    pub(crate) block: Vec<Regex>,
    pub(crate) exceptions: Vec<Regex>,
    pub(crate) explanation: String,
}

impl Blockade {
    /// Whether the rule covers this repository and branch.
    ///
    /// Unknown values (`None`) are treated as matching: when the caller cannot tell which
    /// repository or branch a change is for, refusing too much is safer than letting a frozen
    /// path through. A rule without `repos` covers every repository (in Prow such a rule would
    /// cover none; hoist also runs outside any GitHub repository, where that would make
    /// the rule useless).
    pub(crate) fn applies_to(&self, repo: Option<&str>, branch: Option<&str>) -> bool {
        let repo_matches = match (&self.repos, repo) {
            (None, _) | (Some(_), None) => true,
            (Some(repos), Some(repo)) => {
                let org = repo.split_once('/').map_or(repo, |(org, _)| org);
                repos.iter().any(|entry| entry == repo || entry == org)
            }
        };
        let branch_matches = match (&self.branch, branch) {
            (None, _) | (Some(_), None) => true,
            (Some(pattern), Some(branch)) => pattern.is_match(branch),
        };
        repo_matches && branch_matches
    }

    /// Prow's rule: blocked when a block regexp matches and no exception regexp does. Regexps
    /// search (they are not anchored), as Go's `MatchString` does.
    pub(crate) fn blocks(&self, file: &str) -> bool {
        self.block.iter().any(|pattern| pattern.is_match(file))
            && !self.exceptions.iter().any(|pattern| pattern.is_match(file))
    }
}

/// Destinations that accept no writes from a date on.
#[derive(Debug, Clone)]
pub(crate) struct Freeze {
    pub(crate) rule: String,
    pub(crate) destinations: Vec<RegistryName>,
    /// The first frozen day (inclusive).
    pub(crate) from: NaiveDate,
    pub(crate) explanation: String,
}

impl Freeze {
    /// Whether a write to `destination` (`registry/image`) on `today` is frozen.
    pub(crate) fn freezes(&self, destination: &str, today: NaiveDate) -> bool {
        today >= self.from
            && self
                .destinations
                .iter()
                .any(|name| name.contains(destination))
    }
}

/// What an [`Allow`] rule lets through.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum AllowKind {
    /// Pointing an existing tag at another digest.
    TagMove,
    /// Removing an image or tag that the destination already has.
    Removal,
}

impl AllowKind {
    pub(crate) const NAMES: &'static str = "tag-move, removal";

    pub(crate) fn parse(name: &str) -> Option<Self> {
        match name {
            "tag-move" => Some(AllowKind::TagMove),
            "removal" => Some(AllowKind::Removal),
            _ => None,
        }
    }
}

/// An exception to the default refusal of tag moves or removals.
#[derive(Debug, Clone)]
pub(crate) struct Allow {
    pub(crate) rule: String,
    pub(crate) kind: AllowKind,
    /// Anchored at both ends: it must match the whole reference.
    pub(crate) pattern: Regex,
    pub(crate) explanation: String,
}

/// Allowed destination prefixes.
#[derive(Debug, Clone)]
pub(crate) struct Destinations {
    pub(crate) rule: String,
    pub(crate) prefixes: Vec<RegistryName>,
    pub(crate) explanation: String,
}

impl Destinations {
    pub(crate) fn allows(&self, destination: &str) -> bool {
        self.prefixes
            .iter()
            .any(|prefix| prefix.contains(destination))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn blockade(repos: Option<&[&str]>, branch: Option<&str>) -> Blockade {
        Blockade {
            rule: "test.yaml: blockades[0]".into(),
            repos: repos.map(|repos| repos.iter().map(|r| r.to_string()).collect()),
            branch: branch.map(|b| Regex::new(b).unwrap()),
            block: vec![
                Regex::new("^k8s.gcr.io/").unwrap(),
                Regex::new(r"\.lock$").unwrap(),
            ],
            exceptions: vec![Regex::new("^k8s.gcr.io/README").unwrap()],
            explanation: "frozen".into(),
        }
    }

    #[test]
    fn blockade_matches_like_prow() {
        let rule = blockade(None, None);
        assert!(rule.blocks("k8s.gcr.io/images/x/images.yaml"));
        assert!(
            rule.blocks("deep/path/Cargo.lock"),
            "regexps search, not anchored"
        );
        assert!(!rule.blocks("k8s.gcr.io/README.md"), "exception wins");
        assert!(!rule.blocks("registry.k8s.io/images/x/images.yaml"));
    }

    #[test]
    fn blockade_scope() {
        let rule = blockade(
            Some(&["kubernetes/k8s.io", "kubernetes-sigs"]),
            Some("^main$"),
        );
        assert!(rule.applies_to(Some("kubernetes/k8s.io"), Some("main")));
        assert!(
            rule.applies_to(Some("kubernetes-sigs/anything"), Some("main")),
            "org entry"
        );
        assert!(!rule.applies_to(Some("kubernetes/kubernetes"), Some("main")));
        assert!(!rule.applies_to(Some("kubernetes/k8s.io"), Some("release-1.0")));
        assert!(rule.applies_to(None, None), "unknown scope is covered");
        assert!(rule.applies_to(None, Some("main")));
        assert!(!rule.applies_to(None, Some("dev")));
        assert!(blockade(None, None).applies_to(Some("any/repo"), Some("any")));
    }

    #[test]
    fn freeze_starts_on_its_date_and_respects_path_boundaries() {
        let freeze = Freeze {
            rule: "test.yaml: freezes[0]".into(),
            destinations: vec![RegistryName::parse("us.gcr.io/k8s-artifacts-prod").unwrap()],
            from: NaiveDate::from_ymd_opt(2023, 4, 1).unwrap(),
            explanation: "frozen".into(),
        };
        let day = |m, d| NaiveDate::from_ymd_opt(2023, m, d).unwrap();
        assert!(freeze.freezes("us.gcr.io/k8s-artifacts-prod/pause", day(4, 1)));
        assert!(freeze.freezes("us.gcr.io/k8s-artifacts-prod", day(5, 1)));
        assert!(!freeze.freezes("us.gcr.io/k8s-artifacts-prod/pause", day(3, 31)));
        assert!(!freeze.freezes("us.gcr.io/k8s-artifacts-prodx/pause", day(5, 1)));
        assert!(!freeze.freezes("us.gcr.io/k8s-artifacts", day(5, 1)));
    }
}
