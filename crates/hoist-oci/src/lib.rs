//! The OCI vocabulary every other hoist crate speaks.
//!
//! Each type here is a *validated* newtype: once you hold a [`Digest`], a [`Tag`], a
//! [`RepositoryPath`] or a [`RegistryName`], it is known to be well formed, so no later stage has to
//! check again. Parsing returns a [`NameError`] that says what was expected.
//!
//! - [`Digest`]: `sha256:` + 64 lowercase hex digits, stored as 32 bytes (cheap to copy and hash;
//!   the promotion corpus holds about a million edges).
//! - [`Tag`]: `^\w[\w.-]{0,127}$`, the OCI distribution-spec tag grammar.
//! - [`RepositoryPath`]: an image name inside a registry (`kube-apiserver`, `kubernetes/pause`).
//! - [`RegistryName`]: where images are promoted to or from (`gcr.io/k8s-staging-foo`,
//!   `us-west1-docker.pkg.dev/k8s-artifacts-prod/images`), a host with an optional path prefix.
//! - [`media_types`]: the manifest media types hoist understands.
//! - [`manifest_kind`]: whether a manifest is an image or an index, refusing documents that could
//!   be read as both (CVE-2021-41190).

mod digest;
mod document;
pub mod media_types;
mod names;

pub use digest::{Digest, DigestError};
pub use document::{AmbiguousManifest, ManifestKind, manifest_kind};
pub use names::{NameError, OCI_LAYOUT_PREFIX, Reference, RegistryName, RepositoryPath, Tag};
