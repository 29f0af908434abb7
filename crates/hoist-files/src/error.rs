//! [`FilesError`]: what stops a file promotion as a whole (per-file failures are reported in the
//! plan and the execution instead).

/// A failure that concerns a whole filestore.
#[derive(Debug, thiserror::Error)]
pub enum FilesError {
    /// A filestore's bucket could not be set up (credentials, region, client).
    #[error("cannot open the filestore {base}")]
    Open {
        /// The filestore's base.
        base: String,
        /// Why.
        #[source]
        source: hoist_object::ObjectError,
    },
    /// A filestore was not opened with [`crate::open_buckets`] before use (a bug of the caller).
    #[error("the filestore {base} was not opened")]
    NotOpened {
        /// The filestore's base.
        base: String,
    },
}
