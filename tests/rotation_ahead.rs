//! Replacements dialed ahead: a connection that ends predictably (the server's per-connection
//! budget, once seen) or that a server GOAWAYs while it is in use gets its replacement before
//! a request has to wait for one. Runs through the testkit's RTT relay, so a dial costs round
//! trips as it does on a real path.

mod support;

use std::time::Duration;

use https_pool::Origin;
use https_pool_testkit::{RttRelay, TestServer, TestServerConfig};
use support::{body_len, get, trace_init};

const RTT: Duration = Duration::from_millis(50);

fn pool_for(server: &TestServer) -> https_pool::ConnectionPoolManager {
    https_pool::ConnectionPoolManager::builder()
        .tls_webpki_roots(false)
        .tls_extra_ca_pem(server.ca_pem())
        .build()
        .expect("pool builds")
}

/// The server GOAWAYs every 20 requests. Once the pool has seen two rotations, a sequential
/// caller never waits for a connection again: every replacement was dialed while the old
/// connection still served, nothing was retried, and there is one dial per rotation.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn once_the_budget_is_seen_no_request_waits_for_a_replacement() {
    trace_init();
    let server =
        TestServer::start(TestServerConfig::default().goaway_after(20)).expect("server starts");
    let relay = RttRelay::start(server.addr(), RTT).expect("relay starts");
    let origin: Origin = relay.url().parse().expect("origin");
    let pool = pool_for(&server);
    let url = format!("{}/steady", relay.url());
    for warmed in pool.prewarm_hosts(&[url.as_str()]).await {
        warmed.result.expect("prewarm");
    }
    // Learning: until two rotations agree (bounded: 4 connections' worth).
    let mut sent = 0;
    while pool
        .stats()
        .origin(&origin)
        .and_then(|o| o.learned_request_budget)
        .is_none()
    {
        assert!(sent < 80, "no budget learned after {sent} requests");
        body_len(pool.request(get(&url)).await.expect("request")).await;
        sent += 1;
    }
    let before = pool.stats();
    for _ in 0..60 {
        body_len(pool.request(get(&url)).await.expect("request")).await;
    }
    let after = pool.stats();
    let opened = after.connections_opened - before.connections_opened;
    assert!(
        opened >= 3,
        "60 requests at a budget under 20 rotate ({opened} dials)"
    );
    assert!(
        opened <= 5,
        "one dial per rotation, no more ({opened} dials)"
    );
    assert_eq!(
        after.time_in_queue.count, before.time_in_queue.count,
        "no request waited for a connection"
    );
    assert_eq!(
        after.requests_retried, before.requests_retried,
        "nothing retried"
    );
    assert_eq!(after.requests_failed, 0);
}

/// A server GOAWAYs a connection while a request is on it (a deploy): once the connection
/// ends (h2 tells of a GOAWAY that refuses nothing when the connection closes, after the
/// request in flight finished), the pool dials its replacement without another request asking
/// for one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_goaway_on_a_connection_in_use_dials_its_replacement_at_once() {
    trace_init();
    let server =
        TestServer::start(TestServerConfig::default().response_delay(Duration::from_millis(300)))
            .expect("server starts");
    let origin: Origin = server.url().parse().expect("origin");
    let pool = pool_for(&server);
    let url = server.url_for("/slow");
    let in_flight = tokio::spawn({
        let pool = pool.clone();
        async move { body_len(pool.request(get(&url)).await.expect("request")).await }
    });
    // Bounded: until the request is on the server.
    for _ in 0..1000 {
        if server.counters().requests() == 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    let first = pool.stats().origin(&origin).expect("origin").connections[0].id;
    assert_eq!(server.goaway_connections(), 1);
    // The replacement comes without another request (bounded, well before a 10 s guard).
    let mut replaced = false;
    for _ in 0..1000 {
        let stats = pool.stats();
        let o = stats.origin(&origin).expect("origin");
        if o.connections.iter().any(|c| c.id != first) {
            replaced = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    assert!(
        replaced,
        "a replacement was dialed before any request asked"
    );
    in_flight.await.expect("task");
    assert_eq!(
        server.counters().requests(),
        1,
        "only the one request was sent"
    );
    assert_eq!(pool.stats().requests_failed, 0);
}

/// The server GOAWAYs every 40 requests. After its first GOAWAY (seen by a sequential caller:
/// one observation, a forecast, not yet a budget), four callers keep a stream each in flight.
/// At the next rotation no request is refused: the connection past the forecast takes no more
/// requests while its replacement, dialed ahead, has room, so the server's GOAWAY (sent on its
/// 40th request) finds nothing sent after it. That end confirms the budget.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_the_first_goaway_no_request_is_refused_at_the_next_rotation() {
    trace_init();
    const BUDGET: u64 = 40;
    let server =
        TestServer::start(TestServerConfig::default().goaway_after(BUDGET)).expect("server starts");
    let relay = RttRelay::start(server.addr(), RTT).expect("relay starts");
    let origin: Origin = relay.url().parse().expect("origin");
    let pool = pool_for(&server);
    let url = format!("{}/forecast", relay.url());
    let connection_ids = |pool: &https_pool::ConnectionPoolManager| -> Vec<u64> {
        let stats = pool.stats();
        let o = stats.origin(&origin).expect("origin");
        o.connections.iter().map(|c| c.id).collect()
    };
    body_len(pool.request(get(&url)).await.expect("request")).await;
    let first = connection_ids(&pool)[0];
    for _ in 1..BUDGET {
        body_len(pool.request(get(&url)).await.expect("request")).await;
    }
    // Bounded: until the first connection's end is seen (its replacement is dialed at once).
    for _ in 0..400 {
        if !connection_ids(&pool).contains(&first) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    assert!(
        !connection_ids(&pool).contains(&first),
        "the server ended it"
    );
    let before = pool.stats();
    assert_eq!(
        before.requests_retried, 0,
        "a sequential caller: nothing refused"
    );
    assert_eq!(
        before
            .origin(&origin)
            .and_then(|o| o.learned_request_budget),
        None,
        "one rotation is a forecast, not a budget"
    );
    let callers: Vec<_> = (0..4)
        .map(|_| {
            let (pool, url) = (pool.clone(), url.clone());
            tokio::spawn(async move {
                for _ in 0..40 {
                    body_len(pool.request(get(&url)).await.expect("request")).await;
                }
            })
        })
        .collect();
    for caller in callers {
        caller.await.expect("caller");
    }
    let after = pool.stats();
    let opened = after.connections_opened - before.connections_opened;
    assert!(
        opened >= 3,
        "160 more requests at a budget of {BUDGET} rotate at least 3 more times ({opened} dials)"
    );
    assert_eq!(
        after.requests_retried, 0,
        "no request refused after the first GOAWAY"
    );
    assert!(
        server
            .counters()
            .max_requests_on_one_connection
            .load(std::sync::atomic::Ordering::SeqCst)
            <= BUDGET,
        "nothing was sent past a connection's budget"
    );
    assert_eq!(after.requests_failed, 0);
    assert!(
        after
            .origin(&origin)
            .and_then(|o| o.learned_request_budget)
            .is_some(),
        "the next rotation confirmed the budget"
    );
}

/// A deploy GOAWAYs the connection after 20 requests: a forecast, not a budget. The next
/// connection reaches 20 and requests move to its replacement (dialed ahead, over the relay,
/// while the old one served); the server does not end it, so once it has sat idle for a
/// second the forecast is refuted, and it serves again. No request is refused or fails, and
/// nothing is learned.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_forecast_the_next_connection_outlives_is_refuted() {
    trace_init();
    let server = TestServer::start(TestServerConfig::default()).expect("server starts");
    let relay = RttRelay::start(server.addr(), RTT).expect("relay starts");
    let origin: Origin = relay.url().parse().expect("origin");
    let pool = pool_for(&server);
    let url = format!("{}/deploy", relay.url());
    let sent_on = |pool: &https_pool::ConnectionPoolManager| -> Vec<(u64, u64)> {
        let stats = pool.stats();
        let o = stats.origin(&origin).expect("origin");
        o.connections.iter().map(|c| (c.id, c.leases)).collect()
    };
    for _ in 0..20 {
        body_len(pool.request(get(&url)).await.expect("request")).await;
    }
    let first = sent_on(&pool)[0].0;
    assert_eq!(server.goaway_connections(), 1, "the deploy");
    for _ in 0..400 {
        if sent_on(&pool).iter().all(|&(id, _)| id != first) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    for _ in 0..25 {
        body_len(pool.request(get(&url)).await.expect("request")).await;
    }
    let moved = sent_on(&pool);
    let second = moved
        .iter()
        .find(|&&(_, sent)| sent == 20)
        .map(|&(id, _)| id)
        .unwrap_or_else(|| panic!("a connection stopped at the forecast: {moved:?}"));
    // The sweep runs every second, and refutes after a second of idleness (bounded).
    let mut refuted = false;
    for _ in 0..40 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        body_len(pool.request(get(&url)).await.expect("request")).await;
        let now = sent_on(&pool);
        if now.iter().any(|&(id, sent)| id == second && sent > 20) {
            refuted = true;
            break;
        }
    }
    let stats = pool.stats();
    assert!(
        refuted,
        "the connection past the forecast serves again: {:?}",
        sent_on(&pool)
    );
    assert_eq!(stats.requests_retried, 0);
    assert_eq!(stats.requests_failed, 0);
    assert_eq!(
        stats.origin(&origin).and_then(|o| o.learned_request_budget),
        None
    );
}
