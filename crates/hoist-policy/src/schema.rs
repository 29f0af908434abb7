//! The policy file schema: YAML nodes in, compiled rules (or every error found) out.
//!
//! The reader never stops at the first problem: each bad value records an error and the rest of
//! the file is still checked, so one run shows everything to fix.

use chrono::NaiveDate;
use hoist_oci::RegistryName;
use regex::Regex;

use crate::error::{Location, PolicyError};
use crate::rules::{Allow, AllowKind, Blockade, Destinations, Freeze};
use crate::yaml::{self, Entry, Node, Value};

/// The rules of one file.
#[derive(Debug, Default)]
pub(crate) struct Rules {
    pub(crate) blockades: Vec<Blockade>,
    pub(crate) freezes: Vec<Freeze>,
    pub(crate) allows: Vec<Allow>,
    pub(crate) destinations: Vec<Destinations>,
}

const TOP_KEYS: &[&str] = &["blockades", "freezes", "allow", "destinations"];
const BLOCKADE_KEYS: &[&str] = &[
    "repos",
    "branchregexp",
    "blockregexps",
    "exceptionregexps",
    "explanation",
];
const FREEZE_KEYS: &[&str] = &["destinations", "from", "explanation"];
const ALLOW_KEYS: &[&str] = &["kind", "match", "explanation"];
const DESTINATION_KEYS: &[&str] = &["prefixes", "explanation"];

/// Parses and compiles one policy file. `file` names it in errors; `rule_file` names it in rule
/// names (the bare file name, so that rule names do not depend on where the checkout is).
pub(crate) fn read(file: &str, rule_file: &str, text: &str) -> Result<Rules, Vec<PolicyError>> {
    let mut reader = Reader {
        file,
        errors: Vec::new(),
    };
    let rules = match yaml::parse(text) {
        Ok(Some(root)) => reader.document(rule_file, &root),
        Ok(None) => Rules::default(),
        Err(error) => {
            return Err(vec![PolicyError::Syntax {
                at: reader.at(error.line, ""),
                column: error.column,
                message: error.message,
            }]);
        }
    };
    if reader.errors.is_empty() {
        Ok(rules)
    } else {
        Err(reader.errors)
    }
}

/// A mapping whose keys were checked: known, each at most once.
struct Fields<'a> {
    entries: Vec<&'a Entry>,
    line: usize,
    path: String,
}

impl<'a> Fields<'a> {
    fn get(&self, key: &str) -> Option<&'a Node> {
        self.entries.iter().find(|e| e.key == key).map(|e| &e.value)
    }

    fn path(&self, key: &str) -> String {
        if self.path.is_empty() {
            key.to_owned()
        } else {
            format!("{}.{key}", self.path)
        }
    }
}

struct Reader<'f> {
    file: &'f str,
    errors: Vec<PolicyError>,
}

impl Reader<'_> {
    fn at(&self, line: usize, key: &str) -> Location {
        Location {
            file: self.file.to_owned(),
            line,
            // Key paths embed the file's own keys (an unknown key may be anything).
            key: hoist_yaml::clip(key).into_owned(),
        }
    }

    fn document(&mut self, rule_file: &str, root: &Node) -> Rules {
        let mut rules = Rules::default();
        let Some(fields) = self.mapping(root, "", TOP_KEYS) else {
            return rules;
        };
        let rule_name = |path: &str| format!("{rule_file}: {path}");
        for (path, item) in self.sections(&fields, "blockades") {
            rules
                .blockades
                .extend(self.blockade(rule_name(&path), &path, item));
        }
        for (path, item) in self.sections(&fields, "freezes") {
            rules
                .freezes
                .extend(self.freeze(rule_name(&path), &path, item));
        }
        for (path, item) in self.sections(&fields, "allow") {
            rules
                .allows
                .extend(self.allow(rule_name(&path), &path, item));
        }
        for (path, item) in self.sections(&fields, "destinations") {
            rules
                .destinations
                .extend(self.destinations(rule_name(&path), &path, item));
        }
        rules
    }

    /// The items of a top-level list with their paths; an empty section (`freezes:`) is
    /// allowed and holds no rules.
    fn sections<'a>(&mut self, fields: &Fields<'a>, key: &str) -> Vec<(String, &'a Node)> {
        match fields.get(key) {
            None => Vec::new(),
            Some(node) if node.value == Value::Null => Vec::new(),
            Some(node) => self.list(node, key),
        }
    }

    fn blockade(&mut self, rule: String, path: &str, node: &Node) -> Option<Blockade> {
        let fields = self.mapping(node, path, BLOCKADE_KEYS)?;
        let repos = match fields.get("repos") {
            None => Some(None),
            Some(node) => self.repos(node, &fields.path("repos")).map(Some),
        };
        let branch = match fields.get("branchregexp") {
            None => Some(None),
            Some(node) => self
                .regex(node, &fields.path("branchregexp"), false)
                .map(Some),
        };
        let block = self.required(&fields, "blockregexps").and_then(|node| {
            let path = fields.path("blockregexps");
            let patterns = self.regexes(node, &path)?;
            if patterns.is_empty() {
                self.errors.push(PolicyError::EmptyList {
                    at: self.at(node.line, &path),
                });
                return None;
            }
            Some(patterns)
        });
        let exceptions = match fields.get("exceptionregexps") {
            None => Some(Vec::new()),
            Some(node) => self.regexes(node, &fields.path("exceptionregexps")),
        };
        let explanation = self.explanation(&fields);
        Some(Blockade {
            rule,
            repos: repos?,
            branch: branch?,
            block: block?,
            exceptions: exceptions?,
            explanation: explanation?,
        })
    }

    fn freeze(&mut self, rule: String, path: &str, node: &Node) -> Option<Freeze> {
        let fields = self.mapping(node, path, FREEZE_KEYS)?;
        let destinations = self
            .required(&fields, "destinations")
            .and_then(|node| self.registries(node, &fields.path("destinations")));
        let from = self.required(&fields, "from").and_then(|node| {
            let path = fields.path("from");
            let text = self.string(node, &path)?;
            NaiveDate::parse_from_str(text, "%Y-%m-%d")
                .map_err(|source| {
                    self.errors.push(PolicyError::Date {
                        at: self.at(node.line, &path),
                        value: text.to_owned(),
                        source,
                    })
                })
                .ok()
        });
        let explanation = self.explanation(&fields);
        Some(Freeze {
            rule,
            destinations: destinations?,
            from: from?,
            explanation: explanation?,
        })
    }

    fn allow(&mut self, rule: String, path: &str, node: &Node) -> Option<Allow> {
        let fields = self.mapping(node, path, ALLOW_KEYS)?;
        let kind = self.required(&fields, "kind").and_then(|node| {
            let text = self.string(node, &fields.path("kind"))?;
            let kind = AllowKind::parse(text);
            if kind.is_none() {
                self.errors.push(PolicyError::InvalidValue {
                    at: self.at(node.line, &fields.path("kind")),
                    value: text.to_owned(),
                    reason: format!("expected one of: {}", AllowKind::NAMES),
                });
            }
            kind
        });
        let pattern = self
            .required(&fields, "match")
            .and_then(|node| self.regex(node, &fields.path("match"), true));
        let explanation = self.explanation(&fields);
        Some(Allow {
            rule,
            kind: kind?,
            pattern: pattern?,
            explanation: explanation?,
        })
    }

    fn destinations(&mut self, rule: String, path: &str, node: &Node) -> Option<Destinations> {
        let fields = self.mapping(node, path, DESTINATION_KEYS)?;
        let prefixes = self
            .required(&fields, "prefixes")
            .and_then(|node| self.registries(node, &fields.path("prefixes")));
        let explanation = self.explanation(&fields);
        Some(Destinations {
            rule,
            prefixes: prefixes?,
            explanation: explanation?,
        })
    }

    // --- Typed values. Each returns None after recording an error. ---

    /// Checks that `node` is a mapping with only `allowed` keys, each given once.
    fn mapping<'a>(
        &mut self,
        node: &'a Node,
        path: &str,
        allowed: &'static [&'static str],
    ) -> Option<Fields<'a>> {
        let Value::Mapping(entries) = &node.value else {
            self.wrong_type(node, path, "a mapping");
            return None;
        };
        let mut fields = Fields {
            entries: Vec::with_capacity(entries.len()),
            line: node.line,
            path: path.to_owned(),
        };
        for entry in entries {
            let key_path = fields.path(&entry.key);
            if !allowed.contains(&entry.key.as_str()) {
                self.errors.push(PolicyError::UnknownKey {
                    at: self.at(entry.line, &key_path),
                    expected: allowed.join(", "),
                });
            } else if let Some(first) = fields.entries.iter().find(|e| e.key == entry.key) {
                self.errors.push(PolicyError::DuplicateKey {
                    at: self.at(entry.line, &key_path),
                    first_line: first.line,
                });
            } else {
                fields.entries.push(entry);
            }
        }
        Some(fields)
    }

    fn required<'a>(&mut self, fields: &Fields<'a>, key: &str) -> Option<&'a Node> {
        let node = fields.get(key);
        if node.is_none() {
            self.errors.push(PolicyError::MissingKey {
                at: self.at(fields.line, &fields.path(key)),
            });
        }
        node
    }

    fn explanation(&mut self, fields: &Fields<'_>) -> Option<String> {
        let node = self.required(fields, "explanation")?;
        let path = fields.path("explanation");
        let text = self.string(node, &path)?.trim();
        if text.is_empty() {
            self.errors.push(PolicyError::InvalidValue {
                at: self.at(node.line, &path),
                value: text.to_owned(),
                reason: "an explanation is shown to the people refused; write one".into(),
            });
            return None;
        }
        Some(text.to_owned())
    }

    fn string<'a>(&mut self, node: &'a Node, path: &str) -> Option<&'a str> {
        match &node.value {
            Value::Scalar(text) => Some(text),
            _ => {
                self.wrong_type(node, path, "a string");
                None
            }
        }
    }

    /// The items of a list, each with its path (`key[3]`).
    fn list<'a>(&mut self, node: &'a Node, path: &str) -> Vec<(String, &'a Node)> {
        match &node.value {
            Value::Sequence(items) => items
                .iter()
                .enumerate()
                .map(|(index, item)| (format!("{path}[{index}]"), item))
                .collect(),
            _ => {
                self.wrong_type(node, path, "a list");
                Vec::new()
            }
        }
    }

    /// Every item converted, or None when the node or any item is bad (all are still checked).
    fn each<T>(
        &mut self,
        node: &Node,
        path: &str,
        mut convert: impl FnMut(&mut Self, &Node, &str) -> Option<T>,
    ) -> Option<Vec<T>> {
        if !matches!(node.value, Value::Sequence(_)) {
            self.wrong_type(node, path, "a list");
            return None;
        }
        let converted: Vec<Option<T>> = self
            .list(node, path)
            .into_iter()
            .map(|(item_path, item)| convert(self, item, &item_path))
            .collect();
        converted.into_iter().collect()
    }

    /// A regexp; `whole` anchors it so that it must match the entire subject.
    ///
    /// The pattern is compiled on its own first, and only a pattern that compiles alone is
    /// wrapped in the anchors: `a)|(b` does not compile alone, so it can never become
    /// `^(?:a)|(b)$`, which would match any subject containing `b`. Compiled size and nesting
    /// are bounded, so no pattern can make loading (or matching, which is linear time in the
    /// `regex` crate) costly.
    fn regex(&mut self, node: &Node, path: &str, whole: bool) -> Option<Regex> {
        let pattern = self.string(node, path)?;
        let compiled = bounded_regex(pattern).and_then(|alone| {
            if whole {
                bounded_regex(&format!("^(?:{pattern})$"))
            } else {
                Ok(alone)
            }
        });
        compiled
            .map_err(|source| {
                self.errors.push(PolicyError::Regex {
                    at: self.at(node.line, path),
                    pattern: hoist_yaml::clip(pattern).into_owned(),
                    source: Box::new(source),
                })
            })
            .ok()
    }

    fn regexes(&mut self, node: &Node, path: &str) -> Option<Vec<Regex>> {
        self.each(node, path, |reader, item, item_path| {
            reader.regex(item, item_path, false)
        })
    }

    /// A non-empty list of registry names (`host/path` prefixes).
    fn registries(&mut self, node: &Node, path: &str) -> Option<Vec<RegistryName>> {
        let names = self.each(node, path, |reader, item, item_path| {
            let text = reader.string(item, item_path)?;
            RegistryName::parse(text)
                .map_err(|error| {
                    reader.errors.push(PolicyError::InvalidValue {
                        at: reader.at(item.line, item_path),
                        value: text.to_owned(),
                        reason: error.to_string(),
                    })
                })
                .ok()
        })?;
        if names.is_empty() {
            self.errors.push(PolicyError::EmptyList {
                at: self.at(node.line, path),
            });
            return None;
        }
        Some(names)
    }

    /// A non-empty list of `org` or `org/repo` entries.
    fn repos(&mut self, node: &Node, path: &str) -> Option<Vec<String>> {
        let repos = self.each(node, path, |reader, item, item_path| {
            let text = reader.string(item, item_path)?;
            let well_formed = !text.is_empty()
                && text.split('/').count() <= 2
                && text
                    .split('/')
                    .all(|part| !part.is_empty() && !part.contains(char::is_whitespace));
            if !well_formed {
                reader.errors.push(PolicyError::InvalidValue {
                    at: reader.at(item.line, item_path),
                    value: text.to_owned(),
                    reason: "expected `org` or `org/repo`".into(),
                });
                return None;
            }
            Some(text.to_owned())
        })?;
        if repos.is_empty() {
            // In Prow an empty list means the blockade applies nowhere; that is surely a mistake.
            self.errors.push(PolicyError::EmptyList {
                at: self.at(node.line, path),
            });
            return None;
        }
        Some(repos)
    }

    fn wrong_type(&mut self, node: &Node, path: &str, expected: &'static str) {
        self.errors.push(PolicyError::WrongType {
            at: self.at(node.line, path),
            expected,
            found: node.value.kind(),
        });
    }
}

/// The most a compiled policy regexp may take (the default is 10 MiB; real rules are tiny).
const REGEX_SIZE_LIMIT: usize = 1 << 20;
/// The deepest nesting of groups and repetitions a policy regexp may have.
const REGEX_NEST_LIMIT: u32 = 50;

fn bounded_regex(pattern: &str) -> Result<Regex, regex::Error> {
    regex::RegexBuilder::new(pattern)
        .size_limit(REGEX_SIZE_LIMIT)
        .dfa_size_limit(REGEX_SIZE_LIMIT)
        .nest_limit(REGEX_NEST_LIMIT)
        .build()
}
