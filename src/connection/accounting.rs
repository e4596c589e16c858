//! What a connection has carried (leases, requests, responses, requests a GOAWAY refused),
//! its request budget, and learning the server's per-connection limit when it ends.

use std::sync::atomic::Ordering;

use tracing::debug;

use super::Connection;

impl Connection {
    /// Requests this connection may carry: the configured budget or the learned one, the
    /// smaller.
    pub(super) fn request_budget(&self) -> Option<u64> {
        match (self.max_leases, self.budget.learned()) {
            (Some(configured), Some(learned)) => Some(configured.min(learned)),
            (configured, learned) => configured.or(learned),
        }
    }

    /// True when the budget (possibly learned while the connection was in use) is spent.
    pub(super) fn budget_spent(&self) -> bool {
        self.request_budget()
            .is_some_and(|max| self.leases.load(Ordering::Relaxed) >= max)
    }

    /// A response head arrived.
    pub(crate) fn record_response(&self) {
        self.responses.fetch_add(1, Ordering::Relaxed);
    }

    /// A request failed because the server rotated the connection (graceful GOAWAY).
    pub(crate) fn record_rotation_failure(&self) {
        self.rotation_failures.fetch_add(1, Ordering::Relaxed);
    }

    /// Leases handed out on this connection so far.
    pub(crate) fn leases(&self) -> u64 {
        self.leases.load(Ordering::Relaxed)
    }

    /// The server's GOAWAY refused the request sent `ordinal`-th (from 1) on this connection.
    pub(crate) fn note_refused(&self, ordinal: u64) {
        self.refused_from.fetch_min(ordinal, Ordering::Relaxed);
    }

    /// The lowest send ordinal a GOAWAY refused on this connection, if any did. Every request
    /// above the last-stream-id fails at the same moment; read late, this is the server's
    /// budget for the connection plus one.
    pub(crate) fn refused_from(&self) -> Option<u64> {
        match self.refused_from.load(Ordering::Relaxed) {
            u64::MAX => None,
            n => Some(n),
        }
    }

    /// Requests sent on this connection so far.
    pub(crate) fn requests_sent(&self) -> u64 {
        self.requests.load(Ordering::Relaxed)
    }

    /// Counts a request sent; returns how many were sent on this connection before it.
    pub(crate) fn record_request(&self) -> u64 {
        self.counters.requests_sent.add(1);
        self.requests.fetch_add(1, Ordering::Relaxed)
    }
}

impl Drop for Connection {
    /// The last reference goes once the pool has let go and every request on the connection
    /// has settled: the moment its served and failed counts are final, which is what the
    /// request-budget learner needs.
    fn drop(&mut self) {
        if self.rotation_failures.load(Ordering::Relaxed) == 0 {
            return;
        }
        let served = self.responses.load(Ordering::Relaxed);
        if let Some(budget) = self.budget.observe_rotation(served) {
            debug!(
                conn_id = self.id,
                origin = %self.origin,
                budget,
                "learned the server's per-connection request limit; rotating before it"
            );
        }
    }
}
