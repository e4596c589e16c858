//! The lease of one stream slot: an RAII value that gives the slot back when dropped.
//!
//! A lease holds an `Arc` to its connection and nothing else (no back-reference to the origin
//! pool: the connection reports the release through its weak link to the origin, as tower's
//! concurrency-limit permit does). It lives as long as what it covers: `pool.request` moves it
//! into the response [`Body`](crate::Body), which gives it back at END_STREAM, a reset, an
//! error or drop. A [`StreamHandle`](crate::StreamHandle) shares its lease with the bodies of
//! the responses it received ([`LeaseRef::Shared`]), so the slot stays taken while any of them
//! still streams.

use std::sync::Arc;

use crate::connection::Connection;

/// One leased stream slot on `conn`.
#[derive(Debug)]
pub(crate) struct Lease {
    conn: Arc<Connection>,
    /// False once the slot moved to another `Lease` (see [`Lease::transfer`]).
    armed: bool,
    /// The slot is on another origin's connection (HTTP/2 coalescing): what its responses'
    /// [`ConnectionInfo`](crate::ConnectionInfo) says.
    coalesced: bool,
}

impl Lease {
    /// Wraps a slot the origin's table has already counted as taken.
    pub(crate) fn new(conn: Arc<Connection>) -> Lease {
        Lease {
            conn,
            armed: true,
            coalesced: false,
        }
    }

    /// Marks the lease as taken on another origin's connection, for the origin being served.
    pub(crate) fn into_coalesced(mut self) -> Lease {
        self.coalesced = true;
        self
    }

    pub(crate) fn conn(&self) -> &Arc<Connection> {
        &self.conn
    }

    /// True until the slot is given back or moved to another `Lease`.
    pub(crate) fn is_armed(&self) -> bool {
        self.armed
    }

    /// Gives the slot back now, keeping the connection (for what its holder still reports).
    pub(crate) fn release_now(&mut self) {
        if std::mem::replace(&mut self.armed, false) {
            Connection::release(&self.conn);
        }
    }

    /// Moves the slot into a new `Lease`; this one no longer gives it back.
    pub(crate) fn transfer(&mut self) -> Lease {
        let armed = std::mem::replace(&mut self.armed, false);
        Lease {
            conn: Arc::clone(&self.conn),
            armed,
            coalesced: self.coalesced,
        }
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        if self.armed {
            Connection::release(&self.conn);
        }
    }
}

/// A lease owned outright, or shared between a handle and the bodies it produced.
#[derive(Debug)]
pub(crate) enum LeaseRef {
    /// `pool.request` and `PoolService`: the body is the lease's only holder.
    Owned(Lease),
    /// A [`StreamHandle`](crate::StreamHandle) and its responses' bodies.
    Shared(Arc<Lease>),
}

impl LeaseRef {
    pub(crate) fn conn(&self) -> &Arc<Connection> {
        match self {
            LeaseRef::Owned(lease) => lease.conn(),
            LeaseRef::Shared(lease) => lease.conn(),
        }
    }

    /// The info for a response received on this slot.
    pub(crate) fn connection_info(&self) -> crate::ConnectionInfo {
        let lease = match self {
            LeaseRef::Owned(lease) => lease,
            LeaseRef::Shared(lease) => lease,
        };
        lease.conn.info_for_response(lease.coalesced)
    }

    /// Another reference to the same slot, for a response body: an owned lease becomes shared
    /// first (allocated only then, so a handle that never sends costs no heap).
    pub(crate) fn share(&mut self) -> LeaseRef {
        let shared = match self {
            LeaseRef::Shared(lease) => Arc::clone(lease),
            LeaseRef::Owned(lease) => {
                let shared = Arc::new(lease.transfer());
                // The disarmed lease drops here without giving the slot back.
                *self = LeaseRef::Shared(Arc::clone(&shared));
                shared
            }
        };
        LeaseRef::Shared(shared)
    }
}
