use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::task::Poll;

use std::time::Duration;

use super::*;
use crate::config::{PoolConfig, SelectionPolicy};
use crate::origin_pool::IN_USE_WITHIN;
use crate::slot::SlotCell;

/// A connection without a socket: a limit, flags and a slot cell.
#[derive(Debug, Default)]
struct Fake {
    id: u64,
    slot: SlotCell,
    limit: AtomicUsize,
    closed: AtomicBool,
    draining: AtomicBool,
    ending: AtomicBool,
    past_forecast: AtomicBool,
    /// How long it has been idle, in milliseconds, when it has no stream.
    idle_ms: AtomicU64,
}

impl Fake {
    fn new(id: u64, limit: usize) -> Arc<Fake> {
        Arc::new(Fake {
            id,
            limit: AtomicUsize::new(limit),
            ..Fake::default()
        })
    }
}

impl Pooled for Fake {
    fn id(&self) -> u64 {
        self.id
    }
    fn slot(&self) -> &SlotCell {
        &self.slot
    }
    fn protocol(&self) -> Protocol {
        Protocol::Http2
    }
    fn stream_limit(&self) -> usize {
        self.limit.load(Ordering::Relaxed)
    }
    fn planned_limit(&self) -> Option<usize> {
        Some(self.stream_limit())
    }
    fn accepts_streams(&self) -> bool {
        !self.closed.load(Ordering::Relaxed) && !self.draining.load(Ordering::Relaxed)
    }
    fn is_closed(&self) -> bool {
        self.closed.load(Ordering::Relaxed)
    }
    fn is_draining(&self) -> bool {
        self.draining.load(Ordering::Relaxed)
    }
    fn retire_at(&self) -> Option<Instant> {
        None
    }
    fn replacement_asked(&self) -> bool {
        self.ending.load(Ordering::Relaxed)
    }
    fn idle_for(&self, _: Instant) -> Option<Duration> {
        (self.slot.active() == 0)
            .then(|| Duration::from_millis(self.idle_ms.load(Ordering::Relaxed)))
    }
    fn leases(&self) -> u64 {
        0
    }
    fn requests_sent(&self) -> u64 {
        0
    }
    fn past_forecast(&self) -> bool {
        self.past_forecast.load(Ordering::Relaxed)
    }
    fn note(&self, event: PoolEvent) {
        match event {
            PoolEvent::Closed => self.closed.store(true, Ordering::Relaxed),
            PoolEvent::ForecastRefuted => self.past_forecast.store(false, Ordering::Relaxed),
            PoolEvent::Leased | PoolEvent::SlotIdle => {}
        }
    }
}

fn waker() -> Waker {
    Waker::noop().clone()
}

fn state_with(conns: &[Arc<Fake>]) -> OriginState<Fake> {
    let mut st = OriginState::default();
    for c in conns {
        st.add(Arc::clone(c));
    }
    st
}

/// Pack fills the oldest connection before touching the next.
#[test]
fn pack_fills_the_oldest_connection_first() {
    let (a, b) = (Fake::new(1, 2), Fake::new(2, 2));
    let mut st = state_with(&[a.clone(), b.clone()]);
    let picks: Vec<u64> = (0..4)
        .map(|_| st.try_take(SelectionPolicy::Pack, None).expect("slot").id)
        .collect();
    assert_eq!(picks, vec![1, 1, 2, 2]);
    assert!(st.try_take(SelectionPolicy::Pack, None).is_none());
    // A freed slot on the older one is found first again.
    st.release(&a);
    assert_eq!(
        st.try_take(SelectionPolicy::Pack, None).map(|c| c.id),
        Some(1)
    );
}

/// A connection past its forecast end is taken only when no other has a free slot, under
/// every policy.
#[test]
fn a_connection_past_its_forecast_is_the_last_choice() {
    for policy in [SelectionPolicy::Pack, SelectionPolicy::LeastLoaded] {
        let (old, new) = (Fake::new(1, 2), Fake::new(2, 2));
        old.past_forecast.store(true, Ordering::Relaxed);
        let mut st = state_with(&[old.clone(), new.clone()]);
        let picks: Vec<u64> = (0..4)
            .map(|_| st.try_take(policy, None).expect("slot").id)
            .collect();
        assert_eq!(picks, vec![2, 2, 1, 1], "{policy:?}");
        assert!(st.try_take(policy, None).is_none());
    }
}

/// The sweep tells a connection idle past its forecast for `IN_USE_WITHIN` (the server did
/// not end it) that the forecast is refuted, and no other; the connection stays. (The fake
/// forgets per connection; a real one forgets the origin's forecast.)
#[test]
fn the_sweep_refutes_a_forecast_an_idle_connection_outlived() {
    let (busy, recent, long) = (Fake::new(1, 2), Fake::new(2, 2), Fake::new(3, 2));
    for conn in [&busy, &recent, &long] {
        conn.past_forecast.store(true, Ordering::Relaxed);
    }
    let millis = u64::try_from(IN_USE_WITHIN.as_millis()).expect("fits");
    recent.idle_ms.store(millis - 1, Ordering::Relaxed);
    long.idle_ms.store(millis, Ordering::Relaxed);
    busy.idle_ms.store(millis, Ordering::Relaxed);
    let mut st = state_with(&[busy.clone(), recent.clone(), long.clone()]);
    busy.slot.take();
    assert!(
        st.sweep_idle(&PoolConfig::default(), Instant::now())
            .is_empty()
    );
    let past: Vec<bool> = [&busy, &recent, &long]
        .iter()
        .map(|c| c.past_forecast())
        .collect();
    assert_eq!(past, vec![true, true, false]);
    assert_eq!(st.open(), 3);
}

/// Least-loaded alternates between equally loaded connections.
#[test]
fn least_loaded_spreads() {
    let (a, b) = (Fake::new(1, 4), Fake::new(2, 4));
    let mut st = state_with(&[a, b]);
    let picks: Vec<u64> = (0..4)
        .map(|_| {
            st.try_take(SelectionPolicy::LeastLoaded, None)
                .expect("slot")
                .id
        })
        .collect();
    assert_eq!(picks, vec![1, 2, 1, 2]);
}

/// A released slot goes straight to the first waiter, still counted as leased.
#[test]
fn release_hands_the_slot_to_the_longest_waiter() {
    let a = Fake::new(1, 1);
    let mut st = state_with(std::slice::from_ref(&a));
    assert!(st.try_take(SelectionPolicy::Pack, None).is_some());
    let first = st.queue.push(None, 3, Instant::now(), waker());
    let second = st.queue.push(None, 3, Instant::now(), waker());
    let released = st.release(&a);
    assert!(released.waker.is_some());
    assert_eq!(a.slot.active(), 1, "the slot moved, it was not freed");
    assert!(matches!(st.queue.poll(first, &waker()), Poll::Ready(Ok(_))));
    assert!(st.queue.poll(second, &waker()).is_pending());
    assert_eq!(st.queue.waiting(), 1);
}

/// A waiter cancelled after being handed a slot passes it on (tested through the queue
/// and `release`, as the origin pool does).
#[test]
fn a_handed_slot_of_a_cancelled_waiter_is_passed_on() {
    let a = Fake::new(1, 1);
    let mut st = state_with(std::slice::from_ref(&a));
    st.try_take(SelectionPolicy::Pack, None);
    let first = st.queue.push(None, 3, Instant::now(), waker());
    let second = st.queue.push(None, 3, Instant::now(), waker());
    st.release(&a);
    match st.cancel(first) {
        Cancelled::Handed(conn) => {
            st.release(&conn);
        }
        _ => panic!("the first waiter had been handed the slot"),
    }
    assert!(matches!(
        st.queue.poll(second, &waker()),
        Poll::Ready(Ok(_))
    ));
    assert_eq!(a.slot.active(), 1);
    st.release(&a);
    assert_eq!(a.slot.active(), 0, "no slot leaked");
}

/// A raised peer limit hands the new slots to waiters at once.
#[test]
fn a_raised_limit_serves_waiters() {
    let a = Fake::new(1, 1);
    let mut st = state_with(std::slice::from_ref(&a));
    st.try_take(SelectionPolicy::Pack, None);
    let keys: Vec<_> = (0..3)
        .map(|_| st.queue.push(None, 3, Instant::now(), waker()))
        .collect();
    a.limit.store(3, Ordering::Relaxed);
    assert_eq!(st.offer(&a).len(), 2);
    assert_eq!(a.slot.active(), 3);
    assert_eq!(st.queue.waiting(), 1);
    assert!(st.queue.poll(keys[2], &waker()).is_pending());
}

/// A connection that closed is skipped at pick time and leaves the table on removal.
#[test]
fn closed_connections_are_not_picked() {
    let (a, b) = (Fake::new(1, 2), Fake::new(2, 2));
    let mut st = state_with(&[a.clone(), b.clone()]);
    a.note(PoolEvent::Closed);
    assert_eq!(
        st.try_take(SelectionPolicy::Pack, None).map(|c| c.id),
        Some(2)
    );
    assert!(st.remove(&a).is_some());
    assert_eq!(b.slot.position(), 0);
    assert_eq!(a.slot.position(), NOT_LISTED);
    st.release(&b);
    assert_eq!(b.slot.active(), 0);
}

/// A drained connection leaves the table with its last stream.
#[test]
fn a_draining_connection_retires_with_its_last_stream() {
    let a = Fake::new(1, 2);
    let mut st = state_with(std::slice::from_ref(&a));
    st.try_take(SelectionPolicy::Pack, None);
    a.draining.store(true, Ordering::Relaxed);
    let released = st.release(&a);
    assert!(released.retired.is_some());
    assert_eq!(st.open(), 0);
}

/// Scale-up counts waiters as demand and stops at the cap.
#[test]
fn waiters_are_the_demand_for_dials() {
    let a = Fake::new(1, 4);
    let mut st = state_with(std::slice::from_ref(&a));
    for _ in 0..4 {
        st.try_take(SelectionPolicy::Pack, None);
    }
    for _ in 0..9 {
        st.queue.push(None, 3, Instant::now(), waker());
    }
    let config = PoolConfig::default(); // at most 4 connections
    let plan = st.plan_dials(&config, None, Instant::now());
    assert_eq!(plan.dials.count(), 3);
    assert_eq!(st.dialing(), 3);
    assert_eq!(
        st.plan_dials(&config, None, Instant::now()).dials.count(),
        0
    );
    // Each dial is uncounted when it ends, and only then.
    let mut dials = plan.dials;
    while let Some(dial) = dials.take_one() {
        st.dial_ended(dial);
    }
    assert_eq!(st.dialing(), 0);
}

/// The sweep closes idle connections past the timeout, never below the warm minimum, and
/// leaves busy ones alone.
#[test]
fn the_sweep_keeps_the_warm_minimum_and_busy_connections() {
    let conns: Vec<_> = (1..=4).map(|id| Fake::new(id, 8)).collect();
    let mut st = state_with(&conns);
    st.warm_min = 1;
    st.try_take(SelectionPolicy::Pack, None).expect("slot"); // connection 1 busy
    let config = PoolConfig {
        idle_timeout: Duration::ZERO,
        ..PoolConfig::default()
    };
    let swept: Vec<u64> = st
        .sweep_idle(&config, Instant::now())
        .iter()
        .map(|c| c.id)
        .collect();
    // Four serve, one must stay: three go, and the busy one is never among them.
    assert_eq!(swept.len(), 3);
    assert!(!swept.contains(&1));
    assert_eq!(st.open(), 1);
    assert!(swept.iter().all(|id| conns[*id as usize - 1].is_closed()));
}

/// Beyond the idle cap, the longest idle go first even before their timeout.
#[test]
fn the_sweep_trims_idle_connections_to_the_cap() {
    let conns: Vec<_> = (1..=4).map(|id| Fake::new(id, 8)).collect();
    let mut st = state_with(&conns);
    let config = PoolConfig {
        max_idle_connections_per_origin: 1,
        ..PoolConfig::default()
    };
    assert_eq!(st.sweep_idle(&config, Instant::now()).len(), 3);
    assert_eq!(st.open(), 1);
}

/// Closed connections leave at the next sweep whatever the timeouts.
#[test]
fn the_sweep_prunes_closed_connections() {
    let conns: Vec<_> = (1..=2).map(|id| Fake::new(id, 8)).collect();
    let mut st = state_with(&conns);
    conns[1].note(PoolEvent::Closed);
    let swept = st.sweep_idle(&PoolConfig::default(), Instant::now());
    assert_eq!(swept.iter().map(|c| c.id).collect::<Vec<_>>(), vec![2]);
    assert_eq!(st.open(), 1);
}

/// A connection that left the table with streams still out asks for a plan when the last of
/// them is given back, once; one with none out has its verdict at once.
#[test]
fn a_verdict_comes_with_the_last_stream_given_back() {
    let a = Fake::new(1, 4);
    let mut st = state_with(std::slice::from_ref(&a));
    for _ in 0..2 {
        assert!(st.try_take(SelectionPolicy::Pack, None).is_some());
    }
    a.note(PoolEvent::Closed);
    assert!(st.remove(&a).is_some());
    assert!(st.await_verdict(&a));
    assert!(!st.release(&a).replan, "one stream still out");
    assert!(st.release(&a).replan, "the last one");
    assert!(!st.await_verdict(&a), "none out: decided now");
}
