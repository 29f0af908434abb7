//! Dev-only test kit for hoist: real servers on 127.0.0.1, random images, a copy validator and a
//! fault-injecting proxy. Other crates use it as a dev-dependency; benchmarks use it too.
//!
//! It deliberately does not depend on `hoist-registry` (the code under test): it speaks to
//! registries with plain `reqwest`, so an independent client checks every copy.
//!
//! - [`RegistryServer`] runs Debian's `docker-registry` (distribution 2.8) on a free port with
//!   its own storage: plain HTTP, basic auth ([`RegistryOptions::with_basic_auth`]) or TLS with a
//!   throwaway CA ([`RegistryOptions::with_tls`]). It keeps the access log so tests can count
//!   requests, and can be killed and restarted on the same storage.
//! - [`S3Server`] (s3s-fs) and [`GcsServer`] (fake-gcs-server) are object stores for the blob
//!   mirror tests; `ci/install-mirror-servers.sh` installs both. [`S3Server::anonymous_view`]
//!   serves the same buckets without credentials (a public bucket) and logs every request.
//! - [`ContainerdServer`] runs Debian's `containerd` on a private socket, a real client that
//!   pulls through `ctr --address`.
//! - [`Endpoint`] says how to reach a registry (host, scheme, credentials, CA); servers and the
//!   proxy hand them out.
//! - [`ImageBuilder`] makes seeded random images: gzip'd tar [`Layer`]s generated on the fly,
//!   OCI or Docker manifests, multi-arch indexes, shared layers, and cosign-style signatures
//!   ([`signature_for`]). Every [`Image`] carries its descriptors and raw manifest bytes.
//! - [`push`] uploads an image (HEAD, POST, PUT; layers streamed).
//! - [`validate_copy`] and [`validate_tag`] check that a copy is faithful: identical manifest
//!   bytes and every blob present with the right size and sha256.
//! - [`FaultProxy`] sits in front of a registry and corrupts bytes, answers 429 or 500, or drops
//!   connections mid-body, as [`Faults`] say; it can also play a wide-area link (latency each
//!   way, a bandwidth cap per connection) and a registry's [`Quota`] (429 above K concurrent
//!   requests or R requests per second).
//! - [`SilentServer`] accepts connections and never answers, for timeout tests.
//! - [`skopeo_inspect_raw`] asks skopeo for a manifest, as a second opinion.
//! - [`RegistryDouble`] serves the reads of a promotion inventory for a whole fleet of
//!   registries from memory (a [`Population`]; [`twin_corpus`] makes one from a real manifest
//!   tree, "already promoted"), with latency, a 429 quota and request counts: for scale tests
//!   and `ci/bench-reconcile.sh`, in addition to the real registry:2.

mod double;
mod endpoint;
mod error;
mod image;
mod proxy;
mod push;
mod servers;
mod skopeo;
mod validate;

pub use double::{
    DoubleOptions, DoubleQuota, ManifestBody, Population, RegistryDouble, Removed, Repository,
    RequestCounts, RequestKind, TwinCorpus, remove_some, twin_corpus, twin_manifest,
};
pub use endpoint::{Credentials, Endpoint};
pub use error::{Error, Result};
pub use image::{
    Blob, BlobContent, Descriptor, Format, Image, ImageBuilder, Layer, Platform, layer_types,
    signature_for,
};
pub use proxy::{
    BlobSelector, FaultProxy, Faults, InjectedFault, ProxiedRequest, ProxyOptions, Quota,
};
pub use push::{PushSummary, blob_exists, delete_blob, push, push_blob, push_manifest};
pub use servers::{
    AccessLogEntry, ContainerdServer, GcsServer, RegistryOptions, RegistryServer, S3Request,
    S3Server, SilentServer,
};
pub use skopeo::skopeo_inspect_raw;
pub use validate::{
    FetchedManifest, Report, fetch_manifest, hash_blob, validate_copy, validate_tag,
};
