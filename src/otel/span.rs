//! The span each request runs in: `http_request` at debug level, with OpenTelemetry's
//! attribute names (<https://opentelemetry.io/docs/specs/semconv/http/http-spans/>), so
//! `tracing-opentelemetry` exports it as an HTTP client span (`otel.kind`, `otel.name`).
//!
//! | field | value |
//! |---|---|
//! | `http.request.method` | the method |
//! | `server.address`, `server.port` | the origin's host (IPv6 without brackets) and port |
//! | `url.full` | `scheme://host:port/path`: never the credentials nor the query |
//! | `http.response.status_code` | once the response head came |
//! | `error.type` | the error's kind ([`error_type`]), or the status code when ≥ 400 |
//! | `http.request.resend_count` | when the request was sent again (see `crate::retry`) |
//! | `conn_id` | the connection it was (last) sent on, as in the pool's other events |
//!
//! **Free when nobody listens.** `debug_span!` first checks the level against the
//! subscriber's static maximum and the callsite's cached interest; when either says no, the
//! span is disabled, the field expressions are never evaluated (so `url.full` is never
//! formatted), and entering it or recording into it checks one `Option`. Measured with
//! `scripts/callgrind-pool-bench.sh` (pool_bench against nginx, no subscriber): the disabled
//! span adds about 220 instructions to a request's ~35,900 (≈ 0.6 %), most of it the larger
//! request future being moved; `ConnectionPoolManager::request` therefore enters it only
//! around the acquire and the re-sends, never wrapping the whole future.

use std::fmt;

use http::{Response, Uri};
use tracing::Span;

use super::error_type;
use crate::error::Error;

/// The span of one request. Arguments are expressions, evaluated only when the span is
/// enabled: `$method: &Method`, `$scheme: &str`, `$host: &str` (without IPv6 brackets),
/// `$port: u16`, `$path: &str`.
macro_rules! request_span {
    ($method:expr, $scheme:expr, $host:expr, $port:expr, $path:expr) => {
        tracing::debug_span!(
            "http_request",
            otel.name = %$method,
            otel.kind = "client",
            http.request.method = %$method,
            server.address = $host,
            server.port = $port,
            url.full = %$crate::otel::span::UrlFull {
                scheme: $scheme,
                host: $host,
                port: $port,
                path: $path,
            },
            http.response.status_code = tracing::field::Empty,
            error.type = tracing::field::Empty,
            http.request.resend_count = tracing::field::Empty,
            conn_id = tracing::field::Empty,
        )
    };
}

/// The span of a request to an absolute `uri` (`ConnectionPoolManager::request`).
pub(crate) fn for_uri(method: &http::Method, uri: &Uri) -> Span {
    request_span!(
        method,
        uri.scheme_str().unwrap_or_default(),
        uri_host(uri),
        uri_port(uri),
        uri.path()
    )
}

/// The span of a request to `origin` (a handle's or a service's: the URI may be a path).
pub(crate) fn for_origin(method: &http::Method, origin: &crate::origin::Origin, uri: &Uri) -> Span {
    request_span!(
        method,
        origin.scheme().as_str(),
        origin.host_unbracketed(),
        origin.port(),
        uri.path()
    )
}

fn uri_host(uri: &Uri) -> &str {
    let host = uri.host().unwrap_or_default();
    host.strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host)
}

fn uri_port(uri: &Uri) -> u16 {
    uri.port_u16().unwrap_or_else(|| {
        if uri.scheme_str() == Some("http") {
            80
        } else {
            443
        }
    })
}

/// `url.full` without credentials or query: `scheme://host:port/path`.
pub(crate) struct UrlFull<'a> {
    pub(crate) scheme: &'a str,
    pub(crate) host: &'a str,
    pub(crate) port: u16,
    pub(crate) path: &'a str,
}

impl fmt::Display for UrlFull<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let UrlFull {
            scheme,
            host,
            port,
            path,
        } = self;
        if host.contains(':') {
            write!(f, "{scheme}://[{host}]:{port}{path}")
        } else {
            write!(f, "{scheme}://{host}:{port}{path}")
        }
    }
}

/// The current span if it is a request's (the retry loop runs inside it, and needs no copy
/// of it). Without a subscriber listening at debug, one relaxed load says so and nothing
/// else runs.
fn current_request_span() -> Option<Span> {
    use tracing::level_filters::{LevelFilter, STATIC_MAX_LEVEL};
    if tracing::Level::DEBUG > STATIC_MAX_LEVEL || tracing::Level::DEBUG > LevelFilter::current() {
        return None;
    }
    let span = Span::current();
    let ours = span
        .metadata()
        .is_some_and(|m| m.name() == "http_request" && m.target().starts_with("https_pool"));
    ours.then_some(span)
}

/// Records the connection the request was sent on.
pub(crate) fn record_connection(span: &Span, conn_id: u64) {
    if !span.is_disabled() {
        span.record("conn_id", conn_id);
    }
}

/// Records a re-send of the request, the `resends`th, on connection `conn_id`, in the
/// current span (the request's).
pub(crate) fn record_resend(resends: u64, conn_id: u64) {
    if let Some(span) = current_request_span() {
        span.record("http.request.resend_count", resends);
        span.record("conn_id", conn_id);
    }
}

/// Records how the request ended: the status code, or the error's kind.
pub(crate) fn record_outcome<B>(span: &Span, result: &Result<Response<B>, Error>) {
    match result {
        Ok(response) => record_response(span, response),
        Err(error) => record_error(span, error),
    }
}

/// Records the response head's status code (and, for 4xx and 5xx, `error.type`).
pub(crate) fn record_response<B>(span: &Span, response: &Response<B>) {
    if !span.is_disabled() {
        let code = response.status().as_u16();
        span.record("http.response.status_code", code);
        if code >= 400 {
            span.record("error.type", code);
        }
    }
}

/// Records the error's kind as `error.type`.
pub(crate) fn record_error(span: &Span, error: &Error) {
    if !span.is_disabled() {
        span.record("error.type", error_type(error));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `url.full` keeps scheme, host, port and path, and drops credentials and the query.
    #[test]
    fn url_full_has_no_credentials_or_query() {
        let uri: Uri = "https://user:secret@API.example/v1/items?token=x"
            .parse()
            .expect("uri");
        let url = UrlFull {
            scheme: uri.scheme_str().unwrap_or_default(),
            host: uri_host(&uri),
            port: uri_port(&uri),
            path: uri.path(),
        };
        assert_eq!(url.to_string(), "https://API.example:443/v1/items");
        let v6: Uri = "http://[::1]:8080/x".parse().expect("uri");
        let url = UrlFull {
            scheme: "http",
            host: uri_host(&v6),
            port: uri_port(&v6),
            path: v6.path(),
        };
        assert_eq!(uri_host(&v6), "::1");
        assert_eq!(url.to_string(), "http://[::1]:8080/x");
    }
}
