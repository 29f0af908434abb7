//! The Source/Sink traits that the copier drives, and error classification.
