#![doc = include_str!("../README.md")]
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
mod connector;
mod counters;
mod error;
mod exchange;
mod handle;
mod into_origin;
mod lease;
mod manager;
mod metrics;
mod origin;
mod origin_pool;
mod outgoing;
mod ping;
mod prewarm;
mod priority;
mod prometheus;
mod protocol;
mod request_budget;
mod resolver;
mod retry;
mod service;
mod slot;
mod stats;
mod transport;

pub use body::Body;
pub use builder::PoolBuilder;
pub use config::{Cleartext, PoolConfig, SelectionPolicy};
pub use error::{BoxError, Error, TimeoutKind};
pub use handle::StreamHandle;
pub use into_origin::IntoOrigin;
pub use manager::ConnectionPoolManager;
pub use origin::{Origin, Scheme};
pub use prewarm::{HostWarmup, WarmedOrigin};
pub use priority::Priority;
pub use protocol::Protocol;
pub use service::PoolService;
pub use stats::{ConnectionStats, LatencySummary, OriginStats, PoolStats};
