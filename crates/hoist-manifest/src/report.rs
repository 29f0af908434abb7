//! Collecting [`Diagnostic`]s for one file.

use std::path::Path;
use std::sync::Arc;

use hoist_oci::{DigestError, NameError};

use crate::model::{Diagnostic, Location, Severity};
use hoist_yaml::{Node, SyntaxError, clip};

/// The findings about one file, and the file they are about.
#[derive(Debug)]
pub(crate) struct Report {
    pub(crate) file: Arc<Path>,
    /// The project every finding of this file belongs to.
    pub(crate) manifest: Option<Arc<Path>>,
    pub(crate) diagnostics: Vec<Diagnostic>,
}

impl Report {
    pub(crate) fn new(file: Arc<Path>, manifest: Option<Arc<Path>>) -> Self {
        Self {
            file,
            manifest,
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

    /// A warning about `node`.
    pub(crate) fn warning(&mut self, node: &Node, key_path: String, message: impl Into<String>) {
        self.add(Severity::Warning, node, key_path, message.into());
    }

    fn add(&mut self, severity: Severity, node: &Node, key_path: String, message: String) {
        self.diagnostics.push(Diagnostic {
            severity,
            file: Arc::clone(&self.file),
            line: node.line,
            column: node.column,
            // Key paths embed the file's own keys (`dmap["…"]`): both are cut short.
            key_path: clip(&key_path).into_owned(),
            value: node.as_str().map(|value| clip(value).into_owned()),
            message,
            manifest: self.manifest.clone(),
        });
    }

    /// A YAML syntax error (or a forbidden YAML feature) at its position.
    pub(crate) fn syntax_error(&mut self, error: &SyntaxError) {
        self.diagnostics.push(Diagnostic {
            severity: Severity::Error,
            file: Arc::clone(&self.file),
            line: error.line,
            column: error.column,
            key_path: String::new(),
            value: None,
            message: error.message.clone(),
            manifest: self.manifest.clone(),
        });
    }

    /// An error about the whole file (line and column 0).
    pub(crate) fn file_error(&mut self, message: impl Into<String>) {
        self.diagnostics.push(file_diagnostic(
            Severity::Error,
            Arc::clone(&self.file),
            self.manifest.clone(),
            message.into(),
        ));
    }
}

/// A finding about a whole file or directory: no line, no key.
pub(crate) fn file_diagnostic(
    severity: Severity,
    file: Arc<Path>,
    manifest: Option<Arc<Path>>,
    message: String,
) -> Diagnostic {
    Diagnostic {
        severity,
        file,
        line: 0,
        column: 0,
        key_path: String::new(),
        value: None,
        message,
        manifest,
    }
}

pub(crate) use hoist_yaml::join_key;

/// What is wrong with a digest, without repeating the value (the diagnostic carries it).
pub(crate) fn digest_problem(error: &DigestError) -> String {
    let reason = match error {
        DigestError::MissingPrefix(_) => "missing the \"sha256:\" prefix".to_owned(),
        DigestError::BadLength { len, .. } => format!("{len} hex digits instead of 64"),
        DigestError::NotLowercaseHex(_) => "not lowercase hex".to_owned(),
    };
    format!("invalid digest: {reason}; expected sha256: followed by 64 lowercase hex digits")
}

/// What is wrong with a tag, image name or registry name, without repeating the value.
pub(crate) fn name_problem(error: &NameError) -> String {
    match error {
        NameError::Tag(_) => "invalid tag; expected a letter, digit or '_' followed by up to 127 \
                              of [A-Za-z0-9_.-]"
            .to_owned(),
        NameError::Repository { reason, .. } => format!(
            "invalid image name: {reason}; expected lowercase path components of [a-z0-9] \
             joined by '.', '_', '__' or '-', separated by '/'"
        ),
        NameError::Registry { reason, .. } => format!("invalid registry name: {reason}"),
    }
}
