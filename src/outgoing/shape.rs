//! Shaping a request head for one connection: absolute form for HTTP/2, origin form with
//! `host` for HTTP/1.1; connection-specific fields removed; `content-length` from an exact
//! body size; the RFC 9218 `priority` field for a non-default [`Priority`].

use bytes::Bytes;
use http::header::{CONNECTION, CONTENT_LENGTH, HOST, TE, TRANSFER_ENCODING, UPGRADE};
use http::uri::{Authority, PathAndQuery, Scheme as UriScheme};
use http::{HeaderMap, HeaderName, HeaderValue, Method, Request, Uri, Version};
use http_body::Body;

use crate::error::{BoxError, Error};
use crate::origin::{Origin, Scheme};
use crate::priority::Priority;
use crate::protocol::Protocol;

use super::{OutBody, Outgoing};

/// RFC 9218's request header field.
pub(super) const PRIORITY: HeaderName = HeaderName::from_static("priority");

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
                let host = HeaderValue::from_str(origin.host_field())
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
/// origin writes them (so no rebuild is needed). Credentials in the authority never are:
/// HTTP/2's `:authority` must not carry them (RFC 9113 §8.3.1).
fn is_canonical_absolute(origin: &Origin, uri: &Uri) -> bool {
    let scheme_ok = match origin.scheme() {
        Scheme::Https => uri.scheme() == Some(&UriScheme::HTTPS),
        Scheme::Http => uri.scheme() == Some(&UriScheme::HTTP),
    };
    scheme_ok
        && uri.authority().is_some_and(|a| {
            // The usual case, the authority as `Host` writes it, is one compare; parsing
            // host and port out of it was ~500 instructions of every request (callgrind).
            a.as_str() == origin.host_field()
                || (!a.as_str().contains('@')
                    && a.host() == origin.host()
                    && a.port_u16().unwrap_or(origin.scheme().default_port()) == origin.port())
        })
}

/// Removes header fields HTTP/2 forbids in a request, as hyper's client did.
fn strip_connection_headers(headers: &mut HeaderMap) {
    // Usually there are none: one pass over the request's few fields instead of a hashed
    // lookup per forbidden name (~100 instructions of every request, callgrind).
    let forbidden =
        |name: &HeaderName| CONNECTION_SPECIFIC.contains(name) || name == TE || name == CONNECTION;
    if !headers.keys().any(forbidden) {
        return;
    }
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
