//! Request priority, against the embedded HTTPS server on 127.0.0.1: waiters are served by
//! RFC 9218 urgency (FIFO within one), a starved waiter is promoted after the aging bound, and
//! the `priority` header goes out only when set. No timing is asserted.

mod support;

use std::time::Duration;

use https_pool::{ConnectionPoolManager, Priority};
use https_pool_testkit::{TestServer, TestServerConfig};
use support::{builder_for, get, one_slot, trace_init};

/// Queues one waiter per urgency, in the order given (each spawned once the one before it
/// queued), releases the held slot, and returns the order they were served in.
async fn served_order(
    pool: &ConnectionPoolManager,
    origin: &str,
    urgencies: &[u8],
    pause_after_first: Duration,
) -> Vec<u8> {
    let held = pool.acquire(origin).await.expect("the only slot");
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let mut tasks = Vec::new();
    for (i, &urgency) in urgencies.iter().enumerate() {
        let (task_pool, origin, tx) = (pool.clone(), origin.to_owned(), tx.clone());
        let priority = Priority::new(urgency).expect("valid urgency");
        tasks.push(tokio::spawn(async move {
            let handle = task_pool
                .acquire_with_priority(origin.as_str(), priority)
                .await
                .expect("acquired");
            tx.send(urgency).expect("order recorded");
            tokio::task::yield_now().await;
            drop(handle);
        }));
        for _ in 0..5_000 {
            if pool.stats().waiters() == i + 1 {
                break;
            }
            tokio::time::sleep(Duration::from_micros(200)).await;
        }
        assert_eq!(pool.stats().waiters(), i + 1, "waiter {i} queued");
        if i == 0 {
            tokio::time::sleep(pause_after_first).await;
        }
    }
    drop(held);
    for task in tasks {
        tokio::time::timeout(Duration::from_secs(10), task)
            .await
            .expect("every waiter is served")
            .expect("task ran");
    }
    drop(tx);
    let mut order = Vec::new();
    while let Some(u) = rx.recv().await {
        order.push(u);
    }
    order
}

/// With one slot taken, waiters of urgency 5, 5, 1, 3 are served 1, 3, 5, 5.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn waiters_are_served_by_urgency_then_arrival() {
    trace_init();
    let (_server, pool, origin) = one_slot(|b| b.priority_aging(Duration::from_secs(60))).await;
    let order = served_order(&pool, &origin, &[5, 5, 1, 3], Duration::ZERO).await;
    assert_eq!(order, vec![1, 3, 5, 5]);
    let stats = pool.stats();
    assert_eq!(stats.time_in_queue_by_urgency[5].count, 2);
    assert_eq!(stats.time_in_queue_by_urgency[1].count, 1);
    assert_eq!(stats.handles_outstanding, 0);
}

/// A waiter of urgency 7 that has waited past the aging bound is served before a newer one
/// of urgency 1 (it counts as urgency 0).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn aging_promotes_a_starved_waiter() {
    trace_init();
    let (_server, pool, origin) = one_slot(|b| b.priority_aging(Duration::from_millis(20))).await;
    let order = served_order(&pool, &origin, &[7, 1], Duration::from_millis(100)).await;
    assert_eq!(order, vec![7, 1]);
}

/// An urgent waiter that leaves before it is served leaves no trace: the slot goes to the
/// next waiter and nothing stays queued or leased.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cancelled_urgent_waiter_leaves_no_trace() {
    trace_init();
    let (_server, pool, origin) = one_slot(|b| b.priority_aging(Duration::from_secs(60))).await;
    let held = pool.acquire(&origin).await.expect("the only slot");
    let bulk = {
        let (pool, origin) = (pool.clone(), origin.clone());
        tokio::spawn(async move {
            pool.acquire_with_priority(origin.as_str(), Priority::new(6).expect("valid"))
                .await
        })
    };
    let urgent = {
        let (pool, origin) = (pool.clone(), origin.clone());
        tokio::spawn(async move {
            pool.acquire_with_priority(origin.as_str(), Priority::new(0).expect("valid"))
                .await
        })
    };
    for _ in 0..5_000 {
        if pool.stats().waiters() == 2 {
            break;
        }
        tokio::time::sleep(Duration::from_micros(200)).await;
    }
    assert_eq!(pool.stats().waiters(), 2);
    urgent.abort();
    let _ = urgent.await;
    assert_eq!(
        pool.stats().waiters(),
        1,
        "the cancelled waiter left the queue"
    );
    drop(held);
    let handle = tokio::time::timeout(Duration::from_secs(10), bulk)
        .await
        .expect("the bulk waiter is served")
        .expect("task ran")
        .expect("acquired");
    drop(handle);
    let stats = pool.stats();
    assert_eq!(stats.waiters(), 0);
    assert_eq!(stats.handles_outstanding, 0);
    assert_eq!(stats.time_in_queue_by_urgency[0].count, 0, "never served");
}

/// The `priority` header (RFC 9218 §4) goes out only for a non-default priority, and never
/// replaces one the caller set.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_priority_header_is_sent_only_when_set() {
    trace_init();
    let server = TestServer::start(TestServerConfig::default()).expect("server starts");
    let pool = builder_for(&server).build().expect("pool builds");
    let echo = |response: &http::Response<https_pool::Body>| {
        response
            .headers()
            .get("x-echo-priority")
            .map(|v| v.to_str().expect("ascii").to_owned())
    };

    let plain = pool.request(get(&server.url_for("/p"))).await.expect("ok");
    assert_eq!(echo(&plain), None, "no priority, no header");

    let mut default = get(&server.url_for("/p"));
    default.extensions_mut().insert(Priority::default());
    let default = pool.request(default).await.expect("ok");
    assert_eq!(echo(&default), None, "the default is not sent");

    let mut urgent = get(&server.url_for("/p"));
    urgent
        .extensions_mut()
        .insert(Priority::new(1).expect("valid").incremental(true));
    let urgent = pool.request(urgent).await.expect("ok");
    assert_eq!(echo(&urgent).as_deref(), Some("u=1, i"));

    let mut own = get(&server.url_for("/p"));
    own.extensions_mut()
        .insert(Priority::new(1).expect("valid"));
    own.headers_mut()
        .insert("priority", http::HeaderValue::from_static("u=4"));
    let own = pool.request(own).await.expect("ok");
    assert_eq!(
        echo(&own).as_deref(),
        Some("u=4"),
        "the caller's header is kept"
    );

    // Through a handle, too.
    let mut handle = pool.acquire(server.url()).await.expect("acquire");
    let mut request = get("/handle");
    request
        .extensions_mut()
        .insert(Priority::new(6).expect("valid"));
    let response = handle.send(request).await.expect("ok");
    assert_eq!(echo(&response).as_deref(), Some("u=6"));
}

/// Urgency outside 0..=7 is a typed error.
#[test]
fn urgency_above_seven_is_an_invalid_priority() {
    assert!(matches!(
        Priority::new(8),
        Err(https_pool::Error::InvalidPriority { urgency: 8 })
    ));
}
