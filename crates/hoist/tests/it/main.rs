//! End-to-end tests of the `hoist` binary.

mod check_base;
mod check_corpus;
mod check_plain;
mod example;
mod mirrors;
mod promote;
mod scale;
mod support;
