//! The image copier: copies one image (a manifest, or an index with all its children) from any
//! [`Source`](hoist_store::Source) to any [`Sink`](hoist_store::Sink), then points tags at it.
//!
//! A [`Copier`] is made for one source and one destination store and runs [`CopyRequest`]s (which
//! may run concurrently, and share work). The promises, each tested against real registries:
//!
//! - **Digests are preserved**: manifests are fetched by digest and their exact bytes pushed back.
//! - **Blobs are verified while streaming**: every blob flows through a
//!   [`VerifyingStream`](hoist_store::VerifyingStream) (its one sha256: the sink is handed a
//!   verified stream and hashes nothing again); a mismatch aborts the upload and fails the
//!   image with [`CopyErrorKind::DigestMismatch`], without a retry.
//! - **Nothing is done twice**: a blob or manifest the destination has is skipped after a `HEAD`;
//!   within one source store blobs are mounted across repositories, and a blob the copier already
//!   saw in one destination repository is mounted into the others (images sharing base layers);
//!   a blob that several requests need at once is uploaded once (the others wait for that upload).
//! - **Commit order** blobs → child manifests → index → tags, so a failure never leaves a tag
//!   pointing at something incomplete, and running the copy again finishes it.
//! - **Tags never move**: a destination tag pointing elsewhere fails with
//!   [`CopyErrorKind::TagMove`].
//! - **Attached artifacts**: cosign tags (`sha256-<hex>.sig`, `.att`, `.sbom`) and the OCI referrers
//!   tag-schema fallback (`sha256-<hex>`) of the copied digest are copied along when the source has
//!   them; so are the referrers the source's OCI referrers API lists, when it has one.
//!
//! - **Each blob read once**: copiers given one [`Spool`] share every source blob: it is read from
//!   the source once, verified once, and every destination (and blob mirror) that needs it reads
//!   the spooled copy, each at its own pace; a retried upload reads the spool, not the source.
//!
//! [`manifest::references`] tells what a manifest references (for plans that count blobs).
//!
//! [`Progress`] receives [`ProgressEvent`]s for bars and logs; [`CopyReport`] counts what was done.

mod blobs;
mod copier;
mod error;
pub mod manifest;
mod progress;
mod spool;

pub use copier::{AttachedArtifact, Copier, CopyOptions, CopyReport, CopyRequest};
pub use error::{CopyError, CopyErrorKind};
pub use progress::{BlobOutcome, Progress, ProgressEvent};
pub use spool::{
    Admission, DEFAULT_CAPACITY, DEFAULT_STREAMS, Spool, SpoolOptions, SpoolStats, StreamSlot,
};
