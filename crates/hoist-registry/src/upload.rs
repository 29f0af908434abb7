//! Writing blobs: the upload session of the distribution spec (`POST`, `PATCH`..., `PUT ?digest=`)
//! and cross-repository mounts.
//!
//! A blob larger than `upload_chunk_size` goes as the streamed body of one `PATCH` (the input
//! stream's items flow straight into the request, so memory does not grow with the blob, and the
//! blob costs three requests: `POST`, `PATCH`, `PUT`). A smaller one is gathered and sent in the
//! final `PUT`: two requests in all. The session is only finished (`PUT`) when the
//! stream ended cleanly with the promised size; on any failure it is cancelled (`DELETE`), so a
//! broken stream never leaves content behind.
//!
//! The input stream is *verified* ([`hoist_store::Sink::push_verified_blob`]): it yields an error
//! instead of its end when the bytes do not hash to the digest. `push_blob` wraps its stream in a
//! `VerifyingStream` for that; the copier hands over streams it verified already. Nothing is hashed
//! here: one sha256 per byte of a copy (the registry checks the digest again at the `PUT`).

use std::sync::{Arc, Mutex};

use bytes::{Bytes, BytesMut};
use futures::StreamExt as _;
use hoist_oci::Digest;
use hoist_store::{ByteStream, StoreError, StoreErrorKind};
use reqwest::header::{CONTENT_TYPE, LOCATION};
use reqwest::{Method, Response, StatusCode};
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
}

impl Session<'_> {
    /// Sends the whole blob as one streamed `PATCH` (chunked: its length is only known, and
    /// checked, once the stream ends).
    async fn send_stream(&mut self, body: reqwest::Body) -> Result<(), StoreError> {
        let request = Request::new(
            Method::PATCH,
            self.location.clone(),
            Scope::push(self.repository),
        )
        .header(CONTENT_TYPE, "application/octet-stream")
        .stream_body(body);
        let response = self.transport.send(&request).await?;
        if response.status() != StatusCode::ACCEPTED {
            return Err(error_from_response(response, &self.subject).await);
        }
        self.location = location(&response, &self.subject)?;
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
    })
}

/// Uploads `stream`, a verified stream of exactly `size` bytes hashing to `digest`.
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
    stream: ByteStream,
) -> Result<(), StoreError> {
    if size <= session.transport.chunk_size() as u64 {
        return send_small(session, digest, size, stream).await;
    }
    // One `PATCH` whose body is the stream itself, then an empty `PUT ?digest=`: three requests
    // per blob, and only the stream's items in flight in memory. The bytes are counted on their
    // way into the request (the stream verifies their digest).
    let tally = Arc::new(Mutex::new(Tally {
        seen: 0,
        error: None,
    }));
    // An input error ends the body early instead of failing it: the `PATCH` then completes with
    // what was sent, the registry answers with the session's current state, and the `DELETE`
    // that follows cancels it cleanly. (A body that fails mid-request leaves registry:2 writing
    // it after the response, and refusing a `DELETE` as stale meanwhile.)
    let counted = {
        let tally = tally.clone();
        let subject = session.subject.clone();
        stream
            .map(move |item| {
                let mut tally = tally.lock().expect("the tally lock is never poisoned");
                if tally.error.is_some() {
                    return None;
                }
                let checked = item.and_then(|bytes| {
                    tally.seen += bytes.len() as u64;
                    if tally.seen > size {
                        return Err(size_error(&subject, size, tally.seen, "more than"));
                    }
                    Ok(bytes)
                });
                match checked {
                    Ok(bytes) => Some(Ok::<_, std::io::Error>(bytes)),
                    Err(error) => {
                        tally.error = Some(error);
                        None
                    }
                }
            })
            .take_while(|item| std::future::ready(item.is_some()))
            .filter_map(std::future::ready)
    };
    let sent = session
        .send_stream(reqwest::Body::wrap_stream(counted))
        .await;
    let (seen, stream_error) = {
        let mut tally = tally.lock().expect("the tally lock is never poisoned");
        (tally.seen, tally.error.take())
    };
    if let Some(error) = stream_error {
        return Err(error);
    }
    sent?;
    check(&session.subject, size, seen)?;
    session.finish(digest, Bytes::new()).await
}

/// What passed through a streamed upload.
struct Tally {
    seen: u64,
    /// The first error the input stream gave.
    error: Option<StoreError>,
}

/// A blob of at most one chunk: gathered, counted, and sent in the final `PUT`.
async fn send_small(
    session: &mut Session<'_>,
    digest: &Digest,
    size: u64,
    mut stream: ByteStream,
) -> Result<(), StoreError> {
    let mut buffer = BytesMut::new();
    while let Some(item) = stream.next().await {
        let item = item?;
        if (buffer.len() + item.len()) as u64 > size {
            let seen = (buffer.len() + item.len()) as u64;
            return Err(size_error(&session.subject, size, seen, "more than"));
        }
        buffer.extend_from_slice(&item);
    }
    check(&session.subject, size, buffer.len() as u64)?;
    session.finish(digest, buffer.freeze()).await
}

/// Checked here as well as by the registry: a registry's refused `PUT` consumes the session's
/// state, so it could no longer be cancelled. (The digest was checked by the verified stream,
/// which fails instead of ending.)
fn check(subject: &str, size: u64, seen: u64) -> Result<(), StoreError> {
    if seen != size {
        return Err(size_error(subject, size, seen, "only"));
    }
    Ok(())
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
