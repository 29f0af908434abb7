//! Which rule answers a request (in archeio's order), and the access log and metrics around it.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Instant;

use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::{Method, Request};
use axum::response::Response;
use hoist_layout::LayoutStore;

use crate::blobs::BlobChecker;
use crate::client::TrustedProxies;
use crate::handlers;
use crate::metrics::{Metrics, Outcome, Route};
use crate::mirrors::{FILE_MIRROR_PATH, Mirrors};
use crate::paths;
use crate::ranges::RegionMap;
use crate::{LAYOUT_UPSTREAM_PATH, ServeConfig, Upstream};

/// Everything a request may need, shared by all requests.
#[derive(Debug)]
pub(crate) struct State {
    pub(crate) upstream: Upstream,
    pub(crate) upstream_path: String,
    pub(crate) signature_upstream: Option<String>,
    pub(crate) info_url: String,
    pub(crate) upstream_cloud: Option<String>,
    pub(crate) trusted: TrustedProxies,
    pub(crate) regions: RegionMap,
    pub(crate) mirrors: Mirrors,
    pub(crate) checker: BlobChecker,
    pub(crate) metrics: Arc<Metrics>,
    /// The layout upstream, when the upstream is one.
    pub(crate) layout: Option<LayoutStore>,
}

impl State {
    pub(crate) fn new(config: ServeConfig) -> Self {
        let metrics = Arc::new(Metrics::new());
        let layout = match &config.upstream {
            Upstream::Layout(directory) => Some(LayoutStore::open(directory)),
            Upstream::Registry(_) => None,
        };
        Self {
            checker: BlobChecker::new(
                config.blob_check_timeout,
                config.blob_cache_capacity,
                config.mirrors.all().len(),
                Arc::clone(&metrics),
            ),
            upstream: config.upstream,
            upstream_path: config.upstream_path,
            signature_upstream: config.signature_upstream,
            info_url: config.info_url,
            upstream_cloud: config.upstream_cloud,
            trusted: TrustedProxies::new(config.trusted_load_balancers),
            regions: config.regions,
            mirrors: config.mirrors,
            metrics,
            layout,
        }
    }
}

/// What a rule answered, and why (for the access log and the metrics).
#[derive(Debug)]
pub struct Answer {
    /// The response.
    pub response: Response,
    /// The rule.
    pub route: Route,
    /// What it did.
    pub outcome: Outcome,
    /// The mirror involved, if any.
    pub backend: Option<Arc<str>>,
    /// The client address, when it was needed and known.
    pub client: Option<IpAddr>,
}

impl Answer {
    pub(crate) fn new(response: Response, route: Route, outcome: Outcome) -> Self {
        Self {
            response,
            route,
            outcome,
            backend: None,
            client: None,
        }
    }
}

/// What a handler knows of the request (its body is apart: it is not `Sync`, and only the
/// file mirror passes it on).
#[derive(Debug)]
pub(crate) struct Incoming {
    pub(crate) request: http::request::Parts,
    /// The decoded path.
    pub(crate) path: String,
    pub(crate) peer: Option<SocketAddr>,
}

impl Incoming {
    pub(crate) fn query(&self) -> Option<&str> {
        self.request.uri.query()
    }
}

pub(crate) fn router(state: Arc<State>) -> axum::Router {
    axum::Router::new().fallback(handle).with_state(state)
}

async fn handle(
    axum::extract::State(state): axum::extract::State<Arc<State>>,
    request: Request<Body>,
) -> Response {
    let state = &*state;
    let started = Instant::now();
    let peer = request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|info| info.0);
    let method = request.method().clone();
    let raw_path = request.uri().path().to_owned();
    let answer = dispatch(state, peer, request).await;
    let elapsed = started.elapsed();
    state
        .metrics
        .request(answer.route, answer.outcome, elapsed.as_secs_f64());
    let location = answer
        .response
        .headers()
        .get(http::header::LOCATION)
        .and_then(|value| value.to_str().ok());
    tracing::info!(
        target: "hoist_serve::access",
        method = %method,
        path = %raw_path,
        status = answer.response.status().as_u16(),
        route = answer.route.as_str(),
        outcome = answer.outcome.as_str(),
        peer = peer.map(|peer| tracing::field::display(peer.ip().to_canonical())),
        client = answer.client.map(tracing::field::display),
        backend = answer.backend.as_deref(),
        location,
        micros = elapsed.as_micros() as u64,
        "request"
    );
    answer.response
}

/// archeio's order: the method, then `/v2…`, then `/`, else 404; hoist's own paths before `/v2`.
async fn dispatch(state: &State, peer: Option<SocketAddr>, request: Request<Body>) -> Answer {
    if request.method() != Method::GET && request.method() != Method::HEAD {
        return handlers::method_not_allowed();
    }
    // Matched decoded, like Go's r.URL.Path.
    let Ok(path) = percent_encoding::percent_decode_str(request.uri().path()).decode_utf8() else {
        return handlers::bad_request(Route::Unknown, "the path is not UTF-8 once decoded");
    };
    let path = path.into_owned();
    let (request, body) = request.into_parts();
    let incoming = Incoming {
        path,
        request,
        peer,
    };
    let path = incoming.path.as_str();
    if paths::is_registry_api(path) {
        return registry_api(state, incoming).await;
    }
    match path {
        "/" => handlers::info(&state.info_url),
        "/healthz" => handlers::health(),
        "/metrics" => handlers::metrics(&state.metrics),
        _ if path.starts_with(FILE_MIRROR_PATH) => {
            handlers::file_mirror(state, incoming, body).await
        }
        _ if state.layout.is_some()
            && path
                .strip_prefix(LAYOUT_UPSTREAM_PATH)
                .is_some_and(|rest| rest.starts_with('/')) =>
        {
            crate::layout::serve(state, incoming).await
        }
        _ => handlers::not_found(Route::Unknown),
    }
}

async fn registry_api(state: &State, incoming: Incoming) -> Answer {
    let path = incoming.path.as_str();
    if path == "/v2/" || path == "/v2" {
        return handlers::api_version();
    }
    if path == "/v2/_catalog" {
        return handlers::catalog();
    }
    if let Some(digest) = paths::blob_digest(path) {
        let digest = digest.to_owned();
        return handlers::blob(state, &incoming, &digest).await;
    }
    if let Some(signature_upstream) = &state.signature_upstream
        && paths::is_cosign_tag(path)
    {
        return handlers::signature(state, signature_upstream, &incoming);
    }
    handlers::upstream(state, &incoming, Route::Upstream, Outcome::Upstream)
}
