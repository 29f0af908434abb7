//! Prometheus metrics, served at `/metrics` in the text exposition format.
//!
//! - `hoist_serve_requests_total{route, outcome}`: every request, by the rule that answered it
//!   and what it did (see [`Route`] and [`Outcome`]);
//! - `hoist_serve_request_duration_seconds{route}`: how long answering took;
//! - `hoist_serve_blob_cache_hits_total` / `_misses_total`: existence checks answered from the
//!   cache of positive answers, or not;
//! - `hoist_serve_blob_checks_total{backend, result}`: existence checks made (`found`,
//!   `missing`, `error`).

use std::sync::OnceLock;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

/// Which rule answered a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Route {
    /// `/`: the info URL.
    Info,
    /// `/v2/` or `/v2`: the API version check.
    ApiVersion,
    /// `/v2/_catalog`: not supported.
    Catalog,
    /// `/v2/<name>/blobs/<digest>`.
    Blob,
    /// A cosign `sha256-<hex>.sig`/`.att` tag, with a signature upstream.
    Signature,
    /// Any other registry API request (manifests, tags).
    Upstream,
    /// A blob of a `file:` mirror, served by hoist.
    FileMirror,
    /// The registry API of an OCI layout upstream, served by hoist.
    Layout,
    /// `/healthz`.
    Health,
    /// `/metrics`.
    Metrics,
    /// Anything else.
    Unknown,
}

impl Route {
    /// How many routes there are.
    const COUNT: usize = 11;

    /// The label value.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Info => "info",
            Self::ApiVersion => "api-version",
            Self::Catalog => "catalog",
            Self::Blob => "blob",
            Self::Signature => "signature",
            Self::Upstream => "upstream",
            Self::FileMirror => "file-mirror",
            Self::Layout => "layout",
            Self::Health => "healthz",
            Self::Metrics => "metrics",
            Self::Unknown => "unknown",
        }
    }
}

/// What a request got.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Outcome {
    /// A 307 to the client's mirror.
    Mirror,
    /// A 307 to the upstream.
    Upstream,
    /// A blob sent to the upstream because the mirror does not have it (or could not say).
    UpstreamFallback,
    /// A blob sent to the upstream because the client is in the upstream's own cloud.
    UpstreamCloud,
    /// A blob sent to the upstream because there is no mirror at all.
    NoMirror,
    /// A 307 to the signature upstream.
    SignatureUpstream,
    /// A 307 to the info URL.
    Info,
    /// A 200 (or 206, 304) with content.
    Ok,
    /// 400: the client address could not be told, or the request is malformed.
    BadRequest,
    /// 404.
    NotFound,
    /// 405: not GET or HEAD.
    MethodNotAllowed,
    /// 5xx.
    Error,
}

impl Outcome {
    /// How many outcomes there are.
    const COUNT: usize = 12;

    /// The label value.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Mirror => "mirror",
            Self::Upstream => "upstream",
            Self::UpstreamFallback => "upstream-fallback",
            Self::UpstreamCloud => "upstream-cloud",
            Self::NoMirror => "no-mirror",
            Self::SignatureUpstream => "signature-upstream",
            Self::Info => "info",
            Self::Ok => "ok",
            Self::BadRequest => "bad-request",
            Self::NotFound => "not-found",
            Self::MethodNotAllowed => "method-not-allowed",
            Self::Error => "error",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct RequestLabels {
    route: &'static str,
    outcome: &'static str,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct RouteLabels {
    route: &'static str,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct CheckLabels {
    backend: String,
    result: &'static str,
}

fn duration_histogram() -> Histogram {
    // 50 µs to ~3 s: redirects take microseconds, existence checks milliseconds.
    Histogram::new(prometheus_client::metrics::histogram::exponential_buckets(
        0.000_05, 3.0, 11,
    ))
}

/// The registry and its metrics.
///
/// A series is created on first use (so `/metrics` lists only what happened); after that its
/// handle is kept here, so counting a request takes no lock and no label hashing.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    requests: Family<RequestLabels, Counter>,
    durations: Family<RouteLabels, Histogram, fn() -> Histogram>,
    request_handles: [[OnceLock<Counter>; Outcome::COUNT]; Route::COUNT],
    duration_handles: [OnceLock<Histogram>; Route::COUNT],
    cache_hits: Counter,
    cache_misses: Counter,
    checks: Family<CheckLabels, Counter>,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// Registers every metric.
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("hoist_serve");
        let requests = Family::<RequestLabels, Counter>::default();
        registry.register(
            "requests",
            "Requests answered, by rule (route) and result (outcome)",
            requests.clone(),
        );
        let durations = Family::<RouteLabels, Histogram, fn() -> Histogram>::new_with_constructor(
            duration_histogram,
        );
        registry.register(
            "request_duration_seconds",
            "Time to answer a request, by rule",
            durations.clone(),
        );
        let cache_hits = Counter::default();
        registry.register(
            "blob_cache_hits",
            "Blob existence checks answered from the cache",
            cache_hits.clone(),
        );
        let cache_misses = Counter::default();
        registry.register(
            "blob_cache_misses",
            "Blob existence checks not in the cache",
            cache_misses.clone(),
        );
        let checks = Family::<CheckLabels, Counter>::default();
        registry.register(
            "blob_checks",
            "Blob existence checks made against a mirror (found, missing, error)",
            checks.clone(),
        );
        Self {
            registry,
            requests,
            durations,
            request_handles: std::array::from_fn(|_| std::array::from_fn(|_| OnceLock::new())),
            duration_handles: std::array::from_fn(|_| OnceLock::new()),
            cache_hits,
            cache_misses,
            checks,
        }
    }

    /// Counts one answered request.
    pub fn request(&self, route: Route, outcome: Outcome, seconds: f64) {
        self.request_handles[route as usize][outcome as usize]
            .get_or_init(|| {
                self.requests
                    .get_or_create(&RequestLabels {
                        route: route.as_str(),
                        outcome: outcome.as_str(),
                    })
                    .clone()
            })
            .inc();
        self.duration_handles[route as usize]
            .get_or_init(|| {
                self.durations
                    .get_or_create(&RouteLabels {
                        route: route.as_str(),
                    })
                    .clone()
            })
            .observe(seconds);
    }

    /// Counts a cache lookup.
    pub fn cache(&self, hit: bool) {
        if hit {
            self.cache_hits.inc();
        } else {
            self.cache_misses.inc();
        }
    }

    /// Counts an existence check against `backend`.
    pub fn check(&self, backend: &str, result: &'static str) {
        self.checks
            .get_or_create(&CheckLabels {
                backend: backend.to_owned(),
                result,
            })
            .inc();
    }

    /// The text exposition.
    pub fn encode(&self) -> String {
        let mut text = String::new();
        // Writing to a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut text, &self.registry);
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_series_has_a_handle() {
        // The enums' last variants index the ends of the handle tables.
        assert_eq!(Route::Unknown as usize + 1, Route::COUNT);
        assert_eq!(Outcome::Error as usize + 1, Outcome::COUNT);
        let metrics = Metrics::new();
        metrics.request(Route::Unknown, Outcome::Error, 0.001);
        metrics.request(Route::Blob, Outcome::Mirror, 0.001);
        metrics.request(Route::Blob, Outcome::Mirror, 0.001);
        let text = metrics.encode();
        assert!(
            text.contains(r#"hoist_serve_requests_total{route="blob",outcome="mirror"} 2"#),
            "{text}"
        );
        assert!(
            text.contains(r#"hoist_serve_requests_total{route="unknown",outcome="error"} 1"#),
            "{text}"
        );
        assert!(
            text.contains(r#"hoist_serve_request_duration_seconds_count{route="blob"} 2"#),
            "{text}"
        );
    }
}
