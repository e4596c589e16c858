//! The request side of an exchange: a caller's request shaped for one connection, its body
//! classified as empty, held in full (so it can be sent again, see `crate::retry`) or streaming,
//! and the pipe that writes a body into an h2 stream under flow control.
//!
//! What hyper's HTTP/2 client did to a request head is done here, since HTTP/2 now goes
//! through h2 directly: connection-specific header fields are removed ([RFC 9113 §8.2.2]),
//! `te` is kept only as `trailers`, and `content-length` is filled in from an exact body size.
//!
//! [RFC 9113 §8.2.2]: https://www.rfc-editor.org/rfc/rfc9113#section-8.2.2

use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use http::HeaderMap;
use http_body::{Body, Frame, SizeHint};
use http_body_util::BodyExt;
use http_body_util::combinators::UnsyncBoxBody;

use crate::error::BoxError;

mod pipe;
mod shape;

pub(crate) use pipe::{Pipe, PipeError};
pub(crate) use shape::{prepare, shape};

/// The largest request body, in bytes, the pool keeps a copy of so that it can send it again
/// (see `crate::retry`). Larger bodies are streamed and never replayed once sent.
pub(crate) const REPLAY_LIMIT: usize = 64 * 1024;

/// A request ready for one connection: its head shaped for the protocol, its body classified.
#[derive(Debug)]
pub(crate) struct Outgoing {
    pub(crate) head: http::request::Parts,
    pub(crate) body: OutBody,
}

/// A request body as the pool holds it.
pub(crate) enum OutBody {
    /// No bytes at all: HTTP/2 sends HEADERS with END_STREAM.
    Empty,
    /// Every frame was ready at once and fits [`REPLAY_LIMIT`]: it can be sent again.
    Full(Buffered),
    /// A body that produces data over time. `prefix` holds frames already taken from it while
    /// classifying; they go out first.
    Streaming {
        prefix: Buffered,
        body: UnsyncBoxBody<Bytes, BoxError>,
    },
}

impl std::fmt::Debug for OutBody {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            OutBody::Empty => f.write_str("Empty"),
            OutBody::Full(b) => f.debug_tuple("Full").field(&b.len).finish(),
            OutBody::Streaming { .. } => f.write_str("Streaming"),
        }
    }
}

/// Body frames held in memory: data chunks (the first inline, since most bodies are one
/// chunk; the rest and any trailers boxed, to keep request futures small).
#[derive(Debug, Clone, Default)]
pub(crate) struct Buffered {
    first: Option<Bytes>,
    len: usize,
    rest: Option<Box<BufferedRest>>,
}

#[derive(Debug, Clone, Default)]
struct BufferedRest {
    more: std::collections::VecDeque<Bytes>,
    trailers: Option<HeaderMap>,
}

impl Buffered {
    fn push(&mut self, frame: Frame<Bytes>) {
        match frame.into_data() {
            Ok(data) => {
                self.len += data.len();
                if self.first.is_none() && self.rest.as_ref().is_none_or(|r| r.more.is_empty()) {
                    self.first = Some(data);
                } else {
                    self.rest.get_or_insert_default().more.push_back(data);
                }
            }
            Err(frame) => {
                if let Ok(trailers) = frame.into_trailers() {
                    match &mut self.rest.get_or_insert_default().trailers {
                        Some(held) => held.extend(trailers),
                        held @ None => *held = Some(trailers),
                    }
                }
            }
        }
    }

    fn pop(&mut self) -> Option<Frame<Bytes>> {
        let next = self
            .first
            .take()
            .or_else(|| self.rest.as_mut().and_then(|r| r.more.pop_front()));
        if let Some(data) = next {
            self.len -= data.len();
            return Some(Frame::data(data));
        }
        self.rest
            .as_mut()
            .and_then(|r| r.trailers.take())
            .map(Frame::trailers)
    }

    fn is_empty(&self) -> bool {
        self.first.is_none()
            && self
                .rest
                .as_ref()
                .is_none_or(|r| r.more.is_empty() && r.trailers.is_none())
    }
}

impl OutBody {
    /// Takes `body` apart: frames that are ready at once are held, up to [`REPLAY_LIMIT`]
    /// bytes; a body that ends within them is [`OutBody::Full`] (or `Empty`), any other keeps
    /// streaming. Polls with a no-op waker: a body that is not ready registers the real waker
    /// when the pipe polls it again.
    pub(crate) fn classify<B>(body: B) -> OutBody
    where
        B: Body<Data = Bytes> + Send + 'static,
        B::Error: Into<BoxError>,
    {
        if body.is_end_stream() {
            return OutBody::Empty;
        }
        let mut body = Box::pin(body);
        let mut held = Buffered::default();
        let mut cx = Context::from_waker(std::task::Waker::noop());
        loop {
            if held.len > REPLAY_LIMIT {
                // Too large to keep for a replay: it goes out as a stream.
                break;
            }
            if body.is_end_stream() {
                return held.into_full();
            }
            match body.as_mut().poll_frame(&mut cx) {
                Poll::Ready(None) if held.len <= REPLAY_LIMIT => return held.into_full(),
                Poll::Ready(None) => break,
                Poll::Ready(Some(Ok(frame))) => held.push(frame),
                // Sent as it is: the pipe meets the error again and resets the stream.
                Poll::Ready(Some(Err(e))) => {
                    return OutBody::Streaming {
                        prefix: held,
                        body: UnsyncBoxBody::new(FailedBody(Some(e.into()))),
                    };
                }
                Poll::Pending => break,
            }
        }
        OutBody::Streaming {
            prefix: held,
            body: UnsyncBoxBody::new(PinnedBody(body).map_err(Into::into)),
        }
    }

    /// A copy to send again, for bodies the pool holds in full.
    pub(crate) fn replay_copy(&self) -> Option<OutBody> {
        match self {
            OutBody::Empty => Some(OutBody::Empty),
            OutBody::Full(b) => Some(OutBody::Full(b.clone())),
            OutBody::Streaming { .. } => None,
        }
    }

    /// The exact size in bytes when known without reading.
    fn exact_len(&self) -> Option<u64> {
        match self {
            OutBody::Empty => Some(0),
            OutBody::Full(b) => Some(b.len as u64),
            OutBody::Streaming { prefix, body } => body
                .size_hint()
                .exact()
                .map(|rest| rest + prefix.len as u64),
        }
    }
}

impl Buffered {
    fn into_full(self) -> OutBody {
        if self.is_empty() {
            OutBody::Empty
        } else {
            OutBody::Full(self)
        }
    }
}

/// A boxed body, so that an `!Unpin` body can sit behind the `Unpin` box type.
struct PinnedBody<B>(Pin<Box<B>>);

impl<B: Body> Body for PinnedBody<B> {
    type Data = B::Data;
    type Error = B::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        self.0.as_mut().poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.0.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.0.size_hint()
    }
}

/// A body that fails once: what remains of a body whose error surfaced while it was classified.
struct FailedBody(Option<BoxError>);

impl Body for FailedBody {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        _: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        Poll::Ready(self.0.take().map(Err))
    }
}

/// The body type HTTP/1.1 requests carry through hyper: held frames first, then the stream.
impl Body for OutBody {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = self.get_mut();
        match this {
            OutBody::Empty => Poll::Ready(None),
            OutBody::Full(held) => Poll::Ready(held.pop().map(Ok)),
            OutBody::Streaming { prefix, body } => match prefix.pop() {
                Some(frame) => Poll::Ready(Some(Ok(frame))),
                None => Pin::new(body).poll_frame(cx),
            },
        }
    }

    fn is_end_stream(&self) -> bool {
        match self {
            OutBody::Empty => true,
            OutBody::Full(held) => held.is_empty(),
            OutBody::Streaming { prefix, body } => prefix.is_empty() && body.is_end_stream(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match self.exact_len() {
            Some(n) => SizeHint::with_exact(n),
            None => SizeHint::default(),
        }
    }
}

#[cfg(test)]
mod tests;
