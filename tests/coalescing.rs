//! HTTP/2 connection coalescing (RFC 9113 §9.1.1, `http2_coalescing`): one connection serves
//! two origins when its certificate covers both and both resolve to its address; a
//! certificate without the second name keeps them apart; a 421 sends the request again on a
//! connection of its own. Names map to loopback addresses through resolver overrides.

mod support;

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use https_pool::{ConnectionPoolManager, PoolBuilder};
use https_pool_testkit::{TestServer, TestServerConfig};
use support::{body_len, builder_for, get, server_named, trace_init};

const V4: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);
const V6: IpAddr = IpAddr::V6(Ipv6Addr::LOCALHOST);

fn server(names: &[&str], bind: IpAddr, port: u16, config: TestServerConfig) -> TestServer {
    server_named(names, SocketAddr::new(bind, port), config)
}

fn coalescing(builder: PoolBuilder) -> ConnectionPoolManager {
    builder.http2_coalescing(true).build().expect("pool")
}

async fn ok(pool: &ConnectionPoolManager, url: &str) -> u16 {
    let response = pool.request(get(url)).await.expect("request");
    let status = response.status().as_u16();
    body_len(response).await;
    status
}

/// A certificate for both names, both names on 127.0.0.1: one socket serves both origins.
#[tokio::test]
async fn one_connection_serves_both_origins() {
    trace_init();
    let srv = server(&["a.test", "b.test"], V4, 0, TestServerConfig::default());
    let pool = coalescing(
        builder_for(&srv)
            .resolve("a.test", [V4])
            .resolve("b.test", [V4]),
    );
    let port = srv.port();
    assert_eq!(ok(&pool, &format!("https://a.test:{port}/a")).await, 200);
    for i in 0..3 {
        assert_eq!(
            ok(&pool, &format!("https://b.test:{port}/b/{i}")).await,
            200
        );
    }
    // The same through acquire: the handle is on a.test's connection.
    let mut handle = pool
        .acquire(format!("https://b.test:{port}").as_str())
        .await
        .expect("acquire");
    let response = handle
        .send(get(&format!("https://b.test:{port}/handle")))
        .await
        .expect("send");
    assert_eq!(response.status(), 200);
    body_len(response).await;
    assert_eq!(srv.counters().accepted(), 1);
    let stats = pool.stats();
    assert_eq!(stats.leases_coalesced, 4);
    assert_eq!(stats.open_connections(), 1);
}

/// Off by default: two origins, two sockets, even with a certificate for both.
#[tokio::test]
async fn off_by_default() {
    trace_init();
    let srv = server(&["a.test", "b.test"], V4, 0, TestServerConfig::default());
    let pool = builder_for(&srv)
        .resolve("a.test", [V4])
        .resolve("b.test", [V4])
        .build()
        .expect("pool");
    let port = srv.port();
    ok(&pool, &format!("https://a.test:{port}/")).await;
    ok(&pool, &format!("https://b.test:{port}/")).await;
    assert_eq!(srv.counters().accepted(), 2);
    assert_eq!(pool.stats().leases_coalesced, 0);
}

/// b.test resolves to both servers' addresses, including a.test's, but a.test's certificate
/// does not name b.test: b.test gets a connection of its own (to the server whose
/// certificate does name it).
#[tokio::test]
async fn a_certificate_without_the_name_keeps_them_apart() {
    trace_init();
    let a = server(&["a.test"], V4, 0, TestServerConfig::default());
    let b = server(&["b.test"], V6, a.port(), TestServerConfig::default());
    let pool = coalescing(
        builder_for(&a)
            .tls_extra_ca_pem(b.ca_pem())
            .resolve("a.test", [V4])
            .resolve("b.test", [V6, V4]),
    );
    let port = a.port();
    ok(&pool, &format!("https://a.test:{port}/")).await;
    ok(&pool, &format!("https://b.test:{port}/")).await;
    assert_eq!(a.counters().accepted(), 1);
    assert_eq!(b.counters().accepted(), 1);
    assert_eq!(pool.stats().leases_coalesced, 0);
}

/// The server answers 421 to b.test on a.test's connection (as nginx does when another
/// virtual server serves b.test): the request is sent again on a connection dialed for
/// b.test and succeeds, and b.test is not coalesced onto a.test again.
#[tokio::test]
async fn a_421_gets_a_dedicated_connection() {
    trace_init();
    let config = TestServerConfig::default().misdirect_other_hosts(true);
    let srv = server(&["a.test", "b.test"], V4, 0, config);
    let pool = coalescing(
        builder_for(&srv)
            .resolve("a.test", [V4])
            .resolve("b.test", [V4]),
    );
    let port = srv.port();
    assert_eq!(ok(&pool, &format!("https://a.test:{port}/")).await, 200);
    assert_eq!(
        ok(&pool, &format!("https://b.test:{port}/first")).await,
        200
    );
    assert_eq!(
        srv.counters()
            .misdirected
            .load(std::sync::atomic::Ordering::SeqCst),
        1
    );
    assert_eq!(srv.counters().accepted(), 2);
    let stats = pool.stats();
    assert_eq!(stats.leases_coalesced, 1);
    assert_eq!(stats.requests_retried, 1);
    assert_eq!(stats.requests_failed, 0);

    // b.test's own connection closes; the next request dials again rather than coalescing.
    let b_origin = stats
        .origins
        .iter()
        .find(|o| o.origin.host() == "b.test")
        .expect("b.test listed");
    assert_eq!(b_origin.connections.len(), 1);
    assert_eq!(srv.kill_connections(2), 2);
    for _ in 0..500 {
        if pool.stats().open_connections() == 0 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    assert_eq!(ok(&pool, &format!("https://a.test:{port}/")).await, 200);
    assert_eq!(
        ok(&pool, &format!("https://b.test:{port}/again")).await,
        200
    );
    assert_eq!(pool.stats().leases_coalesced, 1);
    assert_eq!(
        srv.counters()
            .misdirected
            .load(std::sync::atomic::Ordering::SeqCst),
        1
    );
}
