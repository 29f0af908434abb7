//! The copy validator: manifest bytes equal at both ends, every referenced blob present at the
//! destination with the right size and sha256 (streamed and hashed, never trusted from headers).
//!
//! It talks to registries with plain reqwest, not through hoist-registry, so a bug there cannot
//! hide itself.

use std::collections::HashSet;

use bytes::Bytes;
use futures::StreamExt;
use hoist_oci::{Digest, media_types};
use sha2::{Digest as _, Sha256};

use crate::endpoint::Endpoint;
use crate::error::{Error, Result};
use crate::image::Descriptor;
use crate::image::layer_types::{DOCKER_FOREIGN_LAYER, OCI_NONDISTRIBUTABLE_LAYER};
use crate::push::{resolve, send, status_error};

/// What a successful validation checked.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Report {
    /// Every manifest compared, the top one first.
    pub manifests: Vec<Digest>,
    /// Every blob verified at the destination, each once.
    pub blobs: Vec<Descriptor>,
    /// Foreign or non-distributable layers, which registries do not hold and so were not checked.
    pub skipped_blobs: Vec<Digest>,
    /// Total bytes of the verified blobs.
    pub blob_bytes: u64,
}

/// A manifest as a registry serves it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FetchedManifest {
    /// The exact bytes.
    pub bytes: Bytes,
    /// The `Content-Type` the registry sent.
    pub media_type: String,
    /// The sha256 of the bytes.
    pub digest: Digest,
}

/// Checks that `digest` was copied faithfully from `source` to `destination`: identical manifest
/// bytes (recursively through an index's children), and every config and layer blob present at
/// the destination with the size and sha256 the manifest names.
pub async fn validate_copy(
    source: &Endpoint,
    source_repository: &str,
    destination: &Endpoint,
    destination_repository: &str,
    digest: Digest,
) -> Result<Report> {
    let source_client = source.client()?;
    let destination_client = destination.client()?;
    let mut report = Report::default();
    let mut seen_blobs = HashSet::new();
    // A child listed twice (by one index or by two) is checked once: a nested index listing the
    // same child at every level would otherwise cost 2^depth fetches.
    let mut seen_manifests: std::collections::HashMap<Digest, u64> = Default::default();
    // (digest, size the parent index gave) — a work list instead of async recursion.
    let mut pending: Vec<(Digest, Option<u64>)> = vec![(digest, None)];
    while let Some((manifest_digest, expected_size)) = pending.pop() {
        if let Some(&size) = seen_manifests.get(&manifest_digest) {
            if let Some(expected) = expected_size
                && expected != size
            {
                return Err(Error::SizeMismatch {
                    subject: format!("manifest {manifest_digest} (size from its index)"),
                    expected,
                    actual: size,
                });
            }
            continue;
        }
        let reference = manifest_digest.to_string();
        let at_source =
            fetch_manifest(&source_client, source, source_repository, &reference).await?;
        let at_destination = fetch_manifest(
            &destination_client,
            destination,
            destination_repository,
            &reference,
        )
        .await?;
        if at_source.bytes != at_destination.bytes
            || at_source.media_type != at_destination.media_type
        {
            let side = |endpoint: &Endpoint, repository: &str, manifest: &FetchedManifest| {
                format!(
                    "{}/{repository}: {} bytes ({})",
                    endpoint.host(),
                    manifest.bytes.len(),
                    manifest.media_type
                )
            };
            return Err(Error::ManifestDiffers {
                digest: manifest_digest,
                source_side: side(source, source_repository, &at_source),
                destination_side: side(destination, destination_repository, &at_destination),
            });
        }
        if let Some(expected) = expected_size
            && expected != at_source.bytes.len() as u64
        {
            return Err(Error::SizeMismatch {
                subject: format!("manifest {manifest_digest} (size from its index)"),
                expected,
                actual: at_source.bytes.len() as u64,
            });
        }
        report.manifests.push(manifest_digest);
        seen_manifests.insert(manifest_digest, at_source.bytes.len() as u64);

        let references = parse_references(manifest_digest, &at_source)?;
        match references {
            References::Children(children) => {
                // Reversed so the work list visits children in index order.
                pending.extend(
                    children
                        .into_iter()
                        .rev()
                        .map(|child| (child.digest, Some(child.size))),
                );
            }
            References::Blobs(blobs) => {
                for blob in blobs {
                    if is_foreign(&blob.media_type) {
                        report.skipped_blobs.push(blob.digest);
                        continue;
                    }
                    if !seen_blobs.insert(blob.digest) {
                        continue;
                    }
                    check_blob(
                        &destination_client,
                        destination,
                        destination_repository,
                        &blob,
                        manifest_digest,
                    )
                    .await?;
                    report.blob_bytes += blob.size;
                    report.blobs.push(blob);
                }
            }
        }
    }
    Ok(report)
}

/// Checks that `tag` in `repository` resolves to `digest`.
pub async fn validate_tag(
    endpoint: &Endpoint,
    repository: &str,
    tag: &str,
    digest: Digest,
) -> Result<()> {
    let client = endpoint.client()?;
    let fetched = fetch_manifest(&client, endpoint, repository, tag).await?;
    if fetched.digest != digest {
        return Err(Error::TagMismatch {
            image: format!("{}/{repository}:{tag}", endpoint.host()),
            expected: digest,
            actual: fetched.digest,
        });
    }
    Ok(())
}

/// GETs a manifest by tag or digest, accepting all four manifest types. When `reference` is a
/// digest, the bytes must hash to it.
pub async fn fetch_manifest(
    client: &reqwest::Client,
    endpoint: &Endpoint,
    repository: &str,
    reference: &str,
) -> Result<FetchedManifest> {
    let url = endpoint.url(repository, &format!("manifests/{reference}"));
    let request = client
        .get(&url)
        .header(reqwest::header::ACCEPT, media_types::MANIFEST_ACCEPT);
    let response = send(endpoint, "GET", &url, request).await?;
    match response.status().as_u16() {
        200 => {}
        404 => {
            return Err(Error::MissingManifest {
                reference: reference.to_owned(),
                host: endpoint.host().to_owned(),
                repository: repository.to_owned(),
            });
        }
        _ => return Err(status_error(response, "GET", &url).await),
    }
    let media_type = response
        .headers()
        .get(reqwest::header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let bytes = response
        .bytes()
        .await
        .map_err(|source| Error::http("GET", &url, source))?;
    let digest = Digest::of(&bytes);
    if let Ok(expected) = Digest::parse(reference)
        && expected != digest
    {
        return Err(Error::DigestMismatch {
            subject: format!("manifest at {url}"),
            expected,
            actual: digest,
        });
    }
    Ok(FetchedManifest {
        bytes,
        media_type,
        digest,
    })
}

/// GETs a blob, streaming it through sha256; returns its actual digest and length
/// (fails with [`Error::MissingBlob`] on 404). Follows one redirect, as to a storage backend.
pub async fn hash_blob(
    client: &reqwest::Client,
    endpoint: &Endpoint,
    repository: &str,
    digest: Digest,
) -> Result<(Digest, u64)> {
    let url = endpoint.url(repository, &format!("blobs/{digest}"));
    let mut response = send(endpoint, "GET", &url, client.get(&url)).await?;
    let mut fetched_url = url.clone();
    if response.status().is_redirection()
        && let Some(location) = response
            .headers()
            .get(reqwest::header::LOCATION)
            .and_then(|value| value.to_str().ok())
    {
        // Storage backends sign their URLs; credentials for the registry must not go there.
        fetched_url = resolve(endpoint, location);
        response = client
            .get(&fetched_url)
            .send()
            .await
            .map_err(|source| Error::http("GET", &fetched_url, source))?;
    }
    match response.status().as_u16() {
        200 => {}
        404 => {
            return Err(Error::MissingBlob {
                digest,
                host: endpoint.host().to_owned(),
                repository: repository.to_owned(),
                referenced_by: String::new(),
            });
        }
        _ => return Err(status_error(response, "GET", &fetched_url).await),
    }
    let mut hasher = Sha256::new();
    let mut length = 0u64;
    let mut body = response.bytes_stream();
    while let Some(chunk) = body.next().await {
        let chunk = chunk.map_err(|source| Error::http("GET", &fetched_url, source))?;
        hasher.update(&chunk);
        length += chunk.len() as u64;
    }
    Ok((Digest::from_sha256(hasher.finalize().into()), length))
}

async fn check_blob(
    client: &reqwest::Client,
    endpoint: &Endpoint,
    repository: &str,
    blob: &Descriptor,
    manifest: Digest,
) -> Result<()> {
    let (actual, length) = match hash_blob(client, endpoint, repository, blob.digest).await {
        Err(Error::MissingBlob {
            digest,
            host,
            repository,
            ..
        }) => {
            return Err(Error::MissingBlob {
                digest,
                host,
                repository,
                referenced_by: format!(" (referenced by manifest {manifest})"),
            });
        }
        other => other?,
    };
    let subject = format!(
        "blob {} at {}/{repository} (referenced by manifest {manifest})",
        blob.digest,
        endpoint.host()
    );
    if length != blob.size {
        return Err(Error::SizeMismatch {
            subject,
            expected: blob.size,
            actual: length,
        });
    }
    if actual != blob.digest {
        return Err(Error::DigestMismatch {
            subject,
            expected: blob.digest,
            actual,
        });
    }
    Ok(())
}

enum References {
    Children(Vec<Descriptor>),
    Blobs(Vec<Descriptor>),
}

/// The descriptors a manifest points at: children of an index, or config and layers.
fn parse_references(digest: Digest, manifest: &FetchedManifest) -> Result<References> {
    let invalid = |reason: String| Error::InvalidManifest { digest, reason };
    let value: serde_json::Value = serde_json::from_slice(&manifest.bytes)
        .map_err(|error| invalid(format!("not JSON: {error}")))?;
    let media_type = value
        .get("mediaType")
        .and_then(serde_json::Value::as_str)
        .unwrap_or(&manifest.media_type);
    let descriptor = |entry: &serde_json::Value| -> Result<Descriptor> {
        let field = |name: &str| entry.get(name).and_then(serde_json::Value::as_str);
        let digest_text =
            field("digest").ok_or_else(|| invalid("a descriptor lacks digest".into()))?;
        Ok(Descriptor {
            media_type: field("mediaType").unwrap_or_default().to_owned(),
            digest: Digest::parse(digest_text).map_err(|error| invalid(error.to_string()))?,
            size: entry
                .get("size")
                .and_then(serde_json::Value::as_u64)
                .ok_or_else(|| invalid(format!("descriptor {digest_text} lacks size")))?,
        })
    };
    let list = |name: &str| -> Result<Vec<Descriptor>> {
        match value.get(name) {
            None => Ok(Vec::new()),
            Some(serde_json::Value::Array(entries)) => entries.iter().map(&descriptor).collect(),
            Some(_) => Err(invalid(format!("{name} is not a list"))),
        }
    };
    if media_types::is_index(media_type) || value.get("manifests").is_some() {
        return Ok(References::Children(list("manifests")?));
    }
    let config = value
        .get("config")
        .ok_or_else(|| invalid(format!("a {media_type} manifest without config")))?;
    let mut blobs = vec![descriptor(config)?];
    blobs.extend(list("layers")?);
    Ok(References::Blobs(blobs))
}

fn is_foreign(media_type: &str) -> bool {
    media_type == DOCKER_FOREIGN_LAYER || media_type == OCI_NONDISTRIBUTABLE_LAYER
}
