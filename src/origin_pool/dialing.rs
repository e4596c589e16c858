//! Dialing: the planned dials as tasks of their own, prewarm, and one connection's dial
//! (TCP, TLS, the HTTP/2 or HTTP/1.1 handshake) under the handshake timeout.

use std::sync::atomic::Ordering;
use std::sync::{Arc, Weak};
use std::task::Waker;
use std::time::{Duration, Instant};

use tokio::sync::oneshot;
use tracing::{Instrument, debug, debug_span};

use super::OriginPool;
use super::reserved_dials::ReservedDials;
use super::state::{DialPlan, OriginState};
use crate::connection::{Connection, ConnectionParams, SlotEvents};
use crate::error::{Error, TimeoutKind};
use crate::prewarm::WarmedOrigin;
use crate::protocol::Protocol;

/// What a dial produced, for prewarm reports.
pub(super) struct DialReport {
    protocol: Protocol,
    tcp_time: Duration,
    tls_time: Duration,
}

impl OriginPool {
    /// What a decision under the lock called for, done after the lock is dropped: wakes the
    /// waiters it handed slots to (or failed), then starts its dials.
    pub(super) fn carry_out(self: &Arc<Self>, wakers: Vec<Waker>, plan: DialPlan) {
        wakers.into_iter().for_each(Waker::wake);
        self.start(plan);
    }

    /// Spawns the planned dials, and a replan at the end of an HTTP/1.1 reuse grace.
    pub(super) fn start(self: &Arc<Self>, plan: DialPlan) {
        let DialPlan {
            mut dials,
            recheck_at,
        } = plan;
        while let Some(dial) = dials.take_one() {
            self.spawn_dial(dial, None);
        }
        let Some(at) = recheck_at else {
            return;
        };
        {
            let mut st = self.lock();
            if !st.schedule_recheck() {
                return;
            }
        }
        let pool = Arc::downgrade(self);
        tokio::spawn(async move {
            tokio::time::sleep_until(tokio::time::Instant::from_std(at)).await;
            if let Some(pool) = pool.upgrade() {
                let plan = {
                    let mut st = pool.lock();
                    st.recheck_due();
                    st.plan_dials(&pool.ctx.config, None, Instant::now())
                };
                pool.start(plan);
            }
        });
    }

    /// Dials a replacement for `conn`, whose end is in sight or came early, if the other
    /// connections cannot carry its streams (see `OriginState::plan_replacement`).
    pub(super) fn replace_ahead(self: &Arc<Self>, conn: &Connection) {
        let dials = self.lock().plan_replacement(conn, Instant::now());
        self.start(DialPlan {
            dials,
            recheck_at: None,
        });
    }

    /// Opens connections up to `warm_min` (at least one) and keeps that many open.
    pub(crate) async fn prewarm(self: &Arc<Self>, warm_min: usize) -> Result<WarmedOrigin, Error> {
        let started = Instant::now();
        let target = warm_min.max(1);
        let (dials, pruned) = {
            let mut st = self.lock();
            if st.is_closed() {
                return Err(Error::PoolClosed);
            }
            let pruned = st.prune();
            st.raise_warm_min(warm_min);
            let now = Instant::now();
            let n = if st.may_dial(now) {
                target.saturating_sub(st.open() + st.dialing())
            } else if let Some(refusal) = st.backing_off(&self.origin, now) {
                return Err(refusal);
            } else {
                // Backing off: what is open stays; nothing new is dialed.
                0
            };
            (st.reserve_dials(n), pruned)
        };
        drop(pruned);
        let mut dials = dials;
        let receivers: Vec<_> = std::iter::from_fn(|| dials.take_one())
            .map(|dial| {
                let (tx, rx) = oneshot::channel();
                self.spawn_dial(dial, Some(tx));
                rx
            })
            .collect();
        let mut first_report = None;
        let mut first_error = None;
        let (mut opened, mut failed) = (0, 0);
        for rx in receivers {
            match rx.await {
                Ok(Ok(report)) => {
                    opened += 1;
                    first_report.get_or_insert(report);
                }
                Ok(Err(error)) => {
                    failed += 1;
                    first_error.get_or_insert(error);
                }
                // The dial task was cancelled (runtime shutting down).
                Err(_) => {
                    failed += 1;
                    first_error.get_or_insert(Error::PoolClosed);
                }
            }
        }
        let (connections, pruned) = {
            let mut st = self.lock();
            let pruned = st.prune();
            (st.open(), pruned)
        };
        drop(pruned);
        if connections == 0
            && let Some(error) = first_error
        {
            return Err(error);
        }
        Ok(WarmedOrigin {
            origin: self.origin.clone(),
            connections,
            opened,
            failed,
            protocol: first_report.as_ref().map(|r| r.protocol),
            tcp_connect: first_report.as_ref().map(|r| r.tcp_time),
            tls_handshake: first_report.as_ref().map(|r| r.tls_time),
            elapsed: started.elapsed(),
        })
    }

    /// Starts one reserved dial as its own task, so an acquirer that gives up does not abort a
    /// connection others are waiting for.
    fn spawn_dial(
        self: &Arc<Self>,
        dial: ReservedDials,
        report: Option<oneshot::Sender<Result<DialReport, Error>>>,
    ) {
        let pool = Arc::clone(self);
        let mut ticket = DialTicket {
            pool: Arc::downgrade(self),
            dial: Some(dial),
        };
        // A root span that follows from the caller's (a request's, or prewarm's): a child
        // would keep the request's span open for as long as the connection's driver span,
        // which starts inside the dial, lives.
        let span = debug_span!(parent: None, "dial", origin = %self.origin);
        span.follows_from(tracing::Span::current());
        tokio::spawn(
            async move {
                let result = pool.dial().await;
                let (outcome, wakers, late, plan) = {
                    let mut st = pool.lock();
                    ticket.end(&mut st);
                    match result {
                        Ok((conn, dial_report)) => {
                            pool.ctx.counters.connections_opened.add(1);
                            if st.is_closed() {
                                conn.mark_closed();
                                (Ok(dial_report), Vec::new(), Some(conn), DialPlan::default())
                            } else {
                                let wakers = st.add(Arc::clone(&conn));
                                if conn.slot.active() == 0 {
                                    // No waiter took it: nothing to hold the handshake for.
                                    conn.release_early_data();
                                }
                                // Waiters this connection cannot serve may need more.
                                let plan = st.plan_dials(&pool.ctx.config, None, Instant::now());
                                (Ok(dial_report), wakers, None, plan)
                            }
                        }
                        Err(error) => {
                            pool.ctx.counters.connects_failed.add(1);
                            let wakers = st.dial_failed(&error, Instant::now(), &pool.ctx.config);
                            (Err(error), wakers, None, DialPlan::default())
                        }
                    }
                };
                drop(late);
                pool.carry_out(wakers, plan);
                if let Err(error) = &outcome {
                    debug!(error = %error, "dial failed");
                }
                if let Some(tx) = report {
                    // The prewarm caller may have gone; the connection stays pooled anyway.
                    let _ = tx.send(outcome);
                }
            }
            .instrument(span),
        );
    }

    async fn dial(self: &Arc<Self>) -> Result<(Arc<Connection>, DialReport), Error> {
        // Dial k starts its race at the origin's k-th address (see `connector::race`).
        let nth = self.dials_started.fetch_add(1, Ordering::Relaxed);
        let early_data = (self.ctx.config.tls_early_data && self.spoke_h2.load(Ordering::Relaxed))
            .then_some(&self.handshakes);
        let dialed = self
            .ctx
            .connector
            .dial(&self.origin, &self.route, nth, early_data)
            .await?;
        if let Some(resumed) = dialed.resumed {
            // A dial still in early data counts its handshake when it ends.
            self.handshakes.record(resumed);
            self.spoke_h2
                .store(dialed.protocol == Protocol::Http2, Ordering::Relaxed);
        }
        let report = DialReport {
            protocol: dialed.protocol,
            tcp_time: dialed.tcp_time,
            tls_time: dialed.tls_time,
        };
        let id = self.ctx.next_connection_id.fetch_add(1, Ordering::Relaxed);
        let events: Weak<dyn SlotEvents> = Arc::downgrade(self) as Weak<OriginPool>;
        let handshake = Connection::establish(
            dialed,
            ConnectionParams {
                id,
                origin: &self.origin,
                config: &self.ctx.config,
                events,
                waiting: Arc::clone(&self.waiting),
                counters: Arc::clone(&self.ctx.counters),
                budget: Arc::clone(&self.budget),
                telemetry: Arc::clone(&self.telemetry),
            },
        );
        let conn = tokio::time::timeout(self.ctx.config.tls_handshake_timeout, handshake)
            .await
            .map_err(|_| Error::Timeout {
                origin: self.origin.clone(),
                kind: TimeoutKind::TlsHandshake,
                after: self.ctx.config.tls_handshake_timeout,
            })??;
        debug!(conn_id = id, protocol = %report.protocol, "connection established");
        Ok((conn, report))
    }
}

/// One started dial, uncounted from its origin when it ends: explicitly under the lock the
/// dial's outcome is recorded under, or when dropped (the dial task was cancelled, as at
/// runtime shutdown).
struct DialTicket {
    pool: Weak<OriginPool>,
    dial: Option<ReservedDials>,
}

impl DialTicket {
    fn end(&mut self, st: &mut OriginState<Connection>) {
        if let Some(dial) = self.dial.take() {
            st.dial_ended(dial);
        }
    }
}

impl Drop for DialTicket {
    fn drop(&mut self) {
        let Some(dial) = self.dial.take() else {
            return;
        };
        match self.pool.upgrade() {
            Some(pool) => pool.lock().dial_ended(dial),
            None => dial.forget(),
        }
    }
}
