use super::*;
use crate::error::Error;
use crate::origin::Origin;
use crate::priority::Priority;
use crate::protocol::Protocol;
use http::header::{CONTENT_LENGTH, HOST};
use http::{HeaderValue, Request, Version};

use super::shape::PRIORITY;
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

/// Credentials in the request URI are refused, whichever way the rest is spelled, and are
/// never sent on as an HTTP/2 `:authority`.
#[test]
fn credentials_in_the_uri_are_an_invalid_request() {
    for uri in [
        "https://user@api.example:8443/x",
        "https://user:pw@API.example:8443/x",
    ] {
        for protocol in [Protocol::Http2, Protocol::Http1] {
            let err = prepare(&origin(), protocol, req(uri, Empty::<Bytes>::new()))
                .expect_err("credentials refused");
            assert!(
                matches!(err, Error::InvalidRequest { .. }),
                "{uri}: {err:?}"
            );
        }
    }
    // The canonical spelling, and the default port written out, are used as they are.
    let r = prepare(
        &"https://api.example".parse().expect("origin"),
        Protocol::Http2,
        req("https://api.example:443/x", Empty::<Bytes>::new()),
    )
    .expect("ok");
    assert_eq!(r.head.uri, "https://api.example:443/x");
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
