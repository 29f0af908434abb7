//! The network a [`super::FaultProxy`] pretends to be: latency in each direction, a bandwidth cap
//! per connection and direction, and a registry's request quota.
//!
//! - Latency: a request waits `latency` before it is forwarded and its response waits `latency`
//!   before it is returned (one round trip per request), and a new connection waits a round trip
//!   before its first request is read (the TCP handshake).
//! - Bandwidth: every body (uploads and downloads) is paced per connection and direction, as a
//!   link of that many bytes per second would deliver it.
//! - Quota: a request beyond `max_concurrent` requests being served, or beyond `per_second`
//!   requests admitted in the last second, is answered 429 (with `Retry-After` when asked), like a
//!   registry's rate limiter.

use std::collections::VecDeque;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::Bytes;
use hyper::body::{Body, Frame, SizeHint};

use super::lock;

/// Bodies are paced in pieces of at most this size, so a slow link delivers smoothly.
const PIECE: usize = 16 * 1024;

/// A registry's request quota: more than `max_concurrent` requests being served at once, or more
/// than `per_second` admitted within the last second, and the next one gets 429.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Quota {
    pub(crate) max_concurrent: Option<usize>,
    pub(crate) per_second: Option<usize>,
    pub(crate) retry_after_seconds: Option<u32>,
}

impl Quota {
    /// At most `requests` served at once (a request is served until its response body ends).
    pub fn concurrent(requests: usize) -> Self {
        Self {
            max_concurrent: Some(requests),
            ..Self::default()
        }
    }

    /// At most `requests` admitted within any second.
    pub fn per_second(requests: usize) -> Self {
        Self {
            per_second: Some(requests),
            ..Self::default()
        }
    }

    /// Also at most `requests` admitted within any second.
    pub fn and_per_second(mut self, requests: usize) -> Self {
        self.per_second = Some(requests);
        self
    }

    /// Send `Retry-After: seconds` with each 429.
    pub fn retry_after(mut self, seconds: u32) -> Self {
        self.retry_after_seconds = Some(seconds);
        self
    }
}

/// What the quota knows: requests being served and recent admissions.
#[derive(Debug, Default)]
pub(crate) struct QuotaState {
    serving: usize,
    admitted: VecDeque<Instant>,
    most_at_once: usize,
}

/// Holds one request's place in the quota until dropped (when its response body is done).
#[derive(Debug)]
pub(crate) struct Admission {
    state: Arc<Mutex<QuotaState>>,
}

impl Drop for Admission {
    fn drop(&mut self) {
        let mut state = lock(&self.state);
        state.serving = state.serving.saturating_sub(1);
    }
}

/// Admits a request under `quota`, or `None` when it is over quota.
pub(crate) fn admit(state: &Arc<Mutex<QuotaState>>, quota: &Quota) -> Option<Admission> {
    let mut current = lock(state);
    let now = Instant::now();
    while current
        .admitted
        .front()
        .is_some_and(|at| now.duration_since(*at) >= Duration::from_secs(1))
    {
        current.admitted.pop_front();
    }
    if quota
        .max_concurrent
        .is_some_and(|limit| current.serving >= limit)
        || quota
            .per_second
            .is_some_and(|limit| current.admitted.len() >= limit)
    {
        return None;
    }
    current.serving += 1;
    current.most_at_once = current.most_at_once.max(current.serving);
    current.admitted.push_back(now);
    Some(Admission {
        state: Arc::clone(state),
    })
}

/// The most requests served at once so far.
pub(crate) fn most_at_once(state: &Mutex<QuotaState>) -> usize {
    lock(state).most_at_once
}

/// One direction of one connection: when it is free to deliver the next byte.
#[derive(Debug)]
pub(crate) struct Pacer {
    bytes_per_second: u64,
    next: Instant,
}

impl Pacer {
    pub(crate) fn new(bytes_per_second: u64) -> Arc<Mutex<Self>> {
        Arc::new(Mutex::new(Self {
            bytes_per_second: bytes_per_second.max(1),
            next: Instant::now(),
        }))
    }

    /// When `length` more bytes will have gone through, reserving the link for them.
    fn reserve(&mut self, length: usize) -> Instant {
        let start = self.next.max(Instant::now());
        let duration = Duration::from_secs_f64(length as f64 / self.bytes_per_second as f64);
        self.next = start + duration;
        self.next
    }
}

/// A body delivered at the pace of a link; `None` passes it through unpaced. Holds the request's
/// quota admission, if any, until it ends.
pub(crate) struct Paced<B> {
    inner: B,
    pacer: Option<Arc<Mutex<Pacer>>>,
    /// The rest of a frame larger than a piece.
    pending: Bytes,
    /// A piece waiting for its delivery time.
    waiting: Option<(Bytes, Pin<Box<tokio::time::Sleep>>)>,
    _admission: Option<Admission>,
}

impl<B> Paced<B> {
    pub(crate) fn new(
        inner: B,
        pacer: Option<Arc<Mutex<Pacer>>>,
        admission: Option<Admission>,
    ) -> Self {
        Self {
            inner,
            pacer,
            pending: Bytes::new(),
            waiting: None,
            _admission: admission,
        }
    }
}

impl<B> Body for Paced<B>
where
    B: Body<Data = Bytes> + Unpin,
{
    type Data = Bytes;
    type Error = B::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        context: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, B::Error>>> {
        let this = &mut *self;
        loop {
            if let Some((_, sleep)) = &mut this.waiting {
                if sleep.as_mut().poll(context).is_pending() {
                    return Poll::Pending;
                }
                let (piece, _) = this.waiting.take().expect("just checked");
                return Poll::Ready(Some(Ok(Frame::data(piece))));
            }
            let Some(pacer) = &this.pacer else {
                return Pin::new(&mut this.inner).poll_frame(context);
            };
            if !this.pending.is_empty() {
                let piece = this.pending.split_to(this.pending.len().min(PIECE));
                let at = lock(pacer).reserve(piece.len());
                this.waiting = Some((piece, Box::pin(tokio::time::sleep_until(at.into()))));
                continue;
            }
            match Pin::new(&mut this.inner).poll_frame(context) {
                Poll::Ready(Some(Ok(frame))) => match frame.into_data() {
                    Ok(data) => this.pending = data,
                    Err(other) => return Poll::Ready(Some(Ok(other))),
                },
                other => return other,
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.waiting.is_none() && self.pending.is_empty() && self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        let inner = self.inner.size_hint();
        let held = self.pending.len() as u64
            + self
                .waiting
                .as_ref()
                .map_or(0, |(piece, _)| piece.len() as u64);
        let mut hint = SizeHint::new();
        hint.set_lower(inner.lower() + held);
        if let Some(upper) = inner.upper() {
            hint.set_upper(upper + held);
        }
        hint
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_quota_counts_concurrent_and_recent_requests() {
        let state = Arc::new(Mutex::new(QuotaState::default()));
        let two_at_once = Quota::concurrent(2);
        let first = admit(&state, &two_at_once).unwrap();
        let _second = admit(&state, &two_at_once).unwrap();
        assert!(admit(&state, &two_at_once).is_none());
        drop(first);
        assert!(admit(&state, &two_at_once).is_some());
        assert_eq!(most_at_once(&state), 2);

        let fresh = Arc::new(Mutex::new(QuotaState::default()));
        let three_a_second = Quota::per_second(3);
        for _ in 0..3 {
            drop(admit(&fresh, &three_a_second).unwrap());
        }
        assert!(
            admit(&fresh, &three_a_second).is_none(),
            "a fourth within the second"
        );
    }

    #[test]
    fn a_pacer_spaces_bytes_at_its_rate() {
        let pacer = Pacer::new(1000);
        let mut pacer = lock(&pacer);
        let started = Instant::now();
        pacer.reserve(500);
        let done = pacer.reserve(500);
        let elapsed = done.duration_since(started);
        assert!(
            elapsed >= Duration::from_millis(990) && elapsed < Duration::from_millis(1100),
            "{elapsed:?}"
        );
    }
}
