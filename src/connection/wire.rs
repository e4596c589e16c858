//! What a connection keeps per protocol: how it sends, and the state only that protocol has.
//! Kept in one enum so an HTTP/2 connection carries no HTTP/1.1 flags and the reverse.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, RwLock};

use bytes::Bytes;
use hyper::client::conn::http1;

use super::head_watch::HeadWatch;
use crate::outgoing::OutBody;
use crate::ping::DataRecorder;

/// A connection's protocol-specific half.
pub(crate) enum Wire {
    H2 {
        /// Cloned per request (a handle on h2's shared stream state).
        sender: h2::client::SendRequest<Bytes>,
        /// With the adaptive window: where bodies report received DATA.
        data_recorder: Option<DataRecorder>,
        /// Response-head deadlines, kept by the driver (see `head_watch.rs`).
        head_watch: Arc<HeadWatch>,
    },
    H1(H1Wire),
}

/// An HTTP/1.1 connection's sender and the readiness its driver publishes.
pub(crate) struct H1Wire {
    /// hyper's sender needs `&mut`. A plain mutex, held only for non-blocking calls
    /// (`poll_ready`, `is_ready`, enqueueing a request), so the driver can always read
    /// readiness.
    sender: Mutex<http1::SendRequest<OutBody>>,
    /// Held (read) while a request is handed to hyper, and (write) while the driver drops
    /// hyper's dispatch task: a request enqueued concurrently with that drop could otherwise
    /// stay in hyper's channel unanswered for as long as a handle keeps the sender alive (seen
    /// under connection kills).
    pub(crate) send_gate: RwLock<()>,
    /// Readiness as last seen by the driver.
    ready: AtomicBool,
    /// hyper's sender closed, as last seen by the driver (read without locking the sender,
    /// which the driver holds after every poll).
    closed: AtomicBool,
    /// Tells the driver to drop the connection now: an exchange on it timed out mid-message,
    /// and hyper would otherwise keep reading what the server trickles.
    pub(crate) discard: Arc<tokio::sync::Notify>,
}

impl Wire {
    pub(crate) fn h2(
        sender: h2::client::SendRequest<Bytes>,
        data_recorder: Option<DataRecorder>,
    ) -> Wire {
        Wire::H2 {
            sender,
            data_recorder,
            head_watch: Arc::new(HeadWatch::new()),
        }
    }

    pub(crate) fn h1(sender: http1::SendRequest<OutBody>) -> Wire {
        Wire::H1(H1Wire {
            sender: Mutex::new(sender),
            send_gate: RwLock::new(()),
            ready: AtomicBool::new(false),
            closed: AtomicBool::new(false),
            discard: Arc::new(tokio::sync::Notify::new()),
        })
    }
}

impl H1Wire {
    /// hyper's sender; a poisoned lock still holds a usable sender (no call under it panics
    /// midway through a change).
    pub(crate) fn sender(&self) -> MutexGuard<'_, http1::SendRequest<OutBody>> {
        self.sender.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Busy until hyper's dispatcher is ready for the next request.
    pub(crate) fn is_busy(&self) -> bool {
        !self.ready.load(Ordering::SeqCst)
    }

    /// Called when a request is handed to hyper, so the readiness flag never lags behind a
    /// dispatch the driver has not polled yet.
    pub(crate) fn mark_busy(&self) {
        self.ready.store(false, Ordering::SeqCst);
    }

    pub(crate) fn is_closed(&self) -> bool {
        self.closed.load(Ordering::Acquire)
    }

    /// The driver's reading after a poll; returns whether the dispatcher was ready before.
    pub(crate) fn publish(&self, ready: bool, closed: bool) -> bool {
        self.closed.store(closed, Ordering::Release);
        self.ready.swap(ready, Ordering::SeqCst)
    }
}
