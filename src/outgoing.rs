//! The request side of an exchange: a caller's request shaped for one connection, its body
//! classified as empty, held in full (so it can be sent again, see `retry.rs`) or streaming,
//! and the pipe that writes a body into an h2 stream under flow control.
//!
//! What hyper's HTTP/2 client did to a request head is done here, since HTTP/2 now goes
//! through h2 directly: connection-specific header fields are removed ([RFC 9113 §8.2.2]),
//! `te` is kept only as `trailers`, and `content-length` is filled in from an exact body size.
//!
//! [RFC 9113 §8.2.2]: https://www.rfc-editor.org/rfc/rfc9113#section-8.2.2

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::{Buf, Bytes};
use http::header::{CONNECTION, CONTENT_LENGTH, HOST, TE, TRANSFER_ENCODING, UPGRADE};
use http::uri::{Authority, PathAndQuery, Scheme as UriScheme};
use http::{HeaderMap, HeaderName, HeaderValue, Method, Request, Uri, Version};
use http_body::{Body, Frame, SizeHint};
use http_body_util::BodyExt;
use http_body_util::combinators::UnsyncBoxBody;

use crate::error::{BoxError, Error};
use crate::origin::{Origin, Scheme};
use crate::priority::Priority;
use crate::protocol::Protocol;
use crate::retry::REPLAY_LIMIT;

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

// ===== shaping the head =====

/// RFC 9218's request header field.
const PRIORITY: HeaderName = HeaderName::from_static("priority");

/// Header fields that only make sense for one HTTP/1.1 hop; h2 refuses them (RFC 9113
/// §8.2.2), hyper stripped them.
const CONNECTION_SPECIFIC: [HeaderName; 4] = [
    HeaderName::from_static("keep-alive"),
    HeaderName::from_static("proxy-connection"),
    TRANSFER_ENCODING,
    UPGRADE,
];

/// Shapes a caller's request for one connection: checks the origin, sets the URI form and
/// `Host` the protocol expects, sets the version, removes what HTTP/2 forbids, fills in
/// `content-length`, and classifies the body.
///
/// # Errors
///
/// [`Error::InvalidRequest`] when the URI names another origin or the method is `CONNECT`
/// (tunnels are not pooled).
pub(crate) fn prepare<B>(
    origin: &Origin,
    protocol: Protocol,
    request: Request<B>,
) -> Result<Outgoing, Error>
where
    B: Body<Data = Bytes> + Send + 'static,
    B::Error: Into<BoxError>,
{
    let (parts, body) = request.into_parts();
    let body = OutBody::classify(body);
    shape(origin, protocol, parts, body)
}

/// [`prepare`] for a request already taken apart (a retry moving to another connection).
pub(crate) fn shape(
    origin: &Origin,
    protocol: Protocol,
    mut parts: http::request::Parts,
    body: OutBody,
) -> Result<Outgoing, Error> {
    let invalid = |reason: String| Error::InvalidRequest {
        origin: origin.clone(),
        reason,
    };
    if parts.method == Method::CONNECT {
        return Err(invalid(
            "CONNECT opens a tunnel, which a pooled connection does not carry".to_owned(),
        ));
    }
    let canonical = is_canonical_absolute(origin, &parts.uri);
    if canonical {
        // Already absolute on this origin, as written by the origin itself.
    } else if parts.uri.authority().is_some() {
        if !origin.matches_uri(&parts.uri) {
            let target = Origin::try_from(&parts.uri)
                .map_err(|e| invalid(format!("unusable request URI: {e}")))?;
            if &target != origin {
                return Err(invalid(format!(
                    "request URI {} belongs to {target}",
                    parts.uri
                )));
            }
        }
    } else if parts.uri.scheme().is_some() {
        return Err(invalid("request URI has a scheme but no host".to_owned()));
    }

    match protocol {
        Protocol::Http2 => {
            // h2 sends :scheme and :authority from an absolute URI. One already on this
            // origin in its canonical form is used as it is.
            if !canonical {
                let path = path_of(&parts.uri);
                let authority = authority_of(origin)
                    .map_err(|_| invalid("origin is not a valid authority".to_owned()))?;
                parts.uri = Uri::builder()
                    .scheme(match origin.scheme() {
                        Scheme::Https => UriScheme::HTTPS,
                        Scheme::Http => UriScheme::HTTP,
                    })
                    .authority(authority)
                    .path_and_query(path)
                    .build()
                    .map_err(|e| invalid(format!("cannot build request URI: {e}")))?;
            }
            parts.version = Version::HTTP_2;
            strip_connection_headers(&mut parts.headers);
        }
        Protocol::Http1 => {
            // An origin server wants origin-form plus Host (RFC 9112 §3.2).
            if !parts.headers.contains_key(HOST) {
                let host = if origin.port() == origin.scheme().default_port() {
                    HeaderValue::from_str(origin.host())
                } else {
                    HeaderValue::from_str(&origin.authority())
                }
                .map_err(|_| invalid("origin is not a valid Host header".to_owned()))?;
                parts.headers.insert(HOST, host);
            }
            parts.uri = Uri::from(path_of(&parts.uri));
            parts.version = Version::HTTP_11;
        }
    }
    // RFC 9218 §4: tell the server, unless the caller already did (or it is the default).
    if let Some(value) = parts
        .extensions
        .get::<Priority>()
        .and_then(Priority::header_value)
        && !parts.headers.contains_key(PRIORITY)
    {
        parts.headers.insert(PRIORITY, value);
    }
    if let Some(len) = body.exact_len()
        && (len != 0 || method_has_payload_semantics(&parts.method))
        && !parts.headers.contains_key(CONTENT_LENGTH)
    {
        parts.headers.insert(CONTENT_LENGTH, HeaderValue::from(len));
    }
    Ok(Outgoing { head: parts, body })
}

fn path_of(uri: &Uri) -> PathAndQuery {
    uri.path_and_query()
        .cloned()
        .unwrap_or_else(|| PathAndQuery::from_static("/"))
}

fn authority_of(origin: &Origin) -> Result<Authority, http::uri::InvalidUri> {
    origin.authority().parse()
}

/// True when `uri` is absolute, on `origin`, with the scheme and authority exactly as the
/// origin writes them (so no rebuild is needed).
fn is_canonical_absolute(origin: &Origin, uri: &Uri) -> bool {
    let scheme_ok = match origin.scheme() {
        Scheme::Https => uri.scheme() == Some(&UriScheme::HTTPS),
        Scheme::Http => uri.scheme() == Some(&UriScheme::HTTP),
    };
    scheme_ok
        && uri.authority().is_some_and(|a| {
            a.host() == origin.host()
                && a.port_u16().unwrap_or(origin.scheme().default_port()) == origin.port()
        })
}

/// Removes header fields HTTP/2 forbids in a request, as hyper's client did.
fn strip_connection_headers(headers: &mut HeaderMap) {
    for name in &CONNECTION_SPECIFIC {
        headers.remove(name);
    }
    if headers.get(TE).is_some_and(|te| te != "trailers") {
        headers.remove(TE);
    }
    if let Some(connection) = headers.remove(CONNECTION)
        && let Ok(listed) = connection.to_str()
    {
        // `Connection` names further fields meant for this hop only.
        for name in listed.split(',') {
            headers.remove(name.trim());
        }
    }
}

/// Methods whose requests carry content by definition, so an empty body still gets
/// `content-length: 0` (hyper's rule).
fn method_has_payload_semantics(method: &Method) -> bool {
    !matches!(
        *method,
        Method::GET | Method::HEAD | Method::DELETE | Method::CONNECT
    )
}

/// A copy of the head to send again: h2 consumes the one it sends.
pub(crate) fn copy_head(head: &http::request::Parts) -> http::request::Parts {
    let mut copy = Request::new(());
    *copy.method_mut() = head.method.clone();
    *copy.uri_mut() = head.uri.clone();
    *copy.version_mut() = head.version;
    *copy.headers_mut() = head.headers.clone();
    *copy.extensions_mut() = head.extensions.clone();
    copy.into_parts().0
}

// ===== the h2 body pipe =====

/// Writes an [`OutBody`] into an h2 stream: one frame at a time, each once h2 has granted
/// flow-control capacity for it, trailers last. Watches for the peer resetting the stream.
pub(crate) struct Pipe {
    body: OutBody,
    tx: h2::SendStream<Bytes>,
    /// A chunk taken from the body, waiting for capacity.
    pending: Option<(Bytes, bool)>,
}

/// Why a pipe stopped early.
#[derive(Debug)]
pub(crate) enum PipeError {
    /// The request body itself failed; the stream was reset with CANCEL.
    Body(BoxError),
    /// h2 refused the data or the peer reset the stream.
    Stream(h2::Error),
}

impl Pipe {
    pub(crate) fn new(body: OutBody, tx: h2::SendStream<Bytes>) -> Pipe {
        Pipe {
            body,
            tx,
            pending: None,
        }
    }
}

impl Future for Pipe {
    type Output = Result<(), PipeError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        loop {
            // Registered while waiting for the body or for capacity, so a peer reset wakes us.
            if let Poll::Ready(reset) = this.tx.poll_reset(cx) {
                return Poll::Ready(Err(PipeError::Stream(match reset {
                    Ok(reason) => h2::Error::from(reason),
                    Err(e) => e,
                })));
            }
            if let Some((chunk, end)) = this.pending.take() {
                // Capacity is claimed one byte at a time and raised by `send_data` to the
                // chunk's length, so a stalled body never pins connection window (hyper #4003).
                if this.tx.capacity() == 0 {
                    match this.tx.poll_capacity(cx) {
                        Poll::Pending => {
                            this.pending = Some((chunk, end));
                            return Poll::Pending;
                        }
                        Poll::Ready(Some(Ok(_))) => {
                            this.pending = Some((chunk, end));
                            continue;
                        }
                        Poll::Ready(Some(Err(e))) => return Poll::Ready(Err(PipeError::Stream(e))),
                        Poll::Ready(None) => {
                            return Poll::Ready(Err(PipeError::Stream(h2::Error::from(
                                h2::Reason::STREAM_CLOSED,
                            ))));
                        }
                    }
                }
                this.tx.send_data(chunk, end).map_err(PipeError::Stream)?;
                if end {
                    return Poll::Ready(Ok(()));
                }
                continue;
            }
            match Pin::new(&mut this.body).poll_frame(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(None) => {
                    return Poll::Ready(
                        this.tx
                            .send_data(Bytes::new(), true)
                            .map_err(PipeError::Stream),
                    );
                }
                Poll::Ready(Some(Err(e))) => {
                    this.tx.send_reset(h2::Reason::CANCEL);
                    return Poll::Ready(Err(PipeError::Body(e)));
                }
                Poll::Ready(Some(Ok(frame))) => match frame.into_data() {
                    Ok(mut chunk) => {
                        let end = this.body.is_end_stream();
                        if chunk.remaining() == 0 {
                            if end {
                                return Poll::Ready(
                                    this.tx.send_data(chunk, true).map_err(PipeError::Stream),
                                );
                            }
                            continue;
                        }
                        let chunk = chunk.copy_to_bytes(chunk.remaining());
                        this.tx.reserve_capacity(1);
                        this.pending = Some((chunk, end));
                    }
                    Err(frame) => {
                        if let Ok(trailers) = frame.into_trailers() {
                            this.tx.reserve_capacity(0);
                            return Poll::Ready(
                                this.tx.send_trailers(trailers).map_err(PipeError::Stream),
                            );
                        }
                    }
                },
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::{Empty, Full};

    fn origin() -> Origin {
        "https://api.example:8443".parse().expect("origin")
    }

    fn req<B>(uri: &str, body: B) -> Request<B> {
        Request::get(uri).body(body).expect("request")
    }

    /// HTTP/2 requests get an absolute URI on the handle's origin.
    #[test]
    fn h2_requests_are_absolute() {
        let r = prepare(
            &origin(),
            Protocol::Http2,
            req("/a?b=1", Empty::<Bytes>::new()),
        )
        .expect("ok");
        assert_eq!(r.head.uri, "https://api.example:8443/a?b=1");
        assert_eq!(r.head.version, Version::HTTP_2);
        let r = prepare(
            &origin(),
            Protocol::Http2,
            req("https://API.example:8443/x", Empty::<Bytes>::new()),
        )
        .expect("ok");
        assert_eq!(r.head.uri.path(), "/x");
    }

    /// HTTP/1.1 requests are origin-form with a Host header.
    #[test]
    fn h1_requests_are_origin_form_with_host() {
        let r = prepare(
            &origin(),
            Protocol::Http1,
            req("https://api.example:8443/x", Empty::<Bytes>::new()),
        )
        .expect("ok");
        assert_eq!(r.head.uri, "/x");
        assert_eq!(r.head.headers[HOST], "api.example:8443");
        assert_eq!(r.head.version, Version::HTTP_11);
    }

    /// A request for another origin is refused before anything is sent.
    #[test]
    fn other_origin_is_an_invalid_request() {
        let err = prepare(
            &origin(),
            Protocol::Http2,
            req("https://other.example/x", Empty::<Bytes>::new()),
        )
        .expect_err("mismatch");
        assert!(matches!(err, Error::InvalidRequest { .. }), "{err:?}");
        assert!(err.to_string().contains("https://api.example:8443"));
    }

    /// Connection-specific fields go, `te: trailers` stays, content-length is filled in.
    #[test]
    fn h2_heads_lose_connection_specific_fields() {
        let mut request = Request::post("/x")
            .header("connection", "x-hop, keep-alive")
            .header("x-hop", "1")
            .header("keep-alive", "5")
            .header("transfer-encoding", "chunked")
            .header("te", "trailers")
            .header("x-kept", "1")
            .body(Full::new(Bytes::from_static(b"hello")))
            .expect("request");
        request
            .headers_mut()
            .insert("upgrade", HeaderValue::from_static("h2c"));
        let r = prepare(&origin(), Protocol::Http2, request).expect("ok");
        let h = &r.head.headers;
        for gone in [
            "connection",
            "x-hop",
            "keep-alive",
            "transfer-encoding",
            "upgrade",
        ] {
            assert!(!h.contains_key(gone), "{gone} removed");
        }
        assert_eq!(h["te"], "trailers");
        assert_eq!(h["x-kept"], "1");
        assert_eq!(h[CONTENT_LENGTH], "5");
        let r = prepare(
            &origin(),
            Protocol::Http2,
            Request::get("/")
                .header("te", "gzip")
                .body(Empty::<Bytes>::new())
                .expect("r"),
        )
        .expect("ok");
        assert!(!r.head.headers.contains_key("te"));
        assert!(
            !r.head.headers.contains_key(CONTENT_LENGTH),
            "GET without body"
        );
    }

    /// Bodies ready at once are held (and can be replayed); empty ones are `Empty`.
    #[test]
    fn ready_bodies_are_held_in_full() {
        assert!(matches!(
            OutBody::classify(Empty::<Bytes>::new()),
            OutBody::Empty
        ));
        assert!(matches!(OutBody::classify(String::new()), OutBody::Empty));
        let full = OutBody::classify(String::from("abc"));
        assert!(matches!(&full, OutBody::Full(b) if b.len == 3));
        assert!(full.replay_copy().is_some());
    }

    /// A body larger than the replay limit streams and cannot be replayed.
    #[test]
    fn large_bodies_stream() {
        let big = Full::new(Bytes::from(vec![0u8; REPLAY_LIMIT + 1]));
        let body = OutBody::classify(big);
        assert!(matches!(body, OutBody::Streaming { .. }));
        assert!(body.replay_copy().is_none());
        assert_eq!(body.exact_len(), Some(REPLAY_LIMIT as u64 + 1));
    }

    /// A non-default priority becomes the `priority` header; a default one or a header the
    /// caller set already is left alone.
    #[test]
    fn priority_goes_out_as_the_rfc_9218_header() {
        let with = |p: Option<Priority>, header: Option<&str>| {
            let mut r = req("/x", Empty::<Bytes>::new());
            if let Some(p) = p {
                r.extensions_mut().insert(p);
            }
            if let Some(h) = header {
                r.headers_mut()
                    .insert(PRIORITY, HeaderValue::from_str(h).expect("value"));
            }
            let shaped = prepare(&origin(), Protocol::Http2, r).expect("ok");
            shaped
                .head
                .headers
                .get(PRIORITY)
                .map(|v| v.to_str().expect("ascii").to_owned())
        };
        assert_eq!(with(None, None), None);
        assert_eq!(with(Some(Priority::default()), None), None);
        let urgent = Priority::new(1).expect("valid");
        assert_eq!(with(Some(urgent), None).as_deref(), Some("u=1"));
        assert_eq!(with(Some(urgent), Some("u=6")).as_deref(), Some("u=6"));
    }

    /// CONNECT is refused: a tunnel is not a pooled request.
    #[test]
    fn connect_is_an_invalid_request() {
        let request = Request::connect("api.example:8443")
            .body(Empty::<Bytes>::new())
            .expect("request");
        let err = prepare(&origin(), Protocol::Http2, request).expect_err("refused");
        assert!(matches!(err, Error::InvalidRequest { .. }));
    }
}
