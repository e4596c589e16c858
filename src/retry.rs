//! The one rule for what may be sent again.
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
//! HTTP/1.1, through hyper's `client::conn::http1`:
//!
//! - hyper handed the request back unsent (`TrySendError::take_message`), or the connection
//!   failed `poll_ready` before the request was handed over.
//!
//! # What can be sent again
//!
//! The head is kept (method, URI, version, headers, extensions). The body must be one the pool
//! holds in full: empty, or every frame of it ready at once and at most [`REPLAY_LIMIT`] bytes
//! (a `String`, `Bytes`, `Full<Bytes>` or `Empty<Bytes>` request body is; see
//! `crate::outgoing`). A body that streams cannot be replayed once any of it was sent; one whose
//! stream was never opened is still untouched and goes out whole on the retry.
//!
//! [RFC 9113 §8.7]: https://www.rfc-editor.org/rfc/rfc9113#section-8.7
//! [RFC 9113 §6.8]: https://www.rfc-editor.org/rfc/rfc9113#section-6.8

/// The largest request body, in bytes, the pool keeps a copy of so that it can send it again
/// (see the module docs). Larger bodies are streamed and never replayed once sent.
pub(crate) const REPLAY_LIMIT: usize = 64 * 1024;

/// What an h2 error says about whether the server processed the stream.
pub(crate) fn h2_never_processed(error: &h2::Error) -> bool {
    let refused = error.is_reset() && error.reason() == Some(h2::Reason::REFUSED_STREAM);
    let above_last_stream_id = error.is_go_away() && error.is_remote();
    (refused || above_last_stream_id) && error.is_remote()
}

/// True when the server's graceful GOAWAY (NO_ERROR) failed the request: a rotation, as opposed
/// to an error or a shutdown for cause. Feeds the request-budget learner.
pub(crate) fn h2_rotated(error: &h2::Error) -> bool {
    error.is_go_away() && error.is_remote() && error.reason() == Some(h2::Reason::NO_ERROR)
}

/// True when an h2 error ends the whole connection rather than one stream: GOAWAY (either
/// side) or I/O.
pub(crate) fn h2_connection_level(error: &h2::Error) -> bool {
    error.is_go_away() || error.is_io()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Only the peer's word counts: a bare reason (what user code can build, and what h2 gives
    /// for locally detected errors) is neither a remote reset nor a remote GOAWAY. The remote
    /// cases are exercised against real servers in `tests/faults.rs` and `tests/interop.rs`.
    #[test]
    fn a_reason_that_did_not_come_from_the_peer_proves_nothing() {
        let refused = h2::Error::from(h2::Reason::REFUSED_STREAM);
        assert!(!h2_never_processed(&refused));
        let cancel = h2::Error::from(h2::Reason::CANCEL);
        assert!(!h2_never_processed(&cancel));
        assert!(!h2_rotated(&cancel));
    }
}
