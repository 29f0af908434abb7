//! A read-only registry API over a directory of OCI layouts (`--upstream oci:DIR`), served under
//! `/_hoist/upstream/v2/…`, so that a pull through the redirector works with no registry at all:
//! manifests (by tag or digest) and blobs by `GET` or `HEAD`, and `tags/list`. Clients are only
//! ever sent here by the redirect rules; nothing can be written.

use axum::body::Body;
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::response::Response;
use futures::StreamExt as _;
use hoist_layout::LayoutStore;
use hoist_oci::{Digest, Reference};
use hoist_store::{Source as _, StoreError, StoreErrorKind};

use crate::LAYOUT_UPSTREAM_PATH;
use crate::handlers::{api_version, text};
use crate::metrics::{Outcome, Route};
use crate::router::{Answer, Incoming, State};

/// What a path under `/_hoist/upstream/v2/` asks for.
#[derive(Debug, PartialEq, Eq)]
enum Ask<'a> {
    Version,
    Manifest(&'a str, &'a str),
    Blob(&'a str, &'a str),
    Tags(&'a str),
}

fn parse(rest: &str) -> Option<Ask<'_>> {
    if rest.is_empty() || rest == "/" {
        return Some(Ask::Version);
    }
    let rest = rest.strip_prefix('/')?;
    if let Some(name) = rest.strip_suffix("/tags/list") {
        return Some(Ask::Tags(name));
    }
    let valid = |(name, reference): &(&str, &str)| !name.is_empty() && !reference.contains('/');
    if let Some((name, reference)) = rest.rsplit_once("/manifests/").filter(valid) {
        return Some(Ask::Manifest(name, reference));
    }
    rest.rsplit_once("/blobs/")
        .filter(valid)
        .map(|(name, digest)| Ask::Blob(name, digest))
}

pub(crate) async fn serve(state: &State, incoming: Incoming) -> Answer {
    let Some(store) = &state.layout else {
        return error(StatusCode::NOT_FOUND, "NAME_UNKNOWN", "no layout upstream");
    };
    let rest = &incoming.path[LAYOUT_UPSTREAM_PATH.len()..];
    let Some(rest) = rest.strip_prefix("/v2") else {
        return error(StatusCode::NOT_FOUND, "NAME_UNKNOWN", "not a registry path");
    };
    let head = incoming.request.method == Method::HEAD;
    let mut answer = match parse(rest) {
        None => error(StatusCode::NOT_FOUND, "NAME_UNKNOWN", "not a registry path"),
        Some(Ask::Version) => api_version(),
        Some(Ask::Tags(name)) => tags(store, name).await,
        Some(Ask::Manifest(name, reference)) => manifest(store, name, reference, head).await,
        Some(Ask::Blob(name, digest)) => blob(store, name, digest, head).await,
    };
    answer.route = Route::Layout;
    answer
}

async fn tags(store: &LayoutStore, name: &str) -> Answer {
    match store.list_tags(name).await {
        Ok(tags) if tags.is_empty() => error(StatusCode::NOT_FOUND, "NAME_UNKNOWN", name),
        Ok(tags) => {
            let tags: Vec<&str> = tags.iter().map(|tag| tag.as_str()).collect();
            let body = serde_json::json!({ "name": name, "tags": tags }).to_string();
            let mut response = Response::new(Body::from(body));
            response.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            );
            Answer::new(response, Route::Layout, Outcome::Ok)
        }
        Err(failure) => store_error(&failure, "NAME_UNKNOWN"),
    }
}

async fn manifest(store: &LayoutStore, name: &str, reference: &str, head: bool) -> Answer {
    let Ok(reference) = Reference::parse(reference) else {
        return error(StatusCode::NOT_FOUND, "MANIFEST_UNKNOWN", reference);
    };
    match store.fetch_manifest(name, &reference).await {
        Ok(Some(manifest)) => {
            let length = manifest.bytes.len();
            let body = if head {
                Body::empty()
            } else {
                Body::from(manifest.bytes)
            };
            let mut response = Response::new(body);
            let headers = response.headers_mut();
            if let Ok(media_type) = HeaderValue::from_str(&manifest.media_type) {
                headers.insert(header::CONTENT_TYPE, media_type);
            }
            headers.insert(header::CONTENT_LENGTH, HeaderValue::from(length));
            if let Ok(digest) = HeaderValue::from_str(&manifest.digest.to_string()) {
                headers.insert("docker-content-digest", digest);
            }
            Answer::new(response, Route::Layout, Outcome::Ok)
        }
        Ok(None) => error(
            StatusCode::NOT_FOUND,
            "MANIFEST_UNKNOWN",
            &reference.to_string(),
        ),
        Err(failure) => store_error(&failure, "MANIFEST_UNKNOWN"),
    }
}

async fn blob(store: &LayoutStore, name: &str, digest: &str, head: bool) -> Answer {
    let Ok(digest) = Digest::parse(digest) else {
        return error(StatusCode::NOT_FOUND, "BLOB_UNKNOWN", digest);
    };
    let size = match store.blob_size(name, &digest).await {
        Ok(Some(size)) => size,
        Ok(None) => return error(StatusCode::NOT_FOUND, "BLOB_UNKNOWN", &digest.to_string()),
        Err(failure) => return store_error(&failure, "BLOB_UNKNOWN"),
    };
    let body = if head {
        Body::empty()
    } else {
        match store.fetch_blob(name, &digest).await {
            Ok(stream) => {
                Body::from_stream(stream.map(|chunk| chunk.map_err(std::io::Error::other)))
            }
            Err(failure) => return store_error(&failure, "BLOB_UNKNOWN"),
        }
    };
    let mut response = Response::new(body);
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/octet-stream"),
    );
    headers.insert(header::CONTENT_LENGTH, HeaderValue::from(size));
    if let Ok(value) = HeaderValue::from_str(&digest.to_string()) {
        headers.insert("docker-content-digest", value);
    }
    Answer::new(response, Route::Layout, Outcome::Ok)
}

fn store_error(failure: &StoreError, not_found_code: &str) -> Answer {
    match failure.kind() {
        StoreErrorKind::NotFound => {
            error(StatusCode::NOT_FOUND, not_found_code, &failure.to_string())
        }
        StoreErrorKind::Rejected => {
            error(StatusCode::NOT_FOUND, "NAME_INVALID", &failure.to_string())
        }
        _ => {
            tracing::warn!(error = %failure, "could not read the layout upstream");
            let mut answer = error(
                StatusCode::INTERNAL_SERVER_ERROR,
                "UNKNOWN",
                "could not read the layout",
            );
            answer.outcome = Outcome::Error;
            answer
        }
    }
}

/// An OCI distribution error body.
fn error(status: StatusCode, code: &str, detail: &str) -> Answer {
    let body = serde_json::json!({
        "errors": [{ "code": code, "message": code.to_lowercase().replace('_', " "), "detail": detail }]
    });
    let mut response = text(status, &body.to_string());
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    let outcome = if status == StatusCode::NOT_FOUND {
        Outcome::NotFound
    } else {
        Outcome::Error
    };
    Answer::new(response, Route::Layout, outcome)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths() {
        assert_eq!(parse(""), Some(Ask::Version));
        assert_eq!(parse("/"), Some(Ask::Version));
        assert_eq!(parse("/a/b/tags/list"), Some(Ask::Tags("a/b")));
        assert_eq!(parse("/a/b/manifests/v1"), Some(Ask::Manifest("a/b", "v1")));
        assert_eq!(
            parse("/a/blobs/sha256:00"),
            Some(Ask::Blob("a", "sha256:00"))
        );
        assert_eq!(parse("/a/blobs/uploads/"), None);
        assert_eq!(parse("/manifests/v1"), None);
        assert_eq!(parse("x"), None);
    }
}
