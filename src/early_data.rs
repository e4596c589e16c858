//! TLS 1.3 early data (0-RTT), opt-in with
//! [`PoolBuilder::tls_early_data`](crate::PoolBuilder::tls_early_data): which requests may go
//! before the handshake completes, and a connection's handshake while they do.
//!
//! A dial that resumes a session whose ticket allows early data returns to the pool right
//! after its ClientHello (tokio-rustls' `TlsConnector::early_data`): the HTTP/2 preface and
//! the first request, the one whose acquire caused the dial, are written as early data and
//! reach the server with the ClientHello, one round trip before a full handshake would let
//! them. Early data can be replayed by an attacker ([RFC 8446 §8]), so only requests that are
//! safe to process twice go early ([`replay_safe`]); any other request on that connection waits
//! for [`EarlyHandshake::completed`]. If the server rejects early data, tokio-rustls writes the
//! same bytes again once the handshake is over (its `TlsState::EarlyData` fallback): the
//! server's application sees them once. A server that accepted them but answers `425 Too
//! Early` ([RFC 8470]) did not process the request; the exchange hands it to `crate::retry`,
//! marked [`NoEarlyData`], so it goes again only after a handshake completed.
//!
//! The HTTP protocol must be chosen before the server's ALPN answer arrives, so a dial uses
//! early data only when the origin's previous connection spoke HTTP/2; a server that
//! answers with another protocol fails the connection (see `crate::transport`).
//!
//! [RFC 8446 §8]: https://www.rfc-editor.org/rfc/rfc8446#section-8
//! [RFC 8470]: https://www.rfc-editor.org/rfc/rfc8470

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Waker};

use http::Method;
use tokio::sync::Notify;

use crate::outgoing::{OutBody, Outgoing};

/// A request extension that keeps a request out of TLS 1.3 early data even when it is
/// replay-safe by its method (`GET`, `HEAD` or `OPTIONS` without a body): on a connection
/// still in its handshake, the request waits for the handshake to complete.
///
/// Use it for a `GET` that changes state on the server, or whenever processing the request
/// twice would matter: early data can be replayed by an attacker ([RFC 8446 §8]).
///
/// ```
/// # fn main() -> Result<(), http::Error> {
/// let mut request = http::Request::get("https://example.com/once").body(())?;
/// request.extensions_mut().insert(https_pool::NoEarlyData);
/// # Ok(())
/// # }
/// ```
///
/// [RFC 8446 §8]: https://www.rfc-editor.org/rfc/rfc8446#section-8
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct NoEarlyData;

/// True when `request` may be sent as early data: `GET`, `HEAD` or `OPTIONS`, with no body
/// and no [`NoEarlyData`] extension (RFC 8470 §2.1: only requests safe to replay).
pub(crate) fn replay_safe(request: &Outgoing) -> bool {
    matches!(
        request.head.method,
        Method::GET | Method::HEAD | Method::OPTIONS
    ) && matches!(request.body, OutBody::Empty)
        && request.head.extensions.get::<NoEarlyData>().is_none()
}

/// An origin's TLS handshakes by kind, and what servers did with its early data.
#[derive(Debug, Default)]
pub(crate) struct HandshakeCounts {
    pub(crate) full: AtomicU64,
    pub(crate) resumed: AtomicU64,
    /// Handshakes whose early data the server accepted.
    pub(crate) early_data_accepted: AtomicU64,
    /// Handshakes that offered early data the server rejected (it was sent again after the
    /// handshake).
    pub(crate) early_data_rejected: AtomicU64,
}

impl HandshakeCounts {
    /// Counts one completed handshake.
    pub(crate) fn record(&self, resumed: bool) {
        let kind = if resumed { &self.resumed } else { &self.full };
        kind.fetch_add(1, Ordering::Relaxed);
    }
}

/// The handshake of a connection that started in early data.
///
/// **Held**, from the dial until the first request on the connection was handed to h2 (or
/// the connection's first lease ended unused or became a `StreamHandle`, whose caller may
/// send later, or nobody was waiting for the connection): the transport
/// keeps the ClientHello and the early data in rustls' buffer, so the request that caused the
/// dial goes with them rather than racing the server's answer to a bare preface. Then
/// **pending** until rustls stops handshaking (or the connection fails first, when it is no
/// longer pending either: a request waiting for it then meets the closed connection). The
/// transport, which sees the handshake end, ends it; the exchange reads it before each request
/// on the connection (one atomic load).
#[derive(Debug)]
pub(crate) struct EarlyHandshake {
    pending: AtomicBool,
    done: Notify,
    held: AtomicBool,
    /// The connection driver's waker, registered while held.
    driver: Mutex<Option<Waker>>,
    counts: Arc<HandshakeCounts>,
}

/// How an early-data handshake ended.
#[derive(Debug, Clone, Copy)]
pub(crate) enum HandshakeEnd {
    /// Completed: whether the session was resumed and the early data accepted.
    Completed { resumed: bool, accepted: bool },
    /// The connection failed (or was dropped) before the handshake completed.
    Failed,
}

impl EarlyHandshake {
    pub(crate) fn new(counts: Arc<HandshakeCounts>) -> Arc<EarlyHandshake> {
        Arc::new(EarlyHandshake {
            pending: AtomicBool::new(true),
            done: Notify::new(),
            held: AtomicBool::new(true),
            driver: Mutex::new(None),
            counts,
        })
    }

    /// True until the handshake completed or the connection failed.
    pub(crate) fn is_pending(&self) -> bool {
        // Acquire: pairs with `end`, so a request that sees the handshake over is written
        // after the transport left early data.
        self.pending.load(Ordering::Acquire)
    }

    /// Resolves once the handshake is no longer pending.
    ///
    /// # Cancel safety
    ///
    /// Cancel safe: nothing is consumed.
    pub(crate) async fn completed(&self) {
        loop {
            let notified = self.done.notified();
            tokio::pin!(notified);
            // Registered before the check, so an `end` between the two is not missed.
            notified.as_mut().enable();
            if !self.is_pending() {
                return;
            }
            notified.await;
        }
    }

    /// Lets the handshake go on: the first request is in h2's hands (or none is coming).
    /// A load, and nothing more, once released.
    pub(crate) fn release(&self) {
        if self.held.load(Ordering::Acquire) && self.held.swap(false, Ordering::AcqRel) {
            let driver = self
                .driver
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .take();
            if let Some(driver) = driver {
                driver.wake();
            }
        }
    }

    /// For the transport's flush: true while the handshake is held (the flush then writes
    /// nothing, and `cx` is woken on release).
    pub(crate) fn hold(&self, cx: &mut Context<'_>) -> bool {
        if !self.held.load(Ordering::Acquire) {
            return false;
        }
        *self.driver.lock().unwrap_or_else(PoisonError::into_inner) = Some(cx.waker().clone());
        // Read again after registering: a release in between found no waker to wake.
        self.held.load(Ordering::Acquire)
    }

    /// Records how the handshake ended and wakes the requests waiting for it; only the first
    /// call counts.
    pub(crate) fn end(&self, end: HandshakeEnd) {
        if !self.pending.swap(false, Ordering::AcqRel) {
            return;
        }
        if let HandshakeEnd::Completed { resumed, accepted } = end {
            self.counts.record(resumed);
            let outcome = if accepted {
                &self.counts.early_data_accepted
            } else {
                &self.counts.early_data_rejected
            };
            outcome.fetch_add(1, Ordering::Relaxed);
        }
        self.done.notify_waiters();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn outgoing(method: Method, body: OutBody) -> Outgoing {
        let (head, ()) = http::Request::builder()
            .method(method)
            .uri("https://a.test/")
            .body(())
            .expect("request")
            .into_parts();
        Outgoing { head, body }
    }

    /// Only bodiless GET, HEAD and OPTIONS without the opt-out go early.
    #[test]
    fn only_bodiless_safe_methods_without_the_opt_out_are_replay_safe() {
        for method in [Method::GET, Method::HEAD, Method::OPTIONS] {
            assert!(replay_safe(&outgoing(method, OutBody::Empty)));
        }
        for method in [Method::POST, Method::PUT, Method::DELETE, Method::PATCH] {
            assert!(!replay_safe(&outgoing(method, OutBody::Empty)));
        }
        let mut opted_out = outgoing(Method::GET, OutBody::Empty);
        opted_out.head.extensions.insert(NoEarlyData);
        assert!(!replay_safe(&opted_out));
    }

    /// Waiters wake when the handshake ends, and only the first end is counted.
    #[tokio::test]
    async fn waiters_wake_once_the_handshake_ends_and_it_is_counted_once() {
        let counts = Arc::new(HandshakeCounts::default());
        let handshake = EarlyHandshake::new(Arc::clone(&counts));
        assert!(handshake.is_pending());
        let waiter = tokio::spawn({
            let handshake = Arc::clone(&handshake);
            async move { handshake.completed().await }
        });
        tokio::task::yield_now().await;
        handshake.end(HandshakeEnd::Completed {
            resumed: true,
            accepted: true,
        });
        handshake.end(HandshakeEnd::Failed);
        waiter.await.expect("waiter");
        assert!(!handshake.is_pending());
        assert_eq!(counts.early_data_accepted.load(Ordering::Relaxed), 1);
        assert_eq!(counts.early_data_rejected.load(Ordering::Relaxed), 0);
        assert_eq!(counts.resumed.load(Ordering::Relaxed), 1);
    }
}
