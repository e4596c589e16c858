//! The pool's `tracing` events name what they are about: connect, handshake, reuse and
//! eviction each carry the origin, the connection id and the protocol (from the event or an
//! enclosing span).

mod support;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use https_pool_testkit::{TestServer, TestServerConfig};
use support::{body_len, builder_for, get};
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id};
use tracing::{Event, Subscriber};
use tracing_subscriber::layer::{Context, SubscriberExt};
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::{Layer, Registry};

/// One recorded event: its message and every field of it and its enclosing spans.
type Recorded = HashMap<String, String>;

#[derive(Default)]
struct Fields(HashMap<String, String>);

impl Visit for Fields {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        self.0.insert(
            field.name().to_owned(),
            format!("{value:?}").trim_matches('"').to_owned(),
        );
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        self.0.insert(field.name().to_owned(), value.to_owned());
    }
}

/// Records events from the `https_pool` crate with their spans' fields.
#[derive(Clone, Default)]
struct Recorder(Arc<Mutex<Vec<Recorded>>>);

impl<S: Subscriber + for<'a> LookupSpan<'a>> Layer<S> for Recorder {
    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, ctx: Context<'_, S>) {
        let mut fields = Fields::default();
        attrs.record(&mut fields);
        if let Some(span) = ctx.span(id) {
            span.extensions_mut().insert(fields);
        }
    }

    fn on_event(&self, event: &Event<'_>, ctx: Context<'_, S>) {
        if !event.metadata().target().starts_with("https_pool") {
            return;
        }
        let mut fields = Fields::default();
        if let Some(scope) = ctx.event_scope(event) {
            for span in scope.from_root() {
                if let Some(span_fields) = span.extensions().get::<Fields>() {
                    fields.0.extend(span_fields.0.clone());
                }
            }
        }
        event.record(&mut fields);
        self.0.lock().expect("recorder lock").push(fields.0);
    }
}

impl Recorder {
    fn find(&self, message: &str) -> Option<Recorded> {
        self.0
            .lock()
            .expect("recorder lock")
            .iter()
            .find(|e| e.get("message").is_some_and(|m| m == message))
            .cloned()
    }
}

fn assert_names_its_connection(recorder: &Recorder, message: &str, origin: &str) {
    let event = recorder
        .find(message)
        .unwrap_or_else(|| panic!("no {message:?} event"));
    assert_eq!(
        event.get("origin").map(String::as_str),
        Some(origin),
        "{message}: {event:?}"
    );
    assert!(event.contains_key("conn_id"), "{message}: {event:?}");
    assert_eq!(
        event.get("protocol").map(String::as_str),
        Some("h2"),
        "{message}: {event:?}"
    );
}

/// Events run on this test's single thread (current-thread runtime), so a thread-local
/// subscriber sees the pool's tasks.
#[tokio::test]
async fn connect_handshake_reuse_and_eviction_events_name_origin_connection_and_protocol() {
    let recorder = Recorder::default();
    let subscriber = Registry::default().with(
        recorder
            .clone()
            .with_filter(tracing_subscriber::filter::LevelFilter::DEBUG),
    );
    let _guard = tracing::subscriber::set_default(subscriber);

    let server = TestServer::start(TestServerConfig::default()).expect("server starts");
    let origin = server
        .url()
        .parse::<https_pool::Origin>()
        .expect("origin")
        .to_string();
    let pool = builder_for(&server).build().expect("pool builds");
    for _ in 0..2 {
        let response = pool
            .request(get(&server.url_for("/traced")))
            .await
            .expect("request succeeds");
        body_len(response).await;
    }

    let dialed = recorder.find("dialed").expect("a dial event");
    assert_eq!(dialed.get("origin"), Some(&origin), "{dialed:?}");
    assert_eq!(
        dialed.get("protocol").map(String::as_str),
        Some("h2"),
        "{dialed:?}"
    );
    assert_names_its_connection(&recorder, "connection established", &origin);
    assert_names_its_connection(&recorder, "first stream on new connection", &origin);
    assert_names_its_connection(&recorder, "reusing pooled connection", &origin);

    // The server cuts the connection: the driver reports the eviction, and the next acquire
    // removes it from selection.
    assert_eq!(server.kill_connections(1), 1);
    for _ in 0..500 {
        if pool.stats().connections_closed == 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let response = pool
        .request(get(&server.url_for("/after-kill")))
        .await
        .expect("the next request gets a new connection");
    body_len(response).await;
    let ended = recorder
        .find("connection evicted after an error")
        .or_else(|| recorder.find("connection closed"))
        .expect("the driver reports the connection's end");
    assert_eq!(ended.get("origin"), Some(&origin), "{ended:?}");
    assert_eq!(
        ended.get("conn_id").map(String::as_str),
        Some("1"),
        "{ended:?}"
    );
    assert_eq!(
        ended.get("protocol").map(String::as_str),
        Some("h2"),
        "{ended:?}"
    );
    assert_names_its_connection(&recorder, "connection removed from selection", &origin);
}

/// Records the fields of every closed `http_request` span, as created and as recorded later.
#[derive(Clone, Default)]
struct RequestSpans(Arc<Mutex<Vec<Recorded>>>);

/// A request span's fields (a type of its own: `Recorder` keeps `Fields` in the same span).
#[derive(Default)]
struct SpanFields(Fields);

impl<S: Subscriber + for<'a> LookupSpan<'a>> Layer<S> for RequestSpans {
    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, ctx: Context<'_, S>) {
        if attrs.metadata().name() != "http_request" {
            return;
        }
        let mut fields = SpanFields::default();
        attrs.record(&mut fields.0);
        if let Some(span) = ctx.span(id) {
            span.extensions_mut().insert(fields);
        }
    }

    fn on_record(&self, id: &Id, values: &tracing::span::Record<'_>, ctx: Context<'_, S>) {
        if let Some(span) = ctx.span(id)
            && let Some(fields) = span.extensions_mut().get_mut::<SpanFields>()
        {
            values.record(&mut fields.0);
        }
    }

    fn on_close(&self, id: Id, ctx: Context<'_, S>) {
        if let Some(span) = ctx.span(&id)
            && let Some(fields) = span.extensions().get::<SpanFields>()
        {
            self.0.lock().expect("span lock").push(fields.0.0.clone());
        }
    }
}

/// Each request runs in an `http_request` span at debug level carrying OpenTelemetry's
/// attributes: method, server address and port, `url.full` without the query, the status
/// code, `error.type` for an error status, and the connection it went out on; the pool's
/// events during the request are inside it.
#[tokio::test]
async fn each_request_has_a_span_with_otel_attributes() {
    let spans = RequestSpans::default();
    let events = Recorder::default();
    let subscriber = Registry::default()
        .with(
            spans
                .clone()
                .with_filter(tracing_subscriber::filter::LevelFilter::DEBUG),
        )
        .with(
            events
                .clone()
                .with_filter(tracing_subscriber::filter::LevelFilter::DEBUG),
        );
    let _guard = tracing::subscriber::set_default(subscriber);

    let server = TestServer::start(TestServerConfig::default()).expect("server starts");
    let port = server.port().to_string();
    let pool = builder_for(&server).build().expect("pool builds");
    let response = pool
        .request(get(&server.url_for("/spanned/path?token=secret")))
        .await
        .expect("request succeeds");
    body_len(response).await;
    let busy = http::Request::get(server.url_for("/busy"))
        .header("x-status", "503")
        .body(http_body_util::Empty::<bytes::Bytes>::new())
        .expect("a valid request");
    body_len(pool.request(busy).await.expect("a 503 is a response")).await;

    let recorded = spans.0.lock().expect("span lock").clone();
    assert_eq!(recorded.len(), 2, "{recorded:?}");
    let first = &recorded[0];
    let field = |span: &Recorded, name: &str| span.get(name).cloned().unwrap_or_default();
    assert_eq!(field(first, "http.request.method"), "GET", "{first:?}");
    assert_eq!(field(first, "server.address"), "127.0.0.1", "{first:?}");
    assert_eq!(field(first, "server.port"), port, "{first:?}");
    assert_eq!(
        field(first, "url.full"),
        format!("https://127.0.0.1:{port}/spanned/path"),
        "{first:?}"
    );
    assert_eq!(
        field(first, "http.response.status_code"),
        "200",
        "{first:?}"
    );
    assert_eq!(field(first, "conn_id"), "1", "{first:?}");
    assert_eq!(field(first, "otel.kind"), "client", "{first:?}");
    assert!(!first.contains_key("error.type"), "{first:?}");
    assert!(
        !first.contains_key("http.request.resend_count"),
        "{first:?}"
    );
    let second = &recorded[1];
    assert_eq!(
        field(second, "http.response.status_code"),
        "503",
        "{second:?}"
    );
    assert_eq!(field(second, "error.type"), "503", "{second:?}");

    // The pool's events while acquiring happen inside the request's span.
    let leased = events
        .find("first stream on new connection")
        .expect("a lease event");
    assert_eq!(
        leased.get("url.full").map(String::as_str),
        Some(format!("https://127.0.0.1:{port}/spanned/path").as_str()),
        "{leased:?}"
    );
}

/// A request sent again on another connection (here: answered 421 on a.test's connection,
/// which b.test's request rode by coalescing) counts the re-send in its span, which names
/// the connection that finally served it.
#[tokio::test]
async fn a_resent_request_counts_its_resends_in_its_span() {
    let spans = RequestSpans::default();
    let subscriber = Registry::default().with(
        spans
            .clone()
            .with_filter(tracing_subscriber::filter::LevelFilter::DEBUG),
    );
    let _guard = tracing::subscriber::set_default(subscriber);

    let v4 = std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST);
    let server = support::server_named(
        &["a.test", "b.test"],
        std::net::SocketAddr::new(v4, 0),
        TestServerConfig::default().misdirect_other_hosts(true),
    );
    let pool = builder_for(&server)
        .resolve("a.test", [v4])
        .resolve("b.test", [v4])
        .http2_coalescing(true)
        .build()
        .expect("pool builds");
    let port = server.port();
    for host in ["a.test", "b.test"] {
        let response = pool
            .request(get(&format!("https://{host}:{port}/resent")))
            .await
            .expect("request succeeds");
        assert_eq!(response.status(), 200);
        body_len(response).await;
    }
    assert_eq!(pool.stats().requests_retried, 1);

    let recorded = spans.0.lock().expect("span lock").clone();
    assert_eq!(recorded.len(), 2, "{recorded:?}");
    let resent = &recorded[1];
    let field = |name: &str| resent.get(name).cloned().unwrap_or_default();
    assert_eq!(field("server.address"), "b.test", "{resent:?}");
    assert_eq!(field("http.request.resend_count"), "1", "{resent:?}");
    assert_eq!(field("http.response.status_code"), "200", "{resent:?}");
    // Connection 1 is a.test's (it answered 421); b.test's own is 2.
    assert_eq!(field("conn_id"), "2", "{resent:?}");
    assert!(!recorded[0].contains_key("http.request.resend_count"));
}
