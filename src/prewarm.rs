//! What [`prewarm_hosts`](crate::ConnectionPoolManager::prewarm_hosts) reports per host.

use std::time::Duration;

use crate::error::Error;
use crate::origin::Origin;
use crate::protocol::Protocol;

/// The outcome of warming one host given to
/// [`prewarm_hosts`](crate::ConnectionPoolManager::prewarm_hosts).
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct HostWarmup {
    /// The host as it was given.
    pub input: String,
    /// What happened: the warmed origin, or why it could not be warmed.
    pub result: Result<WarmedOrigin, Error>,
}

impl HostWarmup {
    /// True when the host has at least one open connection.
    pub fn is_ok(&self) -> bool {
        self.result.is_ok()
    }
}

/// A host that was warmed.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct WarmedOrigin {
    /// The normalised origin.
    pub origin: Origin,
    /// Connections open to it when warming finished.
    pub connections: usize,
    /// Connections this call opened (0 if it was already warm).
    pub opened: usize,
    /// Dials this call started that failed (the rest still count).
    pub failed: usize,
    /// The negotiated protocol of the first connection this call opened.
    pub protocol: Option<Protocol>,
    /// DNS + TCP connect time of the first connection this call opened.
    pub tcp_connect: Option<Duration>,
    /// TLS handshake time of the first connection this call opened.
    pub tls_handshake: Option<Duration>,
    /// Wall time for this host, from the call to its last dial finishing.
    pub elapsed: Duration,
}
