//! Names and addresses: static overrides, a plugged-in resolver (consulted again when a
//! connection is replaced), connection racing past a black-holed address (RFC 8305), and the
//! error when every address fails. Names map to loopback addresses only.

mod support;

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use https_pool::{Error, Resolve, Resolving};
use https_pool_testkit::{SynDropListener, TestServer, TestServerConfig};
use support::{builder_for, get, server_named, trace_init};

const V4: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);
const V6: IpAddr = IpAddr::V6(Ipv6Addr::LOCALHOST);

fn server_for(names: &[&str], bind: SocketAddr) -> TestServer {
    server_named(names, bind, TestServerConfig::default())
}

/// A resolver answering from a table the test changes, counting lookups.
#[derive(Clone, Default)]
struct Table {
    answer: Arc<Mutex<Vec<IpAddr>>>,
    lookups: Arc<AtomicUsize>,
}

impl Table {
    fn set(&self, ips: &[IpAddr]) {
        *self.answer.lock().expect("table lock") = ips.to_vec();
    }
}

impl Resolve for Table {
    fn resolve(&self, _host: &str) -> Resolving {
        self.lookups.fetch_add(1, Ordering::SeqCst);
        let ips = self.answer.lock().expect("table lock").clone();
        Box::pin(async move { Ok(ips) })
    }
}

/// `resolve("a.test", [127.0.0.1])` reaches the server without DNS, and the certificate is
/// checked against `a.test`, the name in the URL.
#[tokio::test]
async fn an_override_maps_a_name_to_an_address() {
    trace_init();
    let server = server_for(&["a.test"], SocketAddr::new(V4, 0));
    let pool = builder_for(&server)
        .resolve("A.test", [V4])
        .build()
        .expect("pool");
    let url = format!("https://a.test:{}/", server.port());
    let response = pool.request(get(&url)).await.expect("request");
    assert!(response.status().is_success());
    let stats = pool.stats();
    let conn = &stats.origins[0].connections[0];
    assert_eq!(conn.peer_addr, server.addr());
    assert_eq!(server.counters().accepted(), 1);
}

/// Every dial asks the resolver again, so a replacement connection follows the name to its
/// new address: here from a server on 127.0.0.1 to one on ::1 (same port, same name).
#[tokio::test]
async fn a_replacement_connection_resolves_again() {
    trace_init();
    let first = server_for(&["moving.test"], SocketAddr::new(V4, 0));
    let second = server_for(&["moving.test"], SocketAddr::new(V6, first.port()));
    let table = Table::default();
    table.set(&[V4]);
    let pool = builder_for(&first)
        .tls_extra_ca_pem(second.ca_pem())
        .resolver(table.clone())
        .max_requests_per_connection(1)
        .build()
        .expect("pool");
    let url = format!("https://moving.test:{}/", first.port());
    pool.request(get(&url)).await.expect("first request");
    table.set(&[V6]);
    pool.request(get(&url)).await.expect("second request");
    assert_eq!(first.counters().requests(), 1);
    assert_eq!(second.counters().requests(), 1);
    assert_eq!(table.lookups.load(Ordering::SeqCst), 2);
}

/// The first address drops SYNs; the race starts the second after the attempt delay and the
/// request succeeds on it. Sequential dialing would sit on the first address until the
/// connect timeout and fail with `Timeout`.
#[tokio::test]
async fn a_black_holed_first_address_does_not_stall_the_dial() {
    trace_init();
    let server = server_for(&["race.test"], SocketAddr::new(V4, 0));
    let hole = SynDropListener::bind(SocketAddr::new(V6, server.port())).expect("black hole");
    let table = Table::default();
    table.set(&[V6, V4]);
    let pool = builder_for(&server)
        .resolver(table)
        .connect_timeout(Duration::from_secs(3))
        .build()
        .expect("pool");
    let url = format!("https://race.test:{}/", server.port());
    let started = Instant::now();
    let response = pool.request(get(&url)).await.expect("request");
    println!("connected past {} in {:?}", hole.addr(), started.elapsed());
    assert!(response.status().is_success());
    let stats = pool.stats();
    assert_eq!(stats.origins[0].connections[0].peer_addr, server.addr());
    assert_eq!(stats.connects_failed, 0);
}

/// When every address fails, the error names each address with its own cause.
#[tokio::test]
async fn when_every_address_fails_the_error_lists_them_all() {
    trace_init();
    // A port nothing listens on, on either loopback address.
    let port = std::net::TcpListener::bind((V4, 0))
        .and_then(|l| l.local_addr())
        .expect("free port")
        .port();
    let pool = https_pool::ConnectionPoolManager::builder()
        .resolve("nowhere.test", [V6, V4])
        .build()
        .expect("pool");
    let url = format!("https://nowhere.test:{port}/");
    let error = pool.request(get(&url)).await.expect_err("nothing listens");
    let Error::ConnectionRefused { origin, source } = &error else {
        panic!("expected ConnectionRefused, got {error:?}");
    };
    assert_eq!(origin.host(), "nowhere.test");
    let listed = source.to_string();
    for addr in [SocketAddr::new(V6, port), SocketAddr::new(V4, port)] {
        assert!(listed.contains(&addr.to_string()), "{listed}");
    }
}

/// A resolver that never answers is bounded by the connect timeout: `Timeout` naming the
/// origin, not a hang.
#[tokio::test]
async fn a_resolver_that_never_answers_times_out() {
    trace_init();
    let pool = https_pool::ConnectionPoolManager::builder()
        .resolver(|_: &str| -> Resolving { Box::pin(std::future::pending()) })
        .connect_timeout(Duration::from_millis(200))
        .build()
        .expect("pool");
    let error = pool
        .request(get("https://silent.test/"))
        .await
        .expect_err("no address ever comes");
    match error {
        Error::Timeout { origin, kind, .. } => {
            assert_eq!(origin.host(), "silent.test");
            assert_eq!(kind, https_pool::TimeoutKind::Connect);
        }
        other => panic!("expected Timeout, got {other:?}"),
    }
}

/// An override with no address is refused when the pool is built, naming the field.
#[test]
fn an_empty_override_is_invalid() {
    let built = https_pool::ConnectionPoolManager::builder()
        .resolve("empty.test", [])
        .build();
    match built {
        Err(Error::InvalidConfig { field, .. }) => assert_eq!(field, "resolve_overrides"),
        other => panic!("expected InvalidConfig, got {other:?}"),
    }
}

/// Three servers for `spread.test`, on 127.0.0.1, 127.0.0.2 and 127.0.0.3 (one port), and a
/// pool that maps the name to all three and trusts their CAs.
fn spread_servers(config: &TestServerConfig) -> (Vec<TestServer>, https_pool::PoolBuilder) {
    let first = server_named(&["spread.test"], SocketAddr::new(V4, 0), config.clone());
    let port = first.port();
    let mut servers = vec![first];
    for last in [2, 3] {
        let ip = IpAddr::V4(Ipv4Addr::new(127, 0, 0, last));
        servers.push(server_named(
            &["spread.test"],
            SocketAddr::new(ip, port),
            config.clone(),
        ));
    }
    let ips: Vec<IpAddr> = servers.iter().map(|s| s.addr().ip()).collect();
    let mut builder = builder_for(&servers[0]).resolve("spread.test", ips);
    for server in &servers[1..] {
        builder = builder.tls_extra_ca_pem(server.ca_pem());
    }
    (servers, builder)
}

/// Connection k of an origin starts its address race at address k mod n: prewarming three
/// connections to a name with three addresses puts one on each.
#[tokio::test]
async fn prewarmed_connections_spread_over_the_names_addresses() {
    trace_init();
    let (servers, builder) = spread_servers(&TestServerConfig::default());
    let pool = builder
        .min_connections_per_origin(3)
        .max_connections_per_origin(3)
        .build()
        .expect("pool");
    let url = format!("https://spread.test:{}", servers[0].port());
    for host in pool.prewarm_hosts(&[url.as_str()]).await {
        host.result.expect("prewarm");
    }
    let stats = pool.stats();
    let mut peers: Vec<SocketAddr> = stats.origins[0]
        .connections
        .iter()
        .map(|c| c.peer_addr)
        .collect();
    peers.sort();
    let want: Vec<SocketAddr> = servers.iter().map(TestServer::addr).collect();
    assert_eq!(peers, want);
    for server in &servers {
        assert_eq!(server.counters().accepted(), 1, "{}", server.addr());
    }
}

/// The same when demand opens the connections: three slots held at once on servers that allow
/// one stream each take three connections, one per address, and each response's
/// `ConnectionInfo` names its own.
#[tokio::test]
async fn connections_opened_by_demand_spread_over_the_names_addresses() {
    trace_init();
    let (servers, builder) = spread_servers(&TestServerConfig::default().max_concurrent_streams(1));
    let pool = builder.max_connections_per_origin(3).build().expect("pool");
    let url = format!("https://spread.test:{}", servers[0].port());
    let (a, b, c) = tokio::join!(
        pool.acquire(url.as_str()),
        pool.acquire(url.as_str()),
        pool.acquire(url.as_str())
    );
    let mut peers = Vec::new();
    for handle in [a, b, c] {
        let mut handle = handle.expect("acquire");
        let response = handle.send(get("/spread")).await.expect("send");
        let info = response
            .extensions()
            .get::<https_pool::ConnectionInfo>()
            .expect("connection info")
            .clone();
        assert_eq!(info.id(), handle.connection_id());
        peers.push(info.peer_addr());
    }
    peers.sort();
    let want: Vec<SocketAddr> = servers.iter().map(TestServer::addr).collect();
    assert_eq!(peers, want);
    for server in &servers {
        assert_eq!(server.counters().accepted(), 1, "{}", server.addr());
    }
}
