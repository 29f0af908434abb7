//! A promotion run: from the edges of the manifests to images in every destination.
//!
//! The flow is plan → policy gate → execute, and the dry run stops after the gate:
//!
//! 1. [`plan()`] reads what each destination repository holds ([`inventory`]) and classifies every
//!    (destination, digest) the manifests promote as a [`Step`]: [`Action::Skip`] (already there),
//!    [`Action::Tag`] (tags to add to a present digest) or [`Action::Copy`]. Tag moves, digests
//!    lost from the source, policy refusals and unreadable repositories become [`Problem`]s; a
//!    problem refuses the project (promoter manifest) it belongs to, so nothing of a project is
//!    half-written (see [`admission`]).
//! 2. [`execute()`] runs the steps that write with one [`hoist_copy::Copier`] per store pair,
//!    concurrently, collecting per-step failures ([`Execution`]), and fills the blob mirrors in
//!    the same pass: one [`hoist_copy::Spool`] reads each source blob once for all of them.
//!
//! [`Stores`] opens the store behind each registry name: registries over HTTP(S)
//! (`hoist-registry`) and `oci:PATH` layouts on disk (`hoist-layout`).
//!
//! Per-project isolation ([`admission`]): each problem is attributed to the projects (promoter
//! manifests) whose edges make it ([`problem_manifests`]); [`admit`] gives the plan without what
//! refused projects want, which is what runs. `hoist-gate` decides which projects are refused.
//!
//! Blob mirrors (`hoist-object`) come after the registries: [`read_images`] reads every promoted
//! image's manifests and blobs (not only the copied ones), [`mirrors::survey`] tells what a
//! mirror lacks and [`execute()`] with a [`MirrorWork`] writes it. [`audit`] proves, read-only,
//! that every destination and mirror holds exactly what the manifests promote.

pub mod admission;
pub mod audit;
mod execute;
mod images;
pub mod inventory;
pub mod mirrors;
pub mod plan;
mod stores;

pub use admission::{admit, problem_manifests};
pub use execute::{ExecuteOptions, Execution, MirrorWork, StepCallback, StepFailure, execute};
pub use images::{PromotedImage, read_images};
pub use inventory::{Measured, PlanOptions, Planned, measure, plan};
pub use mirrors::{Mirror, MirrorSummary};
pub use plan::{Action, ImageSize, Plan, Problem, RegistryTotals, SourceImage, Step};
pub use stores::{Located, StoreConfig, Stores};
