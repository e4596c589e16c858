//! Interop with third-party servers (nginx, nghttpd and tinyproxy from Debian) on 127.0.0.1. Every test
//! is `#[ignore]`d, so a plain `cargo test` lists them as ignored rather than passed;
//! `scripts/interop.sh` starts the servers (`scripts/peers.sh`) and runs them with
//! `--include-ignored`.

mod support;

use std::sync::Arc;
use std::time::Duration;

use https_pool::{ConnectionPoolManager, Error, Origin, PoolBuilder, PoolStats, Protocol};
use support::{BudgetWatch, body_len, get, run_load, trace_init, until_no_connection};
use tokio::sync::Barrier;

/// The URL of a peer started by `scripts/peers.sh`.
fn peer(var: &str) -> String {
    match std::env::var(var) {
        Ok(url) => url,
        Err(_) => panic!("{var} is not set: run these tests through scripts/interop.sh"),
    }
}

fn builder() -> PoolBuilder {
    // A short acquire deadline turns a stall into a failure with the pool's stats attached.
    let mut builder = ConnectionPoolManager::builder()
        .tls_webpki_roots(false)
        .acquire_timeout(Duration::from_secs(10));
    let cas = std::env::var("HTTPS_POOL_INTEROP_CAS").expect("HTTPS_POOL_INTEROP_CAS");
    for path in cas.split(':').filter(|p| !p.is_empty()) {
        let pem = std::fs::read(path).unwrap_or_else(|e| panic!("reading {path}: {e}"));
        builder = builder.tls_extra_ca_pem(pem);
    }
    builder
}

/// `n` requests to `url_for(i)`, released together by a barrier.
async fn concurrent(
    pool: &ConnectionPoolManager,
    n: usize,
    url_for: impl Fn(usize) -> String,
) -> Vec<Result<usize, Error>> {
    let barrier = Arc::new(Barrier::new(n));
    let tasks: Vec<_> = (0..n)
        .map(|i| {
            let pool = pool.clone();
            let url = url_for(i);
            let barrier = Arc::clone(&barrier);
            tokio::spawn(async move {
                barrier.wait().await;
                let response = pool.request(get(&url)).await?;
                assert!(response.status().is_success());
                Ok(body_len(response).await)
            })
        })
        .collect();
    let mut out = Vec::with_capacity(n);
    for t in tasks {
        out.push(t.await.expect("task"));
    }
    out
}

/// `n` requests to `url_for(i)` released together; asserts every one got the peers' 3-byte
/// page (`ok\n` from nginx, the index file from nghttpd), every connection negotiated HTTP/2
/// and each whose SETTINGS arrived carries the peer's `limit`. Returns the stats afterwards.
async fn h2_burst(
    pool: &ConnectionPoolManager,
    origin_url: &str,
    n: usize,
    limit: usize,
    url_for: impl Fn(usize) -> String,
) -> PoolStats {
    let results = concurrent(pool, n, url_for).await;
    assert!(
        results.iter().all(|r| matches!(r, Ok(3))),
        "{:?}",
        results.iter().find(|r| !matches!(r, Ok(3)))
    );
    let stats = pool.stats();
    let origin: Origin = origin_url.parse().expect("origin");
    let o = stats.origin(&origin).expect("origin stats");
    assert!(o.connections.iter().all(|c| c.protocol == Protocol::Http2));
    // (A connection whose SETTINGS have not been read yet reports its provisional limit.)
    assert!(
        o.connections
            .iter()
            .filter(|c| c.peer_settings_received)
            .all(|c| c.max_streams == limit)
    );
    assert_eq!(stats.handles_outstanding, 0);
    stats
}

/// nginx (HTTP/2, 128 streams): 150 concurrent requests succeed over at most
/// ceil(150 / 128) = 2 connections, negotiated as h2.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs the servers of scripts/interop.sh"]
async fn nginx_h2_multiplexes_150_requests_over_at_most_two_connections() {
    let url = peer("HTTPS_POOL_NGINX_H2");
    trace_init();
    let pool = builder().build().expect("pool builds");
    let stats = h2_burst(&pool, &url, 150, 128, |i| format!("{url}/interop/{i}")).await;
    assert!(
        stats.connections_opened <= 2,
        "{} connections",
        stats.connections_opened
    );
}

/// nginx with `http2_max_concurrent_streams 8`: the pool reads the limit from SETTINGS and
/// opens more connections instead of queueing inside one; every request succeeds.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs the servers of scripts/interop.sh"]
async fn nginx_stream_limit_8_makes_the_pool_open_more_connections() {
    let url = peer("HTTPS_POOL_NGINX_H2_MS8");
    trace_init();
    let pool = builder()
        .max_connections_per_origin(8)
        .build()
        .expect("pool builds");
    let stats = h2_burst(&pool, &url, 256, 8, |i| format!("{url}/interop/{i}")).await;
    assert!(stats.connections_opened > 1, "scaled past one connection");
    assert!(stats.connections_opened <= 8);
}

/// nginx closing each connection after 50 requests (`keepalive_requests 50`, a GOAWAY):
/// 20,000 requests from 64 workers all succeed. Requests a GOAWAY caught above its
/// last-stream-id are retried on another connection; the pool learns nginx's budget from the
/// first rotations and from then on rotates first. Nothing leaks.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs the servers of scripts/interop.sh"]
async fn nginx_goaway_rotation_loses_nothing_and_the_budget_is_learned() {
    let url = peer("HTTPS_POOL_NGINX_ROTATE");
    trace_init();
    const WORKERS: u64 = 64;
    const PER_WORKER: u64 = 20_000 / WORKERS + 1;
    let origin: Origin = url.parse().expect("origin");
    let pool = builder().build().expect("pool builds");
    let watch = BudgetWatch::start(&pool, &origin);
    let load = run_load(&pool, &url, "rotate", WORKERS, PER_WORKER, Some(&watch)).await;
    drop(watch);
    let stats = pool.stats();
    let budget = stats
        .origin(&origin)
        .and_then(|o| o.learned_request_budget)
        .expect("the pool learned nginx's keepalive_requests");
    println!(
        "nginx rotation: {} ok, {} failed, {} retried, {} connections, learned budget {budget}",
        load.succeeded,
        load.failures.len(),
        stats.requests_retried,
        stats.connections_opened
    );
    assert!(load.failures.is_empty(), "failures: {:?}", load.failures);
    assert!(
        budget < 50,
        "the budget stays below nginx's limit: {budget}"
    );
    // nginx serves at most 50 requests per connection.
    assert!(
        stats.connections_opened >= load.succeeded.div_ceil(50),
        "connections rotated"
    );
    assert_eq!(stats.handles_outstanding, 0);
    assert_eq!(stats.active_streams(), 0);
}

/// The same GOAWAY storm with budget learning off, so nginx rotates under load for the whole
/// run, ten runs in a row: nothing fails, and nginx's own access log shows every request
/// processed exactly once (a retried request was provably unprocessed).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs the servers of scripts/interop.sh"]
async fn nginx_goaway_storm_with_learning_off_fails_nothing_and_duplicates_nothing() {
    let url = peer("HTTPS_POOL_NGINX_ROTATE");
    let log = peer("HTTPS_POOL_NGINX_ROTATE_LOG");
    trace_init();
    const RUNS: usize = 10;
    const WORKERS: u64 = 64;
    const PER_WORKER: u64 = 20_000 / WORKERS + 1;
    // nginx's log outlives this process: tag this invocation's URIs so only they are counted.
    let tag = format!(
        "storm-{}-{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_micros())
    );
    let mut retried = 0;
    for run in 0..RUNS {
        let pool = builder()
            .learn_request_budget(false)
            .build()
            .expect("pool builds");
        let label = format!("{tag}/{run}");
        let load = run_load(&pool, &url, &label, WORKERS, PER_WORKER, None).await;
        assert!(
            load.failures.is_empty(),
            "run {run}: {} failed: {:?}",
            load.failures.len(),
            load.failures.first()
        );
        assert_eq!(load.succeeded, WORKERS * PER_WORKER, "run {run}");
        retried += pool.stats().requests_retried;
        pool.shutdown().await;
    }
    // nginx logs a request when it is done with it; give the last lines a moment.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let text = std::fs::read_to_string(&log).unwrap_or_else(|e| panic!("reading {log}: {e}"));
    let mut seen = std::collections::HashMap::<&str, u32>::new();
    let prefix = format!("/{tag}/");
    for line in text.lines().filter(|l| l.starts_with(&prefix)) {
        *seen.entry(line).or_default() += 1;
    }
    let duplicates: Vec<_> = seen.iter().filter(|(_, n)| **n > 1).collect();
    println!(
        "nginx GOAWAY storm, learning off: {RUNS} runs x {} requests, {retried} retried, \
         {} distinct URIs in nginx's log, {} processed more than once",
        WORKERS * PER_WORKER,
        seen.len(),
        duplicates.len()
    );
    assert!(retried > 0, "GOAWAYs caught requests, which were retried");
    assert_eq!(seen.len() as u64, RUNS as u64 * WORKERS * PER_WORKER);
    assert!(duplicates.is_empty(), "processed twice: {duplicates:?}");
}

/// nginx without HTTP/2: ten sequential requests reuse one keep-alive connection.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs the servers of scripts/interop.sh"]
async fn nginx_http1_sequential_requests_reuse_one_connection() {
    let url = peer("HTTPS_POOL_NGINX_H1");
    trace_init();
    let pool = builder().build().expect("pool builds");
    for i in 0..10 {
        let response = pool
            .request(get(&format!("{url}/seq/{i}")))
            .await
            .expect("request");
        assert_eq!(body_len(response).await, 3);
    }
    let stats = pool.stats();
    assert_eq!(stats.connections_opened, 1);
    assert_eq!(stats.origins[0].connections[0].protocol, Protocol::Http1);
    assert_eq!(stats.origins[0].connections[0].requests_served, 10);
}

/// nginx without HTTP/2: 50 concurrent requests with `h1_max_connections` 10 all succeed
/// over at most 10 connections.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs the servers of scripts/interop.sh"]
async fn nginx_http1_concurrency_is_capped_by_h1_max_connections() {
    let url = peer("HTTPS_POOL_NGINX_H1");
    trace_init();
    let pool = builder()
        .h1_max_connections(10)
        .build()
        .expect("pool builds");
    let results = concurrent(&pool, 50, |i| format!("{url}/interop/{i}")).await;
    assert!(
        results.iter().all(Result::is_ok),
        "{:?}",
        results.iter().find(|r| r.is_err())
    );
    assert!(pool.stats().connections_opened <= 10);
}

/// nginx without HTTP/2 closes idle keep-alive connections after 1 s; after a 1.5 s pause
/// the next request still succeeds.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs the servers of scripts/interop.sh"]
async fn nginx_http1_idle_close_is_survived() {
    let url = peer("HTTPS_POOL_NGINX_H1");
    trace_init();
    let pool = builder().build().expect("pool builds");
    let first = match pool.request(get(&format!("{url}/a"))).await {
        Ok(r) => r,
        Err(e) => panic!("first request failed: {e:?}\n{:#?}", pool.stats()),
    };
    body_len(first).await;
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    let second = pool
        .request(get(&format!("{url}/b")))
        .await
        .expect("second");
    assert_eq!(body_len(second).await, 3);
    assert_eq!(pool.stats().connections_opened, 2);
}

/// nginx without HTTP/2 answering `Connection: close` ends that connection; the pool does not
/// reuse it and the next request succeeds on another connection.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs the servers of scripts/interop.sh"]
async fn nginx_http1_connection_close_is_not_reused() {
    let url = peer("HTTPS_POOL_NGINX_H1");
    trace_init();
    let pool = builder().build().expect("pool builds");
    let origin: Origin = url.parse().expect("origin");
    let mut handle = pool.acquire(&origin).await.expect("acquire");
    let first_id = handle.connection_id();
    let closing = http::Request::get("/close")
        .header(http::header::CONNECTION, "close")
        .body(http_body_util::Empty::<bytes::Bytes>::new())
        .expect("request");
    let response = handle.send(closing).await.expect("request");
    assert_eq!(response.headers()[http::header::CONNECTION], "close");
    body_len(response).await;
    drop(handle);
    let mut next = pool.acquire(&origin).await.expect("acquire");
    assert_ne!(
        next.connection_id(),
        first_id,
        "the closed connection is not reused"
    );
    let response = next.send(get("/next")).await.expect("next");
    assert_eq!(body_len(response).await, 3);
}

/// nginx without HTTP/2: a 4 MiB body dropped after its first frame leaves the connection
/// unusable; the next request goes to another connection and succeeds.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs the servers of scripts/interop.sh"]
async fn nginx_http1_half_read_body_is_not_reused() {
    use http_body_util::BodyExt;
    let url = peer("HTTPS_POOL_NGINX_H1");
    trace_init();
    let pool = builder().build().expect("pool builds");
    let origin: Origin = url.parse().expect("origin");
    let mut handle = pool.acquire(&origin).await.expect("acquire");
    let first_id = handle.connection_id();
    let response = handle.send(get("/big.bin")).await.expect("request");
    assert!(response.status().is_success());
    drop(handle);
    let mut body = response.into_body();
    body.frame().await.expect("a frame").expect("frame ok");
    drop(body);
    let mut next = pool.acquire(&origin).await.expect("acquire");
    assert_ne!(
        next.connection_id(),
        first_id,
        "the half-read connection is not reused"
    );
    let response = next.send(get("/big.bin")).await.expect("next");
    assert_eq!(body_len(response).await, 4 * 1024 * 1024);
}

/// nghttpd over TLS with max concurrent streams 8: 64 concurrent requests succeed on more
/// than one connection, each carrying the peer's limit of 8.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs the servers of scripts/interop.sh"]
async fn nghttpd_stream_limit_8_makes_the_pool_open_more_connections() {
    let url = peer("HTTPS_POOL_NGHTTPD_MS8");
    trace_init();
    let pool = builder()
        .max_connections_per_origin(8)
        .build()
        .expect("pool builds");
    // nghttpd serves files: every request asks for the one index page.
    let stats = h2_burst(&pool, &url, 64, 8, |_| format!("{url}/index.html")).await;
    assert!(stats.connections_opened > 1, "scaled past one connection");
    assert!(stats.connections_opened <= 8);
}

/// nghttpd in cleartext (`--no-tls`): the pool speaks HTTP/2 with prior knowledge to a
/// third-party h2c server; 100 concurrent requests share nghttpd's 100 streams on one
/// connection.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs the servers of scripts/interop.sh"]
async fn nghttpd_h2c_prior_knowledge_multiplexes() {
    let url = peer("HTTPS_POOL_NGHTTPD_H2C");
    trace_init();
    let pool = ConnectionPoolManager::builder()
        .cleartext(https_pool::Cleartext::Http2PriorKnowledge)
        .acquire_timeout(Duration::from_secs(10))
        .build()
        .expect("pool builds");
    let stats = h2_burst(&pool, &url, 100, 100, |_| format!("{url}/index.html")).await;
    assert_eq!(
        stats.connections_opened, 1,
        "100 streams fit one connection"
    );
}

/// CONNECTs to `target` tinyproxy has logged so far (`Request (file descriptor N): CONNECT
/// target HTTP/1.1` lines).
fn tinyproxy_connects(target: &str) -> usize {
    let log = peer("HTTPS_POOL_TINYPROXY_LOG");
    let text = std::fs::read_to_string(&log).unwrap_or_else(|e| panic!("reading {log}: {e}"));
    let needle = format!("CONNECT {target} HTTP/1.1");
    text.lines()
        .filter(|l| l.contains("Request (") && l.contains(&needle))
        .count()
}

/// nginx (HTTP/2) through tinyproxy: 150 concurrent requests succeed over at most two
/// tunnels, one CONNECT per connection the pool opened (tinyproxy's log), each connection
/// reporting the proxy and connected to it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs the servers of scripts/interop.sh"]
async fn nginx_h2_through_tinyproxy() {
    let url = peer("HTTPS_POOL_NGINX_H2");
    let proxy_url = peer("HTTPS_POOL_TINYPROXY");
    trace_init();
    let origin: Origin = url.parse().expect("origin");
    let target = format!("{}:{}", origin.host(), origin.port());
    let before = tinyproxy_connects(&target);
    let pool = builder()
        .proxy(proxy_url.as_str())
        .build()
        .expect("pool builds");
    let stats = h2_burst(&pool, &url, 150, 128, |i| format!("{url}/interop/{i}")).await;
    assert!(stats.connections_opened <= 2);
    assert_eq!(
        tinyproxy_connects(&target) - before,
        stats.connections_opened as usize,
        "one CONNECT per connection"
    );
    let proxy: Origin = proxy_url.parse().expect("proxy origin");
    for conn in &stats.origin(&origin).expect("origin").connections {
        assert_eq!(conn.proxy.as_ref(), Some(&proxy));
        assert_eq!(conn.peer_addr.port(), proxy.port());
    }
}

/// nginx (HTTP/1.1 only) through tinyproxy: sequential requests reuse one tunnelled
/// keep-alive connection.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs the servers of scripts/interop.sh"]
async fn nginx_http1_through_tinyproxy_reuses_its_tunnel() {
    let url = peer("HTTPS_POOL_NGINX_H1");
    trace_init();
    let pool = builder()
        .proxy(peer("HTTPS_POOL_TINYPROXY"))
        .build()
        .expect("pool builds");
    for i in 0..10 {
        let response = pool
            .request(get(&format!("{url}/proxied/{i}")))
            .await
            .expect("request through tinyproxy");
        assert_eq!(body_len(response).await, 3);
    }
    let stats = pool.stats();
    assert_eq!(stats.connections_opened, 1);
    let conn = &stats.origins[0].connections[0];
    assert_eq!(conn.protocol, Protocol::Http1);
    assert!(conn.proxy.is_some());
}

/// tinyproxy with `BasicAuth`: without credentials it answers 407, which is
/// `ProxyRefused { status: 407 }`; with them in the proxy URL the request succeeds.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs the servers of scripts/interop.sh"]
async fn tinyproxy_basic_auth_407_then_credentials() {
    let url = peer("HTTPS_POOL_NGINX_H2");
    let proxy_url = peer("HTTPS_POOL_TINYPROXY_AUTH");
    trace_init();
    let anonymous = builder()
        .proxy(proxy_url.as_str())
        .build()
        .expect("pool builds");
    match anonymous.request(get(&url)).await {
        Err(Error::ProxyRefused { status, .. }) => assert_eq!(status.as_u16(), 407),
        other => panic!("expected ProxyRefused(407), got {other:?}"),
    }
    let credentials = peer("HTTPS_POOL_TINYPROXY_CREDENTIALS");
    let with_credentials = proxy_url.replacen("http://", &format!("http://{credentials}@"), 1);
    let pool = builder()
        .proxy(with_credentials)
        .build()
        .expect("pool builds");
    let response = pool.request(get(&url)).await.expect("authorized tunnel");
    assert_eq!(body_len(response).await, 3);
}

/// tinyproxy refuses CONNECT to a port outside its `ConnectPort` list with 403:
/// `ProxyRefused { status: 403 }`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs the servers of scripts/interop.sh"]
async fn tinyproxy_forbidden_port_is_a_403_refusal() {
    let url = peer("HTTPS_POOL_NGINX_H2_MS8");
    trace_init();
    let pool = builder()
        .proxy(peer("HTTPS_POOL_TINYPROXY"))
        .build()
        .expect("pool builds");
    match pool.request(get(&url)).await {
        Err(Error::ProxyRefused { status, .. }) => assert_eq!(status.as_u16(), 403),
        other => panic!("expected ProxyRefused(403), got {other:?}"),
    }
}

/// Responses from nginx (OpenSSL) name their connection: h2 or http/1.1 by ALPN, the TLS
/// version nginx chose, nginx's address, and the id the stats list. The peers set no
/// `ssl_protocols`, and nginx's default gained TLSv1.3 only in 1.23.4 (Debian 12 ships 1.22,
/// which answers with TLS 1.2), so either version is nginx's to pick.
#[tokio::test]
#[ignore = "needs the servers of scripts/interop.sh"]
async fn nginx_responses_carry_their_connection_info() {
    use https_pool::{ConnectionInfo, TlsVersion};
    trace_init();
    let pool = builder().build().expect("pool builds");
    for (var, protocol, alpn) in [
        ("HTTPS_POOL_NGINX_H2", Protocol::Http2, &b"h2"[..]),
        ("HTTPS_POOL_NGINX_H1", Protocol::Http1, &b"http/1.1"[..]),
    ] {
        let url = peer(var);
        let response = pool
            .request(get(&format!("{url}/info")))
            .await
            .expect("request");
        let info = response
            .extensions()
            .get::<ConnectionInfo>()
            .expect("connection info")
            .clone();
        assert_eq!(body_len(response).await, 3);
        let origin: Origin = url.parse().expect("origin");
        let stats = pool.stats();
        let conn = &stats.origin(&origin).expect("origin stats").connections[0];
        assert_eq!(info.id(), conn.id, "{var}");
        assert_eq!(info.peer_addr(), conn.peer_addr, "{var}");
        assert_eq!(info.peer_addr().port(), origin.port(), "{var}");
        assert_eq!(info.local_addr(), conn.local_addr, "{var}");
        assert_eq!(info.protocol(), protocol, "{var}");
        assert_eq!(info.alpn(), Some(alpn), "{var}");
        assert!(
            matches!(
                info.tls_version(),
                Some(TlsVersion::Tls12 | TlsVersion::Tls13)
            ),
            "{var}: {:?}",
            info.tls_version()
        );
        assert_eq!(info.tls_version(), conn.tls_version, "{var}");
        assert_eq!(info.tls_resumed(), Some(false), "{var}");
    }
}

// ===== mutual TLS against nginx (`ssl_verify_client on`) =====

/// A client identity from `scripts/peers.sh` (`rsa` or `ec`): certificate and key PEM.
fn client_identity(kind: &str) -> (Vec<u8>, Vec<u8>) {
    let dir = peer("HTTPS_POOL_INTEROP_CLIENTS");
    let read = |ext: &str| {
        let path = format!("{dir}/client-{kind}.{ext}");
        std::fs::read(&path).unwrap_or_else(|e| panic!("reading {path}: {e}"))
    };
    (read("pem"), read("key"))
}

/// nginx with `ssl_verify_client on` accepts the pool's client certificate, RSA or ECDSA,
/// made and signed by openssl: the request is served and nginx says it verified the
/// certificate (`$ssl_client_verify` is `SUCCESS`). Both nginx peers, over HTTP/2.
#[tokio::test]
#[ignore = "needs the peers of scripts/interop.sh"]
async fn nginx_verify_client_accepts_the_pools_rsa_and_ec_certificates() {
    trace_init();
    for var in ["HTTPS_POOL_NGINX_MTLS", "HTTPS_POOL_NGINX_MTLS_HTTP"] {
        let url = peer(var);
        for kind in ["rsa", "ec"] {
            let (cert, key) = client_identity(kind);
            let pool = builder()
                .tls_client_auth_pem(cert, key)
                .build()
                .expect("pool");
            let response = pool
                .request(get(&format!("{url}/")))
                .await
                .expect("request");
            assert_eq!(response.status(), 200, "{var} {kind}");
            let body = http_body_util::BodyExt::collect(response.into_body())
                .await
                .expect("body")
                .to_bytes();
            assert_eq!(&body[..], b"SUCCESS\n", "{var} {kind}");
            let stats = pool.stats();
            assert_eq!(stats.origins[0].connections[0].protocol, Protocol::Http2);
        }
    }
}

/// Without a client certificate, nginx set to require one in the handshake (OpenSSL's
/// verify mode Require, TLS 1.3) refuses the connection with `certificate_required`: the
/// request fails with `Error::ClientCertificateRequired`, and is not sent again.
#[tokio::test]
#[ignore = "needs the peers of scripts/interop.sh"]
async fn nginx_refuses_a_pool_without_a_certificate_with_a_typed_error() {
    trace_init();
    let url = peer("HTTPS_POOL_NGINX_MTLS");
    let pool = builder().build().expect("pool");
    let error = pool
        .request(get(&format!("{url}/")))
        .await
        .expect_err("refused");
    assert!(
        matches!(error, Error::ClientCertificateRequired { .. }),
        "{error:?}"
    );
    let stats = pool.stats();
    assert_eq!(
        stats.origins[0].tls_full_handshakes, 1,
        "one dial, no retry"
    );
}

/// Plain `ssl_verify_client on` is not a TLS refusal: nginx completes the handshake without
/// a certificate and answers `400 No required SSL certificate was sent` (what the pool's
/// `ClientCertificateRequired` docs say to expect from it).
#[tokio::test]
#[ignore = "needs the peers of scripts/interop.sh"]
async fn plain_nginx_verify_client_answers_400_without_a_certificate() {
    trace_init();
    let url = peer("HTTPS_POOL_NGINX_MTLS_HTTP");
    let pool = builder().build().expect("pool");
    let response = pool
        .request(get(&format!("{url}/")))
        .await
        .expect("request");
    assert_eq!(response.status(), 400);
}

/// Over TLS 1.2 (the pool's own rustls config limited to it with `tls_config`), nginx refuses
/// a pool without a certificate with a bare `handshake_failure`; the server had asked for a
/// certificate the pool could not give, so that is `Error::ClientCertificateRequired` too.
#[tokio::test]
#[ignore = "needs the peers of scripts/interop.sh"]
async fn nginx_refuses_a_tls12_pool_without_a_certificate_with_a_typed_error() {
    use https_pool::rustls::pki_types::CertificateDer;
    use https_pool::rustls::pki_types::pem::PemObject;

    trace_init();
    let url = peer("HTTPS_POOL_NGINX_MTLS");
    let mut roots = https_pool::rustls::RootCertStore::empty();
    let cas = std::env::var("HTTPS_POOL_INTEROP_CAS").expect("HTTPS_POOL_INTEROP_CAS");
    for path in cas.split(':').filter(|p| !p.is_empty()) {
        for cert in CertificateDer::pem_file_iter(path).expect("CA file") {
            roots.add(cert.expect("CA PEM")).expect("CA");
        }
    }
    let provider = Arc::new(https_pool::rustls::crypto::ring::default_provider());
    let tls12 = https_pool::rustls::ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&https_pool::rustls::version::TLS12])
        .expect("TLS 1.2")
        .with_root_certificates(roots)
        .with_no_client_auth();
    let pool = ConnectionPoolManager::builder()
        .tls_config(tls12)
        .build()
        .expect("pool");
    let error = pool
        .request(get(&format!("{url}/")))
        .await
        .expect_err("refused");
    assert!(
        matches!(error, Error::ClientCertificateRequired { .. }),
        "{error:?}"
    );
}

// ===== TLS 1.3 early data (0-RTT) against nginx's `ssl_early_data on` =====

/// Bound for nginx's `keepalive_timeout` (2 s on the early-data peer: longer than the pool's
/// 1 s "in use" window, so the closed connection gets no replacement dialed ahead) to close the
/// pool's idle connections, so the next request dials (and resumes) a connection of its own.
const NGINX_IDLE_CLOSE: Duration = Duration::from_secs(10);

/// The round trip the early-data tests add in front of nginx. nginx says `$ssl_early_data` =
/// 1 only while its side of the handshake is unfinished; on bare loopback the client's
/// Finished can reach nginx before nginx parsed the request that came early (it reads all
/// that is there before parsing), and the request is then reported as not early although it
/// was. A round trip of delay keeps the Finished a round trip behind the early data.
const EARLY_DATA_RTT: Duration = Duration::from_millis(20);

/// A relay adding [`EARLY_DATA_RTT`] in front of the early-data peer, and its URL.
fn early_data_relay() -> (https_pool_testkit::RttRelay, String) {
    let url = peer("HTTPS_POOL_NGINX_EARLY");
    let addr: std::net::SocketAddr = url
        .trim_start_matches("https://")
        .parse()
        .expect("the peer's URL is https://IP:PORT");
    let relay = https_pool_testkit::RttRelay::start(addr, EARLY_DATA_RTT).expect("relay starts");
    let url = relay.url();
    (relay, url)
}

/// The body of a response from the early-data peer: nginx's `$ssl_early_data` and a newline.
async fn early_data_says(pool: &ConnectionPoolManager, request: http::Request<String>) -> String {
    let response = pool.request(request).await.expect("request");
    assert_eq!(response.status(), 200);
    let body = http_body_util::BodyExt::collect(response.into_body())
        .await
        .expect("body")
        .to_bytes();
    String::from_utf8_lossy(&body).into_owned()
}

/// How many times nginx logged each of the URIs under `/{tag}/` (or `/too-early/{tag}/`).
async fn logged(tag: &str) -> std::collections::HashMap<String, u32> {
    // nginx logs a request when it is done with it; give the last lines a moment.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let log = peer("HTTPS_POOL_NGINX_EARLY_LOG");
    let text = std::fs::read_to_string(&log).unwrap_or_else(|e| panic!("reading {log}: {e}"));
    let mut seen = std::collections::HashMap::new();
    for line in text.lines().filter(|l| l.contains(&format!("/{tag}/"))) {
        *seen.entry(line.to_owned()).or_default() += 1;
    }
    seen
}

/// GET requests for `path`s under `base` (an empty String body, as `early_data_says` takes).
fn gets_under(base: String) -> impl Fn(&str) -> http::Request<String> {
    move |path| {
        http::Request::get(format!("{base}/{path}"))
            .body(String::new())
            .expect("request")
    }
}

fn unique_tag(name: &str) -> String {
    format!(
        "{name}-{}-{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_micros())
    )
}

/// With `tls_early_data` on, a GET that causes a resumed dial goes to nginx as TLS 1.3 early
/// data (`$ssl_early_data` = 1); a POST, and a GET marked `NoEarlyData`, on such a dial wait
/// for the handshake (`$ssl_early_data` empty); the first dial, with no session to resume,
/// sends nothing early. Every request is processed once, and the stats count the early data
/// nginx accepted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs the servers of scripts/interop.sh"]
async fn nginx_answers_a_get_sent_as_early_data_and_a_post_that_was_not() {
    trace_init();
    let (_relay, url) = early_data_relay();
    let tag = unique_tag("early");
    let pool = builder().tls_early_data(true).build().expect("pool");
    let get = gets_under(format!("{url}/{tag}"));

    assert_eq!(early_data_says(&pool, get("first")).await, "\n");
    until_no_connection(&pool, NGINX_IDLE_CLOSE).await;
    assert_eq!(early_data_says(&pool, get("get")).await, "1\n");
    until_no_connection(&pool, NGINX_IDLE_CLOSE).await;
    let post = http::Request::post(format!("{url}/{tag}/post"))
        .body("not replay-safe".to_owned())
        .expect("request");
    assert_eq!(early_data_says(&pool, post).await, "\n");
    until_no_connection(&pool, NGINX_IDLE_CLOSE).await;
    let mut opted_out = get("opted-out");
    opted_out.extensions_mut().insert(https_pool::NoEarlyData);
    assert_eq!(early_data_says(&pool, opted_out).await, "\n");

    let stats = pool.stats();
    let origin = &stats.origins[0];
    assert_eq!(
        (origin.tls_full_handshakes, origin.tls_resumed_handshakes),
        (1, 3)
    );
    // Every resumed dial sent its HTTP/2 preface early; nginx took it each time.
    assert_eq!(
        (origin.early_data_accepted, origin.early_data_rejected),
        (3, 0)
    );
    let text = stats.to_prometheus();
    let line = format!(
        "https_pool_tls_early_data_total{{origin=\"{}\",outcome=\"accepted\"}} 3\n",
        origin.origin
    );
    assert!(text.contains(&line), "{text}");
    let seen = logged(&tag).await;
    assert_eq!(seen.len(), 4, "{seen:?}");
    assert!(seen.values().all(|n| *n == 1), "processed twice: {seen:?}");
}

/// nginx answers `425 Too Early` to a request it got as early data under `/too-early/`: the
/// pool sends it again once a handshake completed, and the caller sees only the 200.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs the servers of scripts/interop.sh"]
async fn nginx_too_early_is_sent_again_after_the_handshake() {
    trace_init();
    let (_relay, url) = early_data_relay();
    let tag = unique_tag("too-early");
    let pool = builder().tls_early_data(true).build().expect("pool");
    let get = gets_under(format!("{url}/too-early/{tag}"));
    assert_eq!(early_data_says(&pool, get("first")).await, "\n");
    until_no_connection(&pool, NGINX_IDLE_CLOSE).await;
    // Sent early, answered 425, sent again after the handshake: nginx says not early.
    assert_eq!(early_data_says(&pool, get("again")).await, "\n");
    let stats = pool.stats();
    assert_eq!(stats.requests_retried, 1);
    assert!(stats.origins[0].early_data_accepted >= 1, "{stats:?}");
    let seen = logged(&tag).await;
    let again = format!("/too-early/{tag}/again");
    // Logged twice: the 425, which nginx did not process, and the 200.
    assert_eq!(seen.get(&again), Some(&2), "{seen:?}");
}

/// The first request on a resumed dial, with early data on and off, through the relay: with
/// it the request goes with the ClientHello (nginx says so), without it the request waits for
/// the handshake. Prints both in round trips of the relay (a figure, not asserted).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs the servers of scripts/interop.sh"]
async fn nginx_first_request_on_a_resumed_dial_with_early_data_on_and_off() {
    trace_init();
    let (_relay, url) = early_data_relay();
    let tag = unique_tag("rtts");
    let mut rtts = Vec::new();
    for early in [true, false] {
        let pool = builder().tls_early_data(early).build().expect("pool");
        let get = gets_under(format!("{url}/{tag}/{early}"));
        assert_eq!(early_data_says(&pool, get("first")).await, "\n");
        until_no_connection(&pool, NGINX_IDLE_CLOSE).await;
        let started = std::time::Instant::now();
        let said = early_data_says(&pool, get("second")).await;
        rtts.push(started.elapsed().as_secs_f64() / EARLY_DATA_RTT.as_secs_f64());
        assert_eq!(said, if early { "1\n" } else { "\n" });
        let origin = &pool.stats().origins[0];
        assert_eq!(origin.tls_resumed_handshakes, 1);
        assert_eq!(origin.early_data_accepted, u64::from(early));
    }
    println!(
        "first request on a resumed dial over a {:?} relay to nginx: {:.2} RTT with early data, \
         {:.2} RTT without",
        EARLY_DATA_RTT, rtts[0], rtts[1]
    );
}

/// A resumed dial whose server goes silent after the ClientHello (the relay black-holes the
/// connection): the connection fails once `tls_handshake_timeout` has passed, and the request
/// that went as early data fails with it and is not sent again, by the pool or as
/// [`Error::is_retry_safe`] (it may have reached the server).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs the servers of scripts/interop.sh"]
async fn an_early_data_handshake_that_never_completes_fails_at_its_deadline() {
    trace_init();
    let (relay, url) = early_data_relay();
    let tag = unique_tag("silent");
    let pool = builder()
        .tls_early_data(true)
        .tls_handshake_timeout(Duration::from_millis(500))
        .build()
        .expect("pool");
    let get = gets_under(format!("{url}/{tag}"));
    assert_eq!(early_data_says(&pool, get("first")).await, "\n");
    until_no_connection(&pool, NGINX_IDLE_CLOSE).await;
    relay.set_black_hole(true);
    let error = pool.request(get("silent")).await.expect_err("no answer");
    assert!(
        matches!(&error, Error::ConnectionClosed { source, .. }
            if source.to_string().contains("TLS handshake (with early data) not complete")),
        "{error:?}"
    );
    assert!(!error.is_retry_safe());
    let stats = pool.stats();
    assert_eq!(stats.requests_retried, 0);
    let origin = &stats.origins[0];
    assert_eq!(
        (origin.early_data_accepted, origin.early_data_rejected),
        (0, 0)
    );
}
