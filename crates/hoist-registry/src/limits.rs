//! How many requests go to one registry host at once, and how fast: adaptive concurrency per
//! (host, kind of request) and for the host as a whole, and an optional requests-per-second cap.
//!
//! Registries limit clients per kind of request (ECR: 100 upload sessions per second but 500
//! chunk uploads; Docker Hub: manifest reads only) or for everything at once (Artifact Registry's
//! per-project quota, a proxy's connection limit), and say so with 429. So a request waits for
//! room in two windows, its kind's and its host's, each adapted like TCP's congestion window (AIMD,
//! additive increase and multiplicative decrease):
//!
//! - every success adds `1/window` to both, so a window grows by one per window of successes,
//!   and four times slower once it is past the size that last met a 429 (probing a known limit
//!   gently, so a steady quota sees few 429s);
//! - a 429 halves both, *once per window of requests*: a 429 answering a request that was sent
//!   before the last decrease of a window belongs to the congestion event already counted (ten
//!   requests throttled together halve it once, not ten times);
//! - a `Retry-After` pauses the request's kind until it passes (capped by the retry policy's
//!   longest wait), rather than only the request that got it;
//! - no window exceeds the host's ceiling (`max_concurrent_requests`) nor falls below one.
//!
//! A per-kind quota shows as 429s of one kind: that kind's window stays small while the others
//! grow. A host-wide quota throttles whatever kind is in flight: the host window settles at it.
//! Without adaptation (`Concurrency::adaptive` false) every kind keeps its initial window and the
//! host its ceiling.
//!
//! Requests hold their permit until their response headers arrive; a body that streams afterwards
//! does not count. The design follows ocync's per-(registry, action) AIMD windows.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use reqwest::Method;
use tokio::sync::Notify;
use url::Url;

use crate::options::RegistryOptions;

/// What a request does, for its concurrency window.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum RequestKind {
    /// `HEAD` of a manifest or blob.
    Head,
    /// `GET` of a manifest, blob or referrers list.
    Read,
    /// Blob upload sessions, their chunks and commits, and mounts.
    Upload,
    /// `PUT` (or `DELETE`) of a manifest.
    ManifestWrite,
    /// `GET /v2/<name>/tags/list`.
    TagList,
    /// A request to the token service.
    Token,
}

const KINDS: [RequestKind; 6] = [
    RequestKind::Head,
    RequestKind::Read,
    RequestKind::Upload,
    RequestKind::ManifestWrite,
    RequestKind::TagList,
    RequestKind::Token,
];

impl RequestKind {
    /// The kind of a registry request, from its method and path. Upload URLs are whatever the
    /// registry's `Location` says, so only manifest paths are told apart by path.
    pub(crate) fn of(method: &Method, url: &Url) -> Self {
        let path = url.path();
        let manifest = path.contains("/manifests/");
        match *method {
            Method::HEAD => Self::Head,
            Method::GET if path.ends_with("/tags/list") => Self::TagList,
            Method::GET => Self::Read,
            Method::PUT | Method::DELETE if manifest => Self::ManifestWrite,
            _ => Self::Upload,
        }
    }

    fn index(self) -> usize {
        KINDS
            .iter()
            .position(|kind| *kind == self)
            .expect("every kind is listed")
    }

    /// A short name for logs.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Self::Head => "head",
            Self::Read => "read",
            Self::Upload => "upload",
            Self::ManifestWrite => "manifest-write",
            Self::TagList => "tag-list",
            Self::Token => "token",
        }
    }
}

/// What the response to a request says about the registry's capacity.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Outcome {
    /// Answered (any status but 429): the window may grow.
    Success,
    /// 429, with the `Retry-After` the registry sent.
    Throttled(Option<Duration>),
    /// No answer (a network failure or timeout): says nothing about the rate limit.
    Neutral,
}

/// The limits of one host.
#[derive(Debug)]
pub(crate) struct Limiter {
    host: String,
    /// One window per kind, in the order of `KINDS`.
    windows: Vec<Window>,
    /// The window of the host, all kinds together.
    total: Window,
    adaptive: bool,
    maximum: f64,
    /// The longest pause a `Retry-After` imposes on a kind.
    longest_pause: Duration,
    rate: Option<Mutex<Rate>>,
}

/// One AIMD window.
#[derive(Debug)]
struct Window {
    state: Mutex<WindowState>,
    changed: Notify,
}

#[derive(Debug)]
struct WindowState {
    /// Requests allowed to wait for their response at once (at least 1).
    limit: f64,
    in_flight: usize,
    /// Requests granted so far; a request's sequence number is the count before it.
    granted: u64,
    /// 429s answering requests numbered below this are part of the last decrease.
    recovery_from: u64,
    /// The limit when a 429 last halved it.
    last_throttled_at: Option<f64>,
    paused_until: Option<Instant>,
    throttled: u64,
}

impl Window {
    fn new(limit: f64) -> Self {
        Self {
            state: Mutex::new(WindowState {
                limit,
                in_flight: 0,
                granted: 0,
                recovery_from: 0,
                last_throttled_at: None,
                paused_until: None,
                throttled: 0,
            }),
            changed: Notify::new(),
        }
    }

    /// Waits for room (and for any pause to pass); returns the request's sequence number.
    async fn enter(&self) -> u64 {
        loop {
            // Registered before looking, so that a release between the look and the wait wakes us.
            let notified = self.changed.notified();
            let mut notified = std::pin::pin!(notified);
            notified.as_mut().enable();
            let paused_until = {
                let mut state = lock(&self.state);
                match state.paused_until {
                    Some(until) if until > Instant::now() => Some(until),
                    _ => {
                        state.paused_until = None;
                        if (state.in_flight as f64) < state.limit.floor().max(1.0) {
                            state.in_flight += 1;
                            state.granted += 1;
                            return state.granted - 1;
                        }
                        None
                    }
                }
            };
            match paused_until {
                Some(until) => tokio::time::sleep_until(until.into()).await,
                None => notified.await,
            }
        }
    }

    /// Gives back the slot of request `sequence`; adapts the window to `outcome` when `adapt`
    /// says so. Returns the new limit when it was halved.
    fn leave(&self, sequence: u64, outcome: Outcome, adapt: Option<&Adapt>) -> Option<f64> {
        let mut halved = None;
        {
            let mut state = lock(&self.state);
            state.in_flight = state.in_flight.saturating_sub(1);
            match (outcome, adapt) {
                (Outcome::Success, Some(adapt)) => {
                    let past_the_last_limit = state
                        .last_throttled_at
                        .is_some_and(|limit| state.limit + 1.0 > limit);
                    let step = if past_the_last_limit { 0.25 } else { 1.0 };
                    state.limit = (state.limit + step / state.limit).min(adapt.maximum);
                }
                (Outcome::Throttled(retry_after), adapt) => {
                    state.throttled += 1;
                    if let Some(adapt) = adapt {
                        if sequence >= state.recovery_from {
                            state.last_throttled_at = Some(state.limit);
                            state.limit = (state.limit / 2.0).max(1.0);
                            state.recovery_from = state.granted;
                            halved = Some(state.limit);
                        }
                        if let (Some(wait), Some(longest)) = (retry_after, adapt.pause) {
                            let until = Instant::now() + wait.min(longest);
                            state.paused_until =
                                Some(state.paused_until.map_or(until, |now| now.max(until)));
                        }
                    }
                }
                (Outcome::Success | Outcome::Neutral, _) => {}
            }
        }
        self.changed.notify_waiters();
        halved
    }

    fn limit(&self) -> f64 {
        lock(&self.state).limit
    }
}

/// How a window adapts on release.
#[derive(Debug)]
struct Adapt {
    maximum: f64,
    /// The longest pause a `Retry-After` imposes; `None` to ignore it.
    pause: Option<Duration>,
}

/// Evenly spaced requests: the next one may start at `next`.
#[derive(Debug)]
struct Rate {
    interval: Duration,
    next: Instant,
}

/// The right to send one request; hand the outcome back with [`Permit::finish`]. Dropping it
/// unfinished counts as [`Outcome::Neutral`].
#[derive(Debug)]
pub(crate) struct Permit<'a> {
    limiter: &'a Limiter,
    kind: RequestKind,
    /// The sequence numbers in the kind's window and, once entered, in the host's.
    sequence: u64,
    total_sequence: Option<u64>,
    finished: bool,
}

impl Limiter {
    pub(crate) fn new(host: &str, options: &RegistryOptions) -> Self {
        let ceiling = options.max_concurrent_requests.max(1);
        let initial = options.concurrency.initial.clamp(1, ceiling) as f64;
        let adaptive = options.concurrency.adaptive;
        let rate = options
            .max_requests_per_second
            .filter(|rate| rate.is_finite() && *rate > 0.0)
            .map(|rate| {
                Mutex::new(Rate {
                    interval: Duration::from_secs_f64(1.0 / rate),
                    next: Instant::now(),
                })
            });
        Self {
            host: host.to_owned(),
            windows: KINDS.iter().map(|_| Window::new(initial)).collect(),
            // Fixed concurrency keeps the host at its ceiling; adaptive starts it like a kind.
            total: Window::new(if adaptive { initial } else { ceiling as f64 }),
            adaptive,
            maximum: ceiling as f64,
            longest_pause: options.retry.max_delay,
            rate,
        }
    }

    /// Waits for room in `kind`'s window, then in the host's, then for the rate cap.
    pub(crate) async fn acquire(&self, kind: RequestKind) -> Permit<'_> {
        let sequence = self.windows[kind.index()].enter().await;
        // From here on, dropping the permit (or this future) gives the slots back.
        let mut permit = Permit {
            limiter: self,
            kind,
            sequence,
            total_sequence: None,
            finished: false,
        };
        permit.total_sequence = Some(self.total.enter().await);
        if let Some(rate) = &self.rate {
            let start = {
                let mut rate = lock(rate);
                let start = rate.next.max(Instant::now());
                rate.next = start + rate.interval;
                start
            };
            tokio::time::sleep_until(start.into()).await;
        }
        permit
    }

    fn release(&self, permit: &Permit<'_>, outcome: Outcome) {
        let kind_adapt = self.adaptive.then_some(Adapt {
            maximum: self.maximum,
            pause: Some(self.longest_pause),
        });
        if let Some(window) =
            self.windows[permit.kind.index()].leave(permit.sequence, outcome, kind_adapt.as_ref())
        {
            tracing::debug!(host = %self.host, kind = permit.kind.name(), window, "429: halving the kind's window");
        }
        if let Some(sequence) = permit.total_sequence {
            let total_adapt = self.adaptive.then_some(Adapt {
                maximum: self.maximum,
                pause: None,
            });
            if let Some(window) = self.total.leave(sequence, outcome, total_adapt.as_ref()) {
                tracing::debug!(host = %self.host, window, "429: halving the host's window");
            }
        }
    }

    /// 429 answers seen, all kinds together.
    pub(crate) fn throttled(&self) -> u64 {
        lock(&self.total.state).throttled
    }

    /// The current window of each kind, then of the host (`host`).
    pub(crate) fn windows(&self) -> Vec<(&'static str, f64)> {
        KINDS
            .iter()
            .zip(&self.windows)
            .map(|(kind, window)| (kind.name(), window.limit()))
            .chain(std::iter::once(("host", self.total.limit())))
            .collect()
    }
}

impl Permit<'_> {
    /// Gives the permit back, with what the response said.
    pub(crate) fn finish(mut self, outcome: Outcome) {
        self.finished = true;
        self.limiter.release(&self, outcome);
    }
}

impl Drop for Permit<'_> {
    fn drop(&mut self) {
        if !self.finished {
            self.limiter.release(self, Outcome::Neutral);
        }
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // Nothing panics while holding these locks; a poisoned one still holds valid numbers.
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::options::Concurrency;

    fn limiter(adaptive: bool, initial: usize, ceiling: usize) -> Limiter {
        Limiter::new(
            "h",
            &RegistryOptions {
                max_concurrent_requests: ceiling,
                concurrency: Concurrency { adaptive, initial },
                ..RegistryOptions::default()
            },
        )
    }

    fn window(limiter: &Limiter, kind: RequestKind) -> f64 {
        limiter.windows[kind.index()].limit()
    }

    #[test]
    fn kinds_follow_method_and_path() {
        let url = |path: &str| Url::parse(&format!("https://r{path}")).unwrap();
        let manifest = url("/v2/a/manifests/v1");
        assert_eq!(RequestKind::of(&Method::HEAD, &manifest), RequestKind::Head);
        assert_eq!(RequestKind::of(&Method::GET, &manifest), RequestKind::Read);
        assert_eq!(
            RequestKind::of(&Method::PUT, &manifest),
            RequestKind::ManifestWrite
        );
        assert_eq!(
            RequestKind::of(&Method::GET, &url("/v2/a/b/tags/list")),
            RequestKind::TagList
        );
        let uploads = url("/v2/a/blobs/uploads/");
        assert_eq!(
            RequestKind::of(&Method::POST, &uploads),
            RequestKind::Upload
        );
        assert_eq!(
            RequestKind::of(&Method::PUT, &url("/elsewhere/session?digest=x")),
            RequestKind::Upload
        );
        assert_eq!(
            RequestKind::of(&Method::PATCH, &uploads),
            RequestKind::Upload
        );
    }

    #[tokio::test]
    async fn grows_on_success_and_halves_once_per_window() {
        let limiter = limiter(true, 4, 32);
        for _ in 0..4 {
            limiter
                .acquire(RequestKind::Head)
                .await
                .finish(Outcome::Success);
        }
        // Four successes at 4 add about one.
        let grown = window(&limiter, RequestKind::Head);
        assert!((4.9..5.0).contains(&grown), "{grown}");
        // Four requests out at once, all throttled: one congestion event, one halving.
        let mut permits = Vec::new();
        for _ in 0..4 {
            permits.push(limiter.acquire(RequestKind::Head).await);
        }
        for permit in permits {
            permit.finish(Outcome::Throttled(None));
        }
        let halved = window(&limiter, RequestKind::Head);
        assert!((2.4..2.6).contains(&halved), "{halved}");
        // A request sent after the decrease and throttled again halves once more.
        limiter
            .acquire(RequestKind::Head)
            .await
            .finish(Outcome::Throttled(None));
        let again = window(&limiter, RequestKind::Head);
        assert!((1.2..1.3).contains(&again), "{again}");
        // Growing back is slower near the size that met the 429s: from 1.2, the first success
        // adds a whole 1/window (1.2 + 1 is below 2.5), while past 1.5 it adds a quarter of that.
        let before = window(&limiter, RequestKind::Head);
        limiter
            .acquire(RequestKind::Head)
            .await
            .finish(Outcome::Success);
        let after = window(&limiter, RequestKind::Head);
        assert!(
            (after - before - 1.0 / before).abs() < 1e-9,
            "{before} -> {after}"
        );
        limiter
            .acquire(RequestKind::Head)
            .await
            .finish(Outcome::Success);
        let slower = window(&limiter, RequestKind::Head);
        assert!(
            (slower - after - 0.25 / after).abs() < 1e-9,
            "{after} -> {slower}"
        );
        // Other kinds keep their window; the host's followed the same steps.
        assert_eq!(window(&limiter, RequestKind::Upload), 4.0);
        let host = limiter.total.limit();
        assert!((host - slower).abs() < 1e-9, "{host}");
        assert_eq!(limiter.throttled(), 5);
    }

    #[tokio::test]
    async fn a_window_holds_requests_back_until_one_finishes() {
        let limiter = std::sync::Arc::new(limiter(false, 2, 32));
        let first = limiter.acquire(RequestKind::Read).await;
        let _second = limiter.acquire(RequestKind::Read).await;
        let waiting = {
            let limiter = limiter.clone();
            tokio::spawn(async move {
                limiter
                    .acquire(RequestKind::Read)
                    .await
                    .finish(Outcome::Success);
                true
            })
        };
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(!waiting.is_finished(), "the window is full");
        // Another kind is not held back.
        limiter
            .acquire(RequestKind::Head)
            .await
            .finish(Outcome::Success);
        first.finish(Outcome::Success);
        assert!(waiting.await.unwrap());
        assert_eq!(window(&limiter, RequestKind::Read), 2.0, "fixed: no growth");
        assert_eq!(
            limiter.total.limit(),
            32.0,
            "fixed: the host at its ceiling"
        );
    }

    #[tokio::test]
    async fn retry_after_pauses_the_kind() {
        let limiter = limiter(true, 4, 32);
        limiter
            .acquire(RequestKind::Upload)
            .await
            .finish(Outcome::Throttled(Some(Duration::from_millis(300))));
        let started = Instant::now();
        limiter
            .acquire(RequestKind::Upload)
            .await
            .finish(Outcome::Success);
        assert!(started.elapsed() >= Duration::from_millis(250));
        let started = Instant::now();
        limiter
            .acquire(RequestKind::Head)
            .await
            .finish(Outcome::Success);
        assert!(
            started.elapsed() < Duration::from_millis(200),
            "only uploads pause"
        );
    }

    #[tokio::test]
    async fn the_rate_cap_spaces_requests() {
        let limiter = Limiter::new(
            "h",
            &RegistryOptions {
                max_requests_per_second: Some(20.0),
                ..RegistryOptions::default()
            },
        );
        let started = Instant::now();
        for _ in 0..11 {
            limiter
                .acquire(RequestKind::Head)
                .await
                .finish(Outcome::Success);
        }
        // Eleven requests at 20 per second: ten intervals of 50 ms.
        let elapsed = started.elapsed();
        assert!(elapsed >= Duration::from_millis(480), "{elapsed:?}");
    }
}
