//! The response body the pool hands out, and the stream slot it holds.

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use http::HeaderMap;
use http::header::CONTENT_LENGTH;
use http_body::{Frame, SizeHint};

use crate::connection::Connection;
use crate::error::{Error, TimeoutKind};
use crate::lease::{Lease, LeaseRef};
use crate::timeouts::{Deadline, PhaseClock, RequestLimits};

/// The body of a response received through the pool.
///
/// It implements [`http_body::Body`] with `Data = Bytes` and `Error = `[`Error`], so
/// `http_body_util::BodyExt::collect`, tonic and anything else that reads an `http_body::Body`
/// reads it. Over HTTP/2 it returns flow-control capacity to the server as data is read
/// (reading slowly slows the server down, never the pool's memory), yields trailers (gRPC's
/// `grpc-status` arrives in them), and its [`size_hint`](http_body::Body::size_hint) is exact
/// when the server sent `content-length`.
///
/// **It holds the stream slot.** The slot its request was sent on stays leased until the body
/// reaches its end (END_STREAM or the last trailers), fails, or is dropped; only then does it
/// count as free for another request. A slowly read download or a long gRPC server stream
/// therefore keeps its connection's slot, and the pool opens another connection rather than
/// queueing new requests behind it. Drop a body you do not want to read: over HTTP/2 the
/// stream is reset with CANCEL and the slot freed at once.
///
/// **Reading waits at most `read_timeout`** ([`PoolConfig::read_timeout`], or the request's
/// [`Timeouts`]) for each next piece: a server that stops sending mid-body fails the read
/// with [`Error::Timeout`] of kind [`TimeoutKind::Read`], and the stream is reset (HTTP/1.1:
/// the connection discarded). Time the caller spends not reading does not count.
///
/// [`PoolConfig::read_timeout`]: crate::PoolConfig::read_timeout
/// [`Timeouts`]: crate::Timeouts
pub struct Body {
    // Declared first so that it drops first: an HTTP/2 stream dropped unfinished is reset
    // before its slot counts as free.
    kind: Kind,
    /// The request body still being written after the response head came: dropped when this
    /// body ends, which stops that writer and resets the stream (see `exchange`).
    upload: Option<tokio::sync::oneshot::Sender<()>>,
    slot: Slot,
    limits: RequestLimits,
    /// Runs while the caller waits for the next piece.
    clock: PhaseClock,
}

/// A body's hold on its stream slot, and on its connection, which stays known after the slot
/// is given back (for errors, and with the adaptive window for DATA accounting). The lease
/// already holds the connection: no second reference is taken per response.
enum Slot {
    /// `pool.request`: the lease is the body's own; given back by disarming it.
    Owned(Lease),
    /// A [`StreamHandle`](crate::StreamHandle)'s lease, shared with it.
    Shared(Arc<Lease>),
    /// A shared lease this body no longer holds.
    Released(Arc<Connection>),
}

impl Slot {
    fn conn(&self) -> &Arc<Connection> {
        match self {
            Slot::Owned(lease) => lease.conn(),
            Slot::Shared(lease) => lease.conn(),
            Slot::Released(conn) => conn,
        }
    }

    fn is_held(&self) -> bool {
        match self {
            Slot::Owned(lease) => lease.is_armed(),
            Slot::Shared(_) => true,
            Slot::Released(_) => false,
        }
    }

    fn release(&mut self) {
        match self {
            Slot::Owned(lease) => lease.release_now(),
            Slot::Shared(lease) => {
                let conn = Arc::clone(lease.conn());
                *self = Slot::Released(conn);
            }
            Slot::Released(_) => {}
        }
    }
}

impl From<LeaseRef> for Slot {
    fn from(lease: LeaseRef) -> Slot {
        match lease {
            LeaseRef::Owned(lease) => Slot::Owned(lease),
            LeaseRef::Shared(lease) => Slot::Shared(lease),
        }
    }
}

enum Kind {
    Empty,
    H2 {
        recv: h2::RecvStream,
        /// Bytes still expected, from `content-length`.
        remaining: Option<u64>,
        data_done: bool,
    },
    H1(hyper::body::Incoming),
}

impl std::fmt::Debug for Body {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let kind = match &self.kind {
            Kind::Empty => "empty",
            Kind::H2 { .. } => "h2",
            Kind::H1(_) => "http/1.1",
        };
        f.debug_struct("Body")
            .field("kind", &kind)
            .field("origin", &self.slot.conn().origin)
            .field("connection_id", &self.slot.conn().id)
            .field("holds_slot", &self.slot.is_held())
            .finish()
    }
}

impl Body {
    /// An HTTP/2 response body; gives the slot back at once if the stream already ended.
    pub(crate) fn h2(
        recv: h2::RecvStream,
        headers: &HeaderMap,
        lease: LeaseRef,
        limits: RequestLimits,
    ) -> Body {
        let ended = recv.is_end_stream();
        let mut body = Body {
            upload: None,
            limits,
            clock: PhaseClock::default(),
            kind: if ended {
                Kind::Empty
            } else {
                Kind::H2 {
                    recv,
                    remaining: content_length(headers),
                    data_done: false,
                }
            },
            slot: Slot::from(lease),
        };
        if ended {
            body.finish();
        }
        body
    }

    /// An HTTP/1.1 response body from hyper.
    pub(crate) fn h1(
        incoming: hyper::body::Incoming,
        lease: LeaseRef,
        limits: RequestLimits,
    ) -> Body {
        use http_body::Body as _;
        let ended = incoming.is_end_stream();
        let mut body = Body {
            upload: None,
            limits,
            clock: PhaseClock::default(),
            kind: Kind::H1(incoming),
            slot: Slot::from(lease),
        };
        if ended {
            body.finish();
        }
        body
    }

    /// True while the body still holds its stream slot.
    pub fn holds_slot(&self) -> bool {
        self.slot.is_held()
    }

    /// Ties the request body still being written to this body: when this one ends or is
    /// dropped, that writer stops and resets the stream.
    pub(crate) fn with_upload(mut self, stop: tokio::sync::oneshot::Sender<()>) -> Body {
        if self.slot.is_held() {
            self.upload = Some(stop);
        }
        // Else the response already ended: dropping `stop` stops the writer now.
        self
    }

    /// The end: stop a request body still being written, give the slot back.
    fn finish(&mut self) {
        self.upload = None;
        self.slot.release();
    }

    /// Nothing to read yet: pending until the read deadline, then its timeout.
    fn poll_read_deadline(
        &mut self,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Error>>> {
        let limits = self.limits.resolve(self.slot.conn().timeouts);
        let deadline = std::task::ready!(self.clock.poll_wait(&limits, TimeoutKind::Read, cx));
        Poll::Ready(Some(Err(self.time_out(deadline))))
    }

    /// The caller waited `deadline` out: the stream is reset (its receive half dropped, and
    /// the writer stopped), an HTTP/1.1 connection discarded, the slot given back.
    fn time_out(&mut self, deadline: Deadline) -> Error {
        let conn = Arc::clone(self.slot.conn());
        if matches!(self.kind, Kind::H1(_)) {
            // Mid-body, an HTTP/1.1 connection cannot be used again.
            conn.discard();
        }
        self.kind = Kind::Empty;
        self.finish();
        deadline.error(&conn.origin)
    }

    fn h2_error(&self, error: h2::Error) -> Error {
        let connection_level = crate::connection::h2_error_ends_connection(&error);
        self.slot.conn().failure(connection_level, error)
    }

    fn h1_error(&self, error: hyper::Error) -> Error {
        // A body cut short is the connection failing under it.
        self.slot.conn().failure(true, error)
    }
}

/// The single valid `content-length`, if the server sent one.
fn content_length(headers: &HeaderMap) -> Option<u64> {
    let mut values = headers.get_all(CONTENT_LENGTH).iter();
    let first = values.next()?.to_str().ok()?.trim().parse::<u64>().ok()?;
    values
        .all(|v| v.to_str().ok().and_then(|s| s.trim().parse::<u64>().ok()) == Some(first))
        .then_some(first)
}

impl http_body::Body for Body {
    type Data = Bytes;
    type Error = Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Error>>> {
        let this = self.get_mut();
        match &mut this.kind {
            Kind::Empty => {
                this.finish();
                Poll::Ready(None)
            }
            Kind::H2 {
                recv,
                remaining,
                data_done,
            } => {
                if !*data_done {
                    match recv.poll_data(cx) {
                        Poll::Pending => return this.poll_read_deadline(cx),
                        Poll::Ready(Some(Ok(data))) => {
                            this.clock.progress();
                            let len = data.len();
                            // Only fails on a stream that already ended; nothing to return then.
                            let _ = recv.flow_control().release_capacity(len);
                            if let Some(r) = remaining {
                                *r = r.saturating_sub(len as u64);
                            }
                            if let Some(recorder) = this.slot.conn().data_recorder() {
                                recorder.record(len);
                            }
                            if recv.is_end_stream() {
                                this.finish();
                            }
                            return Poll::Ready(Some(Ok(Frame::data(data))));
                        }
                        Poll::Ready(Some(Err(e))) => {
                            let error = this.h2_error(e);
                            this.finish();
                            return Poll::Ready(Some(Err(error)));
                        }
                        Poll::Ready(None) => *data_done = true,
                    }
                }
                let result = match recv.poll_trailers(cx) {
                    Poll::Pending => return this.poll_read_deadline(cx),
                    Poll::Ready(Ok(Some(trailers))) => Some(Ok(Frame::trailers(trailers))),
                    Poll::Ready(Ok(None)) => None,
                    Poll::Ready(Err(e)) => Some(Err(this.h2_error(e))),
                };
                this.finish();
                Poll::Ready(result)
            }
            Kind::H1(incoming) => match Pin::new(&mut *incoming).poll_frame(cx) {
                Poll::Pending => this.poll_read_deadline(cx),
                Poll::Ready(Some(Ok(frame))) => {
                    this.clock.progress();
                    if http_body::Body::is_end_stream(&*incoming) {
                        this.finish();
                    }
                    Poll::Ready(Some(Ok(frame)))
                }
                Poll::Ready(Some(Err(e))) => {
                    let error = this.h1_error(e);
                    this.finish();
                    Poll::Ready(Some(Err(error)))
                }
                Poll::Ready(None) => {
                    this.finish();
                    Poll::Ready(None)
                }
            },
        }
    }

    fn is_end_stream(&self) -> bool {
        match &self.kind {
            Kind::Empty => true,
            Kind::H2 { recv, .. } => recv.is_end_stream(),
            Kind::H1(incoming) => incoming.is_end_stream(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match &self.kind {
            Kind::Empty => SizeHint::with_exact(0),
            Kind::H2 {
                recv, remaining, ..
            } => {
                if recv.is_end_stream() {
                    SizeHint::with_exact(0)
                } else {
                    remaining.map_or_else(SizeHint::default, SizeHint::with_exact)
                }
            }
            Kind::H1(incoming) => incoming.size_hint(),
        }
    }
}
