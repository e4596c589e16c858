//! What a test server has seen: [`ServerCounters`](crate::ServerCounters).

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

/// What a [`TestServer`](crate::TestServer) has seen. All counters only grow, except `connections_open` and
/// `streams_active`.
#[derive(Debug, Default)]
pub struct ServerCounters {
    /// TCP connections accepted.
    pub connections_accepted: AtomicU64,
    /// Connections currently open (TLS done, not yet closed).
    pub connections_open: AtomicUsize,
    /// TLS handshakes that failed.
    pub tls_failures: AtomicU64,
    /// TLS connections whose client presented a certificate the server verified (with
    /// [`client_auth_ca_pem`](crate::TestServerConfig::client_auth_ca_pem)).
    pub client_certificates: AtomicU64,
    /// Connections that negotiated HTTP/2.
    pub connections_h2: AtomicU64,
    /// Connections that negotiated HTTP/1.1.
    pub connections_http1: AtomicU64,
    /// Requests that reached the handler.
    pub requests: AtomicU64,
    /// Requests in the handler right now.
    pub streams_active: AtomicUsize,
    /// The most requests ever in the handler at once on a single connection.
    pub max_concurrent_streams_per_connection: AtomicUsize,
    /// GOAWAY frames the server started.
    pub goaways_sent: AtomicU64,
    /// Connections cut by [`TestServer::kill_connections`](crate::TestServer::kill_connections).
    pub connections_killed: AtomicU64,
    /// The most requests any single connection carried.
    pub max_requests_on_one_connection: AtomicU64,
    /// Requests answered `421 Misdirected Request` (with `misdirect_other_hosts`).
    pub misdirected: AtomicU64,
    /// Connections that carried TLS 1.3 early data (0-RTT) the server took (with
    /// [`early_data`](crate::TestServerConfig::early_data)).
    pub early_data_connections: AtomicU64,
    /// HTTP/2 requests whose HEADERS frame arrived in early data (with
    /// [`early_data`](crate::TestServerConfig::early_data)): what nginx's `$ssl_early_data`
    /// reports per request. A client may send its preface and SETTINGS early and hold a
    /// request that is not replay-safe for the handshake.
    pub early_data_requests: AtomicU64,
    /// Bytes of early data handed to HTTP (with
    /// [`early_data`](crate::TestServerConfig::early_data)).
    pub early_data_bytes: AtomicU64,
    /// Requests whose path had been seen before (with `track_duplicates`).
    pub duplicate_paths: AtomicU64,
    pub(crate) seen_paths: std::sync::Mutex<std::collections::HashSet<String>>,
}

impl ServerCounters {
    /// `connections_accepted`, loaded.
    pub fn accepted(&self) -> u64 {
        self.connections_accepted.load(Ordering::SeqCst)
    }

    /// `requests`, loaded.
    pub fn requests(&self) -> u64 {
        self.requests.load(Ordering::SeqCst)
    }

    /// `max_concurrent_streams_per_connection`, loaded.
    pub fn max_concurrent_per_connection(&self) -> usize {
        self.max_concurrent_streams_per_connection
            .load(Ordering::SeqCst)
    }

    /// Distinct request paths seen (with `track_duplicates`).
    pub fn distinct_paths(&self) -> usize {
        self.seen_paths
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .len()
    }

    /// `duplicate_paths`, loaded.
    pub fn duplicates(&self) -> u64 {
        self.duplicate_paths.load(Ordering::SeqCst)
    }

    /// `connections_open`, loaded.
    pub fn open(&self) -> usize {
        self.connections_open.load(Ordering::SeqCst)
    }
}
