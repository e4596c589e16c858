//! What a failed exchange reports: the error, the request when the pool still holds it, and
//! what the peer's answer proves about whether the server processed it. Whether and where the
//! request goes again is decided from this by [`crate::retry::decide`], nowhere else.

use std::sync::Arc;

use crate::connection::Connection;
use crate::error::Error;
use crate::origin::Origin;
use crate::outgoing::Outgoing;

/// A failed exchange.
#[derive(Debug)]
pub(crate) struct SendFailure {
    error: Error,
    /// The request, when the pool holds all of it (see `crate::retry`).
    replay: Option<Box<Outgoing>>,
    evidence: Evidence,
}

/// What the failure proves about the server and the request (`crate::retry` says why each
/// proof holds).
#[derive(Debug)]
pub(crate) enum Evidence {
    /// Nothing: the server may have processed the request.
    None,
    /// The request never left the client: h2 refused to open a stream (the connection was
    /// closed or had been told to go away), or hyper handed the HTTP/1.1 request back unsent.
    NeverSent,
    /// The peer reset the stream with `REFUSED_STREAM`.
    Refused,
    /// The server's GOAWAY failed the stream above its last-stream-id, on this connection
    /// (which remembers the send ordinal it refused from: `Connection::refused_from`).
    AboveLastStreamId(Arc<Connection>),
    /// The request went on another origin's connection (HTTP/2 coalescing) and that server
    /// answered `421 Misdirected Request`: this origin must not be coalesced onto again.
    Misdirected(Origin),
    /// The request went as TLS 1.3 early data and the server answered `425 Too Early`: it
    /// did not process it (RFC 8470 §5.2).
    TooEarly,
}

impl SendFailure {
    /// A failure that proves nothing and keeps no request: the error goes to the caller.
    pub(crate) fn fatal(error: Error) -> SendFailure {
        SendFailure {
            error,
            replay: None,
            evidence: Evidence::None,
        }
    }

    /// The request never left the client; `replay` is it, when the pool kept it.
    pub(crate) fn never_sent(error: Error, replay: Option<Box<Outgoing>>) -> SendFailure {
        SendFailure {
            error,
            replay,
            evidence: Evidence::NeverSent,
        }
    }

    /// A stream h2 opened failed with `h2_error` (already turned into `error`).
    /// `sent_ordinal` is the request's place (from 1) among those sent on `conn`.
    pub(crate) fn h2_stream(
        conn: &Arc<Connection>,
        error: Error,
        h2_error: &H2Failure,
        replay: Option<Outgoing>,
        sent_ordinal: u64,
    ) -> SendFailure {
        let evidence = if h2_error.above_last_stream_id {
            conn.note_refused(sent_ordinal);
            Evidence::AboveLastStreamId(Arc::clone(conn))
        } else if h2_error.refused {
            if sent_ordinal == 1 {
                // REFUSED_STREAM for a connection's very first request: unless something was
                // served on it, the server processed nothing here, a failed dial (a server
                // that refuses every stream would otherwise get a fresh dial per retry).
                conn.note_first_request_refused();
            }
            Evidence::Refused
        } else {
            Evidence::None
        };
        SendFailure {
            error,
            replay: replay.map(Box::new),
            evidence,
        }
    }

    /// `conn`, another origin's connection the request was coalesced onto, answered 421.
    pub(crate) fn misdirected(conn: &Connection, replay: Outgoing) -> SendFailure {
        SendFailure {
            error: Error::Protocol {
                origin: conn.origin.clone(),
                reason: format!(
                    "421 Misdirected Request for {} on connection {} of {} (coalesced)",
                    replay.head.uri, conn.id, conn.origin
                ),
                source: None,
            },
            replay: Some(Box::new(replay)),
            evidence: Evidence::Misdirected(conn.origin.clone()),
        }
    }

    /// `conn`'s server answered `425 Too Early` to `replay`, sent as early data.
    pub(crate) fn too_early(conn: &Connection, replay: Outgoing) -> SendFailure {
        SendFailure {
            error: Error::Protocol {
                origin: conn.origin.clone(),
                reason: format!(
                    "425 Too Early for {} on connection {} (sent as TLS early data)",
                    replay.head.uri, conn.id
                ),
                source: None,
            },
            replay: Some(Box::new(replay)),
            evidence: Evidence::TooEarly,
        }
    }

    /// The error the caller gets if the request is not sent again.
    pub(crate) fn into_error(self) -> Error {
        self.error
    }

    /// The error, the request if held, and the evidence: what `crate::retry::decide` reads.
    pub(crate) fn into_parts(self) -> (Error, Option<Box<Outgoing>>, Evidence) {
        (self.error, self.replay, self.evidence)
    }
}

/// What an h2 error says, read once: the peer's own word only (a bare reason, which user code
/// and h2's local checks produce, proves nothing).
#[derive(Debug, Clone, Copy)]
pub(crate) struct H2Failure {
    /// The peer reset the stream with `REFUSED_STREAM` ([RFC 9113 §8.7]).
    ///
    /// [RFC 9113 §8.7]: https://www.rfc-editor.org/rfc/rfc9113#section-8.7
    pub(crate) refused: bool,
    /// The peer's GOAWAY failed the stream: h2 gives a stream this error only when it is above
    /// the frame's last-stream-id (`Streams::recv_go_away`).
    pub(crate) above_last_stream_id: bool,
    /// ...and that GOAWAY was graceful (`NO_ERROR`): a rotation, which the request-budget
    /// learner counts.
    pub(crate) rotated: bool,
}

impl H2Failure {
    pub(crate) fn of(error: &h2::Error) -> H2Failure {
        let remote = error.is_remote();
        let above_last_stream_id = remote && error.is_go_away();
        H2Failure {
            refused: remote
                && error.is_reset()
                && error.reason() == Some(h2::Reason::REFUSED_STREAM),
            above_last_stream_id,
            rotated: above_last_stream_id && error.reason() == Some(h2::Reason::NO_ERROR),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Only the peer's word counts: a bare reason (what user code can build, and what h2 gives
    /// for locally detected errors) is neither a remote reset nor a remote GOAWAY. The remote
    /// cases are exercised against real servers in `tests/faults.rs` and `tests/interop.rs`.
    #[test]
    fn a_reason_that_did_not_come_from_the_peer_proves_nothing() {
        for reason in [h2::Reason::REFUSED_STREAM, h2::Reason::CANCEL] {
            let seen = H2Failure::of(&h2::Error::from(reason));
            assert!(!seen.refused && !seen.above_last_stream_id && !seen.rotated);
        }
    }
}
