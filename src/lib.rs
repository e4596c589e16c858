//! Warm, multiplexed HTTPS connections per origin, for services that call a few hosts a lot.
//!
//! A [`ConnectionPoolManager`] keeps HTTP/2 connections (the `h2` crate over rustls) to each
//! origin, hands out stream slots on them, and opens another connection only when the
//! server's `SETTINGS_MAX_CONCURRENT_STREAMS` is used up, which hyper-util's `Client`,
//! reqwest and tonic do not do (they queue every request behind one connection's limit). It
//! pre-warms hosts, evicts dead connections by PING timeout, rotates them before a server's
//! own request limit, falls back to HTTP/1.1 keep-alive when ALPN says so, retries only
//! requests that provably never reached the server, and reports what it does.
//!
//! # Quick start
//!
//! ```
//! use http_body_util::{BodyExt, Empty};
//! use https_pool::ConnectionPoolManager;
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
//! # let server = https_pool_testkit::TestServer::start(Default::default())?;
//! # let (api, ca) = (server.url(), server.ca_pem().to_owned());
//! // One pool per process (or ConnectionPoolManager::global()).
//! let pool = ConnectionPoolManager::builder()
//!     .max_connections_per_origin(4)
//!     .tls_extra_ca_pem(ca) // a private CA; the Mozilla roots are trusted by default
//!     .build()?;
//!
//! // At start-up: connect every host concurrently; one failing host does not fail the rest.
//! for host in pool.prewarm_hosts(&[api.as_str()]).await {
//!     if let Err(e) = &host.result {
//!         eprintln!("could not warm {}: {e}", host.input);
//!     }
//! }
//!
//! // Per call: the pool picks a connection with a free stream slot. The response body holds
//! // the slot until it ends or is dropped.
//! let request = http::Request::get(format!("{api}/items")).body(Empty::<bytes::Bytes>::new())?;
//! let response = pool.request(request).await?;
//! let body = response.into_body().collect().await?.to_bytes();
//! assert!(!body.is_empty());
//!
//! // Or lease a slot explicitly and send on it.
//! let mut handle = pool.acquire(api.as_str()).await?;
//! let response = handle.send(http::Request::get("/health").body(String::new())?).await?;
//! assert!(response.status().is_success());
//! drop((response, handle)); // frees the slot
//!
//! let stats = pool.stats();
//! assert_eq!(stats.open_connections(), 1);
//! pool.shutdown().await;
//! # Ok(())
//! # }
//! ```
//!
//! # tower and tonic
//!
//! [`ConnectionPoolManager::service`] is a `tower::Service` for one origin: it leases a slot in
//! `poll_ready` (so readiness is the pool's backpressure) and sends in `call`. A tonic client
//! runs on it unchanged, over TLS or, when [`Cleartext::Http2PriorKnowledge`] allows it, h2c:
//!
//! ```no_run
//! # async fn run() -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
//! use https_pool::{Cleartext, ConnectionPoolManager};
//! use tonic_health::pb::{HealthCheckRequest, health_client::HealthClient};
//!
//! let pool = ConnectionPoolManager::builder()
//!     .cleartext(Cleartext::Http2PriorKnowledge) // allow http:// origins, spoken as h2c
//!     .max_connections_per_origin(3)
//!     .build()?;
//! let mut health = HealthClient::new(pool.service("http://orders.internal:50051")?);
//! let reply = health.check(HealthCheckRequest { service: String::new() }).await?;
//! println!("{:?}", reply.into_inner().status());
//! # Ok(())
//! # }
//! ```
//!
//! The service is typed by its request body ([`PoolService<B>`](PoolService)), so
//! `service.ready().await?.call(request)` infers it from the request. Under tower's `Timeout`,
//! [`PoolService::acquire_in_call`] makes the wait for a slot part of the timed call; a `Retry`
//! policy may send again what [`Error::is_retry_safe`] proves never reached the server.
//! `examples/tower_stack.rs` layers `ConcurrencyLimit`, `Retry` and `Timeout` that way.
//!
//! # How it behaves
//!
//! - **Origins** are scheme, lower-cased host and port ([`Origin`]). `http://` is dialed only
//!   with [`PoolBuilder::cleartext`]; otherwise [`Error::CleartextDisabled`], before anything
//!   is dialed. An origin left with nothing for `idle_timeout` is forgotten.
//! - **Slots**: each connection carries `min(peer's SETTINGS_MAX_CONCURRENT_STREAMS,
//!   max_streams_per_connection)` streams, one until the peer's first SETTINGS frame. A
//!   response [`Body`] keeps its slot to END_STREAM, so a slow download does not hide behind a
//!   slot that looks free.
//! - **Scale-up**: connection k+1 is dialed only when waiting demand exceeds free slots plus
//!   the capacity of dials in flight, up to `max_connections_per_origin`; a cold burst shares
//!   one dial until the server's limit is known.
//! - **Waiting**: a freed slot is handed with its connection straight to the next waiter, in
//!   FIFO order within a [`Priority`] urgency (RFC 9218; a waiter older than
//!   `priority_aging` counts as most urgent). The queue is bounded
//!   ([`Error::PoolExhausted`]) and every wait has a deadline ([`Error::Timeout`]).
//! - **Health and rotation**: keep-alive PINGs evict silent connections; connections past
//!   `max_connection_lifetime` or `max_requests_per_connection` drain and close, a prewarmed
//!   origin dials the replacement first, and the pool learns a server's own per-connection
//!   request limit from its GOAWAYs and rotates a tenth before it.
//! - **Long paths**: receive windows start at 2 MiB per stream and 8 MiB per connection, so a
//!   response of up to 1 MiB takes one round trip however far the server is, and grow from the
//!   measured bandwidth-delay product up to 16 MiB and 32 MiB
//!   ([`PoolConfig::http2_adaptive_window`], which also states the memory bound: what callers
//!   have not read, at most one connection window per connection).
//! - **Retries**: [`ConnectionPoolManager::request`] and the tower service send a request
//!   again, on another connection, only when it provably never reached the server (never
//!   opened, `REFUSED_STREAM`, or above a GOAWAY's last-stream-id; HTTP/1.1: handed back
//!   unsent), and only with a body the pool still holds (empty, or ready and ≤ 64 KiB).
//! - **Dialing**: names resolve on every dial, through the system resolver, a [`Resolve`]
//!   of your own ([`PoolBuilder::resolver`]) or static overrides ([`PoolBuilder::resolve`]);
//!   the addresses are raced per RFC 8305, so a black-holed address costs 250 ms, not the
//!   connect timeout, and an origin's k-th dial starts at its k-th address, so its
//!   connections spread over the addresses a name has. Replacement connections resume their TLS session
//!   ([`OriginStats::tls_resumed_handshakes`]).
//! - **Proxies**: `https://` origins can go through an HTTP proxy's CONNECT tunnel
//!   ([`PoolBuilder::proxy`], or `HTTPS_PROXY` / `NO_PROXY` with
//!   [`PoolBuilder::proxy_from_env`]), TLS still verified for the origin; a refusal is
//!   [`Error::ProxyRefused`] with the proxy's status, and [`ConnectionStats::proxy`] says
//!   which connections go through it.
//! - **Opt-in**: HTTP/2 connection coalescing across origins one certificate covers
//!   ([`PoolConfig::http2_coalescing`]), and demand-driven warm-up that keeps the
//!   connections recent bursts needed ([`PoolConfig::demand_window`]).
//! - **TLS** is always verified: webpki roots, optionally the OS roots (`native-roots`), and
//!   extra CAs from PEM. There is no insecure mode. A client identity for mutual TLS
//!   ([`PoolBuilder::tls_client_auth_pem`]; a server that requires one the pool lacks is
//!   [`Error::ClientCertificateRequired`]), or a whole rustls `ClientConfig` of the caller's
//!   ([`PoolBuilder::tls_config`]: the pool still sets ALPN and counts handshakes), and
//!   [`PoolBuilder::tls_key_log`] for Wireshark.
//! - **Errors**: one [`Error`] enum, a variant per failure, each naming the origin.
//! - **Observability**: [`ConnectionPoolManager::stats`] (per origin and connection;
//!   [`PoolStats::to_prometheus`] renders it), the `metrics` facade with the `metrics`
//!   feature, and `tracing` events at debug level. Every response names the connection it
//!   came on in a [`ConnectionInfo`] extension.
//!
//! Every option, with its default, is a field of [`PoolConfig`].
//!
//! # Features
//!
//! - `ring` (default): TLS cryptography from *ring*.
//! - `aws-lc-rs`: TLS cryptography from AWS-LC instead; when both are enabled, `aws-lc-rs`
//!   is used (`ring` comes with the defaults, so `aws-lc-rs` is the explicit choice). With
//!   neither, the process default of rustls' `CryptoProvider::install_default` is used, or
//!   [`build`](PoolBuilder::build) fails saying none is available.
//! - `webpki-roots` (default): the Mozilla root certificates compiled in
//!   ([`PoolConfig::tls_webpki_roots`]). Without it, and without `native-roots` or an extra
//!   CA, [`build`](PoolBuilder::build) fails with [`Error::InvalidConfig`] saying the pool
//!   would trust nothing; [`ConnectionPoolManager::global`] needs it.
//! - `native-roots`: trust the operating system's certificate store as well.
//! - `metrics`: publish counters, gauges and histograms through the
//!   [`metrics`](https://docs.rs/metrics) facade.

#![deny(
    missing_docs,
    missing_debug_implementations,
    rustdoc::broken_intra_doc_links
)]
#![forbid(unsafe_code)]
#![warn(rust_2018_idioms, unreachable_pub)]
#![cfg_attr(not(test), warn(clippy::unwrap_used, clippy::expect_used))]

mod body;
mod builder;
mod config;
mod connection;
mod connection_info;
mod connector;
mod counters;
mod early_data;
mod error;
mod exchange;
mod handle;
mod into_origin;
mod lease;
mod manager;
mod metrics;
mod origin;
mod origin_pool;
mod otel;
mod outgoing;
mod ping;
mod prewarm;
mod priority;
mod prometheus;
mod protocol;
mod proxy;
mod request_budget;
mod resolver;
mod retry;
mod service;
mod slot;
mod stats;
mod timeouts;
mod transport;

pub use body::Body;
pub use builder::PoolBuilder;
pub use config::{Cleartext, CustomTlsConfig, PoolConfig, SelectionPolicy, TlsClientAuth};
pub use connection_info::{ConnectionInfo, TlsVersion};
pub use early_data::NoEarlyData;
pub use error::{BoxError, Error, TimeoutKind};
pub use handle::StreamHandle;
pub use into_origin::IntoOrigin;
pub use manager::ConnectionPoolManager;
pub use origin::{Origin, Scheme};
pub use prewarm::{HostWarmup, WarmedOrigin};
pub use priority::Priority;
pub use protocol::Protocol;
pub use proxy::ProxyUrl;
pub use resolver::{Resolve, Resolving, SystemResolver};
/// The rustls version the pool is built with, for [`PoolBuilder::tls_config`].
pub use rustls;
pub use service::PoolService;
pub use stats::{ConnectionStats, LatencySummary, OriginStats, PoolStats};
pub use timeouts::Timeouts;

/// The README's examples, compiled as doc tests so they cannot drift from the API.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;
