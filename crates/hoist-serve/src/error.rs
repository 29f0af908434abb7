//! [`ServeError`]: what can stop the redirector from starting or serving.
//!
//! Requests never fail with one: each request gets its status code, and the access log says why.

use hoist_object::ObjectError;

/// A configuration or server error, naming its subject (file, flag, address).
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// An IP range file that is not in a published format.
    #[error("{file}: {message}")]
    Ranges {
        /// The file.
        file: String,
        /// What is wrong, with the key of the entry.
        message: String,
    },
    /// The backends catalogue could not be read.
    #[error(transparent)]
    Catalogue(#[from] ObjectError),
    /// A setting that cannot work (an upstream that is not a URL, an unknown default backend).
    #[error("{subject}: {message}")]
    Config {
        /// The setting.
        subject: String,
        /// What is wrong.
        message: String,
    },
    /// A file or socket operation failed.
    #[error("{subject}: {source}")]
    Io {
        /// The file or address.
        subject: String,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
}

impl ServeError {
    pub(crate) fn ranges(file: &str, message: impl Into<String>) -> Self {
        Self::Ranges {
            file: file.to_owned(),
            message: message.into(),
        }
    }

    pub(crate) fn config(subject: impl Into<String>, message: impl Into<String>) -> Self {
        Self::Config {
            subject: subject.into(),
            message: message.into(),
        }
    }

    pub(crate) fn io(subject: impl Into<String>, source: std::io::Error) -> Self {
        Self::Io {
            subject: subject.into(),
            source,
        }
    }
}
