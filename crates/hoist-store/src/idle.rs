//! Timeouts on silence: a request or a body fails when no byte moved for a while, never because
//! it lasted long.
//!
//! A large blob over a slow link can take hours and is healthy as long as bytes keep moving; a
//! server that accepted a connection and went quiet must fail soon. So the network backends
//! (registries, S3, GCS) measure *silence*, with the pieces here:
//!
//! - [`Activity`]: the time the last byte moved, shared between a request body that is being
//!   sent (each chunk handed to the HTTP stack touches it) and the wait for the response.
//! - [`watch`]: runs a future (sending a request, waiting for its answer) until it completes or
//!   the activity has been still for the idle period.
//! - [`IdleStream`]: a response body that fails when no chunk arrives for the idle period.
//!
//! A byte "moves" when the HTTP stack takes it from us or gives it to us. Bytes the operating
//! system still holds in its socket buffers are invisible here: the kernel accepts up to a few MiB
//! of an upload at once and then needs time to put them on a slow link. So once a request body
//! was handed over entirely ([`Activity::body_sent`]), the wait for the answer also allows the
//! time those buffers need to drain at [`DRAIN_RATE_FLOOR`] (at most [`MAX_BUFFERED`] bytes):
//! a slow but steady upload is never cut at its end, and a server that swallowed a large body
//! and went silent is still given up, a little later. (Where the platform allows it, the
//! backends also set `TCP_USER_TIMEOUT`, so the kernel itself gives up a connection whose sent
//! bytes stay unacknowledged for the idle period.)
//!
//! The failure is an [`IdleTimeout`] error, kept as the source of the backend's own error so that
//! callers can recognise it ([`IdleTimeout::is_cause_of`]): an idle timeout already waited the
//! whole idle period, so the backends do not retry it on their own.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use futures::Stream;

/// Nothing moved for the idle period.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("no byte moved for {} s (idle timeout)", .idle.as_secs_f64())]
pub struct IdleTimeout {
    idle: Duration,
}

impl IdleTimeout {
    /// A timeout after `idle` of silence.
    pub fn new(idle: Duration) -> Self {
        Self { idle }
    }

    /// The idle period that passed.
    pub fn idle(&self) -> Duration {
        self.idle
    }

    /// The idle timeout in `error`'s chain of causes (itself included), if any.
    pub fn find<'a>(error: &'a (dyn std::error::Error + 'static)) -> Option<&'a IdleTimeout> {
        let mut current = Some(error);
        while let Some(error) = current {
            if let Some(timeout) = error.downcast_ref::<IdleTimeout>() {
                return Some(timeout);
            }
            current = error.source();
        }
        None
    }

    /// Whether an idle timeout is in `error`'s chain of causes.
    pub fn is_cause_of(error: &(dyn std::error::Error + 'static)) -> bool {
        Self::find(error).is_some()
    }
}

/// The timeouts of a network backend's requests. None of them limits how long a transfer takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timeouts {
    /// Establishing a connection, TLS included.
    pub connect: Duration,
    /// The longest silence: no byte sent or received for this long fails the request, or the
    /// body being read. A transfer may last as long as it needs while bytes keep moving.
    pub idle: Duration,
}

impl Default for Timeouts {
    /// 30 s to connect, 60 s of silence.
    fn default() -> Self {
        Self {
            connect: Duration::from_secs(30),
            idle: Duration::from_secs(60),
        }
    }
}

/// The slowest drain of socket buffers allowed for after a body was handed over: 128 KiB/s.
pub const DRAIN_RATE_FLOOR: u64 = 128 * 1024;

/// The most bytes the operating system is assumed to hold in its buffers for one connection
/// (Linux grows a socket's send buffer to 4 MiB by default; the peer's receive window adds some).
pub const MAX_BUFFERED: u64 = 8 * 1024 * 1024;

/// When a byte last moved; clones share the clock.
#[derive(Debug, Clone)]
pub struct Activity {
    inner: Arc<Clock>,
}

#[derive(Debug)]
struct Clock {
    origin: Instant,
    /// Nanoseconds from `origin` to the last movement.
    last: AtomicU64,
    /// Bytes of the request body once it was handed over entirely, else `u64::MAX`.
    body: AtomicU64,
}

impl Activity {
    /// A clock whose last movement is now.
    pub fn new() -> Self {
        Self {
            inner: Arc::new(Clock {
                origin: Instant::now(),
                last: AtomicU64::new(0),
                body: AtomicU64::new(u64::MAX),
            }),
        }
    }

    /// Records that bytes moved now.
    pub fn touch(&self) {
        let elapsed = u64::try_from(self.inner.origin.elapsed().as_nanos()).unwrap_or(u64::MAX);
        self.inner.last.fetch_max(elapsed, Ordering::Relaxed);
    }

    /// Records that the request body, `bytes` long, was handed over entirely (now).
    pub fn body_sent(&self, bytes: u64) {
        self.inner.body.store(bytes, Ordering::Relaxed);
        self.touch();
    }

    /// When bytes last moved.
    pub fn last(&self) -> Instant {
        self.inner.origin + Duration::from_nanos(self.inner.last.load(Ordering::Relaxed))
    }

    /// When silence becomes a timeout: `idle` after the last movement, plus, once a body was
    /// handed over entirely, the time the operating system may need to put it on the wire.
    pub fn deadline(&self, idle: Duration) -> Instant {
        let body = self.inner.body.load(Ordering::Relaxed);
        let drain = if body == u64::MAX {
            Duration::ZERO
        } else {
            Duration::from_secs_f64(body.min(MAX_BUFFERED) as f64 / DRAIN_RATE_FLOOR as f64)
        };
        self.last() + idle + drain
    }
}

impl Default for Activity {
    fn default() -> Self {
        Self::new()
    }
}

/// Runs `future` to completion unless `activity` stays still for `idle`. The future is dropped
/// (which cancels a request: its connection is closed) on timeout.
pub async fn watch<F: Future>(
    future: F,
    activity: &Activity,
    idle: Duration,
) -> Result<F::Output, IdleTimeout> {
    let mut future = std::pin::pin!(future);
    loop {
        let deadline = activity.deadline(idle);
        tokio::select! {
            output = &mut future => return Ok(output),
            () = tokio::time::sleep_until(deadline.into()) => {
                if activity.deadline(idle) <= Instant::now() {
                    return Err(IdleTimeout::new(idle));
                }
            }
        }
    }
}

/// A request body stream that touches `activity` with every chunk it passes on, and tells it
/// when the body ended ([`Activity::body_sent`]): so that the wait for the response knows the
/// upload is moving.
#[derive(Debug)]
pub struct Touching<S> {
    inner: S,
    activity: Activity,
    sent: u64,
}

impl<S> Touching<S> {
    /// Wraps `inner`.
    pub fn new(inner: S, activity: Activity) -> Self {
        Self {
            inner,
            activity,
            sent: 0,
        }
    }
}

impl<S, T, E> Stream for Touching<S>
where
    S: Stream<Item = Result<T, E>> + Unpin,
    T: AsRef<[u8]>,
{
    type Item = S::Item;

    fn poll_next(mut self: Pin<&mut Self>, context: &mut Context<'_>) -> Poll<Option<S::Item>> {
        let polled = Pin::new(&mut self.inner).poll_next(context);
        match &polled {
            Poll::Ready(Some(Ok(chunk))) => {
                self.sent += chunk.as_ref().len() as u64;
                self.activity.touch();
                // A stream that knows it is done now: the HTTP stack may never ask again once it
                // sent the announced length.
                if self.inner.size_hint().1 == Some(0) {
                    self.activity.body_sent(self.sent);
                }
            }
            Poll::Ready(None) => self.activity.body_sent(self.sent),
            Poll::Ready(Some(Err(_))) | Poll::Pending => {}
        }
        polled
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        self.inner.size_hint()
    }
}

/// A stream of `Result`s that fails with `on_timeout(IdleTimeout)` when no item arrives for
/// `idle`, then ends. Every item resets the timer.
pub struct IdleStream<S, F> {
    inner: S,
    idle: Duration,
    timer: Pin<Box<tokio::time::Sleep>>,
    on_timeout: F,
    started: bool,
    done: bool,
}

impl<S, F> std::fmt::Debug for IdleStream<S, F> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IdleStream")
            .field("idle", &self.idle)
            .field("done", &self.done)
            .finish_non_exhaustive()
    }
}

impl<S, F> IdleStream<S, F> {
    /// Wraps `inner`. The timer starts with the first read, so a body nobody reads yet is never
    /// silent. Must be created within a tokio runtime.
    pub fn new(inner: S, idle: Duration, on_timeout: F) -> Self {
        Self {
            inner,
            idle,
            timer: Box::pin(tokio::time::sleep(idle)),
            on_timeout,
            started: false,
            done: false,
        }
    }
}

impl<S, T, E, F> Stream for IdleStream<S, F>
where
    S: Stream<Item = Result<T, E>> + Unpin,
    F: Fn(IdleTimeout) -> E + Unpin,
{
    type Item = Result<T, E>;

    fn poll_next(mut self: Pin<&mut Self>, context: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        if self.done {
            return Poll::Ready(None);
        }
        if !self.started {
            self.started = true;
            let deadline = tokio::time::Instant::now() + self.idle;
            self.timer.as_mut().reset(deadline);
        }
        match Pin::new(&mut self.inner).poll_next(context) {
            Poll::Ready(Some(item)) => {
                let deadline = tokio::time::Instant::now() + self.idle;
                self.timer.as_mut().reset(deadline);
                return Poll::Ready(Some(item));
            }
            Poll::Ready(None) => {
                self.done = true;
                return Poll::Ready(None);
            }
            Poll::Pending => {}
        }
        match self.timer.as_mut().poll(context) {
            Poll::Ready(()) => {
                self.done = true;
                let error = (self.on_timeout)(IdleTimeout::new(self.idle));
                Poll::Ready(Some(Err(error)))
            }
            Poll::Pending => Poll::Pending,
        }
    }
}

#[cfg(test)]
mod tests {
    use futures::StreamExt as _;

    use super::*;

    const TICK: Duration = Duration::from_millis(50);

    #[tokio::test]
    async fn watch_fails_only_after_silence() {
        let activity = Activity::new();
        let idle = TICK * 6;
        // Moving every tick for twenty ticks, far longer than the idle period, never silent.
        let busy = {
            let activity = activity.clone();
            async move {
                for _ in 0..20 {
                    tokio::time::sleep(TICK).await;
                    activity.touch();
                }
                "done"
            }
        };
        assert_eq!(watch(busy, &activity, idle).await, Ok("done"));

        let quiet = Activity::new();
        let started = Instant::now();
        let silent = watch(std::future::pending::<()>(), &quiet, idle).await;
        assert_eq!(silent, Err(IdleTimeout::new(idle)));
        let elapsed = started.elapsed();
        assert!(elapsed >= idle && elapsed < idle * 4, "{elapsed:?}");
    }

    #[test]
    fn a_body_handed_over_adds_time_to_drain() {
        let activity = Activity::new();
        let idle = Duration::from_secs(1);
        assert_eq!(activity.deadline(idle), activity.last() + idle);
        activity.body_sent(DRAIN_RATE_FLOOR * 3);
        assert_eq!(
            activity.deadline(idle),
            activity.last() + idle + Duration::from_secs(3)
        );
        activity.body_sent(u64::MAX - 1);
        let most = Duration::from_secs(MAX_BUFFERED / DRAIN_RATE_FLOOR);
        assert_eq!(activity.deadline(idle), activity.last() + idle + most);
    }

    #[tokio::test]
    async fn idle_streams_reset_on_every_item_and_fail_on_silence() {
        let idle = TICK * 6;
        let steady = futures::stream::iter(0..20).then(|item| async move {
            tokio::time::sleep(TICK).await;
            Ok::<_, String>(item)
        });
        let steady = IdleStream::new(Box::pin(steady), idle, |timeout: IdleTimeout| {
            timeout.to_string()
        });
        let items: Vec<_> = steady.collect().await;
        assert_eq!(items, (0..20).map(Ok).collect::<Vec<_>>());

        let stalled = futures::stream::iter(0..3).then(|item| async move {
            if item == 2 {
                std::future::pending::<()>().await;
            }
            Ok::<_, String>(item)
        });
        let stalled = IdleStream::new(Box::pin(stalled), idle, |timeout: IdleTimeout| {
            timeout.to_string()
        });
        let items: Vec<_> = stalled.collect().await;
        assert_eq!(items.len(), 3, "two items, then the timeout, then the end");
        assert_eq!(
            items[2].as_ref().unwrap_err(),
            "no byte moved for 0.3 s (idle timeout)"
        );
    }

    #[test]
    fn finds_the_timeout_among_causes() {
        #[derive(Debug, thiserror::Error)]
        #[error("outer")]
        struct Outer(#[source] IdleTimeout);
        let outer = Outer(IdleTimeout::new(Duration::from_secs(3)));
        assert_eq!(
            IdleTimeout::find(&outer).map(IdleTimeout::idle),
            Some(Duration::from_secs(3))
        );
        assert!(!IdleTimeout::is_cause_of(&std::io::Error::other("x")));
    }
}
