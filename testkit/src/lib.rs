//! Real HTTPS peers on loopback for tests, benchmarks and the harness of
//! [https-pool](https://docs.rs/https-pool), and for your own tests.
//!
//! [`TestServer`] is a hyper server over rustls with a per-run certificate authority from
//! rcgen. It speaks HTTP/2 and/or HTTP/1.1 by ALPN, enforces a configurable
//! `SETTINGS_MAX_CONCURRENT_STREAMS`, delays and sizes responses, can send GOAWAY after N
//! requests per connection, and counts what it sees (connections accepted, requests, the most
//! concurrent streams on any one connection). It runs on its own thread and runtime, binds
//! `127.0.0.1:0` (or another loopback address), and shuts down when dropped. It can require
//! client certificates (mutual TLS) signed by a [`TestClientCa`], and take TLS 1.3 early data
//! (0-RTT) on resumed connections.
//!
//! [`SilentListener`] accepts TCP and never answers: a TLS handshake against it times out.
//!
//! [`SynDropListener`] never completes TCP: its SYNs are dropped, as a black-holed address's.
//!
//! [`HostileServer`] breaks the rules on purpose, one [`Hostile`] behaviour per server: HTTP/2
//! streams never answered, trickled bodies, zero windows, endless header blocks, frame floods,
//! an HTTP/1.1 head that never ends. It counts the streams clients open, reset and leave open,
//! so a test can prove a client bounds every phase of a request and cleans up after itself.
//!
//! [`ConnectProxy`] is an HTTP CONNECT proxy (credentials, refusals, names only it resolves)
//! that counts the tunnels it opens.
//!
//! [`RttRelay`] forwards TCP to a target with a fixed delay each way (a stand-in for
//! `tc netem`, which is not available everywhere) and can turn into a black hole.
//!
//! Nothing here imports the pool: it is a peer, as a third-party server would be.

#![deny(missing_docs, missing_debug_implementations)]
#![forbid(unsafe_code)]

mod certs;
mod client_side;
mod config;
mod connect_proxy;
mod counters;
mod early_data;
mod hostile;
mod listener;
mod relay;
mod serve;
mod server;
mod settings_injector;
mod syn_drop;

pub use certs::{TestCertificates, TestClientCa, TestClientIdentity};
pub use client_side::{EndlessBody, most_dials_within};
pub use config::{Alpn, TestServerConfig};
pub use connect_proxy::{ConnectProxy, ConnectProxyConfig};
pub use counters::ServerCounters;
pub use hostile::{Hostile, HostileServer};
pub use relay::{RttRelay, SilentListener};
pub use server::TestServer;
pub use syn_drop::SynDropListener;

/// The largest response body a request header `x-body-bytes` can ask a
/// [`TestServer`] for: 64 MiB.
pub const MAX_BODY_OVERRIDE: usize = 64 * 1024 * 1024;
