//! OpenTelemetry's HTTP client instruments in `PoolStats::to_prometheus`: every request,
//! whichever way it was sent, lands in the `http_client_request_duration_seconds` series of
//! its method, protocol and outcome, with the recommended buckets; connections' lifetimes in
//! `http_client_connection_duration_seconds`.

mod support;

use std::time::Duration;

use bytes::Bytes;
use http::Request;
use http_body_util::{Empty, Full};
use https_pool_testkit::{TestServer, TestServerConfig};
use support::{body_len, builder_for, get};
use tower::ServiceExt;

fn with_status(url: &str, status: u16) -> Request<Empty<Bytes>> {
    Request::get(url)
        .header("x-status", status.to_string())
        .body(Empty::new())
        .expect("a valid request")
}

/// The value of the sample line `name{labels}` in `text`.
fn sample(text: &str, name_and_labels: &str) -> Option<String> {
    text.lines()
        .find_map(|line| line.strip_prefix(name_and_labels)?.strip_prefix(' '))
        .map(str::to_owned)
}

/// Requests through `request`, a handle and the tower service are counted per method,
/// status and protocol; error statuses and failures carry `error.type`; buckets are
/// cumulative up to `+Inf`; a closed connection's lifetime is recorded.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_and_connections_render_as_otel_histograms() {
    support::trace_init();
    let server = TestServer::start(TestServerConfig::default()).expect("server starts");
    let pool = builder_for(&server).build().expect("pool builds");
    let port = server.port();

    for i in 0..3 {
        let response = pool
            .request(get(&server.url_for(&format!("/ok/{i}"))))
            .await
            .expect("request succeeds");
        body_len(response).await;
    }
    for i in 0..2 {
        let response = pool
            .request(with_status(&server.url_for(&format!("/busy/{i}")), 503))
            .await
            .expect("a 503 is a response");
        assert_eq!(response.status(), 503);
        body_len(response).await;
    }
    let post = Request::post(server.url_for("/post"))
        .body(Full::new(Bytes::from_static(b"hello")))
        .expect("a valid request");
    body_len(pool.request(post).await.expect("post succeeds")).await;

    let mut handle = pool.acquire(server.url()).await.expect("acquire");
    body_len(handle.send(get("/by-handle")).await.expect("handle send")).await;
    drop(handle);
    let service = pool.service(server.url()).expect("service");
    let response = service
        .oneshot(get(&server.url_for("/by-service")))
        .await
        .expect("service call");
    body_len(response).await;

    // A port nobody listens on: the dial is refused, before any connection was leased.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let closed_port = closed.local_addr().expect("addr").port();
    drop(closed);
    let error = pool
        .request(get(&format!("https://127.0.0.1:{closed_port}/nobody")))
        .await
        .expect_err("nothing listens");
    assert!(error.is_connect(), "{error}");

    let text = pool.stats().to_prometheus();
    assert!(
        text.contains("# TYPE http_client_request_duration_seconds histogram\n"),
        "{text}"
    );
    let origin =
        format!("server_address=\"127.0.0.1\",server_port=\"{port}\",url_scheme=\"https\"");
    let get_ok = format!(
        "{origin},http_request_method=\"GET\",network_protocol_version=\"2\",\
         http_response_status_code=\"200\""
    );
    let count = |labels: &str| {
        sample(
            &text,
            &format!("http_client_request_duration_seconds_count{{{labels}}}"),
        )
    };
    // Three by `request`, one by the handle, one by the service.
    assert_eq!(count(&get_ok).as_deref(), Some("5"), "{text}");
    assert_eq!(
        sample(
            &text,
            &format!("http_client_request_duration_seconds_bucket{{{get_ok},le=\"+Inf\"}}")
        )
        .as_deref(),
        Some("5"),
        "{text}"
    );
    // Buckets are cumulative: none holds more than the next.
    let buckets: Vec<u64> = text
        .lines()
        .filter(|l| {
            l.starts_with(&format!(
                "http_client_request_duration_seconds_bucket{{{get_ok},le="
            ))
        })
        .map(|l| {
            l.rsplit(' ')
                .next()
                .and_then(|v| v.parse().ok())
                .expect("a count")
        })
        .collect();
    assert_eq!(buckets.len(), 15, "14 bounds and +Inf: {text}");
    assert!(buckets.windows(2).all(|w| w[0] <= w[1]), "{buckets:?}");
    assert!(
        text.contains(&format!(
            "http_client_request_duration_seconds_bucket{{{get_ok},le=\"0.005\"}}"
        )),
        "{text}"
    );
    let busy = format!(
        "{origin},http_request_method=\"GET\",network_protocol_version=\"2\",\
         http_response_status_code=\"503\",error_type=\"503\""
    );
    assert_eq!(count(&busy).as_deref(), Some("2"), "{text}");
    let posted = format!(
        "{origin},http_request_method=\"POST\",network_protocol_version=\"2\",\
         http_response_status_code=\"200\""
    );
    assert_eq!(count(&posted).as_deref(), Some("1"), "{text}");
    let refused = format!(
        "server_address=\"127.0.0.1\",server_port=\"{closed_port}\",url_scheme=\"https\",\
         http_request_method=\"GET\",error_type=\"connection_refused\""
    );
    assert_eq!(count(&refused).as_deref(), Some("1"), "{text}");
    assert_eq!(
        sample(&text, &format!("http_client_active_requests{{{origin}}}")).as_deref(),
        Some("0"),
        "{text}"
    );
    assert_eq!(
        sample(
            &text,
            &format!("http_client_open_connections{{http_connection_state=\"idle\",{origin}}}")
        )
        .as_deref(),
        Some("1"),
        "{text}"
    );

    pool.shutdown().await;
    // The driver records the close as it ends, just after shutdown returns.
    for _ in 0..500 {
        if pool.stats().connections_closed == 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let text = pool.stats().to_prometheus();
    assert!(
        text.contains("# TYPE http_client_connection_duration_seconds histogram\n"),
        "{text}"
    );
    assert_eq!(
        sample(
            &text,
            &format!(
                "http_client_connection_duration_seconds_count{{{origin},\
                 network_protocol_version=\"2\"}}"
            )
        )
        .as_deref(),
        Some("1"),
        "{text}"
    );
}

/// Over HTTP/1.1 the series carry `network.protocol.version` 1.1.
#[tokio::test]
async fn http1_requests_carry_protocol_version_1_1() {
    let server =
        TestServer::start(TestServerConfig::default().alpn(https_pool_testkit::Alpn::Http1))
            .expect("server starts");
    let pool = builder_for(&server).build().expect("pool builds");
    for i in 0..2 {
        let response = pool
            .request(get(&server.url_for(&format!("/h1/{i}"))))
            .await
            .expect("request succeeds");
        body_len(response).await;
    }
    let text = pool.stats().to_prometheus();
    let labels = format!(
        "server_address=\"127.0.0.1\",server_port=\"{}\",url_scheme=\"https\",\
         http_request_method=\"GET\",network_protocol_version=\"1.1\",\
         http_response_status_code=\"200\"",
        server.port()
    );
    assert_eq!(
        sample(
            &text,
            &format!("http_client_request_duration_seconds_count{{{labels}}}")
        )
        .as_deref(),
        Some("2"),
        "{text}"
    );
}
