//! Collecting [`Diagnostic`]s for one file: the same findings, with the same `file:line:column`,
//! key path and value, as the image manifests give.

use std::path::Path;
use std::sync::Arc;

use hoist_manifest::{Diagnostic, Location, Severity};
use hoist_yaml::{FieldError, Node, NodeKind, SyntaxError};

/// The findings about one file.
#[derive(Debug)]
pub(crate) struct Report {
    pub(crate) file: Arc<Path>,
    pub(crate) diagnostics: Vec<Diagnostic>,
}

impl Report {
    pub(crate) fn new(file: Arc<Path>) -> Self {
        Self {
            file,
            diagnostics: Vec::new(),
        }
    }

    /// Where `node` starts, in this file.
    pub(crate) fn location(&self, node: &Node) -> Location {
        Location {
            file: Arc::clone(&self.file),
            line: node.line,
            column: node.column,
        }
    }

    /// An error about `node` (its text, if a scalar, is the offending value).
    pub(crate) fn error(&mut self, node: &Node, key_path: String, message: impl Into<String>) {
        self.add(Severity::Error, node, key_path, message.into());
    }

    fn add(&mut self, severity: Severity, node: &Node, key_path: String, message: String) {
        self.diagnostics.push(Diagnostic {
            manifest: None,
            severity,
            file: Arc::clone(&self.file),
            line: node.line,
            column: node.column,
            key_path,
            value: node.as_str().map(str::to_owned),
            message,
        });
    }

    /// A YAML syntax error at its position.
    pub(crate) fn syntax_error(&mut self, error: &SyntaxError) {
        self.diagnostics.push(Diagnostic {
            manifest: None,
            severity: Severity::Error,
            file: Arc::clone(&self.file),
            line: error.line,
            column: error.column,
            key_path: String::new(),
            value: None,
            message: error.message.clone(),
        });
    }

    /// An error about the whole file, or about one key of it without a position.
    pub(crate) fn file_error(&mut self, key_path: &str, message: impl Into<String>) {
        let mut diagnostic = file_diagnostic(Arc::clone(&self.file), message.into());
        diagnostic.key_path = key_path.to_owned();
        self.diagnostics.push(diagnostic);
    }

    /// The pairs of a map whose keys are all in `allowed`, each once; errors for a value that is
    /// not a map, keys that are not strings, unknown and duplicate keys. `None` when not a map.
    pub(crate) fn fields<'n, const N: usize>(
        &mut self,
        node: &'n Node,
        path: &str,
        what: &str,
        allowed: [&str; N],
    ) -> Option<[Option<&'n Node>; N]> {
        hoist_yaml::fields(node, allowed, |error| match error {
            FieldError::NotMap => self.error(
                node,
                path.to_owned(),
                format!(
                    "expected {what} (a map with keys {}), found {}",
                    allowed.join(", "),
                    node.describe()
                ),
            ),
            FieldError::KeyNotString(key) => self.error(
                key,
                path.to_owned(),
                format!("expected a string as map key, found {}", key.describe()),
            ),
            FieldError::Unknown(key, name) => self.error(
                key,
                join_key(path, name),
                hoist_yaml::unknown_key_message(&allowed),
            ),
            FieldError::Duplicate(key, name, first_line) => self.error(
                key,
                join_key(path, name),
                hoist_yaml::duplicate_key_message(first_line),
            ),
        })
    }

    /// A required key's value, or an error at the map that lacks it.
    pub(crate) fn required<'n>(
        &mut self,
        map: &Node,
        value: Option<&'n Node>,
        path: &str,
        key: &str,
    ) -> Option<&'n Node> {
        if value.is_none() {
            self.error(
                map,
                join_key(path, key),
                format!("missing required key {key:?}"),
            );
        }
        value
    }

    /// A non-empty string scalar; errors for collections, nulls and "".
    pub(crate) fn string<'n>(
        &mut self,
        node: &'n Node,
        path: String,
        what: &str,
    ) -> Option<&'n str> {
        match (&node.kind, node.as_str()) {
            (_, Some("")) => self.error(
                node,
                path,
                format!("expected {what}, found an empty string"),
            ),
            (NodeKind::Scalar { .. }, Some(text)) => return Some(text),
            _ => self.error(
                node,
                path,
                format!("expected {what} (a string), found {}", node.describe()),
            ),
        }
        None
    }

    /// `true` or `false`, written plain: a quoted `"true"` or `yes` must not silently mean false.
    pub(crate) fn boolean(&mut self, node: &Node, path: String) -> Option<bool> {
        match &node.kind {
            NodeKind::Scalar { text, plain: true } if text == "true" => Some(true),
            NodeKind::Scalar { text, plain: true } if text == "false" => Some(false),
            _ => {
                self.error(
                    node,
                    path,
                    format!("expected true or false, found {}", node.describe()),
                );
                None
            }
        }
    }
}

/// An error about a whole file or directory: no line, no key.
pub(crate) fn file_diagnostic(file: Arc<Path>, message: String) -> Diagnostic {
    Diagnostic {
        manifest: None,
        severity: Severity::Error,
        file,
        line: 0,
        column: 0,
        key_path: String::new(),
        value: None,
        message,
    }
}

pub(crate) use hoist_yaml::join_key;
