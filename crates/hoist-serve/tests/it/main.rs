//! Integration tests of the redirector: every rule as a table (status and `Location`) against a
//! server on 127.0.0.1, with real mirrors (s3s-fs, directories) answering the existence checks;
//! the published IP range formats; caching and timeouts seen on the wire.

mod checks;
mod ranges;
mod rules;
mod support;
