//! A small YAML tree that remembers the line of every node.
//!
//! `yaml-rust2`'s own `Yaml` type drops source positions and silently keeps the last of two
//! duplicate keys, so policy files are read from its event stream instead: every node keeps the
//! line it starts on, and mappings keep all their entries in order so that the schema layer can
//! report duplicate and unknown keys with their lines.

use yaml_rust2::parser::{Event, Parser};
use yaml_rust2::scanner::{Marker, TScalarStyle};

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

impl SyntaxError {
    fn at(mark: Marker, message: impl Into<String>) -> Self {
        Self {
            line: mark.line(),
            // yaml-rust2 counts columns from 0; editors count from 1.
            column: mark.col() + 1,
            message: message.into(),
        }
    }
}

/// Parses one YAML document; `Ok(None)` for a file without any document (empty or comments only).
///
/// Anchors, aliases, tags and multi-document streams are refused: policy files are short and
/// reviewed by people, and each of those features makes what a file says harder to see.
pub(crate) fn parse(text: &str) -> Result<Option<Node>, SyntaxError> {
    let mut parser = Parser::new_from_str(text);
    let mut root = None;
    loop {
        let (event, mark) = next(&mut parser)?;
        match event {
            Event::StreamStart | Event::DocumentEnd => {}
            Event::StreamEnd => return Ok(root),
            Event::DocumentStart if root.is_some() => {
                return Err(SyntaxError::at(
                    mark,
                    "only one YAML document per policy file",
                ));
            }
            Event::DocumentStart => root = Some(node(&mut parser)?),
            other => {
                return Err(SyntaxError::at(
                    mark,
                    format!("unexpected YAML event {other:?}"),
                ));
            }
        }
    }
}

fn next<T: Iterator<Item = char>>(parser: &mut Parser<T>) -> Result<(Event, Marker), SyntaxError> {
    parser.next_token().map_err(|error| SyntaxError {
        line: error.marker().line(),
        column: error.marker().col() + 1,
        message: error.info().to_owned(),
    })
}

/// Reads the node whose first event comes next.
fn node<T: Iterator<Item = char>>(parser: &mut Parser<T>) -> Result<Node, SyntaxError> {
    let (event, mark) = next(parser)?;
    let line = mark.line();
    let value = match event {
        Event::Scalar(text, style, anchor, tag) => {
            refuse_anchor_or_tag(mark, anchor, tag.is_some())?;
            let null = style == TScalarStyle::Plain
                && matches!(text.as_str(), "" | "~" | "null" | "Null" | "NULL");
            if null {
                Value::Null
            } else {
                Value::Scalar(text)
            }
        }
        Event::SequenceStart(anchor, tag) => {
            refuse_anchor_or_tag(mark, anchor, tag.is_some())?;
            let mut items = Vec::new();
            while !matches!(parser.peek(), Ok((Event::SequenceEnd, _))) {
                items.push(node(parser)?);
            }
            next(parser)?;
            Value::Sequence(items)
        }
        Event::MappingStart(anchor, tag) => {
            refuse_anchor_or_tag(mark, anchor, tag.is_some())?;
            let mut entries = Vec::new();
            while !matches!(parser.peek(), Ok((Event::MappingEnd, _))) {
                let key = node(parser)?;
                let Value::Scalar(name) = key.value else {
                    return Err(SyntaxError::at(mark, "mapping keys must be plain strings"));
                };
                let mut value = node(parser)?;
                if value.value == Value::Null {
                    // An empty value's event is marked where the next token starts, often the
                    // next line; the key's line is where a reader looks.
                    value.line = key.line;
                }
                entries.push(Entry {
                    key: name,
                    line: key.line,
                    value,
                });
            }
            next(parser)?;
            Value::Mapping(entries)
        }
        Event::Alias(_) => {
            return Err(SyntaxError::at(
                mark,
                "YAML aliases (*name) are not supported",
            ));
        }
        other => {
            return Err(SyntaxError::at(
                mark,
                format!("unexpected YAML event {other:?}"),
            ));
        }
    };
    Ok(Node { value, line })
}

fn refuse_anchor_or_tag(mark: Marker, anchor: usize, tagged: bool) -> Result<(), SyntaxError> {
    if anchor != 0 {
        return Err(SyntaxError::at(
            mark,
            "YAML anchors (&name) are not supported",
        ));
    }
    if tagged {
        return Err(SyntaxError::at(mark, "YAML tags (!tag) are not supported"));
    }
    Ok(())
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
