//! Telling a request the server never saw from one it may have processed, when hyper reports
//! a server's GOAWAY for both.
//!
//! h2 fails a stream with the peer's GOAWAY error in exactly one place: `recv_go_away`, for
//! streams above the frame's last-stream-id, which RFC 9113 §6.8 says the server did not
//! process. hyper 1.x, however, also hands that error to a request whose stream h2 *did* open
//! when the GOAWAY lands between opening it and hyper's next `poll_ready` (`ClientTask::poll`
//! in `proto/h2/client.rs`, "Check poll_ready() again"); that request may well be processed.
//!
//! The two paths differ in one observable way. A request whose stream got past that second
//! `poll_ready` is handed to `poll_pipe`, which polls its body to send the DATA frames; on the
//! ambiguous path hyper drops the body unpolled. So an empty request body is sent as a
//! [`ProbeBody`]: HEADERS without END_STREAM, then an empty DATA frame with END_STREAM (the
//! same bytes on the wire bar one 9-byte frame, and what Go's client sends for an empty
//! body). If the request then fails with the server's GOAWAY *and* its body was polled, the
//! error came from `recv_go_away`: the stream was above the last-stream-id and was never
//! processed, so it can be retried.
//!
//! Verified against hyper 1.12 and h2 0.4.20 source; `tests/faults.rs` retries such requests
//! under a GOAWAY every 50 requests with server-side duplicate tracking.

use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};

use crate::error::BoxError;

/// An empty request body that records whether hyper polled it.
#[derive(Debug)]
pub(crate) struct ProbeBody {
    polled: Arc<AtomicBool>,
}

/// The other end of a [`ProbeBody`].
#[derive(Debug, Clone)]
pub(crate) struct Probe {
    polled: Arc<AtomicBool>,
}

impl Probe {
    /// An empty body and the probe that reports whether it was polled.
    pub(crate) fn new() -> (Probe, ProbeBody) {
        let polled = Arc::new(AtomicBool::new(false));
        (
            Probe {
                polled: Arc::clone(&polled),
            },
            ProbeBody { polled },
        )
    }

    /// hyper asked the body for data: the stream got past its dispatch checks.
    pub(crate) fn was_polled(&self) -> bool {
        self.polled.load(Ordering::Acquire)
    }
}

impl Body for ProbeBody {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        self.polled.store(true, Ordering::Release);
        Poll::Ready(None)
    }

    /// Not at its end before being polled, so HEADERS go without END_STREAM and hyper polls
    /// the body. The size hint still says 0, so no `content-length` is added that an empty
    /// body would not get.
    fn is_end_stream(&self) -> bool {
        false
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::with_exact(0)
    }
}

/// True for a body that carries no bytes: at its end, or with an exact size of 0.
pub(crate) fn is_empty_body<B: Body>(body: &B) -> bool {
    body.is_end_stream() || body.size_hint().exact() == Some(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::BodyExt;

    #[tokio::test]
    async fn records_being_polled_and_is_empty() {
        let (probe, body) = Probe::new();
        assert!(!probe.was_polled());
        assert!(!body.is_end_stream());
        assert!(is_empty_body(&body));
        let collected = body.collect().await.expect("empty body").to_bytes();
        assert!(collected.is_empty());
        assert!(probe.was_polled());
    }
}
