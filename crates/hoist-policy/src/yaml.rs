//! Policy files as a small tree of [`Node`]s that remember their line.
//!
//! The parsing itself is `hoist-yaml`'s (positions, duplicate keys kept, anchors, aliases, tags
//! and multi-document streams refused); this module only reshapes its tree into the form the
//! schema layer reads: mappings as [`Entry`]s with plain-string keys, nulls as [`Value::Null`].

use hoist_yaml::NodeKind;

/// One YAML node and the (1-based) line it starts on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Node {
    pub(crate) value: Value,
    pub(crate) line: usize,
}

/// The shape of a node. Scalars stay text: the schema decides what they mean.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Value {
    /// An empty value, `~` or `null` (plain, not quoted).
    Null,
    Scalar(String),
    Sequence(Vec<Node>),
    /// Entries in source order, duplicates included.
    Mapping(Vec<Entry>),
}

/// One `key: value` entry of a mapping.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Entry {
    pub(crate) key: String,
    pub(crate) line: usize,
    pub(crate) value: Node,
}

impl Value {
    /// What a schema error calls this kind of node.
    pub(crate) fn kind(&self) -> &'static str {
        match self {
            Value::Null => "an empty value",
            Value::Scalar(_) => "a string",
            Value::Sequence(_) => "a list",
            Value::Mapping(_) => "a mapping",
        }
    }
}

/// A document that is not YAML hoist accepts: where and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SyntaxError {
    pub(crate) line: usize,
    pub(crate) column: usize,
    pub(crate) message: String,
}

impl From<hoist_yaml::SyntaxError> for SyntaxError {
    fn from(error: hoist_yaml::SyntaxError) -> Self {
        Self {
            line: error.line as usize,
            column: error.column as usize,
            message: error.message,
        }
    }
}

/// Parses one YAML document; `Ok(None)` for a file without any document (empty or comments only).
pub(crate) fn parse(text: &str) -> Result<Option<Node>, SyntaxError> {
    match hoist_yaml::parse(text)? {
        Some(root) => Ok(Some(reshape(root)?)),
        None => Ok(None),
    }
}

fn reshape(node: hoist_yaml::Node) -> Result<Node, SyntaxError> {
    let line = node.line as usize;
    let value = if node.is_null() {
        Value::Null
    } else {
        match node.kind {
            NodeKind::Scalar { text, .. } => Value::Scalar(text),
            NodeKind::Sequence(items) => {
                Value::Sequence(items.into_iter().map(reshape).collect::<Result<_, _>>()?)
            }
            NodeKind::Mapping(pairs) => {
                let mut entries = Vec::with_capacity(pairs.len());
                for (key, value) in pairs {
                    let key_line = key.line as usize;
                    let Some(name) = key.as_str().map(str::to_owned) else {
                        return Err(SyntaxError {
                            line: key_line,
                            column: key.column as usize,
                            message: "mapping keys must be plain strings".to_owned(),
                        });
                    };
                    let mut value = reshape(value)?;
                    if value.value == Value::Null {
                        // An empty value is marked where the next token starts, often the next
                        // line; the key's line is where a reader looks.
                        value.line = key_line;
                    }
                    entries.push(Entry {
                        key: name,
                        line: key_line,
                        value,
                    });
                }
                Value::Mapping(entries)
            }
        }
    };
    Ok(Node { value, line })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scalar(text: &str, line: usize) -> Node {
        Node {
            value: Value::Scalar(text.to_owned()),
            line,
        }
    }

    #[test]
    fn keeps_lines_and_duplicate_keys() {
        let root = parse("# comment\na: x\nb:\n  - y\n  - 'null'\na: ~\n")
            .unwrap()
            .unwrap();
        assert_eq!(root.line, 2);
        let Value::Mapping(entries) = root.value else {
            panic!("not a mapping: {root:?}")
        };
        let keys: Vec<_> = entries.iter().map(|e| (e.key.as_str(), e.line)).collect();
        assert_eq!(keys, [("a", 2), ("b", 3), ("a", 6)]);
        assert_eq!(entries[0].value, scalar("x", 2));
        assert_eq!(
            entries[1].value.value,
            Value::Sequence(vec![scalar("y", 4), scalar("null", 5)])
        );
        assert_eq!(entries[2].value.value, Value::Null);
    }

    #[test]
    fn empty_documents_have_no_root() {
        assert_eq!(parse("").unwrap(), None);
        assert_eq!(parse("# only a comment\n").unwrap(), None);
    }

    #[test]
    fn refuses_what_policies_do_not_need() {
        for (text, line, needle) in [
            ("a: [\n", 2, ""),
            ("a: 1\n---\nb: 2\n", 2, "one YAML document"),
            ("a: &x 1\nb: *x\n", 1, "anchors"),
            ("a: !!str 1\n", 1, "tags"),
            ("? [a]\n: 1\n", 1, "plain strings"),
        ] {
            let error = parse(text).unwrap_err();
            assert_eq!(error.line, line, "{text:?}: {error:?}");
            assert!(error.message.contains(needle), "{text:?}: {error:?}");
        }
    }
}
