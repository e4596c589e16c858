use std::time::Duration;

use super::*;

const TIMEOUT: Duration = Duration::from_secs(60);

/// Aging off: urgency alone orders.
const NO_AGING: Aging = Aging { left: None };

fn waker() -> Waker {
    Waker::noop().clone()
}

fn queue_of(n: usize) -> (WaitQueue<u32>, Vec<WaiterKey>) {
    let mut q = WaitQueue::default();
    let keys = (0..n)
        .map(|_| q.push(None, 3, Instant::now(), waker()))
        .collect();
    (q, keys)
}

/// Slots go to waiters in arrival order.
#[test]
fn hand_off_is_fifo() {
    let (mut q, keys) = queue_of(3);
    let conn = Arc::new(7u32);
    for key in &keys {
        assert!(q.hand_to_next(1, 0, &conn, NO_AGING).is_some());
        assert!(matches!(q.poll(*key, &waker()), Poll::Ready(Ok(_))));
    }
    assert_eq!(q.waiting(), 0);
    assert!(q.hand_to_next(1, 0, &conn, NO_AGING).is_none());
}

/// A waiter that left is skipped; one handed a slot before leaving gives it back.
#[test]
fn cancelled_waiters_are_skipped_and_return_handed_slots() {
    let (mut q, keys) = queue_of(3);
    let conn = Arc::new(7u32);
    assert!(matches!(q.cancel(keys[0]), Cancelled::Nothing));
    assert_eq!(q.waiting(), 2);
    assert!(q.hand_to_next(1, 0, &conn, NO_AGING).is_some());
    // keys[1] got it; it is cancelled before it woke: the slot comes back.
    assert!(matches!(q.cancel(keys[1]), Cancelled::Handed(_)));
    assert_eq!(q.waiting(), 1);
    assert!(q.hand_to_next(1, 0, &conn, NO_AGING).is_some());
    assert!(matches!(q.poll(keys[2], &waker()), Poll::Ready(Ok(_))));
    // A spent key is not confused with the entry's next occupant.
    let newcomer = q.push(None, 3, Instant::now(), waker());
    assert!(matches!(q.cancel(keys[2]), Cancelled::Nothing));
    assert!(q.poll(newcomer, &waker()).is_pending());
}

/// A waiter excluding a connection keeps its place; the next one takes that slot.
#[test]
fn exclusion_skips_without_losing_the_place() {
    let mut q: WaitQueue<u32> = WaitQueue::default();
    let first = q.push(
        Some(RetryTarget {
            exclude: 1,
            within_first: None,
        }),
        3,
        Instant::now(),
        waker(),
    );
    let second = q.push(None, 3, Instant::now(), waker());
    let conn1 = Arc::new(1u32);
    let conn2 = Arc::new(2u32);
    assert!(q.hand_to_next(1, 0, &conn1, NO_AGING).is_some());
    assert!(matches!(q.poll(second, &waker()), Poll::Ready(Ok(c)) if *c == 1));
    assert!(q.poll(first, &waker()).is_pending());
    assert!(q.hand_to_next(2, 0, &conn2, NO_AGING).is_some());
    assert!(matches!(q.poll(first, &waker()), Poll::Ready(Ok(c)) if *c == 2));
}

/// Failing the queue reaches every waiter once.
#[test]
fn fail_all_reaches_every_waiter() {
    let (mut q, keys) = queue_of(4);
    q.cancel(keys[2]);
    let wakers = q.fail_all(&Error::PoolClosed);
    assert_eq!(wakers.len(), 3);
    assert_eq!(q.waiting(), 0);
    for key in [keys[0], keys[1], keys[3]] {
        assert!(matches!(
            q.poll(key, &waker()),
            Poll::Ready(Err(Error::PoolClosed))
        ));
    }
}

/// A retry goes ahead of everyone waiting; it was sent before any of them. Deadlines
/// expire per lane.
#[test]
fn retries_are_served_first() {
    let mut q: WaitQueue<u32> = WaitQueue::default();
    let first = q.push(None, 3, Instant::now(), waker());
    let retry = q.push(
        Some(RetryTarget {
            exclude: 9,
            within_first: None,
        }),
        3,
        Instant::now(),
        waker(),
    );
    let conn = Arc::new(1u32);
    assert!(q.hand_to_next(1, 0, &conn, NO_AGING).is_some());
    assert!(matches!(q.poll(retry, &waker()), Poll::Ready(Ok(_))));
    assert!(q.poll(first, &waker()).is_pending());
}

/// A retry refused as the 51st request waits for a connection on which clearly fewer than
/// 50 went out.
#[test]
fn a_retry_goes_only_where_it_will_be_among_the_first_n() {
    let mut q: WaitQueue<u32> = WaitQueue::default();
    let target = RetryTarget {
        exclude: 1,
        within_first: Some(50),
    };
    let retry = q.push(Some(target), 3, Instant::now(), waker());
    let conn = Arc::new(2u32);
    assert!(
        q.hand_to_next(2, 60, &conn, NO_AGING).is_none(),
        "too far into connection 2"
    );
    assert!(
        q.hand_to_next(3, 10, &conn, NO_AGING).is_some(),
        "connection 3 is fresh enough"
    );
    assert!(matches!(q.poll(retry, &waker()), Poll::Ready(Ok(_))));
}

/// Waiters are served by urgency, FIFO within one: 5, 5, 1, 3 → 1, 3, 5, 5.
#[test]
fn urgency_orders_the_queue() {
    let mut q: WaitQueue<u32> = WaitQueue::default();
    let now = Instant::now();
    let keys: Vec<_> = [5u8, 5, 1, 3]
        .iter()
        .map(|&u| q.push(None, u, now + TIMEOUT, waker()))
        .collect();
    let conn = Arc::new(1u32);
    let mut served = Vec::new();
    for _ in 0..4 {
        assert!(q.hand_to_next(1, 0, &conn, NO_AGING).is_some());
        let i = keys
            .iter()
            .position(|k| matches!(q.take_outcome(*k), Some(Ok(_))))
            .expect("one was served");
        served.push(i);
    }
    assert_eq!(served, vec![2, 3, 0, 1]);
}

/// A waiter older than the aging bound is served as urgency 0, ahead of a newer urgent
/// one.
#[test]
fn aging_promotes_a_starved_waiter() {
    let mut q: WaitQueue<u32> = WaitQueue::default();
    let aging = Aging::new(Duration::from_millis(100), TIMEOUT);
    let now = Instant::now();
    let old = now - Duration::from_secs(1);
    let starved = q.push(None, 7, old + TIMEOUT, waker());
    let urgent = q.push(None, 1, now + TIMEOUT, waker());
    let conn = Arc::new(1u32);
    assert!(q.hand_to_next(1, 0, &conn, aging).is_some());
    assert!(matches!(q.take_outcome(starved), Some(Ok(_))));
    assert!(q.take_outcome(urgent).is_none());
    // Without aging, urgency decides.
    let mut q: WaitQueue<u32> = WaitQueue::default();
    let starved = q.push(None, 7, old + TIMEOUT, waker());
    let urgent = q.push(None, 1, now + TIMEOUT, waker());
    assert!(q.hand_to_next(1, 0, &conn, NO_AGING).is_some());
    assert!(matches!(q.take_outcome(urgent), Some(Ok(_))));
    assert!(q.take_outcome(starved).is_none());
}

/// Waiters past their deadline fail in arrival order; later ones keep waiting.
#[test]
fn expiry_fails_only_waiters_past_their_deadline() {
    let mut q: WaitQueue<u32> = WaitQueue::default();
    let t0 = Instant::now();
    let second = std::time::Duration::from_secs(1);
    let early = q.push(None, 3, t0, waker());
    let late = q.push(None, 3, t0 + second, waker());
    assert_eq!(q.next_deadline(), Some(t0));
    assert_eq!(q.expire(t0, || Error::PoolClosed).len(), 1);
    assert!(matches!(q.poll(early, &waker()), Poll::Ready(Err(_))));
    assert!(q.poll(late, &waker()).is_pending());
    assert_eq!(q.next_deadline(), Some(t0 + second));
    assert_eq!(q.waiting(), 1);
}

/// Churn at the back of a queue whose front never moves does not grow it without bound.
#[test]
fn order_stays_bounded_under_churn() {
    let mut q: WaitQueue<u32> = WaitQueue::default();
    let _front = q.push(None, 3, Instant::now(), waker());
    for _ in 0..10_000 {
        let k = q.push(None, 3, Instant::now(), waker());
        q.cancel(k);
    }
    let queued: usize = q.lanes.iter().map(VecDeque::len).sum();
    assert!(queued < 200, "{queued}");
    assert!(q.entries.len() <= 2);
}
