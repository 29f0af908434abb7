//! Manifests: `HEAD`, `GET` and `PUT /v2/<name>/manifests/<reference>`.
//!
//! Every request names all four manifest media types in `Accept` (registry:2 answers 404 when the
//! stored type is not among them), and the media type returned is the registry's `Content-Type`, so
//! that a copy pushes the same bytes under the same type and digests are preserved.

use bytes::Bytes;
use hoist_oci::{Digest, Reference, media_types};
use hoist_store::{ManifestHead, RawManifest, StoreError, StoreErrorKind};
use reqwest::header::{ACCEPT, CONTENT_LENGTH, CONTENT_TYPE, HeaderMap};
use reqwest::{Method, StatusCode};

use crate::auth::Scope;
use crate::client::{Request, Transport, error_from_response, read_limited};

/// Registries must accept manifests of 4 MiB; a body far past that is not a manifest.
const MAX_MANIFEST_BYTES: usize = 16 * 1024 * 1024;

const DOCKER_CONTENT_DIGEST: &str = "docker-content-digest";

fn subject(transport: &Transport, repository: &str, reference: &Reference) -> String {
    format!(
        "{}/{repository}{}{reference}",
        transport.host,
        reference.separator()
    )
}

fn request(
    transport: &Transport,
    method: Method,
    repository: &str,
    reference: &Reference,
) -> Request {
    let scope = if method == Method::PUT {
        Scope::push(repository)
    } else {
        Scope::pull(repository)
    };
    Request::new(
        method,
        transport.url(&format!("{repository}/manifests/{reference}")),
        scope,
    )
    .header(ACCEPT, media_types::MANIFEST_ACCEPT)
}

/// The `Docker-Content-Digest` header, when present and a sha256 digest.
fn content_digest(headers: &HeaderMap) -> Option<Digest> {
    Digest::parse(headers.get(DOCKER_CONTENT_DIGEST)?.to_str().ok()?.trim()).ok()
}

/// The `Content-Type` without parameters (`; charset=...`), if any.
fn content_type(headers: &HeaderMap) -> Option<String> {
    let value = headers.get(CONTENT_TYPE)?.to_str().ok()?;
    let media_type = value.split(';').next().unwrap_or(value).trim();
    (!media_type.is_empty()).then(|| media_type.to_owned())
}

/// The manifest's digest, media type and size. Uses `HEAD`; falls back to `GET` when the registry
/// does not say the digest or size.
pub(crate) async fn head(
    transport: &Transport,
    repository: &str,
    reference: &Reference,
) -> Result<Option<ManifestHead>, StoreError> {
    let subject = subject(transport, repository, reference);
    let response = transport
        .send(&request(transport, Method::HEAD, repository, reference))
        .await?;
    match response.status() {
        StatusCode::NOT_FOUND => return Ok(None),
        status if status.is_success() => {}
        _ => return Err(error_from_response(response, &subject).await),
    }
    let headers = response.headers();
    let size = headers
        .get(CONTENT_LENGTH)
        .and_then(|value| value.to_str().ok()?.parse::<u64>().ok());
    let (Some(digest), Some(media_type), Some(size)) =
        (content_digest(headers), content_type(headers), size)
    else {
        tracing::debug!(host = %transport.host, repository, %reference, "HEAD lacks digest, type or size; fetching");
        let manifest = fetch(transport, repository, reference).await?;
        return Ok(manifest.map(|manifest| ManifestHead {
            digest: manifest.digest,
            media_type: manifest.media_type,
            size: manifest.bytes.len() as u64,
        }));
    };
    if let Reference::Digest(expected) = reference
        && *expected != digest
    {
        return Err(StoreError::new(
            StoreErrorKind::DigestMismatch,
            subject,
            format!("the registry says the manifest has digest {digest}"),
        ));
    }
    Ok(Some(ManifestHead {
        digest,
        media_type,
        size,
    }))
}

/// The manifest's exact bytes and media type, checked against the digest it was asked by and the
/// digest the registry claims.
pub(crate) async fn fetch(
    transport: &Transport,
    repository: &str,
    reference: &Reference,
) -> Result<Option<RawManifest>, StoreError> {
    let subject = subject(transport, repository, reference);
    let response = transport
        .send(&request(transport, Method::GET, repository, reference))
        .await?;
    match response.status() {
        StatusCode::NOT_FOUND => return Ok(None),
        status if status.is_success() => {}
        _ => return Err(error_from_response(response, &subject).await),
    }
    let claimed = content_digest(response.headers());
    let header_type = content_type(response.headers());
    let bytes = read_limited(response, MAX_MANIFEST_BYTES, &subject).await?;
    // An image to one client and an index to another is refused (CVE-2021-41190).
    RawManifest::check_unambiguous(
        &subject,
        header_type.as_deref().unwrap_or(""),
        &bytes,
        StoreErrorKind::Protocol,
    )?;
    let media_type = media_type(header_type, &bytes).ok_or_else(|| {
        StoreError::new(
            StoreErrorKind::Protocol,
            &subject,
            "the manifest has no media type",
        )
    })?;
    let manifest = RawManifest::new(media_type, bytes);
    let expected = match reference {
        Reference::Digest(digest) => Some(*digest),
        Reference::Tag(_) => claimed,
    };
    for expected in [expected, claimed].into_iter().flatten() {
        if expected != manifest.digest {
            let size = manifest.bytes.len() as u64;
            return Err(StoreError::digest_mismatch(
                &subject,
                &expected,
                size,
                &manifest.digest,
                size,
            ));
        }
    }
    Ok(Some(manifest))
}

/// The registry's `Content-Type`, unless it is a generic one; then the `mediaType` field.
fn media_type(header: Option<String>, bytes: &Bytes) -> Option<String> {
    let generic = |media_type: &str| {
        matches!(
            media_type,
            "application/json" | "text/plain" | "application/octet-stream"
        )
    };
    match header {
        Some(media_type) if !generic(&media_type) => Some(media_type),
        header => {
            #[derive(serde::Deserialize)]
            #[serde(rename_all = "camelCase")]
            struct MediaTypeField {
                media_type: Option<String>,
            }
            let field = serde_json::from_slice::<MediaTypeField>(bytes)
                .ok()
                .and_then(|body| body.media_type);
            field.or(header)
        }
    }
}

/// Stores the exact bytes under `reference`, with their media type as `Content-Type`.
pub(crate) async fn push(
    transport: &Transport,
    repository: &str,
    reference: &Reference,
    manifest: &RawManifest,
) -> Result<(), StoreError> {
    let subject = subject(transport, repository, reference);
    if let Reference::Digest(digest) = reference
        && *digest != manifest.digest
    {
        let size = manifest.bytes.len() as u64;
        return Err(StoreError::digest_mismatch(
            subject,
            digest,
            size,
            &manifest.digest,
            size,
        ));
    }
    RawManifest::check_unambiguous(
        &subject,
        &manifest.media_type,
        &manifest.bytes,
        StoreErrorKind::Rejected,
    )?;
    let request = request(transport, Method::PUT, repository, reference)
        .header(CONTENT_TYPE, &manifest.media_type)
        .body(manifest.bytes.clone());
    let response = transport.send(&request).await?;
    if !response.status().is_success() {
        return Err(error_from_response(response, &subject).await);
    }
    if let Some(stored) = content_digest(response.headers())
        && stored != manifest.digest
    {
        return Err(StoreError::new(
            StoreErrorKind::DigestMismatch,
            subject,
            format!(
                "pushed {} but the registry stored {stored}",
                manifest.digest
            ),
        ));
    }
    tracing::debug!(host = %transport.host, repository, %reference, digest = %manifest.digest, "pushed manifest");
    Ok(())
}

/// One page of `GET /v2/<name>/referrers/<digest>`: an OCI index of descriptors.
#[derive(serde::Deserialize)]
struct ReferrersIndex {
    #[serde(default)]
    manifests: Vec<ReferrerEntry>,
}

#[derive(serde::Deserialize)]
#[serde(rename_all = "camelCase")]
struct ReferrerEntry {
    #[serde(default)]
    media_type: String,
    digest: Digest,
    size: u64,
    #[serde(default)]
    artifact_type: Option<String>,
}

/// The referrers of `digest`, or `None` when the registry has no referrers API (it answers 404,
/// as the distribution spec asks of registries without it; registry:2 2.8 is one).
/// (<https://github.com/opencontainers/distribution-spec/blob/main/spec.md#listing-referrers>)
pub(crate) async fn referrers(
    transport: &Transport,
    repository: &str,
    digest: &Digest,
) -> Result<Option<Vec<hoist_store::Referrer>>, StoreError> {
    let subject = format!("{}/{repository}/referrers/{digest}", transport.host);
    let request = Request::new(
        Method::GET,
        transport.url(&format!("{repository}/referrers/{digest}")),
        Scope::pull(repository),
    )
    .header(ACCEPT, media_types::OCI_INDEX);
    let response = transport.send(&request).await?;
    match response.status() {
        StatusCode::OK => {}
        StatusCode::NOT_FOUND => return Ok(None),
        _ => return Err(error_from_response(response, &subject).await),
    }
    let body = read_limited(response, MAX_MANIFEST_BYTES, &subject).await?;
    let index: ReferrersIndex = serde_json::from_slice(&body).map_err(|error| {
        StoreError::new(
            StoreErrorKind::Protocol,
            &subject,
            "the referrers answer is not an OCI index",
        )
        .with_source(error)
    })?;
    Ok(Some(
        index
            .manifests
            .into_iter()
            .map(|entry| hoist_store::Referrer {
                media_type: entry.media_type,
                digest: entry.digest,
                size: entry.size,
                artifact_type: entry.artifact_type,
            })
            .collect(),
    ))
}
