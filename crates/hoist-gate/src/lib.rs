//! The one gate: what `hoist check` (the presubmit) and `hoist promote` (the postsubmit) refuse,
//! decided by the same code.
//!
//! - [`Gate`] judges writes (freezes, allowed destinations), tag moves and removals against the
//!   policies, for a change of manifests ([`Gate::change`], with `check --base`) and for what a
//!   promotion would write ([`Gate::write`]); [`Gate::changed_files`] applies blockades.
//! - [`Comparison`] compares the manifests with a base revision, loading and crossing again only
//!   what a change touches: the changes ([`Comparison::changes`]) that `check --base` judges and
//!   the added edges ([`Comparison::added`]) that `--since` runs.
//! - [`ratchet::Base`] splits findings into those a change introduces or touches and the
//!   pre-existing ones, which do not fail a check.
//! - [`Projects`] isolates projects (promoter manifests): a problem refuses its own project, a
//!   conflict both projects, and everything else goes on.
//! - [`Finding`] is how all of them report, one line for people or JSON.
//!
//! Pure and synchronous: no I/O beyond what its inputs already hold (the binary runs git and
//! reads files; `hoist-promote` reads registries).

mod comparison;
mod finding;
mod judge;
mod projects;
pub mod ratchet;

pub use comparison::Comparison;
pub use finding::{Finding, sort};
pub use judge::{Gate, Verdict, write_refusal};
pub use projects::{Project, ProjectId, Projects};
pub use ratchet::{Base, FileChange, Ratcheted};
