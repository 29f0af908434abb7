//! `hoist serve`: the registry.k8s.io redirector over hoist's catalogue of blob mirrors.
//!
//! A pull through registry.k8s.io never gets bytes from the redirector: every registry request
//! is answered with a `307 Temporary Redirect`, blob requests to the mirror (bucket) of the
//! client's region when it holds the blob, everything else to the upstream registry. The rules
//! are those of archeio (kubernetes/registry.k8s.io, `cmd/archeio`), one small handler each
//! (`handlers.rs`):
//!
//! | request                                   | answer                                              |
//! |-------------------------------------------|-----------------------------------------------------|
//! | not `GET` or `HEAD`                       | 405                                                 |
//! | `/`                                       | 307 to the info URL                                 |
//! | `/v2/`, `/v2`                             | 200, `Docker-Distribution-Api-Version: registry/2.0`, never 401 |
//! | `/v2/_catalog`                            | 404                                                 |
//! | `/v2/<name>/blobs/<algorithm>:<encoded>`  | 307 to `<mirror>/containers/images/<digest>` if a `HEAD` there answers 200, else to the upstream; clients in the upstream's own cloud always to the upstream; 400 when the client address cannot be told |
//! | `/v2/<name>/manifests/sha256-<hex>.sig` (`.att`) | 307 to the signature upstream, when one is set |
//! | any other `/v2/…`                         | 307 to `upstream + path.Join("/v2/", upstream_path, rest)` (query kept) |
//! | anything else                             | 404                                                 |
//!
//! hoist adds `/healthz`, Prometheus `/metrics` ([`metrics`]), a structured access log (tracing
//! target `hoist_serve::access`), and serves two things itself under `/_hoist/`, so that a whole
//! pull works with no cloud and no other server: the blobs of `file:` mirrors
//! (`/_hoist/mirrors/<backend>/containers/images/<digest>`) and, when the upstream is an OCI
//! layout directory (`oci:DIR`), a read-only registry API over it (`/_hoist/upstream/v2/…`).
//!
//! The parts: [`client`] tells the client address (`X-Forwarded-For` only from a trusted load
//! balancer); [`ranges`] places it in a cloud region from the AWS and Google IP range files (a
//! prefix trie); [`mirrors`] picks the backend of that region from the catalogue (labels `cloud`,
//! `region`; a default for everyone else); [`blobs`] asks the backend whether it has the blob
//! (cached); [`paths`] builds every `Location`. [`Redirector`] puts them together as an axum
//! router; the binary only parses flags, binds the socket and waits for SIGTERM.

pub mod blobs;
pub mod client;
mod error;
mod handlers;
mod layout;
pub mod metrics;
pub mod mirrors;
pub mod paths;
pub mod ranges;
mod router;

use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use ipnet::IpNet;

pub use blobs::{BlobChecker, DEFAULT_CACHE_CAPACITY, DEFAULT_CHECK_TIMEOUT, Presence};
pub use client::{ClientAddressError, TrustedProxies, client_address};
pub use error::ServeError;
pub use metrics::{Metrics, Outcome, Route};
pub use mirrors::{FILE_MIRROR_PATH, Mirror, MirrorTarget, Mirrors};
pub use ranges::{CloudRegion, RegionMap};

/// Where the OCI layout upstream is served: `/_hoist/upstream/v2/…`.
pub const LAYOUT_UPSTREAM_PATH: &str = "/_hoist/upstream";

/// The info page `/` redirects to by default (registry.k8s.io's).
pub const DEFAULT_INFO_URL: &str = "https://github.com/kubernetes/k8s.io/tree/main/registry.k8s.io";

/// The registry everything but mirrored blobs is sent to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Upstream {
    /// A registry at this base URL (`https://us-central1-docker.pkg.dev`), no trailing `/`.
    Registry(String),
    /// An OCI layout directory (one layout per repository, like `oci:` destinations), served by
    /// hoist itself under [`LAYOUT_UPSTREAM_PATH`].
    Layout(PathBuf),
}

impl Upstream {
    /// `http(s)://host[:port][/path]` or `oci:DIR`.
    pub fn parse(text: &str) -> Result<Self, ServeError> {
        if let Some(directory) = text.strip_prefix("oci:") {
            if directory.is_empty() {
                return Err(ServeError::config(text, "oci: needs a directory"));
            }
            return Ok(Self::Layout(PathBuf::from(directory)));
        }
        parse_base_url(text).map(Self::Registry)
    }
}

/// Checks an `http(s)://` base URL and drops its trailing `/`.
pub fn parse_base_url(text: &str) -> Result<String, ServeError> {
    let url = url::Url::parse(text).map_err(|error| {
        ServeError::config(
            text,
            format!("not a URL ({error}); expected http(s)://HOST[/PATH]"),
        )
    })?;
    if !matches!(url.scheme(), "http" | "https") || url.host().is_none() {
        return Err(ServeError::config(
            text,
            "expected an http:// or https:// URL with a host",
        ));
    }
    if url.query().is_some()
        || url.fragment().is_some()
        || !url.username().is_empty()
        || url.password().is_some()
    {
        return Err(ServeError::config(
            text,
            "the URL must have no credentials, query or fragment",
        ));
    }
    Ok(text.trim_end_matches('/').to_owned())
}

/// Everything the redirector needs; [`ServeConfig::new`] sets the defaults.
#[derive(Debug)]
pub struct ServeConfig {
    /// Where everything but mirrored blobs goes.
    pub upstream: Upstream,
    /// Inserted after `/v2/` in upstream URLs (`k8s-artifacts-prod/images`); empty for none.
    pub upstream_path: String,
    /// Where cosign `sha256-<hex>.sig`/`.att` tags go (base URL), when set.
    pub signature_upstream: Option<String>,
    /// Where `/` redirects.
    pub info_url: String,
    /// The cloud the upstream runs in: its clients get blobs from the upstream. `None`: no cloud.
    pub upstream_cloud: Option<String>,
    /// The load balancers whose `X-Forwarded-For` is believed.
    pub trusted_load_balancers: Vec<IpNet>,
    /// Address ranges of cloud regions.
    pub regions: RegionMap,
    /// The mirrors clients are sent to.
    pub mirrors: Mirrors,
    /// How long a mirror has to answer an existence `HEAD`.
    pub blob_check_timeout: Duration,
    /// How many positive existence answers are cached.
    pub blob_cache_capacity: u64,
}

impl ServeConfig {
    /// Defaults: no upstream path, no signature upstream, registry.k8s.io's info URL, the
    /// upstream in `gcp` (registry.k8s.io's upstream is Artifact Registry), no trusted load
    /// balancer, no regions, no mirrors, 5 s checks, 100,000 cached answers.
    pub fn new(upstream: Upstream) -> Self {
        Self {
            upstream,
            upstream_path: String::new(),
            signature_upstream: None,
            info_url: DEFAULT_INFO_URL.to_owned(),
            upstream_cloud: Some(ranges::GCP.to_owned()),
            trusted_load_balancers: Vec::new(),
            regions: RegionMap::new(),
            mirrors: Mirrors::none(),
            blob_check_timeout: DEFAULT_CHECK_TIMEOUT,
            blob_cache_capacity: DEFAULT_CACHE_CAPACITY,
        }
    }
}

/// The redirector: an axum router over shared state.
#[derive(Debug, Clone)]
pub struct Redirector {
    state: Arc<router::State>,
}

impl Redirector {
    /// Builds the redirector (no I/O).
    pub fn new(config: ServeConfig) -> Self {
        Self {
            state: Arc::new(router::State::new(config)),
        }
    }

    /// The metrics it counts into.
    pub fn metrics(&self) -> &Metrics {
        &self.state.metrics
    }

    /// The router, for serving or for calling in-process (then insert a
    /// `ConnectInfo<SocketAddr>` extension to give the peer address).
    pub fn router(&self) -> axum::Router {
        router::router(Arc::clone(&self.state))
    }

    /// Serves on `listener` until `shutdown` completes, then stops accepting, lets the requests
    /// in flight finish and returns.
    pub async fn serve(
        &self,
        listener: tokio::net::TcpListener,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> Result<(), ServeError> {
        use axum::serve::ListenerExt as _;
        let address = listener
            .local_addr()
            .map_or_else(|_| "the listener".to_owned(), |address| address.to_string());
        let listener = listener.tap_io(|stream| {
            // Redirects are tiny: send them at once.
            let _ = stream.set_nodelay(true);
        });
        axum::serve(
            listener,
            self.router()
                .into_make_service_with_connect_info::<SocketAddr>(),
        )
        .with_graceful_shutdown(shutdown)
        .await
        .map_err(|source| ServeError::io(address, source))
    }
}
