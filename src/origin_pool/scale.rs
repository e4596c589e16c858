//! Scale-up: how many connections waiting demand justifies (the Envoy / Jetty / gRPC A105
//! rule), and how soon a warm origin whose host is down is dialed again.
//!
//! Connection k+1 is dialed only when waiting demand exceeds the free stream slots plus the
//! capacity of dials already in flight, up to the origin's connection cap. Until a connection
//! to the origin has received the peer's SETTINGS, the capacity of a dial is unknown, so at
//! most one dial is in flight: a thundering herd on a cold origin shares it and then scales by
//! the stream math (as Go, .NET and ztunnel do).

use std::time::Duration;

/// How many new dials waiting demand justifies.
///
/// `demand`: acquirers without a slot. `free`: free slots on open connections (after the fill
/// ratio). `dialing`: dials in flight. `per_dial`: slots a new connection is expected to bring,
/// `None` while no SETTINGS have been seen on the origin. `open`: connections serving.
pub(crate) fn dials_needed(
    demand: usize,
    free: usize,
    dialing: usize,
    per_dial: Option<usize>,
    open: usize,
    max: usize,
) -> usize {
    let room = max.saturating_sub(open + dialing);
    let Some(per_dial) = per_dial else {
        // Capacity unknown: one dial at a time, and none while a connection is still waiting
        // for its peer's SETTINGS (it will tell us how many streams it takes).
        return usize::from(demand > free && dialing == 0 && open == 0 && room > 0);
    };
    let per_dial = per_dial.max(1);
    let supply = free.saturating_add(dialing.saturating_mul(per_dial));
    if demand <= supply {
        return 0;
    }
    (demand - supply).div_ceil(per_dial).min(room)
}

/// Wait before the sweep re-dials a warm origin after `failures` failed dials in a row:
/// 100 ms doubling to at most 30 s.
pub(crate) fn replenish_backoff(failures: u32) -> Duration {
    let exp = failures.saturating_sub(1).min(9);
    (Duration::from_millis(100) * 2u32.pow(exp)).min(Duration::from_secs(30))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// With no SETTINGS seen yet, a herd of any size starts exactly one dial.
    #[test]
    fn cold_origin_dials_once_whatever_the_demand() {
        assert_eq!(dials_needed(1000, 0, 0, None, 0, 8), 1);
        assert_eq!(dials_needed(1000, 0, 1, None, 0, 8), 0);
        // A connection whose SETTINGS are pending is not joined by a second dial.
        assert_eq!(dials_needed(1000, 0, 0, None, 1, 8), 0);
    }

    /// Once the per-connection limit is known, dials cover the unmet demand, capped.
    #[test]
    fn known_limit_dials_for_unmet_demand_up_to_the_cap() {
        // 64 waiting, 8 per connection, one connection full: 7 more, room for 7.
        assert_eq!(dials_needed(64, 0, 0, Some(8), 1, 8), 7);
        // Dials in flight count as supply.
        assert_eq!(dials_needed(64, 0, 7, Some(8), 1, 8), 0);
        // Capped by max connections.
        assert_eq!(dials_needed(64, 0, 0, Some(8), 1, 2), 1);
        // Enough free slots: nothing.
        assert_eq!(dials_needed(10, 10, 0, Some(8), 2, 8), 0);
        // 150 waiting on a 250-stream server: one connection is plenty.
        assert_eq!(dials_needed(149, 249, 0, Some(250), 1, 4), 0);
    }

    /// Partial demand rounds up to a whole connection.
    #[test]
    fn partial_demand_rounds_up() {
        assert_eq!(dials_needed(9, 0, 0, Some(8), 1, 8), 2);
        assert_eq!(dials_needed(1, 0, 0, Some(8), 1, 8), 1);
    }

    /// Backoff doubles from 100 ms and stops at 30 s.
    #[test]
    fn replenish_backoff_doubles_to_a_cap() {
        assert_eq!(replenish_backoff(1), Duration::from_millis(100));
        assert_eq!(replenish_backoff(2), Duration::from_millis(200));
        assert_eq!(replenish_backoff(50), Duration::from_secs(30));
    }
}
