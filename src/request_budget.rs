//! Learning how many requests a server serves on one connection before it rotates it.
//!
//! Servers and proxies close HTTP/2 connections after a fixed number of requests with a
//! graceful GOAWAY: nginx's `keepalive_requests` (1000 by default), Envoy's and HAProxy's
//! equivalents. Requests the client sent past that number are refused by the GOAWAY (above its
//! last-stream-id) and sent again on another connection (the rule is in [`crate::retry`]).
//! Under load that is a round of retries at every rotation, each a wasted round trip that can
//! itself land past the next connection's limit.
//!
//! The way out is to stop first. When two consecutive connections to an origin are ended by
//! the server in good order while in use (a graceful GOAWAY, whether or not it refused
//! requests, or a clean close; a server's idle timeout ends idle connections and does not
//! count) after about the same number of served requests (within 25%, so one restart or
//! deploy does not count), the origin drains every connection a tenth before the smaller
//! number. The margin is there because servers count fuzzily: hyper's and Go's graceful
//! shutdown keep serving what arrives during their two-GOAWAY handshake, so "served" overshoots
//! the point where the server started refusing. The server then never has to send GOAWAY
//! while requests are in flight: rotation costs a handshake every (limit × 0.9) requests, not
//! failed requests. A later, lower observation lowers the budget; a server
//! that raises its limit is not noticed (rotating early costs handshakes, never requests).
//! Rotations after fewer than 16 requests teach nothing. A wrong lesson (two deploy GOAWAYs
//! that happened to agree) costs at worst a handshake every 15 requests, never a failure.
//! `PoolConfig::learn_request_budget` turns this off; `max_requests_per_connection` sets a
//! budget up front.
//!
//! One observation is not a budget, but it is a forecast: until a budget is confirmed, the
//! origin dials each connection's replacement ahead of the count the server ended the last one
//! at (`crate::connection::ending`), and a connection that reaches that count takes new
//! requests only when no other connection has room. A server whose budget it is ends that
//! connection on its last request (nginx sends GOAWAY as that request arrives), so nothing sent
//! past the end is refused, and the end confirms the budget. A connection that sits idle past
//! the forecast for a second without the server ending it refutes the forecast (the origin's
//! sweep): it was a deploy's GOAWAY, and the connection serves again.

use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

/// Fewer served requests than this teach nothing. A deploy or restart GOAWAYs every
/// connection at once, young ones too; below this floor their counts could be taken for a
/// budget and cost a handshake every few requests from then on.
const MIN_OBSERVED: u64 = 16;

/// How far apart (as a ratio) two observations may be and still confirm each other. hyper's
/// own graceful shutdown, like Go's, keeps serving the requests that arrive during its
/// double-GOAWAY handshake, so the counts vary a little around the server's limit.
const AGREEMENT: f64 = 1.25;

/// One origin's learned budget, shared by its connections.
#[derive(Debug)]
pub(crate) struct RequestBudget {
    enabled: bool,
    /// The learned budget; 0 while nothing is learned.
    learned: AtomicU64,
    /// The previous unconfirmed observation.
    previous: Mutex<Option<u64>>,
    /// The served count of the last observation, confirmed or not; 0 while none. Too weak to
    /// drain by (one deploy GOAWAY would do), strong enough to dial a replacement ahead by and
    /// to prefer other connections past it: a wrong guess costs one early dial and a second of
    /// a connection left idle, never a request.
    last_observed: AtomicU64,
}

impl RequestBudget {
    pub(crate) fn new(enabled: bool) -> RequestBudget {
        RequestBudget {
            enabled,
            learned: AtomicU64::new(0),
            previous: Mutex::new(None),
            last_observed: AtomicU64::new(0),
        }
    }

    /// The learned budget, if any.
    pub(crate) fn learned(&self) -> Option<u64> {
        match self.learned.load(Ordering::Relaxed) {
            0 => None,
            n => Some(n),
        }
    }

    /// Requests after which the server is expected to end a connection: the learned budget,
    /// or else the count at which it ended the last one. `None` while nothing was observed.
    pub(crate) fn expected_end(&self) -> Option<u64> {
        match (self.learned(), self.last_observed.load(Ordering::Relaxed)) {
            (learned, 0) => learned,
            (Some(learned), observed) => Some(learned.min(observed)),
            (None, observed) => Some(observed),
        }
    }

    /// A connection served well past `forecast` (the last observed end), or sent it that many
    /// requests and then sat idle, without the server ending it: the observation was not a
    /// budget (a deploy, a restart). It is forgotten, so later connections are not replaced
    /// ahead of, or set aside at, an end that does not come.
    pub(crate) fn refute(&self, forecast: u64) {
        let _ =
            self.last_observed
                .compare_exchange(forecast, 0, Ordering::Relaxed, Ordering::Relaxed);
    }

    /// The server ended a connection in use in good order (a graceful GOAWAY, which may
    /// have refused requests sent after it, or a clean close) after `served` requests got a
    /// response. Returns the budget if this observation changed it.
    pub(crate) fn observe_rotation(&self, served: u64) -> Option<u64> {
        if !self.enabled {
            return None;
        }
        if served >= MIN_OBSERVED {
            self.last_observed.store(served, Ordering::Relaxed);
        }
        let mut previous = self.previous.lock().unwrap_or_else(|p| p.into_inner());
        let (next_previous, learned) = decide(*previous, self.learned(), served);
        *previous = next_previous;
        let changed = learned.filter(|&b| Some(b) != self.learned());
        if let Some(budget) = changed {
            self.learned.store(budget, Ordering::Relaxed);
        }
        changed
    }
}

/// The rule, as a pure function: (previous observation, learned budget, new observation) →
/// (observation to remember, budget).
fn decide(previous: Option<u64>, learned: Option<u64>, served: u64) -> (Option<u64>, Option<u64>) {
    if served < MIN_OBSERVED {
        return (previous, learned);
    }
    let Some(previous) = previous else {
        return (Some(served), learned);
    };
    let (low, high) = (previous.min(served), previous.max(served));
    if (high as f64) > (low as f64) * AGREEMENT {
        return (Some(served), learned);
    }
    let with_margin = low - (low / 10).max(1);
    let budget = learned.map_or(with_margin, |l| l.min(with_margin));
    (Some(served), Some(budget))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// One observation is not enough; a second close one sets a tenth below the smaller.
    #[test]
    fn two_agreeing_observations_set_the_smaller_less_a_tenth() {
        assert_eq!(decide(None, None, 50), (Some(50), None));
        assert_eq!(decide(Some(50), None, 53), (Some(53), Some(45)));
        assert_eq!(decide(Some(1000), None, 998), (Some(998), Some(899)));
        assert_eq!(decide(Some(16), None, 16), (Some(16), Some(15)));
    }

    /// A rotation far from the last one (a restart, a deploy) teaches nothing by itself.
    #[test]
    fn disagreeing_observations_teach_nothing() {
        assert_eq!(decide(Some(1000), None, 30), (Some(30), None));
        assert_eq!(decide(Some(3), None, 1000), (Some(1000), None));
        assert_eq!(decide(Some(20), Some(50), 2000), (Some(2000), Some(50)));
    }

    /// A server that lowers its limit lowers the budget; nothing raises it.
    #[test]
    fn budget_only_goes_down() {
        assert_eq!(decide(Some(20), Some(50), 21), (Some(21), Some(18)));
        assert_eq!(decide(Some(90), Some(50), 95), (Some(95), Some(50)));
    }

    /// Connections rotated after a handful of requests (a deploy) are not a budget.
    #[test]
    fn tiny_counts_are_ignored() {
        assert_eq!(decide(Some(3), None, 3), (Some(3), None));
        assert_eq!(decide(Some(15), None, 15), (Some(15), None));
        assert_eq!(decide(Some(40), None, 0), (Some(40), None));
    }

    #[test]
    fn disabled_learns_nothing() {
        let budget = RequestBudget::new(false);
        assert_eq!(budget.observe_rotation(50), None);
        assert_eq!(budget.observe_rotation(50), None);
        assert_eq!(budget.learned(), None);
        assert_eq!(budget.expected_end(), None);
        let budget = RequestBudget::new(true);
        assert_eq!(budget.observe_rotation(50), None);
        assert_eq!(budget.expected_end(), Some(50), "one observation: a hint");
        assert_eq!(budget.observe_rotation(50), Some(45));
        assert_eq!(
            budget.expected_end(),
            Some(45),
            "the drain point comes first"
        );
        assert_eq!(budget.observe_rotation(50), None, "unchanged");
        assert_eq!(budget.learned(), Some(45));
    }
}
