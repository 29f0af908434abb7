//! [`Transport`]: every HTTP request of a store goes through here. It adds authentication
//! (answering the host's challenge once, then sending the right header up front), retries the
//! failures worth retrying, follows redirects itself, limits concurrency and counts requests.
//!
//! Redirects are followed here rather than by reqwest so that the rule is ours and tested: the
//! `Authorization` header goes only to the registry's own origin (scheme, host and port). Blob GETs
//! are redirected to storage (S3, GCS) with signed URLs, which must not receive registry tokens,
//! and an https registry may not send us to plain http.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use futures::StreamExt as _;
use hoist_store::idle::{self, Activity, IdleTimeout};
use hoist_store::{StoreError, StoreErrorKind};
use reqwest::header::{AUTHORIZATION, CONTENT_LENGTH, HeaderMap, LOCATION, WWW_AUTHENTICATE};
use reqwest::{Method, Response, StatusCode};
use serde::Deserialize;
use url::Url;

use crate::auth::{AuthState, Authorization, Challenge, Scope, basic_header, bearer_header};
use crate::limits::{Limiter, Outcome, RequestKind};
use crate::options::RegistryOptions;
use crate::retry::{self, Next};
use crate::wire::{self, Outgoing};

/// The most redirects one request follows.
const MAX_REDIRECTS: usize = 5;

/// The longest a bearer token is trusted, whatever its `expires_in` says (a huge value would
/// overflow the clock; a 401 fetches a new token anyway).
const MAX_TOKEN_LIFETIME: Duration = Duration::from_secs(24 * 60 * 60);

/// A body that streams, so it can be sent once only: taken by the first attempt.
#[derive(Clone, Default)]
pub(crate) struct OnceBody(Arc<std::sync::Mutex<Option<reqwest::Body>>>);

impl std::fmt::Debug for OnceBody {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("OnceBody")
    }
}

impl OnceBody {
    fn take(&self) -> Option<reqwest::Body> {
        self.0.lock().ok()?.take()
    }
}

/// When a failed request may be sent again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Retry {
    /// After any retryable failure: idempotent requests (`GET`, `HEAD`, `PUT` of a manifest,
    /// `DELETE`).
    Always,
    /// Only when the server certainly did not act on it: a 429, or no connection at all. A
    /// `POST` that opens an upload session is one: after a 5xx or a broken connection a session
    /// may exist that we cannot name (its `Location` never reached us), and sending again would
    /// open another.
    WhenRefused,
    /// Never (a streamed body is gone once sent; a session's state is unknown after its `PUT`).
    Never,
}

impl Retry {
    /// Whether `error` may be followed by another attempt under this rule. An idle timeout never
    /// is: the server already had the whole idle period.
    fn allows(self, error: &StoreError) -> bool {
        if IdleTimeout::is_cause_of(error) {
            return false;
        }
        match self {
            Self::Always => true,
            Self::WhenRefused => {
                error.kind() == StoreErrorKind::RateLimited || wire::never_sent(error)
            }
            Self::Never => false,
        }
    }
}

/// One request to make, kept whole so it can be sent again (after a challenge or a failure).
/// A streamed body is the exception: such a request is sent once, without retries.
#[derive(Debug, Clone)]
pub(crate) struct Request {
    pub(crate) method: Method,
    pub(crate) url: Url,
    pub(crate) headers: HeaderMap,
    pub(crate) body: Option<Bytes>,
    pub(crate) stream: Option<OnceBody>,
    pub(crate) scope: Scope,
    /// Whether the request may be sent again after a retryable failure.
    pub(crate) retry: Retry,
    /// Whether redirects are followed (GET and HEAD only).
    pub(crate) follow_redirects: bool,
    /// Which concurrency window the request waits in.
    pub(crate) kind: RequestKind,
}

impl Request {
    pub(crate) fn new(method: Method, url: Url, scope: Scope) -> Self {
        let retry = match method {
            Method::PATCH => Retry::Never,
            Method::POST => Retry::WhenRefused,
            _ => Retry::Always,
        };
        let follow_redirects = method == Method::GET || method == Method::HEAD;
        let kind = RequestKind::of(&method, &url);
        Self {
            method,
            url,
            headers: HeaderMap::new(),
            body: None,
            stream: None,
            scope,
            retry,
            follow_redirects,
            kind,
        }
    }

    pub(crate) fn header(mut self, name: reqwest::header::HeaderName, value: &str) -> Self {
        if let Ok(value) = reqwest::header::HeaderValue::from_str(value) {
            self.headers.insert(name, value);
        }
        self
    }

    pub(crate) fn body(mut self, body: Bytes) -> Self {
        self.body = Some(body);
        self
    }

    /// A streamed body: the request is then never retried (the bytes are gone once sent).
    pub(crate) fn stream_body(mut self, body: reqwest::Body) -> Self {
        self.stream = Some(OnceBody(Arc::new(std::sync::Mutex::new(Some(body)))));
        self.retry = Retry::Never;
        self
    }

    pub(crate) fn no_retry(mut self) -> Self {
        self.retry = Retry::Never;
        self
    }
}

/// The HTTP side of one registry host.
#[derive(Debug)]
pub(crate) struct Transport {
    pub(crate) host: String,
    pub(crate) base: Url,
    http: reqwest::Client,
    options: RegistryOptions,
    auth: AuthState,
    limiter: Limiter,
    requests: AtomicU64,
}

impl Transport {
    pub(crate) fn new(host: &str, options: RegistryOptions) -> Result<Self, StoreError> {
        let scheme = if options.insecure { "http" } else { "https" };
        let named = Url::parse(&format!("{scheme}://{host}/")).map_err(|error| {
            StoreError::new(StoreErrorKind::Rejected, host, "not a registry host")
                .with_source(error)
        })?;
        if named.path() != "/" || named.query().is_some() || named.username() != "" {
            return Err(StoreError::new(
                StoreErrorKind::Rejected,
                host,
                "a registry host is HOST[:PORT], nothing more",
            ));
        }
        let base = match &options.endpoint {
            Some(endpoint) => checked_endpoint(host, endpoint)?,
            None => named,
        };
        let plain_http = base.scheme() == "http";
        let mut certificates = Vec::new();
        for path in &options.ca_files {
            let subject = path.display().to_string();
            let pem = std::fs::read(path).map_err(|error| StoreError::io(&subject, error))?;
            let bundle = reqwest::Certificate::from_pem_bundle(&pem).map_err(|error| {
                StoreError::new(StoreErrorKind::Io, &subject, "not a PEM certificate file")
                    .with_source(error)
            })?;
            certificates.extend(bundle);
        }
        let builder = reqwest::Client::builder();
        // The kernel gives up a connection whose sent bytes stay unacknowledged (or unsent behind
        // a closed window) for the idle period: silence on the wire, which we cannot see from here
        // while an upload drains from the socket buffers.
        #[cfg(any(target_os = "android", target_os = "fuchsia", target_os = "linux"))]
        let builder = builder.tcp_user_timeout(options.timeouts.idle);
        let http = builder
            .user_agent(options.user_agent.clone())
            .redirect(reqwest::redirect::Policy::none())
            // No read timeout: reqwest's counts from the start of the request, so it would cut
            // long uploads. Silence is watched per request instead (`send_once`).
            .connect_timeout(options.timeouts.connect)
            .tls_certs_merge(certificates)
            .https_only(!plain_http)
            .build()
            .map_err(|error| {
                StoreError::new(StoreErrorKind::Io, host, "cannot set up the HTTP client")
                    .with_source(error)
            })?;
        Ok(Self {
            host: host.to_owned(),
            base,
            http,
            limiter: Limiter::new(host, &options),
            auth: AuthState::new(options.credentials.clone()),
            options,
            requests: AtomicU64::new(0),
        })
    }

    /// HTTP requests sent so far, token requests and redirects included.
    pub(crate) fn requests_made(&self) -> u64 {
        self.requests.load(Ordering::Relaxed)
    }

    /// 429 answers received so far.
    pub(crate) fn throttled(&self) -> u64 {
        self.limiter.throttled()
    }

    /// The concurrency window of each kind of request now.
    pub(crate) fn windows(&self) -> Vec<(&'static str, f64)> {
        self.limiter.windows()
    }

    /// The size of the chunks a blob upload sends.
    pub(crate) fn chunk_size(&self) -> usize {
        self.options.upload_chunk_size.max(1)
    }

    /// `https://host/v2/<path>`.
    pub(crate) fn url(&self, path: &str) -> Url {
        let mut url = self.base.clone();
        url.set_path(&format!("/v2/{path}"));
        url
    }

    /// Sends `request`, answering challenges, retrying and following redirects. A response that
    /// is a failure worth retrying (429, 5xx, 408) comes back as an error once the retries are
    /// spent; every other response is returned for the caller to judge.
    pub(crate) async fn send(&self, request: &Request) -> Result<Response, StoreError> {
        let mut attempt = 1;
        loop {
            let error = match self.send_authorized(request).await {
                Ok(response) if !is_retryable_status(response.status()) => return Ok(response),
                Ok(response) => error_from_response(response, &subject(&request.url)).await,
                Err(error) => error,
            };
            let next = if request.retry.allows(&error) {
                retry::next(&self.options.retry, attempt, &error)
            } else {
                Next::GiveUp
            };
            match next {
                Next::GiveUp => return Err(error),
                Next::RetryAfter(wait) => {
                    tracing::debug!(host = %self.host, path = request.url.path(), attempt, ?wait, %error, "retrying");
                    tokio::time::sleep(wait).await;
                    attempt += 1;
                }
            }
        }
    }

    /// One attempt: sends with the header the host wants; on a 401 learns its challenge and sends
    /// once more.
    async fn send_authorized(&self, request: &Request) -> Result<Response, StoreError> {
        let mut challenged = false;
        loop {
            let authorization = self.authorization(&request.scope).await?;
            let (response, redirected) = self.send_following(request, authorization).await?;
            if response.status() != StatusCode::UNAUTHORIZED || redirected {
                return Ok(response);
            }
            let challenge = response
                .headers()
                .get_all(WWW_AUTHENTICATE)
                .iter()
                .filter_map(|value| value.to_str().ok())
                .find_map(Challenge::parse);
            let subject = subject(&request.url);
            let Some(challenge) = challenge else {
                return Err(error_from_response(response, &subject).await);
            };
            // Only the registry itself says how to log in to it. A challenge from another host
            // (a `Link` page or an upload `Location` pointing elsewhere) must not replace the
            // realm that every request to this registry then fetches tokens from.
            if request.url.origin() != self.base.origin() {
                tracing::warn!(host = %self.host, to = request.url.host_str().unwrap_or(""), "ignoring a 401 challenge from another host");
                return Err(StoreError::new(
                    StoreErrorKind::Unauthorized,
                    subject,
                    format!(
                        "refused by a host other than {}; its login challenge is not followed",
                        self.host
                    ),
                ));
            }
            if challenged {
                return Err(StoreError::new(
                    StoreErrorKind::Unauthorized,
                    subject,
                    "the registry refused our credentials",
                ));
            }
            if challenge == Challenge::Basic && self.auth.credentials().is_none() {
                return Err(StoreError::new(
                    StoreErrorKind::Unauthorized,
                    subject,
                    "the registry wants a username and password",
                ));
            }
            self.auth.learn(&challenge, &request.scope);
            challenged = true;
        }
    }

    /// The `Authorization` header for `scope`, fetching a bearer token when none is cached.
    async fn authorization(
        &self,
        scope: &Scope,
    ) -> Result<Option<reqwest::header::HeaderValue>, StoreError> {
        match self.auth.authorization(scope) {
            Authorization::Header(header) => Ok(header),
            Authorization::NeedToken {
                realm,
                service,
                scope,
            } => {
                let header = self.fetch_token(&realm, service.as_deref(), &scope).await?;
                Ok(Some(header))
            }
        }
    }

    /// `GET realm?service=..&scope=..`, with Basic credentials when we have them
    /// (<https://distribution.github.io/distribution/spec/auth/token/>).
    async fn fetch_token(
        &self,
        realm: &str,
        service: Option<&str>,
        scope: &Scope,
    ) -> Result<reqwest::header::HeaderValue, StoreError> {
        let mut url = Url::parse(realm).map_err(|error| {
            StoreError::new(
                StoreErrorKind::Protocol,
                &self.host,
                format!("the token realm {realm:?} is not a URL"),
            )
            .with_source(error)
        })?;
        if self.base.scheme() == "https" && url.scheme() != "https" {
            return Err(StoreError::new(
                StoreErrorKind::Protocol,
                subject(&url),
                "refusing a token realm over plain http",
            ));
        }
        {
            let mut query = url.query_pairs_mut();
            if let Some(service) = service {
                query.append_pair("service", service);
            }
            for entry in scope.entries() {
                query.append_pair("scope", entry);
            }
        }
        let subject = subject(&url);
        let header = self.auth.credentials().map(basic_header);
        let mut attempt = 1;
        let response = loop {
            let result = match self
                .send_once(
                    RequestKind::Token,
                    &Method::GET,
                    &url,
                    &HeaderMap::new(),
                    header.clone(),
                    None,
                )
                .await
            {
                Ok(response) if is_retryable_status(response.status()) => {
                    Err(error_from_response(response, &subject).await)
                }
                other => other,
            };
            match result {
                Ok(response) => break response,
                Err(error) if !Retry::Always.allows(&error) => return Err(error),
                Err(error) => match retry::next(&self.options.retry, attempt, &error) {
                    Next::GiveUp => return Err(error),
                    Next::RetryAfter(wait) => tokio::time::sleep(wait).await,
                },
            }
            attempt += 1;
        };
        if !response.status().is_success() {
            return Err(error_from_response(response, &subject).await);
        }
        #[derive(Deserialize)]
        struct TokenAnswer {
            token: Option<String>,
            access_token: Option<String>,
            expires_in: Option<u64>,
        }
        let body = read_limited(response, 1 << 20, &subject).await?;
        let answer: TokenAnswer = serde_json::from_slice(&body).map_err(|error| {
            StoreError::new(
                StoreErrorKind::Protocol,
                &subject,
                "the token answer is not JSON",
            )
            .with_source(error)
        })?;
        let token = answer
            .token
            .or(answer.access_token)
            .filter(|token| !token.is_empty())
            .ok_or_else(|| {
                StoreError::new(
                    StoreErrorKind::Protocol,
                    &subject,
                    "the token answer holds no token",
                )
            })?;
        let header = bearer_header(&token).ok_or_else(|| {
            StoreError::new(
                StoreErrorKind::Protocol,
                &subject,
                "the token is not a header value",
            )
        })?;
        // The spec's default lifetime is 60 seconds.
        let lifetime =
            Duration::from_secs(answer.expires_in.unwrap_or(60).max(1)).min(MAX_TOKEN_LIFETIME);
        self.auth.store_token(scope, header.clone(), lifetime);
        tracing::debug!(host = %self.host, scope = ?scope.entries(), "got a bearer token");
        Ok(header)
    }

    /// Sends and follows redirects; says whether a redirect was followed.
    async fn send_following(
        &self,
        request: &Request,
        authorization: Option<reqwest::header::HeaderValue>,
    ) -> Result<(Response, bool), StoreError> {
        let mut url = request.url.clone();
        let mut redirects = 0;
        loop {
            let own_origin = url.origin() == self.base.origin();
            let header = if own_origin {
                authorization.clone()
            } else {
                None
            };
            let response = self
                .send_once(
                    request.kind,
                    &request.method,
                    &url,
                    &request.headers,
                    header,
                    body_of(request)?,
                )
                .await?;
            if !(request.follow_redirects && response.status().is_redirection()) {
                return Ok((response, redirects > 0));
            }
            let Some(location) = response
                .headers()
                .get(LOCATION)
                .and_then(|value| value.to_str().ok())
            else {
                return Ok((response, redirects > 0));
            };
            let next = url.join(location).map_err(|error| {
                StoreError::new(
                    StoreErrorKind::Protocol,
                    subject(&url),
                    "a redirect to something that is not a URL",
                )
                .with_source(error)
            })?;
            redirects += 1;
            if redirects > MAX_REDIRECTS {
                return Err(StoreError::new(
                    StoreErrorKind::Protocol,
                    subject(&request.url),
                    "too many redirects",
                ));
            }
            if url.scheme() == "https" && next.scheme() != "https" {
                return Err(StoreError::new(
                    StoreErrorKind::Protocol,
                    subject(&next),
                    "refusing a redirect from https to plain http",
                ));
            }
            tracing::debug!(host = %self.host, to = next.host_str().unwrap_or(""), "following a redirect");
            url = next;
        }
    }

    /// Exactly one HTTP request: within the budget, the concurrency window of its kind and the
    /// rate cap, counted, and given up after the idle timeout of silence (its response body too).
    async fn send_once(
        &self,
        kind: RequestKind,
        method: &Method,
        url: &Url,
        headers: &HeaderMap,
        authorization: Option<reqwest::header::HeaderValue>,
        body: Option<Outgoing>,
    ) -> Result<Response, StoreError> {
        let subject = subject(url);
        let permit = self.limiter.acquire(kind).await;
        let made = self.requests.fetch_add(1, Ordering::Relaxed);
        if let Some(budget) = self.options.max_requests
            && made >= budget
        {
            self.requests.fetch_sub(1, Ordering::Relaxed);
            return Err(StoreError::new(
                StoreErrorKind::Rejected,
                subject,
                format!(
                    "the request budget of {budget} requests for {} is spent",
                    self.host
                ),
            ));
        }
        let activity = Activity::new();
        let mut builder = self
            .http
            .request(method.clone(), url.clone())
            .headers(headers.clone());
        if let Some(authorization) = authorization {
            builder = builder.header(AUTHORIZATION, authorization);
        }
        if let Some(body) = body {
            let (body, length) = body.into_body(&activity);
            if let Some(length) = length {
                builder = builder.header(CONTENT_LENGTH, length);
            }
            builder = builder.body(body);
        }
        let idle = self.options.timeouts.idle;
        let response = match idle::watch(builder.send(), &activity, idle).await {
            Ok(Ok(response)) => response,
            Ok(Err(error)) => {
                // Without the URL: a redirect target's query can hold a signature.
                let error = error.without_url();
                return Err(StoreError::new(
                    StoreErrorKind::Network,
                    &subject,
                    format!("request failed: {}", wire::describe(&error)),
                )
                .with_source(error));
            }
            Err(timeout) => {
                tracing::debug!(host = %self.host, %method, path = url.path(), ?idle, "idle timeout");
                return Err(StoreError::new(
                    StoreErrorKind::Network,
                    &subject,
                    format!("no answer: {timeout}"),
                )
                .with_source(timeout));
            }
        };
        let status = response.status();
        permit.finish(if status == StatusCode::TOO_MANY_REQUESTS {
            Outcome::Throttled(retry::retry_after(response.headers()))
        } else {
            Outcome::Success
        });
        tracing::trace!(host = %self.host, %method, path = url.path(), status = status.as_u16(), "response");
        Ok(wire::idle_response(response, idle))
    }
}

/// An endpoint standing in for `host`: `http(s)://HOST[:PORT]` and nothing more (a path would
/// silently change every request's meaning).
fn checked_endpoint(host: &str, endpoint: &Url) -> Result<Url, StoreError> {
    let bare = matches!(endpoint.scheme(), "http" | "https")
        && endpoint.host_str().is_some()
        && endpoint.path() == "/"
        && endpoint.query().is_none()
        && endpoint.fragment().is_none()
        && endpoint.username().is_empty()
        && endpoint.password().is_none();
    if !bare {
        return Err(StoreError::new(
            StoreErrorKind::Rejected,
            host,
            format!(
                "the endpoint of {host} must be http(s)://HOST[:PORT], nothing more (got {})",
                endpoint.origin().ascii_serialization()
            ),
        ));
    }
    Ok(endpoint.clone())
}

/// The body to send for one attempt of `request`.
fn body_of(request: &Request) -> Result<Option<Outgoing>, StoreError> {
    match (&request.body, &request.stream) {
        (Some(bytes), _) => Ok(Some(Outgoing::Bytes(bytes.clone()))),
        (None, Some(stream)) => stream
            .take()
            .map(|body| Some(Outgoing::Stream(body)))
            .ok_or_else(|| {
                StoreError::new(
                    StoreErrorKind::Protocol,
                    subject(&request.url),
                    "a streamed body cannot be sent twice (challenge or redirect mid-upload)",
                )
            }),
        (None, None) => Ok(None),
    }
}

/// 408, 429 and 5xx: failures that may pass when tried again.
fn is_retryable_status(status: StatusCode) -> bool {
    status == StatusCode::TOO_MANY_REQUESTS
        || status == StatusCode::REQUEST_TIMEOUT
        || status.is_server_error()
}

/// A URL as an error subject: host, port and path, never the query (it may hold a signature).
pub(crate) fn subject(url: &Url) -> String {
    let host = url.host_str().unwrap_or("");
    match url.port() {
        Some(port) => format!("{host}:{port}{}", url.path()),
        None => format!("{host}{}", url.path()),
    }
}

/// Reads a whole (small) body, failing when it passes `limit` bytes.
pub(crate) async fn read_limited(
    response: Response,
    limit: usize,
    subject: &str,
) -> Result<Bytes, StoreError> {
    let mut body = BytesMut::new();
    let mut stream = response.bytes_stream();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|error| {
            let error = error.without_url();
            StoreError::new(
                StoreErrorKind::Network,
                subject,
                format!("reading the response failed: {}", wire::describe(&error)),
            )
            .with_source(error)
        })?;
        if body.len() + chunk.len() > limit {
            return Err(StoreError::new(
                StoreErrorKind::Protocol,
                subject,
                format!("the response is larger than {limit} bytes"),
            ));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body.freeze())
}

/// The registry error body (<https://github.com/opencontainers/distribution-spec/blob/main/spec.md#error-codes>).
#[derive(Deserialize)]
struct ErrorBody {
    #[serde(default)]
    errors: Vec<ErrorEntry>,
}

#[derive(Deserialize)]
struct ErrorEntry {
    #[serde(default)]
    code: String,
    #[serde(default)]
    message: String,
}

/// Turns an unwanted response into a classified error that quotes the registry's error codes.
pub(crate) async fn error_from_response(response: Response, subject: &str) -> StoreError {
    let status = response.status();
    let retry_after = retry::retry_after(response.headers());
    let body = read_limited(response, 64 * 1024, subject)
        .await
        .unwrap_or_default();
    let codes: Vec<ErrorEntry> = serde_json::from_slice::<ErrorBody>(&body)
        .map(|body| body.errors)
        .unwrap_or_default();
    let detail = codes
        .iter()
        .map(|entry| {
            if entry.message.is_empty() {
                entry.code.clone()
            } else {
                format!("{}: {}", entry.code, entry.message)
            }
        })
        .collect::<Vec<_>>()
        .join("; ");
    let has = |code: &str| codes.iter().any(|entry| entry.code == code);
    let kind = match status {
        StatusCode::UNAUTHORIZED => StoreErrorKind::Unauthorized,
        StatusCode::FORBIDDEN => StoreErrorKind::Denied,
        StatusCode::NOT_FOUND => StoreErrorKind::NotFound,
        StatusCode::TOO_MANY_REQUESTS => StoreErrorKind::RateLimited,
        StatusCode::REQUEST_TIMEOUT => StoreErrorKind::Network,
        _ if status.is_server_error() => StoreErrorKind::Server,
        _ if has("DIGEST_INVALID") || has("SIZE_INVALID") => StoreErrorKind::DigestMismatch,
        _ if has("DENIED") => StoreErrorKind::Denied,
        _ if has("UNAUTHORIZED") => StoreErrorKind::Unauthorized,
        _ if status.is_client_error() => StoreErrorKind::Rejected,
        _ => StoreErrorKind::Protocol,
    };
    let message = if detail.is_empty() {
        format!("HTTP {status}")
    } else {
        format!("HTTP {status}: {detail}")
    };
    StoreError::new(kind, subject, message).with_retry_after(retry_after)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subjects_drop_the_query() {
        let url = Url::parse("https://bucket.example:8443/blobs/x?X-Amz-Signature=secret").unwrap();
        assert_eq!(subject(&url), "bucket.example:8443/blobs/x");
    }

    #[test]
    fn endpoints_must_be_bare_and_decide_the_scheme() {
        let with = |endpoint: &str| RegistryOptions {
            endpoint: Some(Url::parse(endpoint).unwrap()),
            ..RegistryOptions::default()
        };
        let transport = Transport::new("r.example", with("http://127.0.0.1:5000")).unwrap();
        assert_eq!(transport.base.as_str(), "http://127.0.0.1:5000/");
        assert_eq!(
            transport.host, "r.example",
            "still named after the registry"
        );
        assert_eq!(
            transport.url("a/tags/list").as_str(),
            "http://127.0.0.1:5000/v2/a/tags/list"
        );
        for bad in [
            "http://127.0.0.1:5000/prefix",
            "ftp://127.0.0.1",
            "http://user:secret@127.0.0.1",
            "http://127.0.0.1/?q=1",
        ] {
            let error = Transport::new("r.example", with(bad)).unwrap_err();
            assert!(!error.to_string().contains("secret"), "{error}");
        }
    }

    #[test]
    fn hosts_must_be_bare() {
        assert!(Transport::new("127.0.0.1:5000", RegistryOptions::default()).is_ok());
        assert!(Transport::new("127.0.0.1:5000/path", RegistryOptions::default()).is_err());
        assert!(Transport::new("user@127.0.0.1", RegistryOptions::default()).is_err());
    }
}
