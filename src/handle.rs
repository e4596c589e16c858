//! Stream handles: the lease of one stream slot on one pooled connection.
//!
//! A handle is an `Arc` to its connection and nothing else, so holding one costs no heap of
//! its own. Dropping it gives the slot back and wakes one waiter; it holds no reference to the
//! origin pool (the wake-up goes through the connection's `Arc<Notify>`, as tower's
//! concurrency-limit permits do).

use std::sync::Arc;

use bytes::Bytes;
use http::header::HOST;
use http::uri::{Authority, PathAndQuery, Scheme as UriScheme};
use http::{HeaderValue, Request, Response, Uri, Version};
use http_body::Body;
use http_body_util::{BodyExt, Empty};
use hyper::body::Incoming;
use tracing::trace;

use crate::connection::{Connection, Protocol, RequestBody, Sender};
use crate::dispatch_probe::{Probe, is_empty_body};
use crate::error::{BoxError, Error, shared};
use crate::origin::{Origin, Scheme};

/// A leased stream slot on a pooled connection, from
/// [`ConnectionPoolManager::acquire`](crate::ConnectionPoolManager::acquire).
///
/// Send requests with [`send`](StreamHandle::send), one at a time. Dropping the handle frees
/// the slot. On HTTP/2 the response body keeps streaming after the handle is dropped; keep the
/// handle until the body is read if the slot count should cover the body too.
#[must_use = "a handle holds a stream slot until dropped"]
pub struct StreamHandle {
    conn: Arc<Connection>,
}

impl std::fmt::Debug for StreamHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StreamHandle")
            .field("connection_id", &self.conn.id)
            .field("origin", &self.conn.origin)
            .field("protocol", &self.conn.protocol)
            .finish()
    }
}

impl StreamHandle {
    /// Wraps a connection on which a slot has already been taken with `try_lease`.
    pub(crate) fn from_lease(conn: Arc<Connection>) -> StreamHandle {
        StreamHandle { conn }
    }

    /// The pool's id of the connection this slot is on (as in stats and `tracing` events).
    pub fn connection_id(&self) -> u64 {
        self.conn.id
    }

    /// The connection's negotiated protocol.
    pub fn protocol(&self) -> Protocol {
        self.conn.protocol
    }

    /// The origin of the connection.
    pub fn origin(&self) -> &Origin {
        &self.conn.origin
    }

    /// Sends a request on this slot and waits for the response head.
    ///
    /// The URI may be absolute (it must then name this handle's origin) or just a path
    /// (`/v1/items`): the origin is filled in. The HTTP version is set to the connection's.
    /// Any body whose data is [`Bytes`] works (`String`, `Full<Bytes>`, `Empty<Bytes>`, …).
    ///
    /// A handle is bound to its connection, so `send` never retries; use
    /// [`ConnectionPoolManager::request`](crate::ConnectionPoolManager::request) for the one
    /// safe retry on another connection.
    ///
    /// # Errors
    ///
    /// - [`Error::InvalidRequest`] if the URI names another origin; nothing was sent.
    /// - [`Error::ConnectionClosed`] if the connection failed or closed.
    /// - [`Error::Request`] for stream-level failures (peer reset, request body error).
    ///
    /// # Cancel safety
    ///
    /// Dropping the future cancels the request (HTTP/2 resets the stream with `CANCEL`); the
    /// slot stays leased until the handle itself is dropped.
    pub async fn send<B>(&mut self, request: Request<B>) -> Result<Response<Incoming>, Error>
    where
        B: Body<Data = Bytes> + Send + 'static,
        B::Error: Into<BoxError>,
    {
        let request = prepare_request(&self.conn.origin, self.conn.protocol, request)?;
        self.send_prepared(request).await.map_err(|failure| {
            self.conn.counters.requests_failed.add(1);
            failure.error
        })
    }

    /// Sends a request already shaped by [`prepare_request`]. On failure, hands the request
    /// back when it provably never reached the server (DESIGN.md, pool semantics 8):
    ///
    /// - hyper returned it unsent (`TrySendError::take_message`);
    /// - the peer reset the stream with REFUSED_STREAM (RFC 9113 §8.7: not processed). hyper
    ///   consumed the request, so only one with an empty body (rebuilt from its head) can be
    ///   handed back.
    ///
    /// - the server's GOAWAY failed it *and* hyper had polled its body: the stream was above
    ///   the GOAWAY's last-stream-id (see `dispatch_probe.rs`). Empty bodies only, as above.
    ///
    /// A remote GOAWAY error alone is not proof: hyper 1.x's dispatch task re-checks
    /// `poll_ready` right after h2 accepted a stream and reports the connection's GOAWAY error
    /// to that request when it lost the race with the GOAWAY frame (hyper
    /// `proto/h2/client.rs`, `ClientTask::poll`, "Check poll_ready() again"), although its
    /// HEADERS are still written and the server may process it. Measured here: retrying every
    /// GOAWAY-failed request duplicated 1–2 of 5,000 under a GOAWAY every 50 requests.
    pub(crate) async fn send_prepared(
        &mut self,
        request: Request<RequestBody>,
    ) -> Result<Response<Incoming>, SendFailure> {
        let conn = &self.conn;
        trace!(conn_id = conn.id, origin = %conn.origin, uri = %request.uri(), "sending");
        // Only HTTP/2 can refuse a stream (REFUSED_STREAM), the one case that needs the head
        // kept for a rebuild; HTTP/1.1 requests skip the copy.
        let template = match conn.protocol {
            Protocol::Http2 => ReplayTemplate::of(&request),
            Protocol::Http1 => None,
        };
        // An empty HTTP/2 body travels as a probe, so a GOAWAY failure can be classified.
        let (request, probe) = match template {
            Some(_) => {
                let (probe, body) = Probe::new();
                let (parts, _) = request.into_parts();
                (Request::from_parts(parts, body.boxed_unsync()), Some(probe))
            }
            None => (request, None),
        };
        conn.record_request();
        let result = match &conn.sender {
            Sender::H2(sender) => {
                let mut sender = sender.clone();
                self.hand_over(request, |r| sender.try_send_request(r))?
                    .await
            }
            Sender::H1(sender) => {
                let lock = || sender.lock().unwrap_or_else(|p| p.into_inner());
                // HTTP/1.1: wait for hyper's dispatcher to want the next request.
                if let Err(e) = std::future::poll_fn(|cx| lock().poll_ready(cx)).await {
                    conn.mark_closed();
                    // Nothing was written: the connection died before taking the request.
                    return Err(SendFailure {
                        error: self.classify(e, true),
                        replay: Some(request),
                    });
                }
                self.hand_over(request, |r| {
                    conn.mark_h1_busy();
                    lock().try_send_request(r)
                })?
                .await
            }
        };
        if result.is_ok() {
            conn.record_response();
        }
        result.map_err(|mut e| {
            if let Some(unsent) = e.take_message() {
                // The connection could not take it: it is closing or closed.
                return SendFailure {
                    error: self.classify(e.into_error(), true),
                    replay: Some(unsent),
                };
            }
            let error = e.into_error();
            if rotated_under(&error) {
                conn.record_rotation_failure();
            }
            let above_last_stream = remote_go_away(&error) && probe.is_some_and(|p| p.was_polled());
            let never_processed = above_last_stream || never_processed(&error);
            let failure = SendFailure {
                error: self.classify(error, never_processed),
                replay: None,
            };
            if never_processed {
                failure.with_replay(template)
            } else {
                failure
            }
        })
    }

    /// Hands the request to hyper under the send gate (see `Connection::send_gate`), or back
    /// unsent if the connection has closed; the caller awaits the response outside the gate.
    // The error carries the unsent request back, as hyper's `try_send_request` does.
    #[allow(clippy::result_large_err)]
    fn hand_over<F>(
        &self,
        request: Request<RequestBody>,
        enqueue: impl FnOnce(Request<RequestBody>) -> F,
    ) -> Result<F, SendFailure> {
        let _gate = self
            .conn
            .send_gate
            .read()
            .unwrap_or_else(|p| p.into_inner());
        if self.conn.is_closed() {
            return Err(SendFailure {
                error: self.closed_error(),
                replay: Some(request),
            });
        }
        Ok(enqueue(request))
    }

    /// The error for a request refused because the connection had already closed.
    fn closed_error(&self) -> Error {
        Error::ConnectionClosed {
            origin: self.conn.origin.clone(),
            connection_id: self.conn.id,
            source: shared(std::io::Error::new(
                std::io::ErrorKind::NotConnected,
                "connection closed before the request was sent",
            )),
        }
    }

    fn classify(&self, error: hyper::Error, connection_unusable: bool) -> Error {
        let conn = &self.conn;
        let h2c = conn.protocol == Protocol::Http2 && conn.origin.scheme() == Scheme::Http;
        if h2c && conn.peer_limit().is_none() {
            // Over TLS, ALPN proved the server speaks HTTP/2. With prior knowledge nothing
            // did, and a connection that fails before the SETTINGS frame every HTTP/2 server
            // sends first is most likely an HTTP/1.1 server closing on the preface.
            conn.mark_closed();
            return Error::Protocol {
                origin: conn.origin.clone(),
                reason: format!(
                    "h2c connection {} failed before the peer's HTTP/2 SETTINGS arrived: \
                     the server may not speak HTTP/2 with prior knowledge",
                    conn.id
                ),
                source: Some(shared(error)),
            };
        }
        let connection_level = connection_unusable
            || connection_failed(&error)
            || error.is_closed()
            || error.is_canceled()
            || error.is_incomplete_message()
            || error.is_timeout();
        if connection_level {
            conn.mark_closed();
            Error::ConnectionClosed {
                origin: conn.origin.clone(),
                connection_id: conn.id,
                source: shared(error),
            }
        } else {
            Error::Request {
                origin: conn.origin.clone(),
                connection_id: conn.id,
                source: shared(error),
            }
        }
    }
}

/// A failed send; `replay` holds the request when it provably never reached the server.
pub(crate) struct SendFailure {
    pub(crate) error: Error,
    pub(crate) replay: Option<Request<RequestBody>>,
}

impl SendFailure {
    fn with_replay(mut self, template: Option<ReplayTemplate>) -> SendFailure {
        self.replay = template.map(ReplayTemplate::build);
        self
    }
}

/// The head of a request with an empty body, kept so the request can be rebuilt after hyper
/// consumed it. Requests with a body are not kept: their body cannot be replayed.
struct ReplayTemplate {
    method: http::Method,
    uri: Uri,
    version: Version,
    headers: http::HeaderMap,
    extensions: http::Extensions,
}

impl ReplayTemplate {
    fn of(request: &Request<RequestBody>) -> Option<ReplayTemplate> {
        is_empty_body(request.body()).then(|| ReplayTemplate {
            method: request.method().clone(),
            uri: request.uri().clone(),
            version: request.version(),
            headers: request.headers().clone(),
            extensions: request.extensions().clone(),
        })
    }

    fn build(self) -> Request<RequestBody> {
        let body = Empty::<Bytes>::new()
            .map_err(|never| match never {})
            .boxed_unsync();
        let mut request = Request::new(body);
        *request.method_mut() = self.method;
        *request.uri_mut() = self.uri;
        *request.version_mut() = self.version;
        *request.headers_mut() = self.headers;
        *request.extensions_mut() = self.extensions;
        request
    }
}

/// The causes of `error`, outermost first.
fn causes(error: &hyper::Error) -> impl Iterator<Item = &(dyn std::error::Error + 'static)> {
    std::iter::successors(Some(error as &(dyn std::error::Error + 'static)), |e| {
        e.source()
    })
}

/// The h2 error behind `error`, if HTTP/2 reported it.
fn h2_cause(error: &hyper::Error) -> Option<&h2::Error> {
    causes(error).find_map(|e| e.downcast_ref::<h2::Error>())
}

/// True when the request failed with its connection: h2 saw GOAWAY or an I/O error, or the
/// socket itself failed (reset, broken pipe) under HTTP/1.1 or HTTP/2.
fn connection_failed(error: &hyper::Error) -> bool {
    match h2_cause(error) {
        Some(h2) => h2.is_go_away() || h2.is_io(),
        None => causes(error).any(|e| e.downcast_ref::<std::io::Error>().is_some()),
    }
}

/// True when the server's graceful GOAWAY (NO_ERROR) failed the request: a rotation, as
/// opposed to an error or a shutdown for cause.
fn rotated_under(error: &hyper::Error) -> bool {
    h2_cause(error).is_some_and(|h2| {
        h2.is_go_away() && h2.is_remote() && h2.reason() == Some(h2::Reason::NO_ERROR)
    })
}

/// True when the error is the peer's GOAWAY, whatever its code.
fn remote_go_away(error: &hyper::Error) -> bool {
    h2_cause(error).is_some_and(|h2| h2.is_go_away() && h2.is_remote())
}

/// True when the peer refused the stream (REFUSED_STREAM): RFC 9113 §8.7 guarantees it was
/// not processed. See `send_prepared` for why a remote GOAWAY alone does not count.
fn never_processed(error: &hyper::Error) -> bool {
    h2_cause(error).is_some_and(|h2| {
        h2.is_reset() && h2.is_remote() && h2.reason() == Some(h2::Reason::REFUSED_STREAM)
    })
}

impl Drop for StreamHandle {
    fn drop(&mut self) {
        self.conn.release();
    }
}

/// Normalises a caller's request for one connection: checks the origin, sets the URI form
/// and `Host` the protocol expects, sets the version, and boxes the body.
pub(crate) fn prepare_request<B>(
    origin: &Origin,
    protocol: Protocol,
    request: Request<B>,
) -> Result<Request<RequestBody>, Error>
where
    B: Body<Data = Bytes> + Send + 'static,
    B::Error: Into<BoxError>,
{
    let invalid = |reason: String| Error::InvalidRequest {
        origin: origin.clone(),
        reason,
    };
    let (mut parts, body) = request.into_parts();
    if parts.uri.authority().is_some() {
        let target = Origin::try_from(&parts.uri)
            .map_err(|e| invalid(format!("unusable request URI: {e}")))?;
        if &target != origin {
            return Err(invalid(format!(
                "request URI {} belongs to {target}",
                parts.uri
            )));
        }
    } else if parts.uri.scheme().is_some() {
        return Err(invalid("request URI has a scheme but no host".to_owned()));
    }
    let path = parts
        .uri
        .path_and_query()
        .cloned()
        .unwrap_or_else(|| PathAndQuery::from_static("/"));
    let authority: Authority = origin
        .authority()
        .parse()
        .map_err(|_| invalid("origin is not a valid authority".to_owned()))?;

    match protocol {
        Protocol::Http2 => {
            // h2 sends :scheme and :authority from an absolute URI.
            parts.uri = Uri::builder()
                .scheme(match origin.scheme() {
                    Scheme::Https => UriScheme::HTTPS,
                    Scheme::Http => UriScheme::HTTP,
                })
                .authority(authority)
                .path_and_query(path)
                .build()
                .map_err(|e| invalid(format!("cannot build request URI: {e}")))?;
            parts.version = Version::HTTP_2;
        }
        Protocol::Http1 => {
            // An origin server wants origin-form plus Host (RFC 9112 §3.2).
            if !parts.headers.contains_key(HOST) {
                let host = if origin.port() == origin.scheme().default_port() {
                    HeaderValue::from_str(origin.host())
                } else {
                    HeaderValue::from_str(authority.as_str())
                }
                .map_err(|_| invalid("origin is not a valid Host header".to_owned()))?;
                parts.headers.insert(HOST, host);
            }
            parts.uri = Uri::from(path);
            parts.version = Version::HTTP_11;
        }
    }
    let body = body.map_err(Into::into).boxed_unsync();
    Ok(Request::from_parts(parts, body))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn origin() -> Origin {
        "https://api.example:8443".parse().expect("origin")
    }

    fn req(uri: &str) -> Request<Empty<Bytes>> {
        Request::get(uri).body(Empty::new()).expect("request")
    }

    /// HTTP/2 requests get an absolute URI on the handle's origin.
    #[test]
    fn h2_requests_are_absolute() {
        let r = prepare_request(&origin(), Protocol::Http2, req("/a?b=1")).expect("ok");
        assert_eq!(r.uri(), "https://api.example:8443/a?b=1");
        assert_eq!(r.version(), Version::HTTP_2);
        let r = prepare_request(
            &origin(),
            Protocol::Http2,
            req("https://API.example:8443/x"),
        )
        .expect("ok");
        assert_eq!(r.uri().path(), "/x");
    }

    /// HTTP/1.1 requests are origin-form with a Host header.
    #[test]
    fn h1_requests_are_origin_form_with_host() {
        let r = prepare_request(
            &origin(),
            Protocol::Http1,
            req("https://api.example:8443/x"),
        )
        .expect("ok");
        assert_eq!(r.uri(), "/x");
        assert_eq!(r.headers()[HOST], "api.example:8443");
        assert_eq!(r.version(), Version::HTTP_11);
    }

    /// A request for another origin is refused before anything is sent.
    #[test]
    fn other_origin_is_an_invalid_request() {
        let err = prepare_request(&origin(), Protocol::Http2, req("https://other.example/x"))
            .expect_err("mismatch");
        assert!(matches!(err, Error::InvalidRequest { .. }), "{err:?}");
        assert!(err.to_string().contains("https://api.example:8443"));
    }
}
