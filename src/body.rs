//! The response body the pool hands out, and the stream slot it holds.

use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use http::HeaderMap;
use http::header::CONTENT_LENGTH;
use http_body::{Frame, SizeHint};

use crate::error::Error;
use crate::lease::LeaseRef;
use crate::retry;

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
pub struct Body {
    kind: Kind,
    /// Given back at the end of the stream; `None` afterwards.
    lease: Option<LeaseRef>,
    /// For errors: which origin and connection the body came from.
    source: Source,
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

/// The connection a body came from: for its errors and, with the adaptive window, its DATA
/// accounting.
#[derive(Clone)]
struct Source {
    conn: std::sync::Arc<crate::connection::Connection>,
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
            .field("origin", &self.source.conn.origin)
            .field("connection_id", &self.source.conn.id)
            .field("holds_slot", &self.lease.is_some())
            .finish()
    }
}

impl Body {
    /// An HTTP/2 response body; gives the slot back at once if the stream already ended.
    pub(crate) fn h2(recv: h2::RecvStream, headers: &HeaderMap, lease: LeaseRef) -> Body {
        let source = Source {
            conn: std::sync::Arc::clone(lease.conn()),
        };
        let ended = recv.is_end_stream();
        Body {
            kind: if ended {
                Kind::Empty
            } else {
                Kind::H2 {
                    recv,
                    remaining: content_length(headers),
                    data_done: false,
                }
            },
            lease: (!ended).then_some(lease),
            source,
        }
    }

    /// An HTTP/1.1 response body from hyper.
    pub(crate) fn h1(incoming: hyper::body::Incoming, lease: LeaseRef) -> Body {
        use http_body::Body as _;
        let source = Source {
            conn: std::sync::Arc::clone(lease.conn()),
        };
        let ended = incoming.is_end_stream();
        Body {
            kind: Kind::H1(incoming),
            lease: (!ended).then_some(lease),
            source,
        }
    }

    /// True while the body still holds its stream slot.
    pub fn holds_slot(&self) -> bool {
        self.lease.is_some()
    }

    /// The end: give the slot back.
    fn finish(&mut self) {
        self.lease = None;
    }

    fn h2_error(&self, error: h2::Error) -> Error {
        let connection_level = retry::h2_connection_level(&error);
        self.source.conn.failure(connection_level, error)
    }

    fn h1_error(&self, error: hyper::Error) -> Error {
        // A body cut short is the connection failing under it.
        self.source.conn.failure(true, error)
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
                        Poll::Pending => return Poll::Pending,
                        Poll::Ready(Some(Ok(data))) => {
                            let len = data.len();
                            // Only fails on a stream that already ended; nothing to return then.
                            let _ = recv.flow_control().release_capacity(len);
                            if let Some(r) = remaining {
                                *r = r.saturating_sub(len as u64);
                            }
                            if let Some(recorder) = &this.source.conn.data_recorder {
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
                    Poll::Pending => return Poll::Pending,
                    Poll::Ready(Ok(Some(trailers))) => Some(Ok(Frame::trailers(trailers))),
                    Poll::Ready(Ok(None)) => None,
                    Poll::Ready(Err(e)) => Some(Err(this.h2_error(e))),
                };
                this.finish();
                Poll::Ready(result)
            }
            Kind::H1(incoming) => match Pin::new(&mut *incoming).poll_frame(cx) {
                Poll::Pending => Poll::Pending,
                Poll::Ready(Some(Ok(frame))) => {
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
