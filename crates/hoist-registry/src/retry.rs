//! When to try a failed request again, and how long to wait first.

use std::time::{Duration, SystemTime};

use hoist_store::StoreError;
use rand::Rng as _;
use reqwest::header::{HeaderMap, RETRY_AFTER};

use crate::options::RetryPolicy;

/// What to do after `attempt` (1-based) failed with `error`.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Next {
    /// Wait this long, then try again.
    RetryAfter(Duration),
    /// Give up and return the error.
    GiveUp,
}

/// Decides whether and when to retry. Only retryable errors (rate limits, server errors, network
/// failures) are retried; a digest mismatch never is. A server's `Retry-After` replaces the
/// computed backoff, unless it asks for longer than the policy's longest wait.
pub(crate) fn next(policy: &RetryPolicy, attempt: u32, error: &StoreError) -> Next {
    if !error.is_retryable() || attempt >= policy.max_attempts {
        return Next::GiveUp;
    }
    if let Some(wait) = error.retry_after() {
        return if wait <= policy.max_delay {
            Next::RetryAfter(wait)
        } else {
            Next::GiveUp
        };
    }
    Next::RetryAfter(backoff(policy, attempt))
}

/// `base * 2^(attempt-1)`, scaled by a random factor in [0.5, 1.5) so that many clients that
/// failed together do not come back together; at most `max_delay`.
fn backoff(policy: &RetryPolicy, attempt: u32) -> Duration {
    let exponential = policy
        .base_delay
        .saturating_mul(1 << attempt.saturating_sub(1).min(20));
    let jitter = rand::rng().random_range(0.5..1.5);
    exponential.mul_f64(jitter).min(policy.max_delay)
}

/// The `Retry-After` header: delay seconds or an HTTP date
/// (<https://www.rfc-editor.org/rfc/rfc9110#field.retry-after>).
pub(crate) fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let value = headers.get(RETRY_AFTER)?.to_str().ok()?.trim();
    parse_retry_after(value, SystemTime::now())
}

fn parse_retry_after(value: &str, now: SystemTime) -> Option<Duration> {
    if let Ok(seconds) = value.parse::<u64>() {
        return Some(Duration::from_secs(seconds));
    }
    let date = chrono::DateTime::parse_from_rfc2822(value).ok()?;
    let at = SystemTime::from(date);
    // A date in the past means "now".
    Some(at.duration_since(now).unwrap_or(Duration::ZERO))
}

#[cfg(test)]
mod tests {
    use hoist_store::StoreErrorKind;

    use super::*;

    fn policy() -> RetryPolicy {
        RetryPolicy {
            max_attempts: 4,
            base_delay: Duration::from_millis(100),
            max_delay: Duration::from_secs(2),
        }
    }

    #[test]
    fn parses_seconds_and_dates() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(784_111_777); // Sun, 06 Nov 1994 08:49:37 GMT
        assert_eq!(parse_retry_after("7", now), Some(Duration::from_secs(7)));
        assert_eq!(
            parse_retry_after("Sun, 06 Nov 1994 08:49:47 GMT", now),
            Some(Duration::from_secs(10))
        );
        assert_eq!(
            parse_retry_after("Sun, 06 Nov 1994 08:49:00 GMT", now),
            Some(Duration::ZERO)
        );
        assert_eq!(parse_retry_after("soon", now), None);
    }

    #[test]
    fn backs_off_exponentially_within_bounds() {
        let error = StoreError::new(StoreErrorKind::Server, "u", "503");
        for attempt in 1..4 {
            let Next::RetryAfter(wait) = next(&policy(), attempt, &error) else {
                panic!("retries")
            };
            let nominal = Duration::from_millis(100 * (1 << (attempt - 1)));
            assert!(
                wait >= nominal / 2 && wait < nominal * 3 / 2,
                "{attempt}: {wait:?}"
            );
        }
        assert_eq!(
            next(&policy(), 4, &error),
            Next::GiveUp,
            "the last attempt is final"
        );
    }

    #[test]
    fn honours_retry_after_and_never_retries_mismatches() {
        let limited = StoreError::new(StoreErrorKind::RateLimited, "u", "429")
            .with_retry_after(Some(Duration::from_secs(1)));
        assert_eq!(
            next(&policy(), 1, &limited),
            Next::RetryAfter(Duration::from_secs(1))
        );
        let too_long = limited.with_retry_after(Some(Duration::from_secs(600)));
        assert_eq!(next(&policy(), 1, &too_long), Next::GiveUp);
        let mismatch = StoreError::new(StoreErrorKind::DigestMismatch, "u", "bad");
        assert_eq!(next(&policy(), 1, &mismatch), Next::GiveUp);
        let missing = StoreError::not_found("u");
        assert_eq!(next(&policy(), 1, &missing), Next::GiveUp);
    }
}
