//! Waiting for a stream slot, against the embedded HTTPS server on 127.0.0.1: a freed slot is
//! handed to the longest waiter, in arrival order, and a waiter that goes away after being
//! handed one passes it on. No timing is asserted.

mod support;

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use https_pool::{ConnectionPoolManager, Error, StreamHandle};
use support::{one_slot, trace_init};

type Acquire = Pin<Box<dyn Future<Output = Result<StreamHandle, Error>> + Send>>;

/// Polls `future` once; `Pending` means it queued.
fn poll_once(future: &mut Acquire) -> Poll<Result<StreamHandle, Error>> {
    future
        .as_mut()
        .poll(&mut Context::from_waker(Waker::noop()))
}

fn acquire(pool: &ConnectionPoolManager, origin: &str) -> Acquire {
    let (pool, origin) = (pool.clone(), origin.to_owned());
    Box::pin(async move { pool.acquire(origin.as_str()).await })
}

/// A waiter dropped after the freed slot was handed to it (before it ran) passes the slot to
/// the next waiter; nothing leaks.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_waiter_cancelled_after_being_handed_a_slot_passes_it_on() {
    trace_init();
    let (_server, pool, origin) = one_slot(|b| b).await;
    let held = pool.acquire(&origin).await.expect("the only slot");
    let mut first = acquire(&pool, &origin);
    let mut second = acquire(&pool, &origin);
    assert!(poll_once(&mut first).is_pending(), "first queues");
    assert!(
        poll_once(&mut second).is_pending(),
        "second queues behind it"
    );
    assert_eq!(pool.stats().waiters(), 2);

    drop(held); // the slot goes to `first`, which is never polled again
    assert_eq!(pool.stats().waiters(), 1, "handed to the first waiter");
    assert_eq!(
        pool.stats().handles_outstanding,
        1,
        "still leased, now to the waiter"
    );
    drop(first); // ...and passes it on
    let handle = tokio::time::timeout(Duration::from_secs(10), second)
        .await
        .expect("the second waiter was handed the slot")
        .expect("acquired");
    let stats = pool.stats();
    assert_eq!(stats.waiters(), 0);
    assert_eq!(stats.handles_outstanding, 1);
    assert_eq!(stats.active_streams(), 1);
    drop(handle);
    let stats = pool.stats();
    assert_eq!(stats.handles_outstanding, 0, "no slot leaked");
    assert_eq!(stats.active_streams(), 0);
    assert_eq!(stats.connections_opened, 1);
}

/// A burst of 20 waiters on one slot is served in arrival order, each handed the slot the one
/// before it gave back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn waiters_are_served_in_arrival_order() {
    trace_init();
    const WAITERS: usize = 20;
    let (_server, pool, origin) = one_slot(|b| b).await;
    let held = pool.acquire(&origin).await.expect("the only slot");
    let (order_tx, mut order_rx) = tokio::sync::mpsc::unbounded_channel();
    let mut tasks = Vec::new();
    for i in 0..WAITERS {
        let (task_pool, origin, order_tx) = (pool.clone(), origin.clone(), order_tx.clone());
        tasks.push(tokio::spawn(async move {
            let handle = task_pool.acquire(origin.as_str()).await.expect("acquired");
            order_tx.send(i).expect("order recorded");
            tokio::task::yield_now().await;
            drop(handle);
        }));
        // The next one is spawned only once this one queued, so arrival order is known.
        for _ in 0..5_000 {
            if pool.stats().waiters() == i + 1 {
                break;
            }
            tokio::time::sleep(Duration::from_micros(200)).await;
        }
        assert_eq!(pool.stats().waiters(), i + 1, "waiter {i} queued");
    }
    drop(held);
    for task in tasks {
        tokio::time::timeout(Duration::from_secs(10), task)
            .await
            .expect("every waiter is served")
            .expect("task ran");
    }
    drop(order_tx);
    let mut order = Vec::new();
    while let Some(i) = order_rx.recv().await {
        order.push(i);
    }
    assert_eq!(order, (0..WAITERS).collect::<Vec<_>>(), "FIFO");
    assert_eq!(pool.stats().handles_outstanding, 0);
}

/// A newcomer does not take a freed slot ahead of a queued waiter (no barging): with one
/// waiter queued, a slot freed while a newcomer arrives goes to the waiter.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_newcomer_does_not_barge_past_a_queued_waiter() {
    trace_init();
    let (_server, pool, origin) = one_slot(|b| b).await;
    let held = pool.acquire(&origin).await.expect("the only slot");
    let mut waiter = acquire(&pool, &origin);
    assert!(poll_once(&mut waiter).is_pending());
    drop(held);
    let mut newcomer = acquire(&pool, &origin);
    assert!(
        poll_once(&mut newcomer).is_pending(),
        "the slot was handed to the waiter, not left for the newcomer"
    );
    let handle = tokio::time::timeout(Duration::from_secs(10), waiter)
        .await
        .expect("served")
        .expect("acquired");
    drop(handle);
    let handle = tokio::time::timeout(Duration::from_secs(10), newcomer)
        .await
        .expect("then the newcomer")
        .expect("acquired");
    drop(handle);
    assert_eq!(pool.stats().handles_outstanding, 0);
}
