//! The rules, one function each. Every redirect is a `307 Temporary Redirect`, so clients repeat
//! the same method (a `HEAD` stays a `HEAD`) and never cache where a blob is.

use axum::body::Body;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::Response;
use tower::ServiceExt as _;

use crate::blobs::Presence;
use crate::client::client_address;
use crate::metrics::{Metrics, Outcome, Route};
use crate::mirrors::{FILE_MIRROR_PATH, Mirror};
use crate::paths;
use crate::router::{Answer, Incoming, State};
use crate::{LAYOUT_UPSTREAM_PATH, Upstream};

/// `307` to `location`, with no body.
pub fn redirect(location: &str) -> Response {
    let mut response = Response::new(Body::empty());
    *response.status_mut() = StatusCode::TEMPORARY_REDIRECT;
    match HeaderValue::from_str(location) {
        Ok(value) => {
            response.headers_mut().insert(header::LOCATION, value);
        }
        Err(_) => *response.status_mut() = StatusCode::INTERNAL_SERVER_ERROR,
    }
    response
}

/// A plain-text answer, like Go's `http.Error`.
pub fn text(status: StatusCode, message: &str) -> Response {
    let mut response = Response::new(Body::from(format!("{message}\n")));
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    response
}

/// Only `GET` and `HEAD`: pulling needs nothing else, and nothing is ever written here.
pub fn method_not_allowed() -> Answer {
    let mut response = text(
        StatusCode::METHOD_NOT_ALLOWED,
        "Only GET and HEAD are allowed.",
    );
    response
        .headers_mut()
        .insert(header::ALLOW, HeaderValue::from_static("GET, HEAD"));
    Answer::new(response, Route::Unknown, Outcome::MethodNotAllowed)
}

/// `/`: a person in a browser, sent to the page about the registry.
pub fn info(info_url: &str) -> Answer {
    Answer::new(redirect(info_url), Route::Info, Outcome::Info)
}

/// `/v2/`: the API check. Always 200 and never a 401: no token is needed to pull, and a token
/// scoped for this host would be wrong for the hosts clients are sent to.
pub fn api_version() -> Answer {
    let mut response = Response::new(Body::empty());
    response.headers_mut().insert(
        "docker-distribution-api-version",
        HeaderValue::from_static("registry/2.0"),
    );
    Answer::new(response, Route::ApiVersion, Outcome::Ok)
}

/// `/v2/_catalog`: the non-standard listing of every repository is not offered
/// (kubernetes/registry.k8s.io#162).
pub fn catalog() -> Answer {
    Answer::new(
        text(StatusCode::NOT_FOUND, "_catalog is not supported"),
        Route::Catalog,
        Outcome::NotFound,
    )
}

/// Anything hoist does not serve.
pub fn not_found(route: Route) -> Answer {
    Answer::new(
        text(StatusCode::NOT_FOUND, "404 page not found"),
        route,
        Outcome::NotFound,
    )
}

/// A malformed request.
pub fn bad_request(route: Route, message: &str) -> Answer {
    Answer::new(
        text(StatusCode::BAD_REQUEST, message),
        route,
        Outcome::BadRequest,
    )
}

/// `/healthz`: the process serves.
pub fn health() -> Answer {
    Answer::new(text(StatusCode::OK, "ok"), Route::Health, Outcome::Ok)
}

/// `/metrics`: Prometheus text format.
pub fn metrics(metrics: &Metrics) -> Answer {
    let mut response = Response::new(Body::from(metrics.encode()));
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
    );
    Answer::new(response, Route::Metrics, Outcome::Ok)
}

/// Any registry request that is not a blob (or a blob that goes upstream):
/// `upstream + path.Join("/v2/", upstream_path, rest)`, query kept.
pub(crate) fn upstream(
    state: &State,
    incoming: &Incoming,
    route: Route,
    outcome: Outcome,
) -> Answer {
    let location = match &state.upstream {
        Upstream::Registry(base) => {
            paths::upstream_location(base, &state.upstream_path, &incoming.path, incoming.query())
        }
        Upstream::Layout(_) => paths::upstream_location(
            &format!("{}{LAYOUT_UPSTREAM_PATH}", origin(state, incoming)),
            &state.upstream_path,
            &incoming.path,
            incoming.query(),
        ),
    };
    Answer::new(redirect(&location), route, outcome)
}

/// A cosign signature or attestation tag, with a signature upstream configured: the canonical
/// copy of signatures lives there.
pub(crate) fn signature(state: &State, signature_upstream: &str, incoming: &Incoming) -> Answer {
    let location = paths::upstream_location(
        signature_upstream,
        &state.upstream_path,
        &incoming.path,
        incoming.query(),
    );
    Answer::new(
        redirect(&location),
        Route::Signature,
        Outcome::SignatureUpstream,
    )
}

/// A blob: to the mirror of the client's region if it has the blob, else to the upstream.
/// Clients in the upstream's own cloud stay there. The client address must be known (400).
pub(crate) async fn blob(state: &State, incoming: &Incoming, digest: &str) -> Answer {
    let client = match client_address(incoming.peer, &incoming.request.headers, &state.trusted) {
        Ok(client) => client,
        Err(error) => {
            tracing::warn!(error = %error, "cannot tell the client address of a blob request");
            return bad_request(Route::Blob, &error.to_string());
        }
    };
    let location = state.regions.lookup(client);
    let with_client = |mut answer: Answer| {
        answer.client = Some(client);
        answer
    };
    if let (Some(location), Some(cloud)) = (location, &state.upstream_cloud)
        && &*location.cloud == cloud.as_str()
    {
        return with_client(upstream(
            state,
            incoming,
            Route::Blob,
            Outcome::UpstreamCloud,
        ));
    }
    let Some((index, mirror)) = state.mirrors.for_client(location) else {
        return with_client(upstream(state, incoming, Route::Blob, Outcome::NoMirror));
    };
    let blob_location = mirror.blob_location(digest, &origin(state, incoming));
    let mut answer = match state
        .checker
        .check(index, mirror, digest, &blob_location)
        .await
    {
        Presence::Found => Answer::new(redirect(&blob_location), Route::Blob, Outcome::Mirror),
        Presence::Missing => upstream(state, incoming, Route::Blob, Outcome::UpstreamFallback),
    };
    answer.backend = Some(mirror.name.clone());
    with_client(answer)
}

/// `/_hoist/mirrors/<backend>/containers/images/<digest>`: a blob of a `file:` mirror, with
/// `Range` and conditional requests. Only the selected file backends, only digests.
pub(crate) async fn file_mirror(state: &State, incoming: Incoming, body: Body) -> Answer {
    let rest = &incoming.path[FILE_MIRROR_PATH.len()..];
    let found = rest
        .split_once("/containers/images/")
        .and_then(|(name, digest)| Some((state.mirrors.file_root(name)?, name, digest)))
        .filter(|(_, _, digest)| paths::is_digest(digest));
    let Some((root, name, digest)) = found else {
        return not_found(Route::FileMirror);
    };
    let file = Mirror::blob_file(root, digest);
    let backend = std::sync::Arc::from(name);
    // No extension, so served as application/octet-stream.
    let served = tower_http::services::ServeFile::new(&file)
        .oneshot(axum::http::Request::from_parts(incoming.request, body))
        .await;
    let mut answer = match served {
        Ok(response) => {
            let status = response.status();
            let outcome = match status {
                _ if status.is_success() || status == StatusCode::NOT_MODIFIED => Outcome::Ok,
                StatusCode::NOT_FOUND => Outcome::NotFound,
                _ if status.is_client_error() => Outcome::BadRequest,
                _ => Outcome::Error,
            };
            Answer::new(response.map(Body::new), Route::FileMirror, outcome)
        }
        Err(error) => {
            tracing::warn!(path = %file.display(), error = %error, "could not serve a mirrored blob");
            Answer::new(
                text(StatusCode::INTERNAL_SERVER_ERROR, "could not read the blob"),
                Route::FileMirror,
                Outcome::Error,
            )
        }
    };
    answer.backend = Some(backend);
    answer
}

/// `http://host:port` as the client reached hoist, for what hoist serves itself; empty (a
/// relative `Location`) when the request names no host. `X-Forwarded-Proto` counts only from a
/// trusted load balancer.
pub(crate) fn origin(state: &State, incoming: &Incoming) -> String {
    let request = &incoming.request;
    let host = request
        .uri
        .authority()
        .map(|authority| authority.as_str().to_owned())
        .or_else(|| {
            request
                .headers
                .get(header::HOST)
                .and_then(|value| value.to_str().ok())
                .map(str::to_owned)
        })
        .filter(|host| {
            !host.is_empty()
                && host
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | ':' | '[' | ']'))
        });
    let Some(host) = host else {
        return String::new();
    };
    let forwarded_https = incoming
        .peer
        .is_some_and(|peer| !state.trusted.is_empty() && state.trusted.trusts(peer.ip()))
        && request
            .headers
            .get("x-forwarded-proto")
            .is_some_and(|value| value.as_bytes() == b"https");
    let scheme = if forwarded_https { "https" } else { "http" };
    format!("{scheme}://{host}")
}
