//! A connection's stream-slot counters, kept inside the connection so a lease can find them
//! without a search.
//!
//! Both fields are written only by the origin's slot table, under the origin's lock, so every
//! decision there sees a consistent pair; they are atomics only so that stats and `tracing`
//! can read them without that lock.

use std::sync::atomic::{AtomicUsize, Ordering};

/// Where a connection sits in its origin's table once it has left it.
pub(crate) const NOT_LISTED: usize = usize::MAX;

/// Leased slots and table position of one connection.
#[derive(Debug)]
pub(crate) struct SlotCell {
    active: AtomicUsize,
    position: AtomicUsize,
}

impl Default for SlotCell {
    fn default() -> SlotCell {
        SlotCell {
            active: AtomicUsize::new(0),
            position: AtomicUsize::new(NOT_LISTED),
        }
    }
}

impl SlotCell {
    /// Slots leased right now.
    pub(crate) fn active(&self) -> usize {
        self.active.load(Ordering::Relaxed)
    }

    /// One more slot leased. Table only, under the origin lock.
    pub(crate) fn take(&self) {
        self.active.fetch_add(1, Ordering::Relaxed);
    }

    /// One slot given back; returns how many remain. Table only, under the origin lock.
    pub(crate) fn give_back(&self) -> usize {
        let before = self.active.fetch_sub(1, Ordering::Relaxed);
        // A release without a lease is a bookkeeping bug; catch it where it happens.
        debug_assert!(before > 0, "slot released more often than leased");
        before.wrapping_sub(1)
    }

    /// The connection's index in its origin's table, or [`NOT_LISTED`].
    pub(crate) fn position(&self) -> usize {
        self.position.load(Ordering::Relaxed)
    }

    /// Table only, under the origin lock.
    pub(crate) fn set_position(&self, position: usize) {
        self.position.store(position, Ordering::Relaxed);
    }
}
