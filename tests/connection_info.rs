//! Every response carries a `ConnectionInfo` extension describing the connection it came on:
//! its id (the one stats and traces use), the socket's two addresses, the protocol, what TLS
//! settled (version, ALPN, resumption), and whether it was another origin's connection.

mod support;

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use http::Response;
use https_pool::{Body, Cleartext, ConnectionInfo, ConnectionPoolManager, Protocol, TlsVersion};
use https_pool_testkit::{Alpn, TestServer, TestServerConfig};
use support::{body_len, builder_for, get, server_named, trace_init};

fn info_of(response: &Response<Body>) -> ConnectionInfo {
    response
        .extensions()
        .get::<ConnectionInfo>()
        .expect("every response carries its connection's info")
        .clone()
}

/// HTTP/2 over TLS 1.3: the info names the connection stats list, the server's address, a
/// local loopback address (the same stats report), h2 by ALPN, and a full handshake.
#[tokio::test]
async fn an_h2_response_names_its_connection() {
    trace_init();
    let server = TestServer::start(TestServerConfig::default()).expect("server starts");
    let pool = builder_for(&server).build().expect("pool");
    let response = pool
        .request(get(&server.url_for("/a")))
        .await
        .expect("request");
    let info = info_of(&response);
    body_len(response).await;

    let stats = pool.stats();
    let conn = &stats.origins[0].connections[0];
    assert_eq!(info.id(), conn.id);
    assert_eq!(info.peer_addr(), server.addr());
    assert_eq!(info.local_addr(), conn.local_addr);
    assert!(info.local_addr().ip().is_loopback());
    assert_ne!(info.local_addr().port(), 0);
    assert_ne!(info.local_addr(), info.peer_addr());
    assert_eq!(info.protocol(), Protocol::Http2);
    assert_eq!(info.alpn(), Some(&b"h2"[..]));
    assert_eq!(info.tls_version(), Some(TlsVersion::Tls13));
    assert_eq!(conn.tls_version, Some(TlsVersion::Tls13));
    assert_eq!(info.tls_resumed(), Some(false));
    assert!(!info.coalesced());
    assert_eq!(info.proxy(), None);

    // A second request on the same connection says the same.
    let again = pool
        .request(get(&server.url_for("/b")))
        .await
        .expect("request");
    assert_eq!(info_of(&again), info);
    assert_eq!(server.counters().accepted(), 1);
}

/// A replacement connection resumes the TLS session: its responses say so, under a new id and
/// another local port.
#[tokio::test]
async fn a_replacement_connection_reports_its_resumed_session() {
    trace_init();
    let server = TestServer::start(TestServerConfig::default()).expect("server starts");
    let pool = builder_for(&server)
        .max_requests_per_connection(1)
        .build()
        .expect("pool");
    let first = pool
        .request(get(&server.url_for("/1")))
        .await
        .expect("request");
    let first_info = info_of(&first);
    body_len(first).await;
    let second = pool
        .request(get(&server.url_for("/2")))
        .await
        .expect("request");
    let second_info = info_of(&second);
    body_len(second).await;

    assert_eq!(server.counters().accepted(), 2);
    assert_ne!(first_info.id(), second_info.id());
    assert_ne!(first_info.local_addr(), second_info.local_addr());
    assert_eq!(first_info.tls_resumed(), Some(false));
    assert_eq!(second_info.tls_resumed(), Some(true));
}

/// HTTP/1.1 by ALPN over TLS 1.2: the info says both.
#[tokio::test]
async fn an_http1_response_over_tls12_says_so() {
    trace_init();
    let server = TestServer::start(
        TestServerConfig::default()
            .alpn(Alpn::Http1)
            .tls12_only(true),
    )
    .expect("server starts");
    let pool = builder_for(&server).build().expect("pool");
    let response = pool
        .request(get(&server.url_for("/h1")))
        .await
        .expect("request");
    let info = info_of(&response);
    body_len(response).await;
    assert_eq!(info.protocol(), Protocol::Http1);
    assert_eq!(info.alpn(), Some(&b"http/1.1"[..]));
    assert_eq!(info.tls_version(), Some(TlsVersion::Tls12));
    assert_eq!(info.peer_addr(), server.addr());
    let stats = pool.stats();
    assert_eq!(
        stats.origins[0].connections[0].tls_version,
        Some(TlsVersion::Tls12)
    );
}

/// Cleartext h2c has no TLS to report.
#[tokio::test]
async fn a_cleartext_response_has_no_tls() {
    trace_init();
    let server =
        TestServer::start(TestServerConfig::default().cleartext(true)).expect("server starts");
    let pool = ConnectionPoolManager::builder()
        .cleartext(Cleartext::Http2PriorKnowledge)
        .build()
        .expect("pool");
    let response = pool
        .request(get(&server.url_for("/c")))
        .await
        .expect("request");
    let info = info_of(&response);
    body_len(response).await;
    assert_eq!(info.protocol(), Protocol::Http2);
    assert_eq!(info.tls_version(), None);
    assert_eq!(info.alpn(), None);
    assert_eq!(info.tls_resumed(), None);
    assert_eq!(info.peer_addr(), server.addr());
}

/// A response to a request sent on a `StreamHandle` carries the handle's connection.
#[tokio::test]
async fn a_handle_response_names_the_handle_connection() {
    trace_init();
    let server = TestServer::start(TestServerConfig::default()).expect("server starts");
    let pool = builder_for(&server).build().expect("pool");
    let mut handle = pool.acquire(server.url().as_str()).await.expect("acquire");
    let response = handle.send(get("/h")).await.expect("send");
    assert_eq!(info_of(&response).id(), handle.connection_id());
    assert_eq!(info_of(&response).peer_addr(), server.addr());
}

/// With coalescing, a request for b.test that rides a.test's connection says it was
/// coalesced (on the same connection id as a.test's own responses), through `request` and
/// through a handle.
#[tokio::test]
async fn a_coalesced_response_says_so() {
    trace_init();
    let v4 = IpAddr::V4(Ipv4Addr::LOCALHOST);
    let server = server_named(
        &["a.test", "b.test"],
        SocketAddr::new(v4, 0),
        TestServerConfig::default(),
    );
    let pool = builder_for(&server)
        .resolve("a.test", [v4])
        .resolve("b.test", [v4])
        .http2_coalescing(true)
        .build()
        .expect("pool");
    let port = server.port();
    let own = pool
        .request(get(&format!("https://a.test:{port}/a")))
        .await
        .expect("request");
    let own_info = info_of(&own);
    body_len(own).await;
    let other = pool
        .request(get(&format!("https://b.test:{port}/b")))
        .await
        .expect("request");
    let other_info = info_of(&other);
    body_len(other).await;
    let mut handle = pool
        .acquire(format!("https://b.test:{port}").as_str())
        .await
        .expect("acquire");
    let handled = handle
        .send(get(&format!("https://b.test:{port}/h")))
        .await
        .expect("send");

    assert_eq!(server.counters().accepted(), 1);
    assert!(!own_info.coalesced());
    assert!(other_info.coalesced());
    assert!(info_of(&handled).coalesced());
    assert_eq!(other_info.id(), own_info.id());
}
