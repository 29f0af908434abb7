//! Promoter manifests: the formats the Kubernetes image promoter (kpromo `cip`) reads.
//!
//! - Plain manifest (`--manifest FILE`): `registries:` and `images:` in one file.
//! - Thin layout (`--thin-manifest-dir DIR`): `DIR/manifests/<p>/promoter-manifest.yaml` (registries)
//!   with `DIR/images/<p>/images.yaml` (a list of images).
//!
//! [`load`] reads any number of [`Input`]s strictly (unknown and duplicate keys are errors) and
//! validates them, collecting every finding as a [`Diagnostic`] that names file, line, column, key
//! path and value. The result is a [`Loaded`]: the valid [`Manifest`]s and the diagnostics.
//! [`snapshot`] writes images back out in a stable, byte-for-byte reproducible form.

mod model;

pub use model::{
    Diagnostic, DigestTags, Image, Input, Loaded, Location, Manifest, Registry, Severity,
};
