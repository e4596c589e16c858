//! Which connection takes the next stream: an index of the connections that may have a free
//! slot, so a pick is a bit scan rather than a walk over every connection.
//!
//! Positions are the connections' places in the origin's list (oldest first). The index may
//! hold a position whose connection has since filled up or closed (a pick checks and drops
//! it), but never lacks one that has a free slot: every change that frees capacity (a
//! release, a raised peer limit, a ready HTTP/1.1 dispatcher, a new connection) sets its bit
//! under the origin lock.

use crate::config::SelectionPolicy;

/// A set of small integers (connection positions) as a bitset.
#[derive(Debug, Default, Clone)]
pub(crate) struct FreeSet {
    words: Vec<u64>,
}

impl FreeSet {
    pub(crate) fn insert(&mut self, position: usize) {
        let (word, bit) = (position / 64, position % 64);
        if self.words.len() <= word {
            self.words.resize(word + 1, 0);
        }
        self.words[word] |= 1 << bit;
    }

    pub(crate) fn remove(&mut self, position: usize) {
        let (word, bit) = (position / 64, position % 64);
        if let Some(w) = self.words.get_mut(word) {
            *w &= !(1 << bit);
        }
    }

    pub(crate) fn clear(&mut self) {
        self.words.iter_mut().for_each(|w| *w = 0);
    }

    /// The first set position at or after `from`.
    pub(crate) fn next_from(&self, from: usize) -> Option<usize> {
        let (mut word, bit) = (from / 64, from % 64);
        let mut bits = self.words.get(word)? & (u64::MAX << bit);
        loop {
            if bits != 0 {
                return Some(word * 64 + bits.trailing_zeros() as usize);
            }
            word += 1;
            bits = *self.words.get(word)?;
        }
    }

    /// Set positions, ascending.
    pub(crate) fn iter(&self) -> impl Iterator<Item = usize> + '_ {
        self.words.iter().enumerate().flat_map(|(i, &word)| {
            let mut rest = word;
            std::iter::from_fn(move || {
                if rest == 0 {
                    return None;
                }
                let bit = rest.trailing_zeros() as usize;
                rest &= rest - 1;
                Some(i * 64 + bit)
            })
        })
    }
}

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

#[cfg(test)]
mod tests {
    use super::*;

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
