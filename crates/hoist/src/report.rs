//! Findings and how they are printed: one line each for people, or JSON. The type lives in
//! `hoist-gate`, which makes most of them.

pub use hoist_gate::{Finding, sort};
