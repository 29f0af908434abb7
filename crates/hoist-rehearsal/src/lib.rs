//! Release rehearsals: promote into the registry of a local cluster (kind, k3d, minikube) before
//! the real promotion.
//!
//! A local cluster publishes its registry in the `local-registry-hosting` ConfigMap of KEP-1755
//! (namespace `kube-public`), which Tilt and ctlptl already read. [`LocalRegistryHosting::parse`]
//! reads it as kubectl prints it (YAML or JSON) and takes the newest `localRegistryHosting.vN`
//! hoist knows. [`redirect`] then rewrites the promotion edges so that every image goes to
//! `<host>/<image>` instead of its destinations: the rest of the promotion (checks, plan,
//! execution) is unchanged, which is the point of a rehearsal. [`is_loopback_host`] is the rule
//! for plain HTTP: only a registry on this machine is spoken to without TLS.
//!
//! Pure and synchronous: no network, no cluster access (reading the ConfigMap from a cluster is
//! the binary's business).

mod error;
mod hosting;
mod redirect;

pub use error::RehearsalError;
pub use hosting::{CONFIG_MAP_NAME, CONFIG_MAP_NAMESPACE, KNOWN_VERSIONS, LocalRegistryHosting};
pub use redirect::{is_loopback_host, redirect};
