//! [`RegistryDouble`]: a large-registry double for scale tests and benchmarks, in addition to the
//! real `registry:2` (never instead of it).
//!
//! It answers the OCI distribution reads a promoter needs for a whole fleet of registries at
//! once, from a [`Population`] held in memory (the real corpus, "already promoted", comes from
//! [`twin_corpus`]):
//!
//! - `GET /v2/`;
//! - `GET /v2/<name>/tags/list`, with `n`/`last` and `Link: <…>; rel="next"` paging, and the
//!   GCR / Artifact Registry `manifest` map (digest → tags, media type, size) that tells every
//!   tag's digest in the listing itself;
//! - `HEAD` and `GET /v2/<name>/manifests/<tag or digest>`, with `Docker-Content-Digest`,
//!   `Content-Type` and `Content-Length`; the bytes of a `GET` always hash to the digest.
//!
//! Anything else is refused (`405` for writes: the double is read-only; `404` otherwise).
//! Options add a fixed latency to every answer and a per-host request quota: past `requests`
//! in a window of `per`, a host answers `429 Too Many Requests` with `Retry-After` (the seconds
//! left in the window), as Artifact Registry's per-project, per-region quota does. Every request
//! is counted by kind, host and repository ([`RequestCounts`]).
//!
//! One process serves every host of the population: each host has its own port (for clients
//! that map a registry name to an endpoint), and one more port routes by the `Host` header.

mod corpus;
mod population;

use std::collections::{BTreeMap, HashMap};
use std::convert::Infallible;
use std::net::SocketAddr;
use std::ops::Bound;
use std::sync::{Arc, Mutex, MutexGuard, RwLock};
use std::time::{Duration, Instant};

use bytes::Bytes;
use hoist_oci::Digest;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::{Method, Request, Response, StatusCode, header};
use hyper_util::rt::TokioIo;

pub use self::corpus::{Removed, TwinCorpus, remove_some, twin_corpus, twin_manifest};
pub use self::population::{ManifestBody, Population, Repository};
use crate::endpoint::Endpoint;
use crate::error::{Error, Result};

/// How the double behaves; every field can be changed while it runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DoubleOptions {
    /// Added before every answer (429s included), like a network round trip.
    pub latency: Duration,
    /// Per host: at most this many requests per window; past it, 429 with `Retry-After`.
    pub quota: Option<DoubleQuota>,
    /// Tags per `tags/list` page when the client asks for more (or does not say); `None` puts
    /// every tag on one page, as GCR and Artifact Registry do.
    pub page_size: Option<usize>,
    /// Whether `tags/list` carries the GCR / Artifact Registry `manifest` map.
    pub manifest_map: bool,
}

impl Default for DoubleOptions {
    fn default() -> Self {
        Self {
            latency: Duration::ZERO,
            quota: None,
            page_size: None,
            manifest_map: true,
        }
    }
}

/// A request quota: `requests` per fixed window of `per`, per host.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DoubleQuota {
    /// Requests allowed in one window.
    pub requests: u64,
    /// The window.
    pub per: Duration,
}

/// What a request asked for.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "kebab-case")]
pub enum RequestKind {
    /// `GET /v2/`.
    Ping,
    /// One page of `tags/list`.
    TagList,
    /// `HEAD` of a manifest by tag.
    HeadTag,
    /// `HEAD` of a manifest by digest.
    HeadDigest,
    /// `GET` of a manifest by tag.
    GetTag,
    /// `GET` of a manifest by digest.
    GetDigest,
    /// The referrers API (answered 404: the double has none).
    Referrers,
    /// Anything else (refused).
    Other,
}

/// Requests seen since the start or the last [`RegistryDouble::reset_counts`].
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct RequestCounts {
    /// Every request, answered or throttled.
    pub total: u64,
    /// Requests answered (not throttled), by kind.
    pub by_kind: BTreeMap<RequestKind, u64>,
    /// Requests answered 429 because of the quota.
    pub throttled: u64,
    /// Every request, by host.
    pub by_host: BTreeMap<String, u64>,
    /// Requests answered (not throttled) by repository (`HOST/PATH`), for those that name one.
    pub by_repository: BTreeMap<String, u64>,
    /// The most requests one host received within one quota window, throttled ones included (0
    /// without a quota): how far past the quota clients pushed.
    pub peak_per_window: u64,
}

impl RequestCounts {
    /// Answered requests of one kind.
    pub fn of(&self, kind: RequestKind) -> u64 {
        self.by_kind.get(&kind).copied().unwrap_or(0)
    }
}

/// One host's quota window.
#[derive(Debug, Clone, Copy)]
struct Window {
    started: Instant,
    requests: u64,
}

#[derive(Debug)]
struct Shared {
    population: RwLock<Population>,
    options: Mutex<DoubleOptions>,
    windows: Mutex<HashMap<String, Window>>,
    counts: Mutex<RequestCounts>,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // Nothing panics while holding these locks; a poisoned one still holds valid data.
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// A running double on `127.0.0.1`; stops accepting connections when dropped.
#[derive(Debug)]
pub struct RegistryDouble {
    shared: Arc<Shared>,
    /// Host -> its own listener.
    addresses: BTreeMap<String, SocketAddr>,
    /// The listener that routes by `Host`.
    routed: SocketAddr,
    accept_loops: Vec<tokio::task::JoinHandle<()>>,
}

impl RegistryDouble {
    /// Starts serving `population`: one port per host, one more routed by `Host`. Must be called
    /// within a tokio runtime.
    pub async fn start(population: Population, options: DoubleOptions) -> Result<Self> {
        let hosts: Vec<String> = population.hosts().map(str::to_owned).collect();
        let shared = Arc::new(Shared {
            population: RwLock::new(population),
            options: Mutex::new(options),
            windows: Mutex::default(),
            counts: Mutex::default(),
        });
        let mut accept_loops = Vec::new();
        let mut addresses = BTreeMap::new();
        for host in hosts {
            let (listener, address) = bind().await?;
            accept_loops.push(tokio::spawn(accept(
                listener,
                Arc::clone(&shared),
                Some(host.clone()),
            )));
            addresses.insert(host, address);
        }
        let (listener, routed) = bind().await?;
        accept_loops.push(tokio::spawn(accept(listener, Arc::clone(&shared), None)));
        Ok(Self {
            shared,
            addresses,
            routed,
            accept_loops,
        })
    }

    /// `http://127.0.0.1:PORT`: where requests for `host` go.
    pub fn url(&self, host: &str) -> Option<String> {
        self.addresses
            .get(host)
            .map(|address| format!("http://{address}"))
    }

    /// The plain-HTTP endpoint serving `host`.
    pub fn endpoint(&self, host: &str) -> Option<Endpoint> {
        self.addresses
            .get(host)
            .map(|address| Endpoint::http(address.to_string()))
    }

    /// Every host with its URL, sorted by host.
    pub fn urls(&self) -> BTreeMap<String, String> {
        self.addresses
            .iter()
            .map(|(host, address)| (host.clone(), format!("http://{address}")))
            .collect()
    }

    /// The listener that serves every host, chosen by the request's `Host` header.
    pub fn routed_address(&self) -> SocketAddr {
        self.routed
    }

    /// The requests seen so far.
    pub fn counts(&self) -> RequestCounts {
        lock(&self.shared.counts).clone()
    }

    /// Forgets the requests seen so far (and the quota windows).
    pub fn reset_counts(&self) {
        *lock(&self.shared.counts) = RequestCounts::default();
        lock(&self.shared.windows).clear();
    }

    /// Changes the options from the next request on.
    pub fn set_options(&self, options: DoubleOptions) {
        *lock(&self.shared.options) = options;
    }

    /// Changes what the double holds (hosts added now are only reachable by `Host` header).
    pub fn update<R>(&self, change: impl FnOnce(&mut Population) -> R) -> R {
        let mut population = self
            .shared
            .population
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        change(&mut population)
    }
}

impl Drop for RegistryDouble {
    fn drop(&mut self) {
        for accept_loop in &self.accept_loops {
            accept_loop.abort();
        }
    }
}

async fn bind() -> Result<(tokio::net::TcpListener, SocketAddr)> {
    let spawn_error = |source| Error::Spawn {
        program: "registry double listener".to_owned(),
        source,
    };
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0))
        .await
        .map_err(spawn_error)?;
    let address = listener.local_addr().map_err(spawn_error)?;
    Ok((listener, address))
}

async fn accept(listener: tokio::net::TcpListener, shared: Arc<Shared>, host: Option<String>) {
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        let shared = Arc::clone(&shared);
        let host = host.clone();
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |request| {
                let shared = Arc::clone(&shared);
                let host = host.clone();
                async move { Ok::<_, Infallible>(handle(&shared, host, request).await) }
            });
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

/// A parsed request path.
#[derive(Debug, PartialEq, Eq)]
enum Route<'a> {
    Ping,
    TagList { name: &'a str },
    Manifest { name: &'a str, reference: &'a str },
    Referrers { name: &'a str },
    Unknown,
}

fn route(path: &str) -> Route<'_> {
    let Some(rest) = path.strip_prefix("/v2/") else {
        return if path == "/v2" {
            Route::Ping
        } else {
            Route::Unknown
        };
    };
    if rest.is_empty() {
        return Route::Ping;
    }
    if let Some(name) = rest.strip_suffix("/tags/list") {
        return Route::TagList { name };
    }
    if let Some((name, reference)) = rest.rsplit_once("/manifests/") {
        return Route::Manifest { name, reference };
    }
    if let Some((name, _)) = rest.rsplit_once("/referrers/") {
        return Route::Referrers { name };
    }
    Route::Unknown
}

fn kind_of(method: &Method, route: &Route<'_>) -> RequestKind {
    match route {
        Route::Ping => RequestKind::Ping,
        Route::TagList { .. } => RequestKind::TagList,
        Route::Manifest { reference, .. } => {
            let by_digest = reference.starts_with("sha256:");
            match (method.as_str(), by_digest) {
                ("HEAD", false) => RequestKind::HeadTag,
                ("HEAD", true) => RequestKind::HeadDigest,
                ("GET", false) => RequestKind::GetTag,
                ("GET", true) => RequestKind::GetDigest,
                _ => RequestKind::Other,
            }
        }
        Route::Referrers { .. } => RequestKind::Referrers,
        Route::Unknown => RequestKind::Other,
    }
}

/// The host a request is for: the listener's, or the `Host` header (exact, then without port).
fn host_of(shared: &Shared, fixed: Option<String>, request: &Request<Incoming>) -> String {
    if let Some(host) = fixed {
        return host;
    }
    let header = request
        .headers()
        .get(header::HOST)
        .and_then(|value| value.to_str().ok())
        .unwrap_or("");
    let population = shared
        .population
        .read()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    if population.hosts().any(|host| host == header) {
        return header.to_owned();
    }
    header
        .rsplit_once(':')
        .map_or(header, |(name, _)| name)
        .to_owned()
}

async fn handle(
    shared: &Shared,
    fixed_host: Option<String>,
    request: Request<Incoming>,
) -> Response<Full<Bytes>> {
    let options = lock(&shared.options).clone();
    if !options.latency.is_zero() {
        tokio::time::sleep(options.latency).await;
    }
    let host = host_of(shared, fixed_host, &request);
    let path = request.uri().path().to_owned();
    let query = request.uri().query().unwrap_or("").to_owned();
    let route = route(&path);
    let kind = kind_of(request.method(), &route);

    let admitted = options.quota.map(|quota| admit(shared, &host, quota));
    let throttled = admitted.and_then(|(retry_after, _)| retry_after);
    {
        let mut counts = lock(&shared.counts);
        counts.total += 1;
        *counts.by_host.entry(host.clone()).or_default() += 1;
        if let Some((_, in_window)) = admitted {
            counts.peak_per_window = counts.peak_per_window.max(in_window);
        }
        if throttled.is_some() {
            counts.throttled += 1;
        } else {
            *counts.by_kind.entry(kind).or_default() += 1;
            let name = match route {
                Route::TagList { name }
                | Route::Manifest { name, .. }
                | Route::Referrers { name } => Some(name),
                Route::Ping | Route::Unknown => None,
            };
            if let Some(name) = name {
                *counts
                    .by_repository
                    .entry(format!("{host}/{name}"))
                    .or_default() += 1;
            }
        }
    }
    if let Some(retry_after) = throttled {
        let mut response = error(
            StatusCode::TOO_MANY_REQUESTS,
            "TOOMANYREQUESTS",
            "quota exceeded (the hoist registry double)",
        );
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, header::HeaderValue::from(retry_after));
        return response;
    }

    let method = request.method().clone();
    if method != Method::GET && method != Method::HEAD {
        return error(
            StatusCode::METHOD_NOT_ALLOWED,
            "UNSUPPORTED",
            "the registry double is read-only",
        );
    }
    let population = shared
        .population
        .read()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    match route {
        Route::Ping => {
            let mut response = Response::new(Full::new(Bytes::from_static(b"{}")));
            response.headers_mut().insert(
                "docker-distribution-api-version",
                header::HeaderValue::from_static("registry/2.0"),
            );
            response
        }
        Route::TagList { name } => match population.repository(&host, name) {
            Some(repository) => tag_list(&population, name, repository, &query, &options),
            None => error(
                StatusCode::NOT_FOUND,
                "NAME_UNKNOWN",
                "repository name not known to registry",
            ),
        },
        Route::Manifest { name, reference } => {
            let repository = population.repository(&host, name);
            let digest = repository.and_then(|repository| match Digest::parse(reference) {
                Ok(digest) => repository.manifests.contains(&digest).then_some(digest),
                Err(_) => repository.tags.get(reference).copied(),
            });
            let body = digest.and_then(|digest| Some((digest, population.body(&digest)?)));
            match body {
                Some((digest, body)) => manifest(&method, digest, body),
                None => error(
                    StatusCode::NOT_FOUND,
                    "MANIFEST_UNKNOWN",
                    "manifest unknown",
                ),
            }
        }
        Route::Referrers { .. } | Route::Unknown => {
            error(StatusCode::NOT_FOUND, "NOT_FOUND", "not found")
        }
    }
}

/// Counts a request against `host`'s window: `Some(seconds)` to wait when it is over quota, and
/// how many requests the window has seen, this one included.
fn admit(shared: &Shared, host: &str, quota: DoubleQuota) -> (Option<u64>, u64) {
    let now = Instant::now();
    let mut windows = lock(&shared.windows);
    let window = windows.entry(host.to_owned()).or_insert(Window {
        started: now,
        requests: 0,
    });
    let elapsed = now.duration_since(window.started);
    if elapsed >= quota.per {
        *window = Window {
            started: now,
            requests: 0,
        };
    }
    window.requests += 1;
    if window.requests <= quota.requests {
        return (None, window.requests);
    }
    let left = quota.per.saturating_sub(now.duration_since(window.started));
    (
        Some(left.as_secs_f64().ceil().max(1.0) as u64),
        window.requests,
    )
}

/// One page of `tags/list`.
fn tag_list(
    population: &Population,
    name: &str,
    repository: &Repository,
    query: &str,
    options: &DoubleOptions,
) -> Response<Full<Bytes>> {
    let parameters: HashMap<String, String> = url::form_urlencoded::parse(query.as_bytes())
        .into_owned()
        .collect();
    let asked = parameters.get("n").and_then(|n| n.parse::<usize>().ok());
    let limit = match (asked, options.page_size) {
        (Some(asked), Some(page)) => asked.min(page),
        (Some(asked), None) => asked,
        (None, page) => page.unwrap_or(usize::MAX),
    }
    .max(1);
    let last = parameters.get("last");
    let after = || {
        let start = match last {
            Some(last) => Bound::Excluded(last.as_str()),
            None => Bound::Unbounded,
        };
        repository.tags.range::<str, _>((start, Bound::Unbounded))
    };
    let page: Vec<(&String, &Digest)> = after().take(limit).collect();
    let more = after().nth(page.len()).is_some();

    let mut body = serde_json::json!({
        "name": name,
        "tags": page.iter().map(|(tag, _)| tag.as_str()).collect::<Vec<_>>(),
    });
    if options.manifest_map {
        let mut map: BTreeMap<Digest, Vec<&str>> = BTreeMap::new();
        for (tag, digest) in &page {
            map.entry(**digest).or_default().push(tag.as_str());
        }
        if last.is_none() {
            for digest in &repository.manifests {
                map.entry(*digest).or_default();
            }
        }
        let entries: serde_json::Map<String, serde_json::Value> = map
            .into_iter()
            .map(|(digest, tags)| {
                let body = population.body(&digest);
                let entry = serde_json::json!({
                    "imageSizeBytes": body.map_or(0, |body| body.bytes.len()).to_string(),
                    "layerId": "",
                    "mediaType": body.map_or("", |body| body.media_type.as_str()),
                    "tag": tags,
                    "timeCreatedMs": "0",
                    "timeUploadedMs": "0",
                });
                (digest.to_string(), entry)
            })
            .collect();
        body["manifest"] = serde_json::Value::Object(entries);
    }
    let mut response = json(&body);
    if more && let Some((last_tag, _)) = page.last() {
        let next: String = url::form_urlencoded::Serializer::new(String::new())
            .append_pair("n", &limit.to_string())
            .append_pair("last", last_tag)
            .finish();
        if let Ok(value) =
            header::HeaderValue::from_str(&format!("</v2/{name}/tags/list?{next}>; rel=\"next\""))
        {
            response.headers_mut().insert(header::LINK, value);
        }
    }
    response
}

fn manifest(method: &Method, digest: Digest, body: &ManifestBody) -> Response<Full<Bytes>> {
    let bytes = if method == Method::HEAD {
        Bytes::new()
    } else {
        body.bytes.clone()
    };
    let mut response = Response::new(Full::new(bytes));
    let headers = response.headers_mut();
    if let Ok(value) = header::HeaderValue::from_str(&body.media_type) {
        headers.insert(header::CONTENT_TYPE, value);
    }
    headers.insert(
        header::CONTENT_LENGTH,
        header::HeaderValue::from(body.bytes.len()),
    );
    if let Ok(value) = header::HeaderValue::from_str(&digest.to_string()) {
        headers.insert("docker-content-digest", value);
    }
    response
}

fn json(value: &serde_json::Value) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from(value.to_string())));
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static("application/json"),
    );
    response
}

fn error(status: StatusCode, code: &str, message: &str) -> Response<Full<Bytes>> {
    let mut response = json(&serde_json::json!({"errors": [{"code": code, "message": message}]}));
    *response.status_mut() = status;
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_distribution_paths() {
        assert_eq!(route("/v2/"), Route::Ping);
        assert_eq!(route("/v2"), Route::Ping);
        assert_eq!(route("/v2/a/b/tags/list"), Route::TagList { name: "a/b" });
        assert_eq!(
            route("/v2/a/manifests/tags/list/manifests/v1"),
            Route::Manifest {
                name: "a/manifests/tags/list",
                reference: "v1"
            }
        );
        assert_eq!(route("/v2/a/blobs/sha256:00"), Route::Unknown);
        assert_eq!(route("/healthz"), Route::Unknown);
    }
}
