//! A connection's stream-slot counters, kept inside the connection so a lease can find them
//! without a search.
//!
//! The position and the `indexed` flag are written only by the origin's table, under the
//! origin's lock. The active count is raised only there too, but may be lowered without the
//! lock: a release with nobody waiting, on a connection already in the table's free index,
//! changes nothing the table must decide on (see `OriginPool::released`). That release and
//! the table meet through `SeqCst` on `active` and `indexed`, so a slot freed that way is
//! never invisible to the table.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

/// Where a connection sits in its origin's table once it has left it.
pub(crate) const NOT_LISTED: usize = usize::MAX;

/// Leased slots and table position of one connection.
#[derive(Debug)]
pub(crate) struct SlotCell {
    active: AtomicUsize,
    position: AtomicUsize,
    /// Mirrors the connection's bit in the table's free index.
    indexed: AtomicBool,
}

impl Default for SlotCell {
    fn default() -> SlotCell {
        SlotCell {
            active: AtomicUsize::new(0),
            position: AtomicUsize::new(NOT_LISTED),
            indexed: AtomicBool::new(false),
        }
    }
}

impl SlotCell {
    /// Slots leased right now.
    pub(crate) fn active(&self) -> usize {
        self.active.load(Ordering::SeqCst)
    }

    /// One more slot leased. Table only, under the origin lock.
    pub(crate) fn take(&self) {
        self.active.fetch_add(1, Ordering::SeqCst);
    }

    /// One slot given back; returns how many remain.
    pub(crate) fn give_back(&self) -> usize {
        let before = self.active.fetch_sub(1, Ordering::SeqCst);
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

    /// True while the connection is in the table's free index.
    pub(crate) fn indexed(&self) -> bool {
        self.indexed.load(Ordering::SeqCst)
    }

    /// Table only, under the origin lock, together with the index bit.
    pub(crate) fn set_indexed(&self, indexed: bool) {
        self.indexed.store(indexed, Ordering::SeqCst);
    }
}
