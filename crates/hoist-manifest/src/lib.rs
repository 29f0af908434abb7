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
//!
//! Inside, each file goes through three stages: `yaml` builds a tree with positions from the
//! `yaml-rust2` event parser (the plain `Yaml` type forgets positions and duplicate keys),
//! `decode`/`registries`/`images` turn the tree into the model by hand, reporting as they go,
//! and `layout` finds the files of a thin layout and reports the ones out of place.
//!
//! Key paths name the entry as the promoter sees it: `registries[1].src`,
//! `images[3].dmap["sha256:…"][0]` (a tag). A thin `images.yaml` is a bare list; its entries are
//! still called `images[N]`, so one message reads the same in both layouts.

mod decode;
mod images;
mod layout;
mod loader;
mod model;
mod registries;
mod report;
pub mod snapshot;

pub use loader::load;
pub use model::{
    Diagnostic, DigestTags, Image, Input, LoadError, Loaded, Location, Manifest, Registry, Severity,
};
