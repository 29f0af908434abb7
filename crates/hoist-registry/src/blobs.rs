//! Reading blobs: `HEAD` and `GET /v2/<name>/blobs/<digest>`. Both follow redirects to storage
//! (without our `Authorization`, see the transport); the body streams, nothing is buffered.

use futures::StreamExt as _;
use hoist_oci::Digest;
use hoist_store::{ByteStream, StoreError, StoreErrorKind};
use reqwest::header::CONTENT_LENGTH;
use reqwest::{Method, StatusCode};

use crate::auth::Scope;
use crate::client::{Request, Transport, error_from_response};

fn subject(transport: &Transport, repository: &str, digest: &Digest) -> String {
    format!("{}/{repository}@{digest}", transport.host)
}

fn request(transport: &Transport, method: Method, repository: &str, digest: &Digest) -> Request {
    Request::new(
        method,
        transport.url(&format!("{repository}/blobs/{digest}")),
        Scope::pull(repository),
    )
}

/// The blob's size from `HEAD`, or `None` when the repository does not hold it.
pub(crate) async fn size(
    transport: &Transport,
    repository: &str,
    digest: &Digest,
) -> Result<Option<u64>, StoreError> {
    let subject = subject(transport, repository, digest);
    let response = transport
        .send(&request(transport, Method::HEAD, repository, digest))
        .await?;
    match response.status() {
        StatusCode::NOT_FOUND => Ok(None),
        status if status.is_success() => response
            .headers()
            .get(CONTENT_LENGTH)
            .and_then(|value| value.to_str().ok()?.parse::<u64>().ok())
            .map(Some)
            .ok_or_else(|| {
                StoreError::new(
                    StoreErrorKind::Protocol,
                    subject,
                    "the blob HEAD has no Content-Length",
                )
            }),
        _ => Err(error_from_response(response, &subject).await),
    }
}

/// The blob's bytes as they arrive. Not verified here: the caller wraps the stream in a
/// `VerifyingStream`. A failure mid-stream is a `Network` error and is not resumed; the copier
/// retries the whole blob.
pub(crate) async fn fetch(
    transport: &Transport,
    repository: &str,
    digest: &Digest,
) -> Result<ByteStream, StoreError> {
    let subject = subject(transport, repository, digest);
    let response = transport
        .send(&request(transport, Method::GET, repository, digest))
        .await?;
    if !response.status().is_success() {
        return Err(error_from_response(response, &subject).await);
    }
    let stream = response.bytes_stream().map(move |chunk| {
        chunk.map_err(|error| {
            let error = error.without_url();
            StoreError::new(
                StoreErrorKind::Network,
                &subject,
                format!("reading the blob failed: {}", crate::wire::describe(&error)),
            )
            .with_source(error)
        })
    });
    Ok(Box::pin(stream))
}
