//! Pushing images with plain reqwest: independent of hoist-registry, the code under test.
//!
//! Blobs go up monolithically (POST to open an upload, PUT with the digest) after a HEAD shows
//! they are missing; children go before their index; tags last.

use futures::TryStreamExt;
use hoist_oci::Digest;

use crate::endpoint::Endpoint;
use crate::error::{Error, Result};
use crate::image::{Blob, BlobContent, Image};

/// What a push did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PushSummary {
    /// Blobs uploaded.
    pub blobs_uploaded: usize,
    /// Blobs the registry already had (HEAD answered 200).
    pub blobs_present: usize,
    /// Manifests put (by digest; tags not counted).
    pub manifests: usize,
}

/// Pushes `image` (all blobs, child manifests, the manifest) to `repository`, then tags it.
pub async fn push(
    client: &reqwest::Client,
    endpoint: &Endpoint,
    repository: &str,
    image: &Image,
    tags: &[&str],
) -> Result<PushSummary> {
    let mut summary = PushSummary::default();
    for blob in image.blobs() {
        if push_blob(client, endpoint, repository, blob).await? {
            summary.blobs_uploaded += 1;
        } else {
            summary.blobs_present += 1;
        }
    }
    for manifest in image.manifests() {
        push_manifest(
            client,
            endpoint,
            repository,
            &manifest.digest().to_string(),
            manifest.media_type(),
            manifest.raw_manifest.clone(),
        )
        .await?;
        summary.manifests += 1;
    }
    for tag in tags {
        push_manifest(
            client,
            endpoint,
            repository,
            tag,
            image.media_type(),
            image.raw_manifest.clone(),
        )
        .await?;
    }
    Ok(summary)
}

/// Uploads one blob unless the repository has it; returns whether it uploaded. Generated layers
/// are streamed, never held whole.
pub async fn push_blob(
    client: &reqwest::Client,
    endpoint: &Endpoint,
    repository: &str,
    blob: &Blob,
) -> Result<bool> {
    let digest = blob.digest();
    if blob_exists(client, endpoint, repository, digest).await? {
        return Ok(false);
    }
    let start_url = endpoint.url(repository, "blobs/uploads/");
    let response = send(endpoint, "POST", &start_url, client.post(&start_url)).await?;
    let response = expect_status(response, "POST", &start_url, &[202]).await?;
    let location = response
        .headers()
        .get(reqwest::header::LOCATION)
        .and_then(|value| value.to_str().ok())
        .ok_or_else(|| Error::BadHeader {
            url: start_url.clone(),
            header: "Location",
        })?;
    let mut upload_url = resolve(endpoint, location);
    upload_url.push(if upload_url.contains('?') { '&' } else { '?' });
    upload_url.push_str(&format!("digest={digest}"));
    let body = match &blob.content {
        BlobContent::Inline(bytes) => reqwest::Body::from(bytes.clone()),
        BlobContent::Generated(layer) => {
            reqwest::Body::wrap_stream(layer.stream().map_err(std::io::Error::other))
        }
    };
    let request = client
        .put(&upload_url)
        .header(reqwest::header::CONTENT_TYPE, "application/octet-stream")
        .header(reqwest::header::CONTENT_LENGTH, blob.descriptor.size)
        .body(body);
    let response = send(endpoint, "PUT", &upload_url, request).await?;
    expect_status(response, "PUT", &upload_url, &[201]).await?;
    Ok(true)
}

/// Puts manifest `bytes` under `reference` (a tag or a digest).
pub async fn push_manifest(
    client: &reqwest::Client,
    endpoint: &Endpoint,
    repository: &str,
    reference: &str,
    media_type: &str,
    bytes: bytes::Bytes,
) -> Result<()> {
    let url = endpoint.url(repository, &format!("manifests/{reference}"));
    let request = client
        .put(&url)
        .header(reqwest::header::CONTENT_TYPE, media_type)
        .body(bytes);
    let response = send(endpoint, "PUT", &url, request).await?;
    expect_status(response, "PUT", &url, &[201]).await?;
    Ok(())
}

/// Whether `repository` has the blob (HEAD).
pub async fn blob_exists(
    client: &reqwest::Client,
    endpoint: &Endpoint,
    repository: &str,
    digest: Digest,
) -> Result<bool> {
    let url = endpoint.url(repository, &format!("blobs/{digest}"));
    let response = send(endpoint, "HEAD", &url, client.head(&url)).await?;
    match response.status().as_u16() {
        200 | 307 => Ok(true),
        404 => Ok(false),
        _ => Err(status_error(response, "HEAD", &url).await),
    }
}

/// Unlinks a blob from `repository` (the registry runs with deletes enabled): the way to make a
/// deliberately broken copy, since registries refuse manifests whose blobs are missing.
pub async fn delete_blob(
    client: &reqwest::Client,
    endpoint: &Endpoint,
    repository: &str,
    digest: Digest,
) -> Result<()> {
    let url = endpoint.url(repository, &format!("blobs/{digest}"));
    let response = send(endpoint, "DELETE", &url, client.delete(&url)).await?;
    expect_status(response, "DELETE", &url, &[202]).await?;
    Ok(())
}

/// Sends `request` with the endpoint's credentials.
pub(crate) async fn send(
    endpoint: &Endpoint,
    method: &str,
    url: &str,
    request: reqwest::RequestBuilder,
) -> Result<reqwest::Response> {
    endpoint
        .authorize(request)
        .send()
        .await
        .map_err(|source| Error::http(method, url, source))
}

/// Passes `response` through when its status is one of `expected`, else fails with its body.
pub(crate) async fn expect_status(
    response: reqwest::Response,
    method: &str,
    url: &str,
    expected: &[u16],
) -> Result<reqwest::Response> {
    if expected.contains(&response.status().as_u16()) {
        Ok(response)
    } else {
        Err(status_error(response, method, url).await)
    }
}

/// The error for an unexpected status, with the start of the body registries explain in.
pub(crate) async fn status_error(response: reqwest::Response, method: &str, url: &str) -> Error {
    let status = response.status().as_u16();
    let body: String = response
        .text()
        .await
        .unwrap_or_default()
        .chars()
        .take(500)
        .collect();
    Error::Status {
        method: method.to_owned(),
        url: url.to_owned(),
        status,
        body,
    }
}

/// Makes an absolute URL of a `Location` header (registries may send a path only).
pub(crate) fn resolve(endpoint: &Endpoint, location: &str) -> String {
    if location.starts_with("http://") || location.starts_with("https://") {
        location.to_owned()
    } else {
        format!("{}{location}", endpoint.base_url())
    }
}
