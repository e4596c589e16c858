//! Which connection takes the next stream: an index of the connections that may have a free
//! slot, so a pick is a bit scan rather than a walk over every connection.
//!
//! Positions are the connections' places in the origin's list (oldest first). The index may
//! hold a position whose connection has since filled up or closed (a pick checks and drops
//! it), but never lacks one that has a free slot: every change that frees capacity (a
//! release, a raised peer limit, a ready HTTP/1.1 dispatcher, a new connection) sets its bit
//! under the origin lock.

use std::sync::Arc;

use super::OriginState;
use crate::config::SelectionPolicy;
use crate::origin_pool::RetryTarget;
use crate::origin_pool::pooled::{PoolEvent, Pooled};
use crate::slot::NOT_LISTED;

/// What a pick needs to know about one candidate.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Candidate {
    pub(crate) position: usize,
    pub(crate) active: usize,
    /// Requests the connection has carried.
    pub(crate) leases: u64,
}

/// How to choose.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Pick {
    /// The pool's configured policy.
    Policy(SelectionPolicy),
    /// The connection that has carried the fewest requests. For retries: a request a
    /// server's rotation (GOAWAY) refused goes where the next rotation is furthest away,
    /// not to the oldest connection, which Pack would pick and which is the nearest to it.
    Freshest,
}

/// Chooses among candidates (ascending positions, each with a free slot) by policy:
/// [`SelectionPolicy::Pack`] takes the first (the oldest connection, so load concentrates and
/// spare connections go idle), [`SelectionPolicy::LeastLoaded`] the one with the fewest
/// active streams (the oldest among equals).
pub(crate) fn choose(pick: Pick, mut candidates: impl Iterator<Item = Candidate>) -> Option<usize> {
    match pick {
        Pick::Policy(SelectionPolicy::Pack) => candidates.next().map(|c| c.position),
        Pick::Policy(SelectionPolicy::LeastLoaded) => candidates
            .min_by_key(|c| (c.active, c.position))
            .map(|c| c.position),
        Pick::Freshest => candidates
            .min_by_key(|c| (c.leases, c.position))
            .map(|c| c.position),
    }
}

/// The free index over the origin's state, and taking a slot from it.
impl<C: Pooled> OriginState<C> {
    /// True when `conn` can take one more stream now (a connection whose request budget is
    /// spent is draining, and takes none).
    pub(super) fn has_free_slot(conn: &C) -> bool {
        conn.accepts_streams() && conn.slot().active() < conn.stream_limit()
    }

    pub(super) fn listed(&self, conn: &Arc<C>) -> Option<usize> {
        let position = conn.slot().position();
        (position != NOT_LISTED
            && self
                .conns
                .get(position)
                .is_some_and(|c| Arc::ptr_eq(c, conn)))
        .then_some(position)
    }

    /// Takes a slot on a connection chosen by `policy`, if one is free. A retry takes the
    /// freshest connection its [`RetryTarget`] admits instead (see [`Pick::Freshest`]). A
    /// connection past its forecast end ([`Pooled::past_forecast`]) is taken only when no
    /// other one can be.
    pub(crate) fn try_take(
        &mut self,
        policy: SelectionPolicy,
        retry: Option<RetryTarget>,
    ) -> Option<Arc<C>> {
        let mut saw_stale = false;
        let mut past_forecast = None;
        let chosen = {
            let conns = &self.conns;
            let candidates = self.free.iter().filter_map(|position| {
                let Some(conn) = conns.get(position) else {
                    saw_stale = true;
                    return None;
                };
                if !Self::has_free_slot(conn) {
                    saw_stale = true;
                    return None;
                }
                if !retry.is_none_or(|r| r.admits(conn.id(), conn.requests_sent())) {
                    return None;
                }
                if conn.past_forecast() {
                    past_forecast.get_or_insert(position);
                    return None;
                }
                Some(Candidate {
                    position,
                    active: conn.slot().active(),
                    leases: conn.leases(),
                })
            });
            let pick = match retry {
                Some(_) => Pick::Freshest,
                None => Pick::Policy(policy),
            };
            choose(pick, candidates)
        };
        // When every connection with a free slot is past its forecast: the first of them.
        let chosen = chosen.or(past_forecast);
        if saw_stale {
            self.drop_stale();
        }
        let position = chosen?;
        let conn = Arc::clone(&self.conns[position]);
        self.take_on(position, &conn);
        Some(conn)
    }

    /// Removes positions whose connection has no free slot any more (it filled up without a
    /// pick noticing, closed, or started draining).
    pub(super) fn drop_stale(&mut self) {
        let stale: Vec<usize> = self
            .free
            .iter()
            .filter(|&p| self.conns.get(p).is_none_or(|c| !Self::has_free_slot(c)))
            .collect();
        for position in stale {
            if let Some(conn) = self.conns.get(position).cloned() {
                self.unindex(position, &conn);
            } else {
                self.free.remove(position);
            }
        }
    }

    /// Puts the connection at `position` in the free index.
    pub(super) fn index(&mut self, position: usize, conn: &C) {
        self.free.insert(position);
        conn.slot().set_indexed(true);
    }

    /// Takes the connection at `position` out of the free index. A release may have given a
    /// slot back without the lock just before the flag went down; it checks the flag after
    /// giving back, and this checks the count after lowering the flag (both `SeqCst`), so one
    /// of the two always sees the other and the slot is never lost from view.
    pub(super) fn unindex(&mut self, position: usize, conn: &C) {
        self.free.remove(position);
        conn.slot().set_indexed(false);
        if Self::has_free_slot(conn) {
            self.index(position, conn);
        }
    }

    /// Counts a slot as taken on the connection at `position`.
    pub(super) fn take_on(&mut self, position: usize, conn: &Arc<C>) {
        conn.slot().take();
        conn.note(PoolEvent::Leased);
        if !Self::has_free_slot(conn) {
            self.unindex(position, conn);
        }
    }

    /// Positions shifted: renumber, and rebuild the free index.
    pub(super) fn reindex(&mut self) {
        self.free.clear();
        for (position, conn) in self.conns.iter().enumerate() {
            conn.slot().set_position(position);
            conn.slot().set_indexed(false);
            if Self::has_free_slot(conn) {
                self.free.insert(position);
                conn.slot().set_indexed(true);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::origin_pool::free_set::FreeSet;

    /// Positions come back ascending, across word boundaries; removed ones do not.
    #[test]
    fn the_set_iterates_ascending_and_forgets_removed_positions() {
        let mut set = FreeSet::default();
        for p in [130, 3, 64, 0, 63] {
            set.insert(p);
        }
        set.remove(63);
        assert_eq!(set.iter().collect::<Vec<_>>(), vec![0, 3, 64, 130]);
        assert_eq!(set.next_from(4), Some(64));
        assert_eq!(set.next_from(65), Some(130));
        assert_eq!(set.next_from(131), None);
        set.clear();
        assert_eq!(set.iter().count(), 0);
        set.remove(1000); // out of range: nothing to do
    }

    /// Pack takes the oldest free connection; least-loaded the emptiest, oldest first on ties;
    /// a retry the one that carried the fewest requests.
    #[test]
    fn policies_choose_as_documented() {
        let c = |position, active, leases| Candidate {
            position,
            active,
            leases,
        };
        let list = [c(1, 5, 40), c(2, 0, 49), c(4, 0, 3)];
        let pack = Pick::Policy(SelectionPolicy::Pack);
        assert_eq!(choose(pack, list.into_iter()), Some(1));
        let least = Pick::Policy(SelectionPolicy::LeastLoaded);
        assert_eq!(choose(least, list.into_iter()), Some(2));
        assert_eq!(choose(Pick::Freshest, list.into_iter()), Some(4));
        assert_eq!(choose(pack, std::iter::empty()), None);
    }
}
