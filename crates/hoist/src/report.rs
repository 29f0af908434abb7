//! Findings and how they are printed: one line each for people, or JSON.

use hoist_manifest::{Diagnostic, Location, Severity};

/// One problem (or warning) found by a command, with everything needed to act on it.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Finding {
    /// `error` or `warning`.
    pub severity: Severity,
    /// What produced it: `manifest`, `conflict`, `policy-file`, `blockade`, `freeze`,
    /// `destination`, `tag-move`, `removal`.
    pub kind: &'static str,
    /// The file, when the finding is about one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub file: Option<String>,
    /// 1-based line.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub line: Option<u32>,
    /// 1-based column.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub column: Option<u32>,
    /// The key path inside the file.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
    /// The offending value.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
    /// The policy rule that decided, as `file.yaml: section[index]`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rule: Option<String>,
    /// What is wrong, and what to do about it.
    pub message: String,
}

impl Finding {
    /// An error of `kind` with a message and nothing else yet.
    pub fn error(kind: &'static str, message: impl Into<String>) -> Self {
        Self {
            severity: Severity::Error,
            kind,
            file: None,
            line: None,
            column: None,
            key: None,
            value: None,
            rule: None,
            message: message.into(),
        }
    }

    /// Sets file, line and column from a manifest location.
    pub fn at(mut self, location: &Location) -> Self {
        self.file = Some(location.file.display().to_string());
        self.line = Some(location.line);
        self.column = Some(location.column);
        self
    }

    /// Sets the deciding rule.
    pub fn rule(mut self, rule: impl Into<String>) -> Self {
        self.rule = Some(rule.into());
        self
    }

    /// A manifest loader's diagnostic.
    pub fn from_diagnostic(diagnostic: &Diagnostic) -> Self {
        let positioned = diagnostic.line > 0;
        Self {
            severity: diagnostic.severity,
            kind: "manifest",
            file: Some(diagnostic.file.display().to_string()),
            line: positioned.then_some(diagnostic.line),
            column: positioned.then_some(diagnostic.column),
            key: (!diagnostic.key_path.is_empty()).then(|| diagnostic.key_path.clone()),
            value: diagnostic.value.clone(),
            rule: None,
            message: diagnostic.message.clone(),
        }
    }
}

impl std::fmt::Display for Finding {
    /// `FILE:LINE:COL: error[kind]: KEY: MESSAGE (got VALUE) [rule]`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if let Some(file) = &self.file {
            f.write_str(file)?;
            if let (Some(line), Some(column)) = (self.line, self.column) {
                write!(f, ":{line}:{column}")?;
            }
            f.write_str(": ")?;
        }
        let severity = match self.severity {
            Severity::Error => "error",
            Severity::Warning => "warning",
        };
        write!(f, "{severity}[{}]: ", self.kind)?;
        if let Some(key) = &self.key {
            write!(f, "{key}: ")?;
        }
        f.write_str(&self.message)?;
        if let Some(value) = &self.value {
            write!(f, " (got {value:?})")?;
        }
        if let Some(rule) = &self.rule {
            write!(f, " [{rule}]")?;
        }
        Ok(())
    }
}

/// Sorts findings for stable output: errors and warnings by file, line, column, then message.
pub fn sort(findings: &mut [Finding]) {
    findings.sort_by(|a, b| {
        (&a.file, a.line, a.column, a.kind, &a.message)
            .cmp(&(&b.file, b.line, b.column, b.kind, &b.message))
    });
}
