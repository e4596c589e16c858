//! Leasing a slot: at once when one is free and nobody waits, otherwise in the wait queue
//! until a freed slot is handed over; the origin's one acquire-deadline timer.

use std::future::poll_fn;
use std::sync::Arc;
use std::task::{Poll, Waker};
use std::time::Instant;

use tracing::debug;

use super::OriginPool;
use super::RetryTarget;
use super::wait_queue::{Cancelled, WaiterKey};
use crate::connection::Connection;
use crate::counters::FAST_ACQUIRE_SAMPLING;
use crate::error::{Error, TimeoutKind};
use crate::lease::Lease;

thread_local! {
    /// Acquires on this thread, for sampling the latency of those that do not wait.
    static FAST_SAMPLE: std::cell::Cell<u64> = const { std::cell::Cell::new(0) };
}

impl OriginPool {
    /// Leases a stream slot: at once when one is free and nobody waits, otherwise by waiting
    /// in the queue's order (retries, then by urgency, FIFO within one) until a freed slot
    /// is handed over, dialing as the scale-up rule says.
    ///
    /// `retry` is set for a retried request: where it may go (see [`RetryTarget`]).
    /// `urgency` orders waiters (see [`Priority`](crate::Priority)). `end`: when the whole
    /// request must be over (`request_timeout`); the wait ends then if that comes before
    /// `acquire_timeout`.
    ///
    /// # Cancel safety
    ///
    /// Dropping the future leaves the queue; a slot handed over in the meantime goes to the
    /// next waiter. Dials it started continue and their connections join the pool.
    pub(crate) async fn acquire(
        self: &Arc<Self>,
        retry: Option<RetryTarget>,
        urgency: u8,
        end: Option<Instant>,
    ) -> Result<Lease, Error> {
        let config = &self.ctx.config;
        // Fast acquires are timed one in FAST_ACQUIRE_SAMPLING (see `record_fast_acquire`).
        let sampled = FAST_SAMPLE.with(|n| {
            let next = n.get().wrapping_add(1);
            n.set(next);
            next % FAST_ACQUIRE_SAMPLING == 0
        });
        let fast_started = sampled.then(Instant::now);
        // The task's waker, so a waiter is queued and registered under one lock.
        let waker = poll_fn(|cx| Poll::Ready(cx.waker().clone())).await;
        let (key, plan, start_expiry, handed, started) = {
            let mut st = self.lock();
            if st.is_closed() {
                return Err(Error::PoolClosed);
            }
            // FIFO: a newcomer takes a free slot only when nobody is queued ahead of it. A
            // retry was sent before anyone now waiting, so it does not queue behind them.
            if (st.queue().waiting() == 0 || retry.is_some())
                && let Some(conn) = st.try_take(config.selection_policy, retry)
            {
                // A burst the connections absorb without queueing still counts as demand.
                // Only with `demand_window` set: it costs a clock read and a sum over the
                // origin's connections.
                if st.demand().enabled() {
                    st.record_demand(Instant::now());
                }
                drop(st);
                self.ctx
                    .counters
                    .record_fast_acquire(fast_started.map(|t| t.elapsed()));
                return Ok(self.leased(conn));
            }
            let now = Instant::now();
            if let Some(refusal) = st.backing_off(&self.origin, now) {
                // Nothing can serve it before the next dial is due: fail now rather than at
                // `acquire_timeout`.
                return Err(refusal);
            }
            if st.queue().waiting() >= config.max_waiters_per_origin {
                return Err(Error::PoolExhausted {
                    origin: self.origin.clone(),
                    waiters: st.queue().waiting(),
                });
            }
            let started = fast_started.unwrap_or(now);
            let deadline = end.map_or(started + config.acquire_timeout, |end| {
                end.min(started + config.acquire_timeout)
            });
            let key = st.queue_mut().push(retry, urgency, deadline, waker);
            // A slot given back without the lock while this acquirer was deciding to wait
            // is offered now (see `released`); it may even be this acquirer's.
            let handed = st.offer_indexed();
            if let Some(outcome) = st.queue_mut().take_outcome(key) {
                drop(st);
                handed.into_iter().for_each(Waker::wake);
                return outcome.map(|conn| {
                    self.ctx
                        .counters
                        .record_queued_acquire(started.elapsed(), urgency);
                    self.leased(conn)
                });
            }
            let expiry = st.start_expiry_timer();
            (
                key,
                st.plan_dials(config, retry, started),
                expiry,
                handed,
                started,
            )
        };
        let mut waiting = Waiting {
            pool: self,
            key: Some(key),
        };
        self.carry_out(handed, plan);
        if start_expiry {
            self.spawn_expiry();
        }
        // The waker is already registered by the push above: the first poll has nothing to
        // look at. The deadline is the origin's expiry timer's job (see `spawn_expiry`).
        let mut registered = true;
        let conn = poll_fn(|cx| {
            if std::mem::take(&mut registered) {
                return Poll::Pending;
            }
            waiting.poll(cx.waker())
        })
        .await?;
        self.ctx
            .counters
            .record_queued_acquire(started.elapsed(), urgency);
        Ok(self.leased(conn))
    }

    /// Runs the origin's one acquire-deadline timer while anyone waits: sleeps until the front
    /// waiter's deadline (FIFO: the earliest), fails the expired with a timeout, repeats. Holds
    /// the pool weakly.
    pub(super) fn spawn_expiry(self: &Arc<Self>) {
        let pool = Arc::downgrade(self);
        let task = tokio::spawn(async move {
            loop {
                let next = {
                    let Some(pool) = pool.upgrade() else { return };
                    let mut st = pool.lock();
                    match st.queue_mut().next_deadline() {
                        Some(deadline) => deadline,
                        None => {
                            st.expiry_timer_ended();
                            return;
                        }
                    }
                };
                tokio::time::sleep_until(tokio::time::Instant::from_std(next)).await;
                let Some(pool) = pool.upgrade() else { return };
                let timeout = || Error::Timeout {
                    origin: pool.origin.clone(),
                    kind: TimeoutKind::Acquire,
                    after: pool.ctx.config.acquire_timeout,
                };
                let wakers = pool.lock().queue_mut().expire(Instant::now(), timeout);
                wakers.into_iter().for_each(Waker::wake);
            }
        });
        self.lock().set_expiry_task(task.abort_handle());
    }

    /// Wraps a leased slot (the acquire is already counted), and dials the connection's
    /// replacement when this lease brought its end within a dial's time.
    pub(super) fn leased(self: &Arc<Self>, conn: Arc<Connection>) -> Lease {
        if conn.replacement_due() {
            self.replace_ahead(&conn);
        }
        if conn.leases() > 1 {
            debug!(
                origin = %self.origin,
                conn_id = conn.id,
                protocol = %conn.protocol,
                "reusing pooled connection"
            );
        } else {
            debug!(
                origin = %self.origin,
                conn_id = conn.id,
                protocol = %conn.protocol,
                "first stream on new connection"
            );
        }
        Lease::new(conn)
    }
}

/// An acquirer's place in the queue. Dropping it before the outcome was taken leaves the
/// queue; a slot handed over in the meantime is passed to the next waiter.
struct Waiting<'a> {
    pool: &'a Arc<OriginPool>,
    /// `None` once the outcome was taken.
    key: Option<WaiterKey>,
}

impl Waiting<'_> {
    /// The outcome if the waiter has one.
    fn poll(&mut self, waker: &Waker) -> Poll<Result<Arc<Connection>, Error>> {
        let Some(key) = self.key else {
            return Poll::Ready(Err(Error::PoolClosed));
        };
        let outcome = self.pool.lock().queue_mut().poll(key, waker);
        if outcome.is_ready() {
            self.key = None;
        }
        outcome
    }
}

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        let Some(key) = self.key.take() else {
            return;
        };
        let (released, passed) = {
            let mut st = self.pool.lock();
            match st.cancel(key) {
                // Handed a slot it will never use: pass it on as a release would.
                Cancelled::Handed(conn) => (Some(st.release(&conn)), Some(conn)),
                _ => (None, None),
            }
        };
        if let Some(released) = released {
            if let Some(waker) = released.waker {
                waker.wake();
            }
            drop(released.retired);
        }
        // The handed slot was counted as a lease (`on_leased`); its release above balances
        // the connection's own books. The outstanding-handles gauge counted it too.
        if let Some(conn) = passed {
            conn.counters.handles_outstanding.decrement();
        }
    }
}
