//! [`Finding`]: one problem (or warning) found by a command, with everything needed to act on it,
//! printed one line each for people or as JSON.

use hoist_manifest::{Diagnostic, Location, Severity};

/// The longest message a finding carries. Values from the files are already cut short where
/// they are quoted; this bounds whatever else a message might embed.
const MAX_MESSAGE_CHARS: usize = 2_000;

/// One problem (or warning) found by a command, with everything needed to act on it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
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
    /// The project (promoter manifest) it belongs to: a thin project's name, or a plain
    /// manifest's path.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub project: Option<String>,
    /// What is wrong, and what to do about it.
    pub message: String,
}

impl Finding {
    /// An error of `kind` with a message and nothing else yet.
    pub fn error(kind: &'static str, message: impl Into<String>) -> Self {
        let message: String = message.into();
        let message = if message.chars().nth(MAX_MESSAGE_CHARS).is_some() {
            let mut cut: String = message.chars().take(MAX_MESSAGE_CHARS).collect();
            cut.push('…');
            cut
        } else {
            message
        };
        Self {
            severity: Severity::Error,
            kind,
            file: None,
            line: None,
            column: None,
            key: None,
            value: None,
            rule: None,
            project: None,
            message,
        }
    }

    /// The same finding as a warning.
    pub fn warning(mut self) -> Self {
        self.severity = Severity::Warning;
        self
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

    /// Sets the key path.
    pub fn key(mut self, key: impl Into<String>) -> Self {
        self.key = Some(key.into());
        self
    }

    /// Sets the project.
    pub fn project(mut self, project: impl Into<String>) -> Self {
        self.project = Some(project.into());
        self
    }

    /// Whether it fails a check.
    pub fn is_error(&self) -> bool {
        self.severity == Severity::Error
    }

    /// A manifest loader's diagnostic.
    pub fn from_diagnostic(diagnostic: &Diagnostic) -> Self {
        let positioned = diagnostic.line > 0;
        let mut finding = Self::error("manifest", diagnostic.message.clone());
        finding.severity = diagnostic.severity;
        // File names come from the tree too: escaped and cut like any value.
        finding.file = Some(hoist_yaml::clip(&diagnostic.file.display().to_string()).into_owned());
        finding.line = positioned.then_some(diagnostic.line);
        finding.column = positioned.then_some(diagnostic.column);
        finding.key = (!diagnostic.key_path.is_empty()).then(|| diagnostic.key_path.clone());
        finding.value = diagnostic.value.clone();
        finding
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
