//! End-to-end tests of the `hoist` binary.

mod check_base;
mod check_corpus;
mod check_plain;
mod docs;
mod example;
mod fanout;
mod files;
mod hostile;
mod isolation;
mod mirrors;
mod network;
mod promote;
mod rehearse;
mod scale;
mod serve;
mod snapshot;
mod support;
