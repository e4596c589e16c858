//! HTTP/2 connection coalescing (RFC 9113 §9.1.1), the per-origin part: which other origin's
//! connections this origin's requests may go on, and the test a connection must pass. The
//! manager (`manager/coalesce.rs`) finds the other origin and leases from it.
//!
//! A connection serves origin B when it speaks HTTP/2 over TLS to B's scheme and port, its
//! socket is connected to an address B resolves to, and its server's certificate is valid for
//! B's host. A server that answers `421 Misdirected Request` all the same is not asked again.
//! Connections tunnelled through a proxy take no part: their socket's address is the proxy's,
//! and a request must stay on its origin's route.

use std::net::IpAddr;
use std::sync::{Arc, MutexGuard, Weak};

use pki_types::ServerName;
use rustls::server::ParsedCertificate;

use super::OriginPool;
use crate::connection::Connection;
use crate::origin::{Origin, Scheme};
use crate::protocol::Protocol;

/// What one origin knows about coalescing onto others.
#[derive(Debug, Default)]
pub(crate) struct Coalescing {
    target: Option<Target>,
    /// Origins whose servers answered this origin's requests with 421.
    refused: Vec<Origin>,
}

#[derive(Debug)]
struct Target {
    pool: Weak<OriginPool>,
    /// This origin's addresses, as resolved when the target was chosen.
    ips: Vec<IpAddr>,
    /// Connections of the target already checked against this origin.
    verified: Vec<u64>,
}

/// True when `conn` may carry requests for `origin`, whose host resolves to `ips`.
pub(crate) fn serves(conn: &Connection, origin: &Origin, ips: &[IpAddr]) -> bool {
    // A tunnelled connection's socket goes to the proxy, so its address says nothing about
    // the server behind it; and a connection must not carry requests across routes.
    if conn.protocol != Protocol::Http2
        || conn.is_tunnelled()
        || conn.is_closed()
        || conn.origin.scheme() != Scheme::Https
        || origin.scheme() != Scheme::Https
        || conn.origin.port() != origin.port()
        || !ips.contains(&conn.peer.ip())
    {
        return false;
    }
    let Some(der) = conn.end_entity.as_ref() else {
        return false;
    };
    let (Ok(cert), Ok(name)) = (
        ParsedCertificate::try_from(der),
        ServerName::try_from(origin.host_unbracketed()),
    ) else {
        return false;
    };
    rustls::client::verify_server_name(&cert, &name).is_ok()
}

impl OriginPool {
    fn coalescing(&self) -> MutexGuard<'_, Coalescing> {
        // Plain data, changed in single assignments: a poisoned lock is still consistent.
        self.coalescing.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// True when this origin has a connection, or a dial, of its own: its requests stay on
    /// them.
    pub(crate) fn has_own_connections(&self) -> bool {
        let st = self.lock();
        !st.connections().is_empty() || st.dialing() > 0
    }

    /// The origin this one's requests go on, with this origin's addresses, while it exists.
    pub(crate) fn coalesce_target(&self) -> Option<(Arc<OriginPool>, Vec<IpAddr>)> {
        let mut c = self.coalescing();
        let target = c.target.as_ref()?;
        match target.pool.upgrade() {
            Some(pool) => Some((pool, target.ips.clone())),
            None => {
                c.target = None;
                None
            }
        }
    }

    /// Sends this origin's requests to `pool`'s connections from now on.
    pub(crate) fn set_coalesce_target(&self, pool: &Arc<OriginPool>, ips: Vec<IpAddr>) {
        self.coalescing().target = Some(Target {
            pool: Arc::downgrade(pool),
            ips,
            verified: Vec::new(),
        });
    }

    /// True when `other`'s server refused this origin's requests with 421.
    pub(crate) fn coalescing_refused(&self, other: &Origin) -> bool {
        self.coalescing().refused.contains(other)
    }

    /// `other`'s server answered 421: never coalesce onto it again.
    pub(crate) fn refuse_coalescing(&self, other: &Origin) {
        let mut c = self.coalescing();
        if c.target
            .as_ref()
            .and_then(|t| t.pool.upgrade())
            .is_some_and(|p| p.origin() == other)
        {
            c.target = None;
        }
        if !c.refused.contains(other) {
            c.refused.push(other.clone());
        }
    }

    /// True when one of this origin's open connections can serve `origin` at `ips`.
    pub(crate) fn can_serve(&self, origin: &Origin, ips: &[IpAddr]) -> bool {
        self.lock()
            .connections()
            .iter()
            .any(|conn| serves(conn, origin, ips))
    }

    /// True when `conn`, leased from the coalescing target, may carry this origin's request
    /// (the target may have dialed a connection to another of its addresses since).
    pub(crate) fn admits_coalesced(&self, conn: &Connection) -> bool {
        let mut c = self.coalescing();
        let Some(target) = c.target.as_mut() else {
            return false;
        };
        if target.verified.contains(&conn.id) {
            return true;
        }
        if serves(conn, &self.origin, &target.ips) {
            if target.verified.len() >= MAX_VERIFIED {
                // Rotated-out connections' ids; the live ones are checked again.
                target.verified.clear();
            }
            target.verified.push(conn.id);
            true
        } else {
            false
        }
    }
}

/// Connection ids remembered as checked, per target; a bound, not a cache size to tune.
const MAX_VERIFIED: usize = 32;
