//! A response body that passes upstream bytes through, flipping one byte, breaking off, or going
//! silent.

use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::{Bytes, BytesMut};
use hyper::body::{Body, Frame, Incoming, SizeHint};

/// Errors a proxied body may end with.
pub(crate) type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Streams `inner` chunk by chunk (never buffering it whole), corrupting or cutting it.
pub(crate) struct FaultBody {
    inner: Incoming,
    position: u64,
    /// Offset of the byte to flip.
    flip_at: Option<u64>,
    /// Bytes to pass before failing the stream, which makes hyper drop the connection.
    cut_at: Option<u64>,
    /// Bytes to pass before sending nothing more, the connection kept open.
    stall_at: Option<u64>,
}

impl FaultBody {
    pub(crate) fn new(inner: Incoming, flip_at: Option<u64>, cut_at: Option<u64>) -> Self {
        Self {
            inner,
            position: 0,
            flip_at,
            cut_at,
            stall_at: None,
        }
    }

    /// Goes silent (forever pending, connection open) after `bytes` bytes.
    pub(crate) fn stalling_at(mut self, bytes: Option<u64>) -> Self {
        self.stall_at = bytes;
        self
    }
}

impl Body for FaultBody {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        context: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        if let Some(cut_at) = self.cut_at
            && self.position >= cut_at
        {
            return Poll::Ready(Some(Err(format!(
                "fault proxy: connection dropped after {cut_at} bytes"
            )
            .into())));
        }
        if let Some(stall_at) = self.stall_at
            && self.position >= stall_at
        {
            // Silence: never woken, never ended.
            return Poll::Pending;
        }
        let frame = match Pin::new(&mut self.inner).poll_frame(context) {
            Poll::Pending => return Poll::Pending,
            Poll::Ready(None) => return Poll::Ready(None),
            Poll::Ready(Some(Err(error))) => return Poll::Ready(Some(Err(error.into()))),
            Poll::Ready(Some(Ok(frame))) => frame,
        };
        let mut data = match frame.into_data() {
            Ok(data) => data,
            Err(other) => return Poll::Ready(Some(Ok(other))),
        };
        let start = self.position;
        for limit in [self.cut_at, self.stall_at].into_iter().flatten() {
            let allowed = usize::try_from(limit.saturating_sub(start)).unwrap_or(usize::MAX);
            data.truncate(allowed);
        }
        let end = start + data.len() as u64;
        if let Some(flip_at) = self.flip_at
            && (start..end).contains(&flip_at)
        {
            let mut changed = BytesMut::from(&data[..]);
            let offset = usize::try_from(flip_at - start).unwrap_or(0);
            changed[offset] ^= 0xff;
            data = changed.freeze();
            self.flip_at = None;
        }
        self.position = end;
        Poll::Ready(Some(Ok(Frame::data(data))))
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        // The length does not change: a cut body fails instead of ending short.
        self.inner.size_hint()
    }
}
