//! Opening a connection: the HTTP/2 (h2) or HTTP/1.1 (hyper) handshake over a dialed
//! stream, then its driver task.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::time::Instant;

use hyper::client::conn::http1;
use hyper_util::rt::TokioIo;

use super::driver::{spawn_h1_driver, spawn_h2_driver};
use super::{Connection, ConnectionParams, PROVISIONAL, Wire};
use crate::connection_info::ConnectionInfo;
use crate::connector::Dialed;
use crate::error::{Error, shared};
use crate::ping::Pinger;
use crate::protocol::Protocol;
use crate::slot::SlotCell;
use crate::timeouts::PhaseTimeouts;

impl Connection {
    /// Runs the HTTP handshake over a dialed stream and spawns the driver task.
    pub(crate) async fn establish(
        dialed: Dialed,
        params: ConnectionParams<'_>,
    ) -> Result<Arc<Connection>, Error> {
        let ConnectionParams {
            id,
            origin,
            config,
            events,
            waiting,
            counters,
            budget,
            telemetry,
        } = params;
        let make = |wire| Connection {
            id,
            origin: origin.clone(),
            protocol: dialed.protocol,
            peer: dialed.peer,
            info: ConnectionInfo::new(
                id,
                dialed.peer,
                dialed.local,
                dialed.protocol,
                dialed.tls,
                dialed.proxy.clone(),
            ),
            dial_times: (dialed.tcp_time, dialed.tls_time),
            settings_at: AtomicU64::new(u64::MAX),
            end_entity: dialed.end_entity.clone(),
            wire,
            slot: SlotCell::default(),
            cap: config.max_streams_per_connection.unwrap_or(usize::MAX),
            timeouts: PhaseTimeouts::from_config(config),
            peer_max_streams: AtomicUsize::new(PROVISIONAL),
            closed: AtomicBool::new(false),
            draining: AtomicBool::new(false),
            max_leases: config.max_requests_per_connection,
            budget: Arc::clone(&budget),
            responses: AtomicU64::new(0),
            rotation_failures: AtomicU64::new(0),
            peer_ended: AtomicBool::new(false),
            ended_in_use: AtomicBool::new(false),
            dial_failure_claimed: AtomicBool::new(false),
            client_certificate_required: Arc::clone(&dialed.client_certificate_required),
            early_data: dialed.early.clone(),
            retire_at: config
                .max_connection_lifetime
                .map(|lifetime| Instant::now() + lifetime),
            first_lease_at: AtomicU64::new(u64::MAX),
            replacement_asked: AtomicBool::new(false),
            leases: AtomicU64::new(0),
            requests: AtomicU64::new(0),
            refused_from: AtomicU64::new(u64::MAX),
            created: Instant::now(),
            idle_since: AtomicU64::new(0),
            events: events.clone(),
            waiting: Arc::clone(&waiting),
            counters: Arc::clone(&counters),
            telemetry: Arc::clone(&telemetry),
        };

        match dialed.protocol {
            Protocol::Http2 => {
                let mut builder = h2::client::Builder::new();
                // With the adaptive window on, BDP estimation grows these; it never shrinks them.
                let (stream_window, conn_window) = (
                    config.http2_initial_stream_window_size,
                    config.http2_initial_connection_window_size,
                );
                builder
                    .initial_max_send_streams(PROVISIONAL)
                    .initial_window_size(stream_window)
                    .initial_connection_window_size(conn_window)
                    .max_send_buffer_size(config.http2_max_send_buf_size)
                    .max_header_list_size(config.http2_max_header_list_size)
                    .enable_push(false);
                let (sender, mut h2_conn) =
                    builder
                        .handshake(dialed.stream)
                        .await
                        .map_err(|e| Error::Protocol {
                            origin: origin.clone(),
                            reason: "h2 handshake failed".to_owned(),
                            source: Some(shared(e)),
                        })?;
                let pinger = h2_conn.ping_pong().and_then(|ping_pong| {
                    Pinger::new(
                        ping_pong,
                        config
                            .http2_keep_alive_interval
                            .map(|interval| (interval, config.http2_keep_alive_timeout)),
                        config
                            .http2_adaptive_window
                            .then_some((stream_window, conn_window)),
                    )
                });
                let (pinger, recorder) = match pinger {
                    Some((pinger, recorder)) => (Some(pinger), recorder),
                    None => (None, None),
                };
                let conn = Arc::new(make(Wire::h2(sender, recorder)));
                spawn_h2_driver(h2_conn, pinger, &conn, counters);
                Ok(conn)
            }
            Protocol::Http1 => {
                let (sender, driver) = http1::Builder::new()
                    .handshake(TokioIo::new(dialed.stream))
                    .await
                    .map_err(|e| Error::Protocol {
                        origin: origin.clone(),
                        reason: "http/1.1 handshake failed".to_owned(),
                        source: Some(shared(e)),
                    })?;
                let conn = Arc::new(make(Wire::h1(sender)));
                // HTTP/1.1 has no SETTINGS: one request at a time, known from the start.
                conn.peer_max_streams.store(1, Ordering::Relaxed);
                spawn_h1_driver(driver, &conn, counters);
                Ok(conn)
            }
        }
    }
}
