//! Timeouts of the S3 and GCS clients: a connect timeout, and an idle timeout that fires on
//! silence (no byte sent or received for a while), never on the length of a transfer.
//!
//! Neither SDK offers that. The AWS SDK's read timeout counts from the start of a request, so it
//! would cut a large part upload on a slow link, and its stalled-stream protection starts only
//! with bodies; reqwest's read timeout likewise. So both clients watch their requests with the
//! pieces of [`hoist_store::idle`]:
//!
//! - S3: [`s3_http_client`] wraps the SDK's own HTTPS client (rustls) in an HTTP connector that
//!   hands request bodies over in pieces that mark activity, gives up a request after the idle
//!   period of silence, and makes response bodies fail after it. An idle timeout is reported as a
//!   connector error of no retryable kind, so the SDK does not wait it out three times.
//! - GCS: [`send`] does the same for one reqwest request, and [`body_stream`] for its body.

use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use aws_smithy_runtime_api::client::http::{
    HttpClient, HttpConnector, HttpConnectorFuture, HttpConnectorSettings, SharedHttpClient,
    SharedHttpConnector,
};
use aws_smithy_runtime_api::client::orchestrator::HttpRequest;
use aws_smithy_runtime_api::client::result::ConnectorError;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_types::body::SdkBody;
use bytes::Bytes;
use futures::{Stream, StreamExt as _};
pub use hoist_store::idle::Timeouts;
use hoist_store::idle::{self, Activity, IdleStream, IdleTimeout};
use http_body::{Body, Frame, SizeHint};

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Request bodies are handed to the HTTP stack in pieces of at most this size, so that a slow
/// upload keeps showing progress.
const PIECE: usize = 64 * 1024;

// --- S3: an HTTP client for the AWS SDK ---------------------------------------------------------

/// The SDK's HTTPS client (hyper 1, rustls with aws-lc) behind idle-timeout watching.
pub(crate) fn s3_http_client(idle: Duration) -> SharedHttpClient {
    let inner = aws_smithy_http_client::Builder::new()
        .tls_provider(aws_smithy_http_client::tls::Provider::Rustls(
            aws_smithy_http_client::tls::rustls_provider::CryptoMode::AwsLc,
        ))
        .build_https();
    SharedHttpClient::new(IdleClient { inner, idle })
}

#[derive(Debug)]
struct IdleClient {
    inner: SharedHttpClient,
    idle: Duration,
}

impl HttpClient for IdleClient {
    fn http_connector(
        &self,
        settings: &HttpConnectorSettings,
        components: &RuntimeComponents,
    ) -> SharedHttpConnector {
        SharedHttpConnector::new(IdleConnector {
            inner: self.inner.http_connector(settings, components),
            idle: self.idle,
        })
    }
}

#[derive(Debug)]
struct IdleConnector {
    inner: SharedHttpConnector,
    idle: Duration,
}

impl HttpConnector for IdleConnector {
    fn call(&self, mut request: HttpRequest) -> HttpConnectorFuture {
        let activity = Activity::new();
        let body = request.take_body();
        *request.body_mut() = SdkBody::from_body_1_x(Pieces::new(body, activity.clone()));
        let sent = self.inner.call(request);
        let idle = self.idle;
        HttpConnectorFuture::new(async move {
            let mut response = match idle::watch(sent, &activity, idle).await {
                Ok(response) => response?,
                // Of no retryable kind: the server already had the whole idle period.
                Err(timeout) => return Err(ConnectorError::other(Box::new(timeout), None)),
            };
            let body = response.take_body();
            *response.body_mut() = SdkBody::from_body_1_x(Silence::new(body, idle));
            Ok(response)
        })
    }
}

/// A request body passed on in pieces of at most [`PIECE`] bytes, each marking activity; its end
/// is recorded too ([`Activity::body_sent`]).
struct Pieces {
    inner: SdkBody,
    /// The rest of a frame larger than a piece.
    pending: Bytes,
    activity: Activity,
    sent: u64,
}

impl Pieces {
    fn new(inner: SdkBody, activity: Activity) -> Self {
        Self {
            inner,
            pending: Bytes::new(),
            activity,
            sent: 0,
        }
    }

    fn piece(&mut self) -> Frame<Bytes> {
        let length = self.pending.len().min(PIECE);
        self.sent += length as u64;
        let piece = self.pending.split_to(length);
        if self.pending.is_empty() && self.inner.is_end_stream() {
            // The HTTP stack may never ask again once it sent the announced length.
            self.activity.body_sent(self.sent);
        } else {
            self.activity.touch();
        }
        Frame::data(piece)
    }
}

impl Body for Pieces {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        context: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        if !self.pending.is_empty() {
            return Poll::Ready(Some(Ok(self.piece())));
        }
        match Pin::new(&mut self.inner).poll_frame(context) {
            Poll::Ready(Some(Ok(frame))) => match frame.into_data() {
                Ok(data) => {
                    self.pending = data;
                    Poll::Ready(Some(Ok(self.piece())))
                }
                Err(frame) => Poll::Ready(Some(Ok(frame))),
            },
            Poll::Ready(Some(Err(error))) => Poll::Ready(Some(Err(error))),
            Poll::Ready(None) => {
                self.activity.body_sent(self.sent);
                Poll::Ready(None)
            }
            Poll::Pending => Poll::Pending,
        }
    }

    fn is_end_stream(&self) -> bool {
        self.pending.is_empty() && self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        let inner = self.inner.size_hint();
        let pending = self.pending.len() as u64;
        let mut hint = SizeHint::new();
        hint.set_lower(inner.lower() + pending);
        if let Some(upper) = inner.upper() {
            hint.set_upper(upper + pending);
        }
        hint
    }
}

/// A response body that fails once no frame arrived for the idle period while it is read.
struct Silence {
    inner: SdkBody,
    idle: Duration,
    /// Started by the first read.
    timer: Option<Pin<Box<tokio::time::Sleep>>>,
}

impl Silence {
    fn new(inner: SdkBody, idle: Duration) -> Self {
        Self {
            inner,
            idle,
            timer: None,
        }
    }
}

impl Body for Silence {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        context: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let idle = self.idle;
        match Pin::new(&mut self.inner).poll_frame(context) {
            Poll::Ready(frame) => {
                if let Some(timer) = &mut self.timer {
                    timer.as_mut().reset(tokio::time::Instant::now() + idle);
                }
                return Poll::Ready(frame);
            }
            Poll::Pending => {}
        }
        let timer = self
            .timer
            .get_or_insert_with(|| Box::pin(tokio::time::sleep(idle)));
        match timer.as_mut().poll(context) {
            Poll::Ready(()) => Poll::Ready(Some(Err(Box::new(IdleTimeout::new(idle))))),
            Poll::Pending => Poll::Pending,
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

// --- GCS: reqwest requests ---------------------------------------------------------------------

/// Why a watched request failed.
#[derive(Debug, thiserror::Error)]
pub(crate) enum SendError {
    #[error("{}", describe(.0))]
    Http(#[source] reqwest::Error),
    #[error("no answer: {0}")]
    Silent(#[source] IdleTimeout),
}

/// A reqwest error's text, or the idle timeout among its causes.
fn describe(error: &reqwest::Error) -> String {
    match IdleTimeout::find(error) {
        Some(timeout) => timeout.to_string(),
        None => error.to_string(),
    }
}

/// A request body: chunks that [`send`] passes on, marking activity with each.
pub(crate) type UploadBody = futures::stream::BoxStream<'static, std::io::Result<Bytes>>;

/// `bytes` as a body of pieces of at most 64 KiB, so that an upload keeps showing progress.
pub(crate) fn pieces(
    bytes: Bytes,
) -> impl Iterator<Item = std::io::Result<Bytes>> + Send + 'static {
    let length = bytes.len();
    (0..length)
        .step_by(PIECE)
        .map(move |start| Ok(bytes.slice(start..(start + PIECE).min(length))))
}

/// Sends `request` with `body` of `length` bytes (each chunk marks activity), giving up after
/// `idle` of silence. The response body is not watched here: read it with [`body_stream`].
pub(crate) async fn send(
    request: reqwest::RequestBuilder,
    body: Option<UploadBody>,
    length: u64,
    idle: Duration,
) -> Result<reqwest::Response, SendError> {
    let activity = Activity::new();
    let request = match body {
        Some(body) => {
            // Chunks cut into pieces, so that progress is seen while a large chunk drains; the
            // end is known by the length, as the HTTP stack may never ask again after it.
            let watched = activity.clone();
            let mut sent = 0u64;
            let pieces = body
                .flat_map(|chunk| {
                    futures::stream::iter(match chunk {
                        Ok(bytes) => pieces(bytes).collect::<Vec<_>>(),
                        Err(error) => vec![Err(error)],
                    })
                })
                .inspect(move |piece| {
                    if let Ok(piece) = piece {
                        sent += piece.len() as u64;
                        if sent >= length {
                            watched.body_sent(sent);
                        } else {
                            watched.touch();
                        }
                    }
                });
            request
                .header(reqwest::header::CONTENT_LENGTH, length)
                .body(reqwest::Body::wrap_stream(pieces))
        }
        None => request,
    };
    match idle::watch(request.send(), &activity, idle).await {
        Ok(Ok(response)) => Ok(response),
        Ok(Err(error)) => Err(SendError::Http(error.without_url())),
        Err(timeout) => Err(SendError::Silent(timeout)),
    }
}

/// The response's body, failing after `idle` without a byte while it is read.
pub(crate) fn body_stream(
    response: reqwest::Response,
    idle: Duration,
) -> impl Stream<Item = Result<Bytes, BoxError>> + Send + Unpin {
    let stream = response
        .bytes_stream()
        .map(|item| item.map_err(|error| Box::new(error.without_url()) as BoxError));
    IdleStream::new(Box::pin(stream), idle, |timeout: IdleTimeout| {
        Box::new(timeout) as BoxError
    })
}

/// The whole (small) body of `response`, read with the idle timeout.
pub(crate) async fn body_bytes(
    response: reqwest::Response,
    idle: Duration,
    limit: usize,
) -> Result<Bytes, BoxError> {
    let mut stream = body_stream(response, idle);
    let mut body = Vec::new();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk?;
        if body.len() + chunk.len() > limit {
            return Err(format!("the response is larger than {limit} bytes").into());
        }
        body.extend_from_slice(&chunk);
    }
    Ok(Bytes::from(body))
}
