//! [`PolicyError`]: why a policy file could not be loaded, and where.

use std::fmt;
use std::path::PathBuf;

/// Where in a policy file a problem is: the file, the 1-based line, and the key path
/// (`blockades[0].blockregexps[1]`; empty for the document itself).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Location {
    /// The file as it was named to the loader (a path for `load_dir`, the name for `from_str`).
    pub file: String,
    /// 1-based line.
    pub line: usize,
    /// Dotted key path with list indices, such as `freezes[0].from`.
    pub key: String,
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.file, self.line)?;
        if !self.key.is_empty() {
            write!(f, ": {}", self.key)?;
        }
        Ok(())
    }
}

/// Why a policy file or directory could not be loaded. Loading reports every error it finds,
/// not only the first, so a caller gets a `Vec<PolicyError>`.
#[derive(Debug, thiserror::Error)]
pub enum PolicyError {
    /// The directory or a file in it could not be read.
    #[error("cannot read {}: {source}", path.display())]
    Io {
        /// The directory or file.
        path: PathBuf,
        /// What the operating system said.
        source: std::io::Error,
    },
    /// The file is not YAML (or uses a YAML feature policies refuse).
    #[error("{at}: invalid YAML at column {column}: {message}")]
    Syntax {
        /// Where (the key is empty: the parser does not know it).
        at: Location,
        /// 1-based column.
        column: usize,
        /// What the parser said.
        message: String,
    },
    /// A key the schema does not know, often a typo.
    #[error("{at}: unknown key (expected one of: {expected})")]
    UnknownKey {
        /// Where; the key path ends with the unknown key.
        at: Location,
        /// The keys allowed here, comma separated.
        expected: String,
    },
    /// A key given twice in one mapping (YAML parsers silently keep one of them).
    #[error("{at}: duplicate key (first given on line {first_line})")]
    DuplicateKey {
        /// Where the second occurrence is.
        at: Location,
        /// Where the first occurrence is.
        first_line: usize,
    },
    /// A value of the wrong shape: a string where a list is expected, and so on.
    #[error("{at}: expected {expected}, found {found}")]
    WrongType {
        /// Where the value is.
        at: Location,
        /// What the schema wants.
        expected: &'static str,
        /// What the file has.
        found: &'static str,
    },
    /// A required key is absent.
    #[error("{at}: missing required key")]
    MissingKey {
        /// The mapping's line and the missing key's path.
        at: Location,
    },
    /// A list that must hold at least one item is empty.
    #[error("{at}: must not be empty")]
    EmptyList {
        /// Where the list is.
        at: Location,
    },
    /// A regular expression that does not compile (alone, or within its anchors), or is too
    /// large.
    #[error(
        "{at}: invalid regular expression {pattern:?}: {}",
        regex_reason(source)
    )]
    Regex {
        /// Where the pattern is.
        at: Location,
        /// The pattern as written, cut to a short length.
        pattern: String,
        /// What the regex compiler said.
        source: Box<regex::Error>,
    },
    /// A date that is not `YYYY-MM-DD`.
    #[error(
        "{at}: invalid date {:?} (expected YYYY-MM-DD): {source}",
        hoist_yaml::clip(value)
    )]
    Date {
        /// Where the date is.
        at: Location,
        /// The value as written.
        value: String,
        /// What the date parser said.
        source: chrono::ParseError,
    },
    /// A value of the right shape that the rule cannot accept (an unknown `kind`, a malformed
    /// registry name or repository).
    #[error("{at}: invalid value {:?}: {reason}", hoist_yaml::clip(value))]
    InvalidValue {
        /// Where the value is.
        at: Location,
        /// The value as written.
        value: String,
        /// Why it is refused.
        reason: String,
    },
}

/// What the regex compiler said, in one line and without repeating the pattern (a syntax error
/// quotes the whole pattern, which may be long; its last line says what is wrong).
fn regex_reason(error: &regex::Error) -> String {
    let text = error.to_string();
    let reason = text
        .lines()
        .rev()
        .find(|line| !line.trim().is_empty())
        .unwrap_or("")
        .trim();
    hoist_yaml::clip(reason.strip_prefix("error: ").unwrap_or(reason)).into_owned()
}

impl PolicyError {
    /// The file, line and key of the problem; `None` for an I/O error.
    pub fn location(&self) -> Option<&Location> {
        match self {
            PolicyError::Io { .. } => None,
            PolicyError::Syntax { at, .. }
            | PolicyError::UnknownKey { at, .. }
            | PolicyError::DuplicateKey { at, .. }
            | PolicyError::WrongType { at, .. }
            | PolicyError::MissingKey { at }
            | PolicyError::EmptyList { at }
            | PolicyError::Regex { at, .. }
            | PolicyError::Date { at, .. }
            | PolicyError::InvalidValue { at, .. } => Some(at),
        }
    }
}
