//! A small YAML tree with positions, built from the `yaml-rust2` event parser.
//!
//! Shared by every strict reader of hoist (promoter manifests, mirror catalogues).
//! `yaml_rust2::Yaml` forgets where each value was written and silently keeps the last of two
//! duplicate keys, so decoders work on this tree instead: every [`Node`] knows its line and
//! column, and mappings keep all their pairs (duplicates included) in file order, so that
//! duplicates can be reported. Scalars keep their raw text; the decoder decides what a scalar
//! means.
//!
//! Anchors, aliases and tags are rejected: hoist's files never need them, and an alias
//! would let one entry silently stand for another.
//!
//! The files come from pull requests, so nothing in them may exhaust the process: [`read_text`]
//! reads only regular files up to [`MAX_FILE_BYTES`], [`parse`] refuses nesting deeper than
//! [`MAX_DEPTH`] and more than [`MAX_NODES`] values, and [`clip`] shortens (and escapes) any
//! text of the file before it is echoed in a message.

use std::borrow::Cow;
use std::io::Read as _;
use std::path::Path;

use yaml_rust2::parser::{Event, Parser};
use yaml_rust2::scanner::{Marker, TScalarStyle};

/// One YAML value with the position where it starts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Node {
    pub kind: NodeKind,
    /// 1-based line.
    pub line: u32,
    /// 1-based column.
    pub column: u32,
}

/// The shape of a [`Node`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NodeKind {
    /// A scalar: its text, and whether it was written plain (unquoted, not a block scalar).
    Scalar { text: String, plain: bool },
    /// A sequence, in file order.
    Sequence(Vec<Node>),
    /// A mapping: all key/value pairs in file order, duplicates included.
    Mapping(Vec<(Node, Node)>),
}

impl Node {
    /// Whether this is a YAML null (`~`, `null`, or nothing at all, written plain).
    pub fn is_null(&self) -> bool {
        matches!(&self.kind, NodeKind::Scalar { text, plain: true }
            if matches!(text.as_str(), "" | "~" | "null" | "Null" | "NULL"))
    }

    /// The scalar text, unless this is a collection or a null.
    pub fn as_str(&self) -> Option<&str> {
        match &self.kind {
            NodeKind::Scalar { text, .. } if !self.is_null() => Some(text),
            _ => None,
        }
    }

    /// What kind of value this is, for "expected X, found Y" messages.
    pub fn describe(&self) -> &'static str {
        match &self.kind {
            _ if self.is_null() => "nothing (null)",
            NodeKind::Scalar { .. } => "a scalar",
            NodeKind::Sequence(_) => "a list",
            NodeKind::Mapping(_) => "a map",
        }
    }
}

/// The deepest nesting of collections accepted. The real manifests nest four levels deep;
/// deeper input is refused before it is built, so that nothing recurses over it.
pub const MAX_DEPTH: usize = 64;

/// The most values (scalars and collections) one file may hold. The largest real images file
/// (about 10,000 digests) holds about 40,000; the bound keeps a hostile file's tree in memory
/// well under a hundred megabytes.
pub const MAX_NODES: usize = 1_000_000;

/// The largest file [`read_text`] reads (the largest real manifest is about 1 MB).
pub const MAX_FILE_BYTES: u64 = 16 << 20;

/// How many characters of a file's text [`clip`] keeps.
pub const CLIP_CHARS: usize = 100;

/// Reads a regular file (following symbolic links; the caller decides which links are allowed)
/// of at most [`MAX_FILE_BYTES`] as UTF-8 text. Devices, FIFOs and directories are refused
/// without being opened for reading, so a stray FIFO cannot block the reader.
pub fn read_text(path: &Path) -> std::io::Result<String> {
    let metadata = std::fs::metadata(path)?;
    if !metadata.is_file() {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            "not a regular file",
        ));
    }
    if metadata.len() > MAX_FILE_BYTES {
        return Err(too_large());
    }
    let mut bytes = Vec::with_capacity(metadata.len() as usize);
    // The file may grow between the stat and the read: never read more than the bound.
    std::fs::File::open(path)?
        .take(MAX_FILE_BYTES + 1)
        .read_to_end(&mut bytes)?;
    if bytes.len() as u64 > MAX_FILE_BYTES {
        return Err(too_large());
    }
    String::from_utf8(bytes)
        .map_err(|_| std::io::Error::new(std::io::ErrorKind::InvalidData, "not UTF-8 text"))
}

fn too_large() -> std::io::Error {
    std::io::Error::new(
        std::io::ErrorKind::FileTooLarge,
        format!("larger than {} MiB", MAX_FILE_BYTES >> 20),
    )
}

/// `text` as it may be echoed in a message: at most [`CLIP_CHARS`] characters (then `…` and how
/// many more there were), control characters escaped, so that a value from a hostile file can
/// neither flood a log nor drive the terminal.
pub fn clip(text: &str) -> Cow<'_, str> {
    let long = text.chars().nth(CLIP_CHARS).is_some();
    if !long && !text.chars().any(char::is_control) {
        return Cow::Borrowed(text);
    }
    let mut clipped = String::with_capacity(CLIP_CHARS + 16);
    for character in text.chars().take(CLIP_CHARS) {
        if character.is_control() {
            clipped.extend(character.escape_default());
        } else {
            clipped.push(character);
        }
    }
    if long {
        let rest = text.chars().count() - CLIP_CHARS;
        clipped.push_str(&format!("…({rest} more characters)"));
    }
    Cow::Owned(clipped)
}

/// What [`fields`] finds wrong in a map; each decoder words its own message (those of unknown and
/// duplicate keys alike: [`unknown_key_message`], [`duplicate_key_message`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FieldError<'n> {
    /// The node is not a map.
    NotMap,
    /// A key that is not a string.
    KeyNotString(&'n Node),
    /// A key that is not one of the allowed ones.
    Unknown(&'n Node, &'n str),
    /// A key given again; the line is where it was first given (the first one wins).
    Duplicate(&'n Node, &'n str, u32),
}

/// What every decoder says of a [`FieldError::Unknown`] key.
pub fn unknown_key_message(allowed: &[&str]) -> String {
    format!("unknown key; expected one of: {}", allowed.join(", "))
}

/// What every decoder says of a [`FieldError::Duplicate`] key.
pub fn duplicate_key_message(first_line: u32) -> String {
    format!("duplicate key, first at line {first_line}")
}

/// The path of `key` below `parent` (`parent.key`), or `key` at the top level.
pub fn join_key(parent: &str, key: &str) -> String {
    if parent.is_empty() {
        key.to_owned()
    } else {
        format!("{parent}.{key}")
    }
}

/// The values of a map whose keys must be among `allowed`, in the order of `allowed`, each the
/// first one given; everything else goes to `on_error`. `None` when `node` is not a map.
pub fn fields<'n, const N: usize>(
    node: &'n Node,
    allowed: [&str; N],
    mut on_error: impl FnMut(FieldError<'n>),
) -> Option<[Option<&'n Node>; N]> {
    let NodeKind::Mapping(pairs) = &node.kind else {
        on_error(FieldError::NotMap);
        return None;
    };
    let mut found: [Option<&Node>; N] = [None; N];
    let mut first_lines = [0u32; N];
    for (key, value) in pairs {
        let Some(name) = key.as_str() else {
            on_error(FieldError::KeyNotString(key));
            continue;
        };
        match allowed.iter().position(|candidate| *candidate == name) {
            None => on_error(FieldError::Unknown(key, name)),
            Some(index) if found[index].is_some() => {
                on_error(FieldError::Duplicate(key, name, first_lines[index]));
            }
            Some(index) => {
                found[index] = Some(value);
                first_lines[index] = key.line;
            }
        }
    }
    Some(found)
}

/// A YAML syntax error (or a YAML feature the manifests do not allow), with its position.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyntaxError {
    pub line: u32,
    pub column: u32,
    pub message: String,
}

/// Parses one YAML document. `Ok(None)` when the text holds no document (empty, or only
/// comments), which the thin layout uses for "no images yet".
pub fn parse(text: &str) -> Result<Option<Node>, SyntaxError> {
    // The scanner does not skip a byte-order mark; editors on Windows write one.
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    // yaml-rust2 is well fuzzed, but `load` must never panic on user input: turn a parser panic
    // into an error at the start of the file rather than trusting that.
    std::panic::catch_unwind(|| Builder::default().run(text)).unwrap_or_else(|_| {
        Err(SyntaxError {
            line: 1,
            column: 1,
            message: "the YAML parser failed on this file".to_owned(),
        })
    })
}

fn position(mark: &Marker) -> (u32, u32) {
    // Marker lines are 1-based and columns 0-based (see `ScanError`'s Display impl).
    let clamp = |value: usize| u32::try_from(value).unwrap_or(u32::MAX);
    (clamp(mark.line()), clamp(mark.col()).saturating_add(1))
}

/// A collection being built.
#[derive(Debug)]
enum Open {
    Sequence(Node),
    /// A mapping, and the key waiting for its value.
    Mapping(Node, Option<Node>),
}

#[derive(Debug, Default)]
struct Builder {
    stack: Vec<Open>,
    document: Option<Node>,
    documents: usize,
    /// Values seen so far, for [`MAX_NODES`].
    nodes: usize,
}

impl Builder {
    fn run(mut self, text: &str) -> Result<Option<Node>, SyntaxError> {
        let mut parser = Parser::new_from_str(text);
        loop {
            let (event, mark) = parser.next_token().map_err(|error| {
                let (line, column) = position(error.marker());
                SyntaxError {
                    line,
                    column,
                    message: format!("YAML syntax error: {}", error.info()),
                }
            })?;
            let (line, column) = position(&mark);
            let fail = |message: &str| SyntaxError {
                line,
                column,
                message: message.to_owned(),
            };
            if matches!(
                event,
                Event::Scalar(..) | Event::SequenceStart(..) | Event::MappingStart(..)
            ) {
                self.nodes += 1;
                if self.nodes > MAX_NODES {
                    return Err(fail(&format!(
                        "more than {MAX_NODES} YAML values in one file; refused"
                    )));
                }
            }
            if matches!(event, Event::SequenceStart(..) | Event::MappingStart(..))
                && self.stack.len() >= MAX_DEPTH
            {
                return Err(fail(&format!(
                    "YAML nested deeper than {MAX_DEPTH} levels; refused"
                )));
            }
            match event {
                Event::StreamEnd => return Ok(self.document),
                Event::DocumentStart => {
                    self.documents += 1;
                    if self.documents > 1 {
                        return Err(fail(
                            "a second YAML document ('---'); a file holds exactly one YAML document",
                        ));
                    }
                }
                Event::Alias(_) => {
                    return Err(fail("YAML aliases (*name) are not allowed"));
                }
                Event::Scalar(_, _, anchor, _)
                | Event::SequenceStart(anchor, _)
                | Event::MappingStart(anchor, _)
                    if anchor != 0 =>
                {
                    return Err(fail("YAML anchors (&name) are not allowed"));
                }
                Event::Scalar(_, _, _, Some(_))
                | Event::SequenceStart(_, Some(_))
                | Event::MappingStart(_, Some(_)) => {
                    return Err(fail("YAML tags (!tag) are not allowed"));
                }
                Event::Scalar(text, style, _, None) => {
                    let plain = style == TScalarStyle::Plain;
                    self.add(Node {
                        kind: NodeKind::Scalar { text, plain },
                        line,
                        column,
                    });
                }
                Event::SequenceStart(..) => self.stack.push(Open::Sequence(Node {
                    kind: NodeKind::Sequence(Vec::new()),
                    line,
                    column,
                })),
                Event::MappingStart(..) => self.stack.push(Open::Mapping(
                    Node {
                        kind: NodeKind::Mapping(Vec::new()),
                        line,
                        column,
                    },
                    None,
                )),
                Event::SequenceEnd | Event::MappingEnd => match self.stack.pop() {
                    Some(Open::Sequence(node) | Open::Mapping(node, _)) => self.add(node),
                    None => return Err(fail("unbalanced YAML collection end")),
                },
                Event::Nothing | Event::StreamStart | Event::DocumentEnd => {}
            }
        }
    }

    /// Attaches a finished node to the collection being built, or makes it the document.
    fn add(&mut self, node: Node) {
        match self.stack.last_mut() {
            None => self.document = Some(node),
            Some(Open::Sequence(Node {
                kind: NodeKind::Sequence(items),
                ..
            })) => items.push(node),
            Some(Open::Mapping(mapping, pending)) => match pending.take() {
                None => {
                    // The parser marks a block mapping where it recognises it, after its first
                    // key; a mapping starts where its first key does.
                    if (node.line, node.column) < (mapping.line, mapping.column) {
                        (mapping.line, mapping.column) = (node.line, node.column);
                    }
                    *pending = Some(node);
                }
                Some(key) => {
                    if let NodeKind::Mapping(pairs) = &mut mapping.kind {
                        pairs.push((key, node));
                    }
                }
            },
            // An open sequence always holds a Sequence kind; nothing else is ever pushed.
            Some(Open::Sequence(_)) => {}
        }
    }
}

#[cfg(test)]
mod tests {

    #[test]
    fn fields_keep_the_first_of_each_allowed_key_and_report_the_rest() {
        let root = parse("b: 1\nx: 2\nb: 3\n[k]: 4\na: 5\n").unwrap().unwrap();
        let mut errors = Vec::new();
        let [a, b, c] = fields(&root, ["a", "b", "c"], |error| {
            errors.push(match error {
                FieldError::NotMap => "not a map".to_owned(),
                FieldError::KeyNotString(key) => format!("key at line {}", key.line),
                FieldError::Unknown(_, name) => format!("unknown {name}"),
                FieldError::Duplicate(key, name, first) => {
                    format!("{name} again at line {} after {first}", key.line)
                }
            });
        })
        .unwrap();
        assert_eq!(a.and_then(Node::as_str), Some("5"));
        assert_eq!(b.and_then(Node::as_str), Some("1"));
        assert!(c.is_none());
        assert_eq!(
            errors,
            ["unknown x", "b again at line 3 after 1", "key at line 4"]
        );

        let list = parse("- a\n").unwrap().unwrap();
        let mut not_map = false;
        assert!(fields(&list, ["a"], |error| not_map = error == FieldError::NotMap).is_none());
        assert!(not_map);
    }

    use super::*;

    fn scalar(text: &str, plain: bool, line: u32, column: u32) -> Node {
        Node {
            kind: NodeKind::Scalar {
                text: text.to_owned(),
                plain,
            },
            line,
            column,
        }
    }

    #[test]
    fn builds_a_tree_with_positions() {
        let text = "a:\n  - \"x\"\n  - y\nb: {c: d}\n";
        let root = parse(text).unwrap().unwrap();
        let NodeKind::Mapping(pairs) = &root.kind else {
            panic!("not a map: {root:?}")
        };
        assert_eq!((root.line, root.column), (1, 1));
        assert_eq!(pairs[0].0, scalar("a", true, 1, 1));
        let NodeKind::Sequence(items) = &pairs[0].1.kind else {
            panic!("not a list")
        };
        // A quoted scalar starts at its opening quote.
        assert_eq!(items[0], scalar("x", false, 2, 5));
        assert_eq!(items[1], scalar("y", true, 3, 5));
        let NodeKind::Mapping(inner) = &pairs[1].1.kind else {
            panic!("not a map")
        };
        assert_eq!(inner[0].1, scalar("d", true, 4, 8));
    }

    #[test]
    fn keeps_duplicate_keys() {
        let root = parse("a: 1\na: 2\n").unwrap().unwrap();
        let NodeKind::Mapping(pairs) = root.kind else {
            panic!("not a map")
        };
        assert_eq!(pairs.len(), 2);
        assert_eq!(pairs[1].0.line, 2);
    }

    #[test]
    fn handles_crlf_bom_and_comments() {
        let root = parse("\u{feff}# c\r\n- a\r\n# c\r\n- b").unwrap().unwrap();
        let NodeKind::Sequence(items) = root.kind else {
            panic!("not a list")
        };
        assert_eq!(items[1], scalar("b", true, 4, 3));
        assert_eq!(parse("# only a comment\n").unwrap(), None);
        assert_eq!(parse("").unwrap(), None);
    }

    #[test]
    fn nulls_and_kinds() {
        let root = parse("a:\nb: ~\nc: ''\n").unwrap().unwrap();
        let NodeKind::Mapping(pairs) = root.kind else {
            panic!("not a map")
        };
        assert!(pairs[0].1.is_null());
        assert!(pairs[1].1.is_null());
        assert!(!pairs[2].1.is_null());
        assert_eq!(pairs[2].1.as_str(), Some(""));
        assert_eq!(pairs[0].1.describe(), "nothing (null)");
    }

    #[test]
    fn reports_syntax_errors_with_position() {
        let error = parse("a: [b\nc: d\n").unwrap_err();
        assert!(error.message.starts_with("YAML syntax error"), "{error:?}");
        assert!(error.line >= 1);
        let error = parse("a: \"open\n").unwrap_err();
        assert!(error.message.contains("YAML syntax error"), "{error:?}");
    }

    #[test]
    fn refuses_deep_nesting_without_recursing() {
        let deep = format!("{}x{}", "[".repeat(100_000), "]".repeat(100_000));
        let error = parse(&deep).unwrap_err();
        assert!(
            error.message.contains("nested deeper than 64")
                || error.message.contains("YAML syntax error"),
            "{error:?}"
        );
        let mut block = String::new();
        for level in 0..200 {
            block.push_str(&" ".repeat(level));
            block.push_str("- \n");
        }
        let error = parse(&block).unwrap_err();
        assert!(error.message.contains("nested deeper than 64"), "{error:?}");
        let fine = format!("{}x{}", "[".repeat(MAX_DEPTH), "]".repeat(MAX_DEPTH));
        assert!(parse(&fine).is_ok());
    }

    #[test]
    fn refuses_too_many_values() {
        let many = format!("[{}]", "a,".repeat(MAX_NODES + 1));
        let error = parse(&many).unwrap_err();
        assert!(error.message.contains("more than"), "{error:?}");
    }

    #[test]
    fn clips_long_values_and_escapes_control_characters() {
        assert_eq!(clip("short"), "short");
        let long = "x".repeat(10_000);
        let clipped = clip(&long);
        assert!(clipped.starts_with(&"x".repeat(CLIP_CHARS)));
        assert!(clipped.ends_with("…(9900 more characters)"), "{clipped}");
        assert_eq!(clip("a\u{1b}[2Jb"), "a\\u{1b}[2Jb");
    }

    #[test]
    fn reads_only_small_regular_files() {
        let dir = std::env::temp_dir().join(format!("hoist-yaml-read-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("a.yaml");
        std::fs::write(&file, "a: 1\n").unwrap();
        assert_eq!(read_text(&file).unwrap(), "a: 1\n");
        let error = read_text(&dir).unwrap_err();
        assert_eq!(error.kind(), std::io::ErrorKind::InvalidInput);
        let big = std::fs::File::create(dir.join("big.yaml")).unwrap();
        big.set_len(MAX_FILE_BYTES + 1).unwrap();
        let error = read_text(&dir.join("big.yaml")).unwrap_err();
        assert_eq!(error.kind(), std::io::ErrorKind::FileTooLarge);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn rejects_anchors_aliases_tags_and_documents() {
        let error = parse("a: &x 1\nb: *x\n").unwrap_err();
        // Reported at the anchored value.
        assert_eq!((error.line, error.column), (1, 7));
        assert!(error.message.contains("anchors"));
        let error = parse("a: !!str 1\n").unwrap_err();
        assert!(error.message.contains("tags"));
        let error = parse("a: 1\n---\nb: 2\n").unwrap_err();
        assert_eq!(error.line, 2);
        assert!(error.message.contains("second YAML document"));
    }
}
