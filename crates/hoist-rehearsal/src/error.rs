//! [`RehearsalError`]: a ConfigMap hoist cannot use.

/// Why a `local-registry-hosting` ConfigMap cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RehearsalError {
    /// The text is not the ConfigMap, or its registry cannot be used; positioned where known
    /// (line and column 0 when not).
    #[error("{}{}{message}", place(file, *line, *column), if key.is_empty() { String::new() } else { format!("{key}: ") })]
    Invalid {
        /// The input (a file name, `-` for stdin, or the command that printed it).
        file: String,
        /// 1-based line, 0 when unknown.
        line: u32,
        /// 1-based column, 0 when unknown.
        column: u32,
        /// The key path (`data.localRegistryHosting.v1: host`).
        key: String,
        /// What is wrong.
        message: String,
    },
}

fn place(file: &str, line: u32, column: u32) -> String {
    if line == 0 {
        format!("{file}: ")
    } else {
        format!("{file}:{line}:{column}: ")
    }
}
