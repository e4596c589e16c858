//! Dials reserved in an origin's count of dials in flight. The count is what scale-up weighs
//! demand against, so a dial counted but never started (or started and never uncounted) makes
//! the origin wait for a connection that cannot come. The count is therefore raised only by
//! handing out a [`ReservedDials`] (`OriginState::reserve_dials`) and lowered only by giving
//! one back (`OriginState::dial_ended`), as bb8's `Approval` does for its pending count.

/// Dials counted in `OriginState`'s dials in flight and not yet ended. Split into single dials
/// with [`take_one`](Self::take_one); each is given back to the state when its dial ends
/// (`crate::origin_pool::dialing::DialTicket` does it when dropped, so a dial task cancelled
/// midway is uncounted too).
#[must_use = "reserved dials stay counted until each is started and given back"]
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct ReservedDials(usize);

impl ReservedDials {
    /// Only `OriginState` reserves: it counts what it hands out.
    pub(super) fn counted(n: usize) -> ReservedDials {
        ReservedDials(n)
    }

    /// How many dials this holds.
    #[cfg(test)]
    pub(crate) fn count(&self) -> usize {
        self.0
    }

    /// One of the dials, to start.
    pub(crate) fn take_one(&mut self) -> Option<ReservedDials> {
        self.0 = self.0.checked_sub(1)?;
        Some(ReservedDials(1))
    }

    /// Takes `other`'s dials into this one: both were counted by the same state.
    pub(crate) fn merge(&mut self, mut other: ReservedDials) {
        self.0 += std::mem::take(&mut other.0);
    }

    /// Given back to the state: `OriginState::dial_ended` uncounts it.
    pub(super) fn give_back(mut self) -> usize {
        std::mem::take(&mut self.0)
    }

    /// The origin's state is gone (the pool was dropped): nothing is left to uncount.
    pub(crate) fn forget(mut self) {
        self.0 = 0;
    }
}

impl Drop for ReservedDials {
    fn drop(&mut self) {
        // Dropped still counted: a dial planned and never started. Outside a panic this is a
        // bug in the pool; the count would stay raised.
        debug_assert!(
            self.0 == 0 || std::thread::panicking(),
            "{} reserved dial(s) dropped without being started",
            self.0
        );
    }
}
