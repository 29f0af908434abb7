//! Evaluation of every rule kind, passing and failing, on the `valid/` fixture directory.

use chrono::NaiveDate;
use hoist_policy::{PolicySet, RuleKind};

use crate::fixture;

fn policies() -> PolicySet {
    PolicySet::load_dir(&fixture("valid")).unwrap_or_else(|errors| panic!("{errors:#?}"))
}

fn day(text: &str) -> NaiveDate {
    text.parse().unwrap()
}

#[test]
fn blockade_refuses_blocked_files_with_rule_and_explanation() {
    let set = policies();
    let refusals = set.check_changed_files(
        Some("example-org/promotions"),
        Some("main"),
        &[
            "current/a.yaml",
            "legacy/images.yaml",
            "legacy/README.md",
            "x/Cargo.lock",
        ],
    );
    let found: Vec<_> = refusals
        .iter()
        .map(|r| {
            (
                r.kind,
                r.rule.as_str(),
                r.subject.as_str(),
                r.reason.as_str(),
            )
        })
        .collect();
    let explanation = "The legacy folder is frozen; edit current/ instead";
    assert_eq!(
        found,
        [
            (
                RuleKind::Blockade,
                "all-kinds.yaml: blockades[0]",
                "legacy/images.yaml",
                explanation
            ),
            (
                RuleKind::Blockade,
                "all-kinds.yaml: blockades[0]",
                "x/Cargo.lock",
                explanation
            ),
        ]
    );
    assert_eq!(
        refusals[0].to_string(),
        format!(
            "legacy/images.yaml: refused by blockade (all-kinds.yaml: blockades[0]): {explanation}"
        )
    );
}

#[test]
fn blockade_passes_unblocked_files_and_other_scopes() {
    let set = policies();
    let clean = ["current/a.yaml", "legacy/README.md", "docs/legacy/x"];
    assert!(
        set.check_changed_files(Some("example-org/promotions"), Some("main"), &clean)
            .is_empty()
    );
    // Another repository, another branch: the scoped rule does not apply.
    let legacy = ["legacy/images.yaml"];
    assert!(
        set.check_changed_files(Some("example-org/other"), Some("main"), &legacy)
            .is_empty()
    );
    assert!(
        set.check_changed_files(Some("example-org/promotions"), Some("dev"), &legacy)
            .is_empty()
    );
    // A whole-org entry covers all of its repositories.
    assert_eq!(
        set.check_changed_files(Some("other-org/x"), Some("main"), &legacy)
            .len(),
        1
    );
    // Unknown repository and branch: conservative, the rule applies.
    assert_eq!(set.check_changed_files(None, None, &legacy).len(), 1);
}

#[test]
fn unscoped_blockade_applies_everywhere_and_rules_add_up() {
    let set = policies();
    let refusals = set.check_changed_files(Some("someone/else"), Some("dev"), &["vendor/lib.rs"]);
    assert_eq!(refusals.len(), 1);
    assert_eq!(refusals[0].rule, "all-kinds.yaml: blockades[1]");
    assert_eq!(refusals[0].reason, "Vendored files are generated");
    // One refusal per (file, rule): a file hit by two blockades is reported twice.
    let both = set.check_changed_files(None, None, &["vendor/Cargo.lock"]);
    let rules: Vec<_> = both.iter().map(|r| r.rule.as_str()).collect();
    assert_eq!(
        rules,
        [
            "all-kinds.yaml: blockades[0]",
            "all-kinds.yaml: blockades[1]"
        ]
    );
}

#[test]
fn freeze_refuses_writes_from_its_date() {
    let set = policies();
    let refusal = set
        .check_write("old.example.com/prod/app", day("2024-02-29"))
        .expect("frozen on its first day");
    assert_eq!(refusal.kind, RuleKind::Freeze);
    assert_eq!(refusal.rule, "all-kinds.yaml: freezes[0]");
    assert_eq!(refusal.subject, "old.example.com/prod/app");
    assert_eq!(
        refusal.reason,
        "old.example.com is read-only since 2024-02-29"
    );
    assert!(
        set.check_write("old.example.com/prod/app", day("2030-01-01"))
            .is_some()
    );
}

#[test]
fn freeze_passes_before_its_date() {
    let set = policies();
    // old.example.com/prod is also an allowed destination, so only the date decides.
    assert_eq!(
        set.check_write("old.example.com/prod/app", day("2024-02-28")),
        None
    );
}

#[test]
fn destinations_allow_only_their_prefixes() {
    let set = policies();
    let today = day("2025-01-01");
    for allowed in [
        "registry.example.com/prod/app",
        "registry.example.com/prod",
        "mirror.example.org/anything/at/all",
    ] {
        assert_eq!(set.check_write(allowed, today), None, "{allowed}");
    }
    let refusal = set
        .check_write("registry.example.com/production/app", today)
        .expect("outside every prefix");
    assert_eq!(refusal.kind, RuleKind::Destinations);
    assert_eq!(
        refusal.rule,
        "destinations.yml: destinations[0], destinations.yml: destinations[1]"
    );
    assert_eq!(
        refusal.reason,
        "not below any allowed destination (registry.example.com/prod, old.example.com/prod, \
         mirror.example.org): production images go to registry.example.com/prod / \
         the mirror takes everything"
    );
}

#[test]
fn without_destination_rules_every_destination_is_allowed() {
    let set = PolicySet::from_str("p.yaml", "freezes: []\n").unwrap();
    assert_eq!(
        set.check_write("anywhere.example/x", day("2025-01-01")),
        None
    );
    assert_eq!(
        PolicySet::empty().check_write("anywhere.example/x", day("2025-01-01")),
        None
    );
}

#[test]
fn tag_moves_are_refused_unless_allowed() {
    let set = policies();
    let allowance = set
        .allows_tag_move("registry.example.com/prod/nightly:latest")
        .expect("allowed");
    assert_eq!(allowance.rule, "all-kinds.yaml: allow[0]");
    assert_eq!(allowance.explanation, "the nightly tag moves every night");
    // The pattern must match the whole reference.
    assert_eq!(
        set.allows_tag_move("registry.example.com/prod/nightly:latest-1"),
        None
    );
    assert_eq!(
        set.allows_tag_move("x/registry.example.com/prod/nightly:latest"),
        None
    );
    assert_eq!(
        set.allows_tag_move("registry.example.com/prod/app:v1"),
        None
    );
    // An allow rule of the other kind does not count.
    assert_eq!(
        set.allows_tag_move("registry.example.com/prod/scratch:v1"),
        None
    );
    assert_eq!(PolicySet::empty().allows_tag_move("a.io/b:c"), None);
}

#[test]
fn removals_are_refused_unless_allowed() {
    let set = policies();
    let digest = format!(
        "registry.example.com/prod/scratch/tmp@sha256:{}",
        "ab".repeat(32)
    );
    for reference in ["registry.example.com/prod/scratch:v1", digest.as_str()] {
        let allowance = set.allows_removal(reference).expect(reference);
        assert_eq!(allowance.rule, "all-kinds.yaml: allow[1]");
        assert_eq!(allowance.explanation, "scratch images may be deleted");
    }
    assert_eq!(set.allows_removal("registry.example.com/prod/app:v1"), None);
    assert_eq!(
        set.allows_removal("registry.example.com/prod/nightly:latest"),
        None
    );
    assert_eq!(PolicySet::empty().allows_removal("a.io/b:c"), None);
}
