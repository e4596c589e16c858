//! Seeing a connection's end coming, so its replacement is dialed ahead of it.
//!
//! A connection ends predictably when it runs out of requests: the configured
//! `max_requests_per_connection`, the server's learned budget, or, before a budget is
//! confirmed, the count at which the server ended the previous connection (see
//! `crate::request_budget`). If its replacement were dialed only when it stops taking streams,
//! the requests that come then would wait for TCP + TLS + HTTP/2 setup: three round trips, the
//! most expensive thing a pool can put on a request's path.
//!
//! So the end is planned by *time*: the rate at which the connection spends its budget
//! (leases since its first one) gives how long the rest will last, and once that is no more
//! than [`lead`] (twice this connection's own measured dial time), the origin is asked for a
//! replacement (`OriginPool::leased`). The plan is made once per connection. A forecast that
//! turns out wrong costs one early dial, which then serves or idles out, never a request. A
//! connection past the forecast is the origin's last choice for new requests
//! ([`Connection::past_forecast`]), so the server's end finds nothing sent after it; one that
//! serves a quarter past the forecast anyway (no other had room), or sits idle past it for a
//! second without the server ending it, refutes it (the origin forgets it, and the
//! connection counts as lasting capacity again).
//! Rotation by age (`max_connection_lifetime`) has its own lead in the origin's sweep.

use std::sync::atomic::Ordering;
use std::time::Duration;

use super::{Connection, nanos_since};

/// Added to twice the dial time: the runtime's and the relay's scheduling, not the path.
const LEAD_MARGIN: Duration = Duration::from_millis(5);

/// How long before its end a connection's replacement is dialed: twice the old one's own
/// dial (TCP, TLS, and the wait for the server's first SETTINGS, until which a connection
/// takes one stream), plus a margin.
pub(super) fn lead(dial: Duration) -> Duration {
    dial * 2 + LEAD_MARGIN
}

/// True when `leases` of `expected_end`, the first `elapsed` ago, leave no more than `lead`
/// at the rate so far (`leases - 1` intervals in `elapsed`). A single lease shows no rate, so
/// it is never due, not even when it spends the budget (`max_requests_per_connection(1)`:
/// nothing says another request will come); a spent budget with a rate always is.
pub(super) fn ends_within(
    expected_end: u64,
    leases: u64,
    elapsed: Duration,
    lead: Duration,
) -> bool {
    if leases < 2 {
        return false;
    }
    if leases >= expected_end {
        return true;
    }
    let left = expected_end - leases;
    let remaining = elapsed.as_secs_f64() * left as f64 / (leases - 1) as f64;
    remaining <= lead.as_secs_f64()
}

impl Connection {
    /// True once, when the connection's end is close enough that the origin should dial its
    /// replacement now. Called after every lease: with no expected end, or before a quarter of
    /// it is spent (too few leases to read a rate from), it reads two atomics and no clock.
    pub(crate) fn replacement_due(&self) -> bool {
        let Some(expected_end) = self.expected_end() else {
            return false;
        };
        let leases = self.leases();
        if self.replacement_asked.load(Ordering::Relaxed) {
            // Only a forecast can be passed (a budget drains the connection first): well past
            // it, the forecast was wrong, and this connection lasts after all.
            if leases > expected_end.saturating_add(expected_end / 4) {
                self.budget.refute(expected_end);
                self.replacement_asked.store(false, Ordering::Relaxed);
            }
            return false;
        }
        if leases.saturating_mul(4) < expected_end {
            return false;
        }
        let first = self.first_lease_at.load(Ordering::Relaxed);
        let elapsed = Duration::from_nanos(nanos_since(self.created).saturating_sub(first));
        ends_within(expected_end, leases, elapsed, lead(self.dial_time()))
            && !self.replacement_asked.swap(true, Ordering::Relaxed)
    }

    /// True once this connection has carried as many requests as the server ended the last
    /// one after, while that count is only a forecast (`RequestBudget::expected_end`; a
    /// confirmed budget drains the connection there instead). Selection then prefers any
    /// other connection with a free slot, usually the replacement dialed ahead: a server
    /// whose budget the forecast is ends this connection on its last request (nginx sends
    /// GOAWAY as it receives it), with nothing sent past the end for the GOAWAY to refuse,
    /// and that end confirms the budget. Reads two atomics, three once there is a forecast.
    pub(crate) fn past_forecast(&self) -> bool {
        self.budget
            .expected_end()
            .is_some_and(|forecast| self.leases() >= forecast)
    }

    /// Past its forecast, the connection sat idle and the server did not end it. If the
    /// server received that many requests on it (a lease given back unused counts for
    /// [`past_forecast`](Self::past_forecast) but reaches no server), the forecast is forgotten
    /// (`RequestBudget::refute`, which leaves a newer observation alone) and the connection
    /// counts as lasting capacity again.
    pub(crate) fn refute_forecast(&self) {
        if let Some(forecast) = self.budget.expected_end()
            && self.requests_sent() >= forecast
        {
            self.budget.refute(forecast);
            self.replacement_asked.store(false, Ordering::Relaxed);
        }
    }

    /// The origin was asked for a replacement for this connection (its end is in sight): it
    /// no longer counts as lasting capacity.
    pub(crate) fn replacement_asked(&self) -> bool {
        self.replacement_asked.load(Ordering::Relaxed)
    }

    /// How long this connection took to become fully usable: TCP, TLS, and the wait for the
    /// server's first SETTINGS (HTTP/1.1: none).
    fn dial_time(&self) -> Duration {
        let (tcp, tls) = self.dial_times;
        let settings = match self.settings_at.load(Ordering::Relaxed) {
            u64::MAX => Duration::ZERO,
            nanos => Duration::from_nanos(nanos),
        };
        tcp + tls + settings
    }

    /// Requests after which this connection is expected to end: its own request budget
    /// (configured or learned), or the server's last observed rotation count.
    fn expected_end(&self) -> Option<u64> {
        let forecast = self.budget.expected_end();
        match (self.request_budget(), forecast) {
            (Some(budget), Some(forecast)) => Some(budget.min(forecast)),
            (budget, forecast) => budget.or(forecast),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    #[test]
    fn the_lead_is_twice_the_dial_plus_a_margin() {
        assert_eq!(lead(80 * MS), 165 * MS);
        assert_eq!(lead(Duration::ZERO), LEAD_MARGIN);
    }

    /// 90 requests at one per 10 ms: the last 16 take 160 ms, within a 165 ms lead.
    #[test]
    fn due_when_the_rest_of_the_budget_lasts_no_longer_than_the_lead() {
        let lead = lead(80 * MS);
        assert!(!ends_within(90, 73, 720 * MS, lead), "17 left: 170 ms");
        assert!(ends_within(90, 74, 730 * MS, lead), "16 left: 160 ms");
    }

    /// A slow trickle is never due early; a spent budget always is.
    #[test]
    fn slow_connections_wait_and_spent_ones_are_due() {
        assert!(!ends_within(1000, 999, 1000 * 1000 * MS, 165 * MS));
        assert!(ends_within(1000, 1000, 1000 * 1000 * MS, 165 * MS));
        assert!(
            !ends_within(10, 1, Duration::ZERO, 165 * MS),
            "no rate from one lease"
        );
    }
}
