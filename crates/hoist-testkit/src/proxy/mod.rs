//! [`FaultProxy`]: a small HTTP/1.1 forwarding proxy in front of a plain-HTTP registry (or any
//! HTTP server) that injects faults: corrupted blob bytes, 429 with `Retry-After`, 500,
//! connections dropped or gone silent mid-body; and that can play a wide-area link (latency each way, a
//! bandwidth cap per connection) and a registry's quota (429 above K concurrent requests or R
//! requests per second). It streams bodies both ways and counts every request.

mod body;
mod faults;
mod link;

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};

use bytes::Bytes;
use hoist_oci::Digest;
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full};
use hyper::body::{Body, Incoming};
use hyper::{Request, Response, StatusCode, header};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioIo};

use self::body::{BoxError, FaultBody};
pub use self::faults::{BlobSelector, Faults};
pub use self::link::Quota;
use self::link::{Paced, Pacer, QuotaState};
use crate::endpoint::Endpoint;
use crate::error::{Error, Result};

type ProxyBody = BoxBody<Bytes, BoxError>;

/// One request the proxy saw.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProxiedRequest {
    /// `GET`, `PUT`, ...
    pub method: String,
    /// Path and query.
    pub path: String,
    /// The status sent back (502 when upstream could not be reached).
    pub status: u16,
    /// Which fault, if any, was injected.
    pub fault: Option<InjectedFault>,
}

/// A fault the proxy applied to one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InjectedFault {
    /// Answered 429 itself.
    Throttled,
    /// Answered 500 itself.
    Failed,
    /// Flipped a byte of the body.
    Corrupted,
    /// Dropped the connection after this many body bytes.
    Cut(u64),
    /// Answered 429 itself: the request was over the [`Quota`].
    OverQuota,
    /// Went silent after this many body bytes, the connection left open.
    Stalled(u64),
}

/// How a proxy listens and forwards.
#[derive(Debug, Clone, Default)]
pub struct ProxyOptions {
    /// The address to listen on (`127.0.0.1:0`, a free port, when absent).
    pub listen: Option<SocketAddr>,
    /// Forward the client's `Host` header unchanged instead of naming the upstream: for servers
    /// that check signatures over it (S3), or that build URLs from it.
    pub keep_host: bool,
}

#[derive(Debug)]
struct Shared {
    upstream: String,
    address: SocketAddr,
    keep_host: bool,
    faults: Mutex<Faults>,
    requests: Mutex<Vec<ProxiedRequest>>,
    quota: Arc<Mutex<QuotaState>>,
    client: Client<HttpConnector, ProxyBody>,
}

pub(crate) fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // Nothing panics while holding these locks; a poisoned one still holds valid data.
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// A running fault proxy on `127.0.0.1`; stops accepting connections when dropped.
#[derive(Debug)]
pub struct FaultProxy {
    shared: Arc<Shared>,
    accept_loop: tokio::task::JoinHandle<()>,
}

impl FaultProxy {
    /// Starts a proxy in front of the plain-HTTP registry at `upstream_host` (`127.0.0.1:PORT`).
    /// Must be called within a tokio runtime.
    pub async fn start(upstream_host: &str, faults: Faults) -> Result<Self> {
        Self::start_with(upstream_host, faults, ProxyOptions::default()).await
    }

    /// Like [`FaultProxy::start`], listening and forwarding as `options` say.
    pub async fn start_with(
        upstream_host: &str,
        faults: Faults,
        options: ProxyOptions,
    ) -> Result<Self> {
        let listen = options
            .listen
            .unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], 0)));
        let listener =
            listener(listen, faults.bandwidth.is_some()).map_err(|source| Error::Spawn {
                program: "fault proxy listener".to_owned(),
                source,
            })?;
        let address = listener.local_addr().map_err(|source| Error::Spawn {
            program: "fault proxy listener".to_owned(),
            source,
        })?;
        let shared = Arc::new(Shared {
            upstream: upstream_host.to_owned(),
            address,
            keep_host: options.keep_host,
            faults: Mutex::new(faults),
            requests: Mutex::default(),
            quota: Arc::default(),
            client: Client::builder(TokioExecutor::new()).build_http(),
        });
        let accept_loop = tokio::spawn(accept(listener, Arc::clone(&shared)));
        Ok(Self {
            shared,
            accept_loop,
        })
    }

    /// `127.0.0.1:PORT` of the proxy.
    pub fn host(&self) -> String {
        self.shared.address.to_string()
    }

    /// A plain-HTTP endpoint for the proxy (add credentials for an auth upstream).
    pub fn endpoint(&self) -> Endpoint {
        Endpoint::http(self.host())
    }

    /// Replaces the faults (and their remaining counts).
    pub fn set_faults(&self, faults: Faults) {
        *lock(&self.shared.faults) = faults;
    }

    /// Every request seen so far, in order of arrival.
    pub fn requests(&self) -> Vec<ProxiedRequest> {
        lock(&self.shared.requests).clone()
    }

    /// How many requests arrived.
    pub fn request_count(&self) -> usize {
        lock(&self.shared.requests).len()
    }

    /// How many requests had a fault injected.
    pub fn injected_count(&self) -> usize {
        lock(&self.shared.requests)
            .iter()
            .filter(|request| request.fault.is_some())
            .count()
    }

    /// How many requests were answered 429 for being over the [`Quota`].
    pub fn over_quota_count(&self) -> usize {
        lock(&self.shared.requests)
            .iter()
            .filter(|request| request.fault == Some(InjectedFault::OverQuota))
            .count()
    }

    /// The most requests the quota saw being served at once.
    pub fn most_served_at_once(&self) -> usize {
        link::most_at_once(&self.shared.quota)
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.accept_loop.abort();
    }
}

/// The receive buffer of a bandwidth-capped proxy's connections: about what a real link holds in
/// flight. Loopback's default (autotuned to megabytes) would let a client write megabytes that the
/// paced link then takes many seconds to deliver, a silence no real link shows.
const LINK_BUFFER: u32 = 64 * 1024;

/// Listens on `address`, with small receive buffers when the link is paced.
fn listener(address: SocketAddr, paced: bool) -> std::io::Result<tokio::net::TcpListener> {
    let socket = match address {
        SocketAddr::V4(_) => tokio::net::TcpSocket::new_v4()?,
        SocketAddr::V6(_) => tokio::net::TcpSocket::new_v6()?,
    };
    socket.set_reuseaddr(true)?;
    if paced {
        // Accepted connections inherit it.
        socket.set_recv_buffer_size(LINK_BUFFER)?;
    }
    socket.bind(address)?;
    socket.listen(1024)
}

/// One connection's link: a pacer per direction when bandwidth is capped.
#[derive(Debug, Clone, Default)]
struct Connection {
    up: Option<Arc<Mutex<Pacer>>>,
    down: Option<Arc<Mutex<Pacer>>>,
}

async fn accept(listener: tokio::net::TcpListener, shared: Arc<Shared>) {
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        let shared = Arc::clone(&shared);
        tokio::spawn(async move {
            let (latency, bandwidth) = {
                let faults = lock(&shared.faults);
                (faults.latency, faults.bandwidth)
            };
            let connection = Connection {
                up: bandwidth.map(Pacer::new),
                down: bandwidth.map(Pacer::new),
            };
            // The handshake's round trip before the first request.
            if !latency.is_zero() {
                tokio::time::sleep(latency * 2).await;
            }
            let service = hyper::service::service_fn(move |request| {
                let shared = Arc::clone(&shared);
                let connection = connection.clone();
                async move { Ok::<_, Infallible>(handle(&shared, &connection, request).await) }
            });
            // A failed connection (a cut body among them) only ends that connection.
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

async fn handle(
    shared: &Shared,
    connection: &Connection,
    request: Request<Incoming>,
) -> Response<ProxyBody> {
    let method = request.method().to_string();
    let path = request
        .uri()
        .path_and_query()
        .map_or_else(|| "/".to_owned(), ToString::to_string);
    let record = |status: u16, fault: Option<InjectedFault>| {
        lock(&shared.requests).push(ProxiedRequest {
            method: method.clone(),
            path: path.clone(),
            status,
            fault,
        });
    };

    let (latency, quota) = {
        let faults = lock(&shared.faults);
        (faults.latency, faults.quota)
    };
    // On its way in.
    if !latency.is_zero() {
        tokio::time::sleep(latency).await;
    }
    let status_fault = lock(&shared.faults).take_status_fault();
    if let Some((status, retry_after)) = status_fault {
        let fault = if status == 429 {
            InjectedFault::Throttled
        } else {
            InjectedFault::Failed
        };
        record(status, Some(fault));
        return delayed(latency, injected_response(status, retry_after)).await;
    }
    let admission = match &quota {
        Some(quota) => match link::admit(&shared.quota, quota) {
            Some(admission) => Some(admission),
            None => {
                record(429, Some(InjectedFault::OverQuota));
                let response = injected_response(429, quota.retry_after_seconds);
                return delayed(latency, response).await;
            }
        },
        None => None,
    };

    let request = request.map(|body| {
        Paced::new(body, connection.up.clone(), None)
            .map_err(|error| Box::new(error) as BoxError)
            .boxed()
    });
    let upstream_response = match forward(shared, request, &path).await {
        Ok(response) => response,
        Err(reason) => {
            record(502, None);
            return plain_response(StatusCode::BAD_GATEWAY, reason);
        }
    };
    let (mut parts, upstream_body) = upstream_response.into_parts();
    rewrite_location(shared, &mut parts.headers);

    let blob = (method == "GET" && parts.status == StatusCode::OK)
        .then(|| blob_digest(&path))
        .flatten();
    let length = upstream_body.size_hint().exact();
    let (flip_at, cut_at, stall_at) = match blob {
        Some(digest) => {
            let mut faults = lock(&shared.faults);
            let flip_at = faults
                .corrupts(digest)
                .then(|| length.map_or(0, |length| length / 2));
            (flip_at, faults.take_cut(length), faults.stall_at(length))
        }
        None => (None, None, None),
    };
    let fault = match (cut_at, flip_at, stall_at) {
        (Some(bytes), _, _) => Some(InjectedFault::Cut(bytes)),
        (None, _, Some(bytes)) => Some(InjectedFault::Stalled(bytes)),
        (None, Some(_), None) => Some(InjectedFault::Corrupted),
        (None, None, None) => None,
    };
    record(parts.status.as_u16(), fault);
    let body = FaultBody::new(upstream_body, flip_at, cut_at).stalling_at(stall_at);
    let body = Paced::new(body, connection.down.clone(), admission);
    // On its way out.
    delayed(latency, Response::from_parts(parts, body.boxed())).await
}

/// `response` after `latency`.
async fn delayed(
    latency: std::time::Duration,
    response: Response<ProxyBody>,
) -> Response<ProxyBody> {
    if !latency.is_zero() {
        tokio::time::sleep(latency).await;
    }
    response
}

/// Sends the request on to the upstream registry, streaming its body.
async fn forward(
    shared: &Shared,
    request: Request<ProxyBody>,
    path: &str,
) -> std::result::Result<Response<Incoming>, String> {
    let (mut parts, body) = request.into_parts();
    parts.uri = format!("http://{}{path}", shared.upstream)
        .parse()
        .map_err(|error| format!("bad upstream URI: {error}"))?;
    for name in HOP_BY_HOP {
        parts.headers.remove(name);
    }
    if !shared.keep_host {
        let upstream_host = shared
            .upstream
            .parse()
            .map_err(|error| format!("bad upstream host: {error}"))?;
        parts.headers.insert(header::HOST, upstream_host);
    }
    shared
        .client
        .request(Request::from_parts(parts, body))
        .await
        .map_err(|error| format!("fault proxy: upstream {} failed: {error}", shared.upstream))
}

/// Headers that belong to one connection, not to the request (RFC 9110 section 7.6.1).
const HOP_BY_HOP: [&str; 7] = [
    "connection",
    "keep-alive",
    "proxy-connection",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
];

/// Points upstream's absolute `Location` URLs (upload sessions) back at the proxy, so clients
/// keep going through it.
fn rewrite_location(shared: &Shared, headers: &mut http::HeaderMap) {
    let Some(location) = headers
        .get(header::LOCATION)
        .and_then(|value| value.to_str().ok())
    else {
        return;
    };
    let upstream_prefix = format!("http://{}", shared.upstream);
    if let Some(rest) = location.strip_prefix(&upstream_prefix)
        && let Ok(value) = format!("http://{}{rest}", shared.address).parse()
    {
        headers.insert(header::LOCATION, value);
    }
}

/// The digest of a `/v2/<name>/blobs/<digest>` path (not upload paths).
fn blob_digest(path: &str) -> Option<Digest> {
    let path = path.split('?').next()?;
    let (_, digest) = path.strip_prefix("/v2/")?.rsplit_once("/blobs/")?;
    Digest::parse(digest).ok()
}

fn injected_response(status: u16, retry_after: Option<u32>) -> Response<ProxyBody> {
    let (code, message) = if status == 429 {
        (
            "TOOMANYREQUESTS",
            "too many requests (injected by the hoist fault proxy)",
        )
    } else {
        (
            "UNKNOWN",
            "internal error (injected by the hoist fault proxy)",
        )
    };
    let body = serde_json::json!({"errors": [{"code": code, "message": message}]}).to_string();
    let mut response = Response::new(full(body));
    *response.status_mut() =
        StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static("application/json"),
    );
    if let Some(seconds) = retry_after {
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, header::HeaderValue::from(seconds));
    }
    response
}

fn plain_response(status: StatusCode, text: String) -> Response<ProxyBody> {
    let mut response = Response::new(full(text));
    *response.status_mut() = status;
    response
}

fn full(text: String) -> ProxyBody {
    Full::new(Bytes::from(text))
        .map_err(|never| match never {})
        .boxed()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recognises_blob_paths() {
        let digest = Digest::of(b"x");
        assert_eq!(
            blob_digest(&format!("/v2/a/b/blobs/{digest}")),
            Some(digest)
        );
        assert_eq!(blob_digest("/v2/a/blobs/uploads/123?_state=x"), None);
        assert_eq!(blob_digest(&format!("/v2/a/manifests/{digest}")), None);
    }
}
