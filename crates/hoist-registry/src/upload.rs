//! Writing blobs: the upload session of the distribution spec (`POST`, `PATCH`..., `PUT ?digest=`)
//! and cross-repository mounts.
//!
//! The input stream's items (often a few KiB each, straight from another registry) are gathered
//! into chunks of `upload_chunk_size` bytes, so a blob costs a handful of requests, not one per
//! item, and memory stays at one chunk whatever the blob's size. A blob no larger than one chunk
//! goes in the final `PUT`: two requests in all. The session is only finished (`PUT`) when the
//! stream ended cleanly with the promised size and digest (hashed here while streaming, and checked
//! again by the registry at the `PUT`); on any failure it is cancelled (`DELETE`), so a broken
//! stream never leaves content behind.

use bytes::{Bytes, BytesMut};
use futures::StreamExt as _;
use hoist_oci::Digest;
use hoist_store::{ByteStream, StoreError, StoreErrorKind};
use reqwest::header::{CONTENT_RANGE, CONTENT_TYPE, LOCATION};
use reqwest::{Method, Response, StatusCode};
use sha2::{Digest as _, Sha256};
use url::Url;

use crate::auth::Scope;
use crate::client::{Request, Transport, error_from_response};

fn subject(transport: &Transport, repository: &str, digest: &Digest) -> String {
    format!("{}/{repository}@{digest}", transport.host)
}

/// The upload URL a response points to, resolved against the URL it answered.
fn location(response: &Response, subject: &str) -> Result<Url, StoreError> {
    let location = response
        .headers()
        .get(LOCATION)
        .and_then(|value| value.to_str().ok())
        .ok_or_else(|| {
            StoreError::new(
                StoreErrorKind::Protocol,
                subject,
                "the upload answer has no Location",
            )
        })?;
    response.url().join(location).map_err(|error| {
        StoreError::new(
            StoreErrorKind::Protocol,
            subject,
            "the upload Location is not a URL",
        )
        .with_source(error)
    })
}

/// An open upload session.
#[derive(Debug)]
struct Session<'a> {
    transport: &'a Transport,
    repository: &'a str,
    subject: String,
    location: Url,
    offset: u64,
}

impl Session<'_> {
    /// Sends one chunk with `PATCH`; the registry answers with the next location.
    async fn send_chunk(&mut self, chunk: Bytes) -> Result<(), StoreError> {
        let end = self.offset + chunk.len() as u64 - 1;
        let request = Request::new(
            Method::PATCH,
            self.location.clone(),
            Scope::push(self.repository),
        )
        .header(CONTENT_TYPE, "application/octet-stream")
        .header(CONTENT_RANGE, &format!("{}-{end}", self.offset))
        .body(chunk);
        let response = self.transport.send(&request).await?;
        if response.status() != StatusCode::ACCEPTED {
            return Err(error_from_response(response, &self.subject).await);
        }
        self.location = location(&response, &self.subject)?;
        self.offset = end + 1;
        Ok(())
    }

    /// Finishes with `PUT ?digest=`, sending the last bytes.
    async fn finish(&self, digest: &Digest, rest: Bytes) -> Result<(), StoreError> {
        let mut url = self.location.clone();
        url.query_pairs_mut()
            .append_pair("digest", &digest.to_string());
        // Not retried: after a failed PUT the session's state is unknown. The copier retries the
        // whole blob.
        let request = Request::new(Method::PUT, url, Scope::push(self.repository))
            .header(CONTENT_TYPE, "application/octet-stream")
            .body(rest)
            .no_retry();
        let response = self.transport.send(&request).await?;
        if response.status() != StatusCode::CREATED {
            return Err(error_from_response(response, &self.subject).await);
        }
        Ok(())
    }

    /// Ends the session without committing anything. Best effort: registries also expire
    /// abandoned sessions, so a failure here is only logged.
    async fn cancel(&self) {
        let request = Request::new(
            Method::DELETE,
            self.location.clone(),
            Scope::push(self.repository),
        );
        match self.transport.send(&request).await {
            Ok(response) if response.status().is_success() => {}
            Ok(response) => {
                tracing::debug!(host = %self.transport.host, repository = self.repository, status = response.status().as_u16(), "cancelling an upload failed");
            }
            Err(error) => {
                tracing::debug!(host = %self.transport.host, repository = self.repository, %error, "cancelling an upload failed");
            }
        }
    }
}

/// Opens an upload session in `repository` (`POST /v2/<name>/blobs/uploads/`).
async fn open<'a>(
    transport: &'a Transport,
    repository: &'a str,
    subject: String,
) -> Result<Session<'a>, StoreError> {
    let request = Request::new(
        Method::POST,
        transport.url(&format!("{repository}/blobs/uploads/")),
        Scope::push(repository),
    );
    let response = transport.send(&request).await?;
    if response.status() != StatusCode::ACCEPTED {
        return Err(error_from_response(response, &subject).await);
    }
    let location = location(&response, &subject)?;
    Ok(Session {
        transport,
        repository,
        subject,
        location,
        offset: 0,
    })
}

/// Uploads `stream`, which must hold exactly `size` bytes hashing to `digest`.
pub(crate) async fn push(
    transport: &Transport,
    repository: &str,
    digest: &Digest,
    size: u64,
    stream: ByteStream,
) -> Result<(), StoreError> {
    let subject = subject(transport, repository, digest);
    let mut session = open(transport, repository, subject).await?;
    match send_all(&mut session, digest, size, stream).await {
        Ok(()) => {
            tracing::debug!(host = %transport.host, repository, %digest, bytes = size, "pushed blob");
            Ok(())
        }
        Err(error) => {
            session.cancel().await;
            Err(error)
        }
    }
}

async fn send_all(
    session: &mut Session<'_>,
    digest: &Digest,
    size: u64,
    mut stream: ByteStream,
) -> Result<(), StoreError> {
    let chunk_size = session.transport.chunk_size();
    let mut buffer = BytesMut::new();
    let mut seen: u64 = 0;
    let mut hasher = Sha256::new();
    while let Some(item) = stream.next().await {
        let item = item?;
        seen += item.len() as u64;
        if seen > size {
            return Err(size_error(&session.subject, size, seen, "more than"));
        }
        hasher.update(&item);
        buffer.extend_from_slice(&item);
        if buffer.len() >= chunk_size {
            // `split` hands the whole allocation to the request, so the buffer starts afresh
            // and memory does not accumulate over the chunks.
            session.send_chunk(buffer.split().freeze()).await?;
        }
    }
    if seen != size {
        return Err(size_error(&session.subject, size, seen, "only"));
    }
    // Checked here as well as by the registry: a registry's refused `PUT` consumes the session's
    // state, so it could no longer be cancelled, and not every registry checks.
    let actual = Digest::from_sha256(hasher.finalize().into());
    if actual != *digest {
        return Err(StoreError::digest_mismatch(
            &session.subject,
            digest,
            size,
            &actual,
            seen,
        ));
    }
    session.finish(digest, buffer.freeze()).await
}

fn size_error(subject: &str, size: u64, seen: u64, how: &str) -> StoreError {
    StoreError::new(
        StoreErrorKind::DigestMismatch,
        subject,
        format!("the blob was announced as {size} bytes but the stream held {how} {seen}"),
    )
}

/// Mounts `digest` from `from` into `to`. `Ok(false)` when the registry would not: it then opened
/// an upload session instead (202), which is cancelled so that nothing is left behind.
pub(crate) async fn mount(
    transport: &Transport,
    to: &str,
    from: &str,
    digest: &Digest,
) -> Result<bool, StoreError> {
    let subject = subject(transport, to, digest);
    let mut url = transport.url(&format!("{to}/blobs/uploads/"));
    url.query_pairs_mut()
        .append_pair("mount", &digest.to_string())
        .append_pair("from", from);
    let response = transport
        .send(&Request::new(Method::POST, url, Scope::mount(to, from)))
        .await?;
    match response.status() {
        StatusCode::CREATED => {
            tracing::debug!(host = %transport.host, repository = to, from, %digest, "mounted blob");
            Ok(true)
        }
        StatusCode::ACCEPTED => {
            let session = Session {
                transport,
                repository: to,
                location: location(&response, &subject)?,
                subject,
                offset: 0,
            };
            session.cancel().await;
            Ok(false)
        }
        _ => {
            let error = error_from_response(response, &subject).await;
            match error.kind() {
                // These would fail the upload just the same; say so now.
                StoreErrorKind::Unauthorized | StoreErrorKind::Network | StoreErrorKind::Server => {
                    Err(error)
                }
                _ => {
                    tracing::debug!(host = %transport.host, repository = to, from, %digest, %error, "mount refused");
                    Ok(false)
                }
            }
        }
    }
}
