//! The bytes of one request on the wire, watched for silence (see `hoist_store::idle`): request
//! bodies go to the HTTP stack in pieces that each mark the request as moving, and response
//! bodies fail when no byte arrives for the idle period.

use std::time::Duration;

use bytes::Bytes;
use futures::StreamExt as _;
use hoist_store::StoreError;
use hoist_store::idle::{Activity, IdleStream, IdleTimeout, Touching};
use reqwest::Response;

/// A request body handed over in pieces of this size, so a slow upload keeps showing progress.
const PIECE: usize = 64 * 1024;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// A body to send: bytes in memory (sent again on a retry) or a stream (sent once).
#[derive(Debug)]
pub(crate) enum Outgoing {
    Bytes(Bytes),
    Stream(reqwest::Body),
}

impl Outgoing {
    /// The body for reqwest, touching `activity` as each piece is taken, and the length to
    /// announce when the body itself no longer says it.
    pub(crate) fn into_body(self, activity: &Activity) -> (reqwest::Body, Option<u64>) {
        match self {
            Self::Bytes(bytes) if bytes.len() <= PIECE => {
                activity.body_sent(bytes.len() as u64);
                (reqwest::Body::from(bytes), None)
            }
            Self::Bytes(bytes) => {
                let length = bytes.len();
                let pieces = futures::stream::iter((0..length).step_by(PIECE).map(move |start| {
                    Ok::<_, std::convert::Infallible>(
                        bytes.slice(start..(start + PIECE).min(length)),
                    )
                }));
                let body = reqwest::Body::wrap_stream(Touching::new(pieces, activity.clone()));
                (body, Some(length as u64))
            }
            Self::Stream(body) => {
                let stream = http_body_util::BodyExt::into_data_stream(body);
                let body = reqwest::Body::wrap_stream(Touching::new(stream, activity.clone()));
                (body, None)
            }
        }
    }
}

/// `response`, whose body now fails once no byte arrived for `idle` while it is being read.
pub(crate) fn idle_response(response: Response, idle: Duration) -> Response {
    let status = response.status();
    let version = response.version();
    let url = response.url().clone();
    let headers = response.headers().clone();
    let stream = response
        .bytes_stream()
        .map(|item| item.map_err(|error| Box::new(error) as BoxError));
    let body = IdleStream::new(Box::pin(stream), idle, |timeout: IdleTimeout| {
        Box::new(timeout) as BoxError
    });
    let mut builder = http::Response::builder().status(status).version(version);
    if let Some(target) = builder.headers_mut() {
        *target = headers;
    }
    let builder = reqwest::ResponseBuilderExt::url(builder, url);
    let rebuilt = builder
        .body(reqwest::Body::wrap_stream(body))
        .expect("the status, version and headers come from a valid response");
    Response::from(rebuilt)
}

/// A reqwest error for a message: its text and, when the cause was silence, that.
pub(crate) fn describe(error: &reqwest::Error) -> String {
    match IdleTimeout::find(error) {
        Some(timeout) => timeout.to_string(),
        None => error.to_string(),
    }
}

/// Whether `error` happened before any byte of the request could have reached the server (the
/// connection was refused or could not be made).
pub(crate) fn never_sent(error: &StoreError) -> bool {
    let mut current: Option<&(dyn std::error::Error + 'static)> = Some(error);
    while let Some(error) = current {
        if let Some(error) = error.downcast_ref::<reqwest::Error>() {
            return error.is_connect();
        }
        current = error.source();
    }
    false
}
