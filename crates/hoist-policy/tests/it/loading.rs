//! Loading: directories, strictness, and every error kind with its file, line and key.

use hoist_policy::{PolicyError, PolicySet};

use crate::fixture;

/// (file name, line, key, error kind) of an error, for comparing against expectations.
fn summary(error: &PolicyError) -> (String, usize, String, &'static str) {
    let at = error.location().expect("a located error");
    let file = std::path::Path::new(&at.file)
        .file_name()
        .unwrap()
        .to_string_lossy()
        .into_owned();
    let kind = match error {
        PolicyError::Io { .. } => "io",
        PolicyError::Syntax { .. } => "syntax",
        PolicyError::UnknownKey { .. } => "unknown-key",
        PolicyError::DuplicateKey { .. } => "duplicate-key",
        PolicyError::WrongType { .. } => "wrong-type",
        PolicyError::MissingKey { .. } => "missing-key",
        PolicyError::EmptyList { .. } => "empty-list",
        PolicyError::Regex { .. } => "regex",
        PolicyError::Date { .. } => "date",
        PolicyError::InvalidValue { .. } => "invalid-value",
    };
    (file, at.line, at.key.clone(), kind)
}

#[test]
fn valid_directory_loads_sorted_yaml_files_only() {
    let set = PolicySet::load_dir(&fixture("valid")).unwrap_or_else(|errors| {
        panic!("{errors:#?}");
    });
    // Sorted, `.yml` included, `notes.md` and `nested/broken.yaml` ignored.
    assert_eq!(
        set.files(),
        ["all-kinds.yaml", "destinations.yml", "empty.yaml"]
    );
    // 2 blockades + 1 freeze + 2 allow + 2 destinations.
    assert_eq!(set.rule_count(), 7);
    assert!(!set.is_empty());
}

#[test]
fn empty_set_and_empty_file_have_no_rules() {
    assert!(PolicySet::empty().is_empty());
    let set = PolicySet::from_str("nothing.yaml", "# nothing\n").unwrap();
    assert!(set.is_empty());
    assert_eq!(set.files(), ["nothing.yaml"]);
    let set = PolicySet::from_str("sections.yaml", "blockades:\nfreezes: []\n").unwrap();
    assert!(set.is_empty());
}

#[test]
fn invalid_directory_reports_every_error_of_every_file() {
    let errors = PolicySet::load_dir(&fixture("invalid")).expect_err("invalid fixtures");
    let mut found: Vec<_> = errors.iter().map(summary).collect();
    found.sort();
    let expected = [
        ("a-syntax.yaml", 3, "", "syntax"),
        (
            "b-schema.yaml",
            2,
            "blockades[0].blockregexps",
            "empty-list",
        ),
        ("b-schema.yaml", 4, "blockades[1].blockregexps[0]", "regex"),
        (
            "b-schema.yaml",
            6,
            "blockades[2].blockregexp",
            "unknown-key",
        ),
        (
            "b-schema.yaml",
            9,
            "blockades[3].explanation",
            "missing-key",
        ),
        (
            "b-schema.yaml",
            10,
            "blockades[4].blockregexps",
            "wrong-type",
        ),
        (
            "b-schema.yaml",
            12,
            "blockades[5].repos[0]",
            "invalid-value",
        ),
        ("b-schema.yaml", 17, "freezes[0].from", "date"),
        (
            "b-schema.yaml",
            19,
            "freezes[1].destinations[0]",
            "invalid-value",
        ),
        (
            "b-schema.yaml",
            22,
            "freezes[1].explanation",
            "duplicate-key",
        ),
        ("b-schema.yaml", 24, "allow[0].kind", "invalid-value"),
        ("b-schema.yaml", 28, "allow[1].match", "regex"),
        ("b-schema.yaml", 30, "unknown-section", "unknown-key"),
    ]
    .map(|(file, line, key, kind)| (file.to_owned(), line, key.to_owned(), kind));
    assert_eq!(found, expected, "{errors:#?}");
}

#[test]
fn error_messages_name_file_line_key_and_cause() {
    let errors = PolicySet::load_dir(&fixture("invalid")).expect_err("invalid fixtures");
    let messages: Vec<String> = errors.iter().map(ToString::to_string).collect();
    let has = |needle: &str| {
        assert!(
            messages.iter().any(|m| m.contains(needle)),
            "no message contains {needle:?}: {messages:#?}"
        );
    };
    has(
        "b-schema.yaml:6: blockades[2].blockregexp: unknown key (expected one of: repos, branchregexp, blockregexps, exceptionregexps, explanation)",
    );
    has("b-schema.yaml:22: freezes[1].explanation: duplicate key (first given on line 21)");
    has("b-schema.yaml:10: blockades[4].blockregexps: expected a list, found a string");
    has("b-schema.yaml:9: blockades[3].explanation: missing required key");
    has("b-schema.yaml:2: blockades[0].blockregexps: must not be empty");
    has("b-schema.yaml:17: freezes[0].from: invalid date \"2023-02-30\" (expected YYYY-MM-DD)");
    has("b-schema.yaml:4: blockades[1].blockregexps[0]: invalid regular expression \"(unclosed\"");
    has(
        "b-schema.yaml:24: allow[0].kind: invalid value \"rename\": expected one of: tag-move, removal",
    );
    has("a-syntax.yaml:3: invalid YAML at column");
}

#[test]
fn single_errors_from_text() {
    let cases = [
        // Wrong shapes.
        ("[1, 2]\n", 1, "", "expected a mapping, found a list"),
        (
            "blockades: {}\n",
            1,
            "blockades",
            "expected a list, found a mapping",
        ),
        (
            "freezes:\n  - just a string\n",
            2,
            "freezes[0]",
            "expected a mapping, found a string",
        ),
        (
            "allow:\n  - kind: removal\n    match: x\n    explanation:\n",
            4,
            "allow[0].explanation",
            "expected a string, found an empty value",
        ),
        (
            "allow:\n  - kind: removal\n    match: x\n    explanation: '  '\n",
            4,
            "allow[0].explanation",
            "an explanation is shown to the people refused",
        ),
        // Missing keys are reported at the rule's line.
        (
            "freezes:\n  - from: 2023-01-01\n    explanation: x\n",
            2,
            "freezes[0].destinations",
            "missing required key",
        ),
        (
            "destinations:\n  - prefixes: []\n    explanation: x\n",
            2,
            "destinations[0].prefixes",
            "must not be empty",
        ),
        (
            "blockades:\n  - repos: []\n    blockregexps: [x]\n    explanation: x\n",
            2,
            "blockades[0].repos",
            "must not be empty",
        ),
        (
            "blockades:\n  - branchregexp: '*'\n    blockregexps: [x]\n    explanation: x\n",
            2,
            "blockades[0].branchregexp",
            "invalid regular expression",
        ),
        ("a: &anchor 1\n", 1, "", "anchors"),
        (
            "blockades: []\n---\nfreezes: []\n",
            2,
            "",
            "one YAML document",
        ),
    ];
    for (text, line, key, message) in cases {
        let errors = PolicySet::from_str("case.yaml", text).expect_err(text);
        assert_eq!(errors.len(), 1, "{text:?}: {errors:#?}");
        let at = errors[0].location().unwrap();
        assert_eq!(
            (at.file.as_str(), at.line, at.key.as_str()),
            ("case.yaml", line, key),
            "{text:?}"
        );
        let shown = errors[0].to_string();
        assert!(shown.contains(message), "{text:?}: {shown}");
    }
}

#[test]
fn missing_directory_is_an_io_error() {
    let missing = fixture("does-not-exist");
    let errors = PolicySet::load_dir(&missing).expect_err("missing dir");
    assert_eq!(errors.len(), 1);
    assert!(matches!(&errors[0], PolicyError::Io { path, .. } if *path == missing));
    assert!(errors[0].location().is_none());
    assert!(errors[0].to_string().contains("does-not-exist"));
}

#[test]
fn merge_appends_files_and_rules_in_order() {
    let mut set = PolicySet::from_str(
        "first.yaml",
        "blockades:\n  - blockregexps: ['^a/']\n    explanation: first\n",
    )
    .unwrap();
    let second = PolicySet::from_str(
        "second.yaml",
        "blockades:\n  - blockregexps: ['^a/']\n    explanation: second\n",
    )
    .unwrap();
    set.merge(second);
    assert_eq!(set.files(), ["first.yaml", "second.yaml"]);
    let reasons: Vec<_> = set
        .check_changed_files(None, None, &["a/x"])
        .into_iter()
        .map(|refusal| (refusal.rule, refusal.reason))
        .collect();
    assert_eq!(
        reasons,
        [
            ("first.yaml: blockades[0]".to_owned(), "first".to_owned()),
            ("second.yaml: blockades[0]".to_owned(), "second".to_owned()),
        ]
    );
}

/// Every YAML example in the crate README is a valid policy file.
#[test]
fn readme_examples_load() {
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md"))
        .expect("read README.md");
    let examples: Vec<&str> = readme
        .split("```yaml\n")
        .skip(1)
        .map(|rest| rest.split("```").next().unwrap())
        .collect();
    assert!(examples.len() >= 5, "{examples:?}");
    for (index, example) in examples.iter().enumerate() {
        if let Err(errors) = PolicySet::from_str(&format!("README example {index}"), example) {
            panic!("{example}\n{errors:#?}");
        }
    }
}
