//! Which faults a [`super::FaultProxy`] injects, and the bookkeeping of how many are left.

use std::time::Duration;

use hoist_oci::Digest;

use super::link::Quota;

/// Which blob GET responses a body fault applies to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BlobSelector {
    /// Every blob.
    All,
    /// Only this blob.
    Digest(Digest),
}

impl BlobSelector {
    fn matches(self, digest: Digest) -> bool {
        match self {
            Self::All => true,
            Self::Digest(wanted) => wanted == digest,
        }
    }
}

/// The faults to inject; start from [`Faults::none`] and add.
///
/// Status faults apply to requests in arrival order: the first `throttle` requests get 429, the
/// next `fail` requests get 500, later ones are forwarded. Body faults apply to successful blob
/// GETs (`/v2/<name>/blobs/<digest>`). The link (latency, bandwidth) and the quota apply to every
/// request; see [`Quota`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Faults {
    pub(crate) corrupt: Option<BlobSelector>,
    pub(crate) throttle: u32,
    pub(crate) retry_after_seconds: u32,
    pub(crate) fail: u32,
    pub(crate) cut: Option<Cut>,
    pub(crate) latency: Duration,
    pub(crate) bandwidth: Option<u64>,
    pub(crate) quota: Option<Quota>,
    pub(crate) stall: Option<u64>,
}

/// Cut blob bodies after `bytes` bytes; `remaining` responses (`None`: all).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Cut {
    pub(crate) bytes: u64,
    pub(crate) remaining: Option<u32>,
}

impl Faults {
    /// Forward everything unchanged.
    pub fn none() -> Self {
        Self::default()
    }

    /// Flip one byte (in the middle) of the body of every GET of blob `digest`.
    pub fn corrupt_blob(mut self, digest: Digest) -> Self {
        self.corrupt = Some(BlobSelector::Digest(digest));
        self
    }

    /// Flip one byte of the body of every blob GET.
    pub fn corrupt_all_blobs(mut self) -> Self {
        self.corrupt = Some(BlobSelector::All);
        self
    }

    /// Answer the first `requests` requests with 429 and `Retry-After: retry_after_seconds`.
    pub fn throttle_first(mut self, requests: u32, retry_after_seconds: u32) -> Self {
        self.throttle = requests;
        self.retry_after_seconds = retry_after_seconds;
        self
    }

    /// Answer the first `requests` requests (after any throttled ones) with 500.
    pub fn fail_first(mut self, requests: u32) -> Self {
        self.fail = requests;
        self
    }

    /// Drop the connection after `bytes` body bytes of every blob GET longer than that.
    pub fn kill_after(mut self, bytes: u64) -> Self {
        self.cut = Some(Cut {
            bytes,
            remaining: None,
        });
        self
    }

    /// Like [`Faults::kill_after`], for the first `responses` long enough blob GETs only.
    pub fn kill_first_after(mut self, responses: u32, bytes: u64) -> Self {
        self.cut = Some(Cut {
            bytes,
            remaining: Some(responses),
        });
        self
    }

    /// Delay every request by `one_way` on its way in and its response on its way out (a round
    /// trip of twice that), and a new connection by a round trip (its handshake).
    pub fn latency(mut self, one_way: Duration) -> Self {
        self.latency = one_way;
        self
    }

    /// Deliver bodies at most `bytes_per_second` per connection and direction. Applies to
    /// connections made after it is set.
    pub fn bandwidth(mut self, bytes_per_second: u64) -> Self {
        self.bandwidth = Some(bytes_per_second);
        self
    }

    /// Stop sending the body of every blob GET longer than `bytes` after that many bytes, keeping
    /// the connection open: a server gone silent mid-body.
    pub fn stall_after(mut self, bytes: u64) -> Self {
        self.stall = Some(bytes);
        self
    }

    /// Whether (and where) to stall a blob body of `length` bytes.
    pub(crate) fn stall_at(&self, length: Option<u64>) -> Option<u64> {
        let stall = self.stall?;
        length.is_none_or(|length| length > stall).then_some(stall)
    }

    /// Answer 429 to requests over `quota`.
    pub fn quota(mut self, quota: Quota) -> Self {
        self.quota = Some(quota);
        self
    }

    /// The status fault for the next request, consuming it: `Some((429, Some(seconds)))`,
    /// `Some((500, None))` or `None` to forward.
    pub(crate) fn take_status_fault(&mut self) -> Option<(u16, Option<u32>)> {
        if self.throttle > 0 {
            self.throttle -= 1;
            return Some((429, Some(self.retry_after_seconds)));
        }
        if self.fail > 0 {
            self.fail -= 1;
            return Some((500, None));
        }
        None
    }

    /// Whether to corrupt the body of blob `digest`.
    pub(crate) fn corrupts(&self, digest: Digest) -> bool {
        self.corrupt
            .is_some_and(|selector| selector.matches(digest))
    }

    /// Where to cut a blob body of `length` bytes (if known), consuming one cut.
    pub(crate) fn take_cut(&mut self, length: Option<u64>) -> Option<u64> {
        let cut = self.cut.as_mut()?;
        if length.is_some_and(|length| length <= cut.bytes) {
            return None;
        }
        match &mut cut.remaining {
            None => Some(cut.bytes),
            Some(0) => None,
            Some(remaining) => {
                *remaining -= 1;
                Some(cut.bytes)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_faults_come_in_order_and_run_out() {
        let mut faults = Faults::none().throttle_first(2, 7).fail_first(1);
        assert_eq!(faults.take_status_fault(), Some((429, Some(7))));
        assert_eq!(faults.take_status_fault(), Some((429, Some(7))));
        assert_eq!(faults.take_status_fault(), Some((500, None)));
        assert_eq!(faults.take_status_fault(), None);
    }

    #[test]
    fn cuts_only_long_bodies_and_only_as_often_as_asked() {
        let mut faults = Faults::none().kill_first_after(1, 100);
        assert_eq!(faults.take_cut(Some(50)), None);
        assert_eq!(faults.take_cut(Some(500)), Some(100));
        assert_eq!(faults.take_cut(Some(500)), None);
        let mut always = Faults::none().kill_after(10);
        assert_eq!(always.take_cut(None), Some(10));
        assert_eq!(always.take_cut(Some(11)), Some(10));
    }
}
