//! Whether, where and how a failed request is sent again: [`decide`] is the only place that
//! says so (for HTTP/2, HTTP/1.1 and a coalesced request's 421), and [`resend`] the only loop
//! that acts on it. An exchange reports what the peer's answer proves
//! ([`SendFailure`](crate::exchange::SendFailure)); the origin pool serves a retry's acquire
//! ahead of every urgency and dials for it when no connection can take it (its wait queue's
//! retry lane, `OriginPool::acquire` with a [`RetryTarget`]).
//!
//! A request is retried only when it **provably never reached the server's application**, and
//! only when the pool still holds everything needed to send it again. Nothing else is retried:
//! a request that may have been processed surfaces as an error, whatever its method.
//!
//! # What proves "never processed"
//!
//! HTTP/2, driven through the `h2` crate (verified against h2 0.4.20):
//!
//! - **Never opened.** `SendRequest::ready` or `send_request` failed. No HEADERS frame left the
//!   client: h2 refuses before assigning a stream id, for instance on a connection that already
//!   received GOAWAY (its `conn_error` is set) or was closed.
//! - **Refused.** The peer reset the stream with `REFUSED_STREAM` ([RFC 9113 §8.7]: "the stream
//!   was closed prior to any processing").
//! - **Above the GOAWAY's last-stream-id.** A stream-level error with `is_go_away() &&
//!   is_remote()` is given by h2 in exactly one place, `Streams::recv_go_away`, and only to
//!   locally initiated streams *above* the frame's last-stream-id, which [RFC 9113 §6.8] says
//!   the server did not and will not process. Streams at or below it complete, or fail with an
//!   I/O error when the connection ends; they never see the GOAWAY error. (Through hyper's
//!   dispatcher this did not hold: hyper hands the connection's GOAWAY error to a request whose
//!   stream h2 had already opened; that is why the pool drives h2 itself.)
//!
//! - **425 Too Early** to a request sent as TLS 1.3 early data ([RFC 8470 §5.2]: the server
//!   did not process it). It goes again marked [`NoEarlyData`](crate::NoEarlyData), so only
//!   after a handshake completed.
//!
//! HTTP/1.1, through hyper's `client::conn::http1`:
//!
//! - hyper handed the request back unsent (`TrySendError::take_message`), or the connection
//!   failed `poll_ready` before the request was handed over.
//!
//! # What can be sent again
//!
//! The head is kept (method, URI, version, headers, extensions). The body must be one the pool
//! holds in full: empty, or every frame of it ready at once and at most
//! [`REPLAY_LIMIT`](crate::outgoing::REPLAY_LIMIT) bytes (a `String`, `Bytes`, `Full<Bytes>` or
//! `Empty<Bytes>` request body is; see `crate::outgoing`). A body that streams cannot be replayed once any of it was sent; one whose
//! stream was never opened is still untouched and goes out whole on the retry.
//!
//! [RFC 9113 §8.7]: https://www.rfc-editor.org/rfc/rfc9113#section-8.7
//! [RFC 8470 §5.2]: https://www.rfc-editor.org/rfc/rfc8470#section-5.2
//! [RFC 9113 §6.8]: https://www.rfc-editor.org/rfc/rfc9113#section-6.8

use std::sync::Arc;

use crate::connection::Connection;
use crate::error::Error;
use crate::exchange::{Evidence, SendFailure};
use crate::origin::Origin;
use crate::origin_pool::{RetryTarget, SEND_ORDER_SLACK};
use crate::outgoing::Outgoing;

mod resend;

pub(crate) use resend::{after_failure, complete};

/// Re-sends of a request whose stream a connection refused to open at all, on top of
/// `max_unprocessed_retries`: such a failure costs no round trip and removes that connection,
/// so under a GOAWAY storm a request may meet several already-rotated connections in a row.
/// Bounded all the same, so nothing can loop.
const NEVER_SENT_RETRIES: usize = 8;

/// Slots a retry may turn down (the connection had sent too many requests by the time the
/// retry could use its slot) before it takes whatever slot comes.
const MAX_PLACEMENT_REJECTIONS: usize = 4;

/// What one request may still spend on being sent again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Budgets {
    /// Re-sends after a refusal, a GOAWAY above the last-stream-id or a 421
    /// (`max_unprocessed_retries`).
    unprocessed: usize,
    /// Re-sends of a request that never left the client, spent first.
    never_sent: usize,
}

impl Budgets {
    /// A request's budgets when the pool allows `max_unprocessed_retries`; with 0 nothing is
    /// sent again, not even a request that never left the client.
    pub(crate) fn new(max_unprocessed_retries: usize) -> Budgets {
        Budgets {
            unprocessed: max_unprocessed_retries,
            never_sent: if max_unprocessed_retries > 0 {
                NEVER_SENT_RETRIES
            } else {
                0
            },
        }
    }

    /// Spends one re-send for `evidence`; false when none is left.
    fn spend(&mut self, evidence: &Evidence) -> bool {
        if matches!(evidence, Evidence::NeverSent) && self.never_sent > 0 {
            self.never_sent -= 1;
        } else if self.unprocessed > 0 {
            self.unprocessed -= 1;
        } else {
            return false;
        }
        true
    }
}

/// What [`decide`] says.
#[derive(Debug)]
pub(crate) struct Decision {
    /// The request to send again and where, or the error for the caller.
    pub(crate) next: Result<Resend, GiveUp>,
    /// The origin whose connections answered 421 for this one: never coalesce onto it again.
    pub(crate) stop_coalescing_onto: Option<Origin>,
}

/// Why a request is not sent again, with the error for the caller.
#[derive(Debug)]
pub(crate) struct GiveUp {
    pub(crate) error: Error,
    /// Only its budget stopped it: it provably never reached the server.
    pub(crate) budget_spent: bool,
}

/// A request to send again.
#[derive(Debug)]
pub(crate) struct Resend {
    pub(crate) request: Box<Outgoing>,
    pub(crate) placement: Placement,
    /// The failure that sent it back, for the log.
    pub(crate) cause: Error,
}

/// Whether `failure`, on connection `sent_on`, sends its request again, and where.
///
/// Again only when the failure proves the server never processed the request (see the module
/// docs), another connection could fare better (not after
/// [`Error::ClientCertificateRequired`]), the pool holds the whole request, and `budgets`
/// have a re-send left; then on another connection than `sent_on`, and after a rotation's GOAWAY only where it will be among the
/// requests that server takes (see [`Placement`]).
pub(crate) fn decide(failure: SendFailure, sent_on: u64, budgets: &mut Budgets) -> Decision {
    let (error, replay, evidence) = failure.into_parts();
    let (refused_on, stop_coalescing_onto) = match &evidence {
        Evidence::AboveLastStreamId(conn) => (Some(Arc::clone(conn)), None),
        Evidence::Misdirected(origin) => (None, Some(origin.clone())),
        Evidence::None | Evidence::NeverSent | Evidence::Refused | Evidence::TooEarly => {
            (None, None)
        }
    };
    // A server that wants a client certificate the pool does not have refuses every
    // connection the same way: sending again would only meet the backoff.
    let futile = matches!(error, Error::ClientCertificateRequired { .. });
    let proven = !futile && !matches!(evidence, Evidence::None);
    let next = match replay {
        Some(request) if proven && budgets.spend(&evidence) => Ok(Resend {
            request,
            placement: Placement::new(sent_on, refused_on),
            cause: error,
        }),
        Some(_) if proven => Err(GiveUp {
            error,
            budget_spent: true,
        }),
        _ => Err(GiveUp {
            error,
            budget_spent: false,
        }),
    };
    Decision {
        next,
        stop_coalescing_onto,
    }
}

/// Where a re-sent request may go, kept up to date while slots are offered to it.
#[derive(Debug)]
pub(crate) struct Placement {
    target: RetryTarget,
    /// The connection whose server's GOAWAY refused the request, read as late as possible:
    /// every request above the last-stream-id fails at once, but their tasks notice one by
    /// one, and each may lower what the connection says the server took.
    refused_on: Option<Arc<Connection>>,
    rejected: usize,
}

impl Placement {
    fn new(sent_on: u64, refused_on: Option<Arc<Connection>>) -> Placement {
        Placement {
            target: RetryTarget {
                exclude: sent_on,
                within_first: None,
            },
            refused_on,
            rejected: 0,
        }
    }

    /// To call before the first acquire. After a rotation's GOAWAY, the other requests it
    /// refused were woken with this one: they note their (possibly lower) send ordinals
    /// first, then the server's budget is read.
    pub(crate) async fn settle(&mut self) {
        if self.refused_on.is_some() {
            tokio::task::yield_now().await;
            self.target.within_first = self.within_server_budget();
        }
    }

    /// The acquire target: not the connection it failed on and, after a rotation refused it
    /// as the n-th request on a connection, only where it will be among the first n - 1
    /// (all but the first refused).
    pub(crate) fn target(&self) -> RetryTarget {
        self.target
    }

    /// Whether the slot the pool handed over, on `conn`, may take the request. Admitted when
    /// the slot was handed over, other requests may have gone out on the connection since:
    /// checked again right before sending, so a retry never goes where it would be refused
    /// again. A rejected slot's connection is excluded from then on; after
    /// [`MAX_PLACEMENT_REJECTIONS`] (fresh connections keep filling up before the retry runs,
    /// or none can be added) any slot will do.
    pub(crate) fn admits(&mut self, conn: &Connection) -> bool {
        if self.rejected < MAX_PLACEMENT_REJECTIONS {
            self.target.within_first = self.within_server_budget();
        }
        if self.target.admits(conn.id, conn.requests_sent()) {
            return true;
        }
        self.target.exclude = conn.id;
        self.rejected += 1;
        if self.rejected >= MAX_PLACEMENT_REJECTIONS {
            self.target.within_first = None;
        }
        false
    }

    fn within_server_budget(&self) -> Option<u64> {
        self.refused_on
            .as_ref()
            .and_then(|c| c.refused_from())
            .map(|n| n.saturating_sub(1).max(1 + SEND_ORDER_SLACK))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::outgoing::OutBody;

    fn held_request() -> Option<Box<Outgoing>> {
        let (head, ()) = http::Request::new(()).into_parts();
        Some(Box::new(Outgoing {
            head,
            body: OutBody::Empty,
        }))
    }

    fn never_sent() -> SendFailure {
        SendFailure::never_sent(Error::PoolClosed, held_request())
    }

    #[test]
    fn a_failure_that_proves_nothing_is_never_sent_again() {
        let mut budgets = Budgets::new(3);
        let decision = decide(SendFailure::fatal(Error::PoolClosed), 1, &mut budgets);
        let give_up = decision.next.expect_err("nothing proves it unprocessed");
        assert!(!give_up.budget_spent);
        assert_eq!(budgets, Budgets::new(3), "nothing spent");
    }

    #[test]
    fn a_request_never_sent_spends_its_own_budget_first_then_the_pool_s() {
        let mut budgets = Budgets::new(2);
        for _ in 0..NEVER_SENT_RETRIES + 2 {
            let resend = decide(never_sent(), 7, &mut budgets)
                .next
                .expect("a re-send left");
            assert_eq!(
                resend.placement.target().exclude,
                7,
                "never back to connection 7"
            );
            assert_eq!(resend.placement.target().within_first, None);
        }
        let give_up = decide(never_sent(), 7, &mut budgets)
            .next
            .expect_err("spent");
        assert!(give_up.budget_spent);
    }

    #[test]
    fn with_retries_off_not_even_a_request_never_sent_goes_again() {
        let mut budgets = Budgets::new(0);
        let give_up = decide(never_sent(), 1, &mut budgets).next.expect_err("off");
        assert!(give_up.budget_spent);
    }

    #[test]
    fn proof_without_the_request_held_gives_up() {
        let mut budgets = Budgets::new(3);
        let failure = SendFailure::never_sent(Error::PoolClosed, None);
        let give_up = decide(failure, 1, &mut budgets)
            .next
            .expect_err("no request");
        assert!(!give_up.budget_spent);
        assert_eq!(budgets, Budgets::new(3));
    }

    /// A server that wants a client certificate refuses every connection alike: a request it
    /// refused is not sent again, though it never reached the server, and nothing is spent.
    #[test]
    fn a_missing_client_certificate_is_not_retried() {
        let mut budgets = Budgets::new(3);
        let origin: Origin = "https://a.test".parse().expect("origin");
        let error = Error::ClientCertificateRequired {
            origin,
            source: crate::error::shared(std::io::Error::other("certificate_required")),
        };
        let failure = SendFailure::never_sent(error, held_request());
        let give_up = decide(failure, 1, &mut budgets).next.expect_err("futile");
        assert!(matches!(
            give_up.error,
            Error::ClientCertificateRequired { .. }
        ));
        assert!(!give_up.budget_spent);
        assert_eq!(budgets, Budgets::new(3));
    }
}
