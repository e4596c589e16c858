//! [`PoolConfig::validate`]: every value checked before a pool exists.

use super::{Cleartext, PoolConfig};
use crate::error::Error;

/// The largest flow-control window HTTP/2 allows (RFC 9113 §6.9.1).
const MAX_WINDOW_SIZE: u32 = (1 << 31) - 1;
/// The smallest window HTTP/2 starts with; smaller windows only slow every stream down.
const MIN_WINDOW_SIZE: u32 = 65_535;

impl PoolConfig {
    /// Checks every value; the first bad one is reported.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidConfig`] naming the field.
    pub fn validate(&self) -> Result<(), Error> {
        if self.max_connections_per_origin == 0 {
            return Err(Error::invalid_config(
                "max_connections_per_origin",
                "must be at least 1",
            ));
        }
        if self.max_connection_lifetime.is_some_and(|d| d.is_zero()) {
            return Err(Error::invalid_config(
                "max_connection_lifetime",
                "must be greater than zero (or None)",
            ));
        }
        if self.demand_window.is_some_and(|d| d.is_zero()) {
            return Err(Error::invalid_config(
                "demand_window",
                "must be greater than zero (or None)",
            ));
        }
        if self.max_requests_per_connection == Some(0) {
            return Err(Error::invalid_config(
                "max_requests_per_connection",
                "must be at least 1 (or None)",
            ));
        }
        if self.max_waiters_per_origin == 0 {
            return Err(Error::invalid_config(
                "max_waiters_per_origin",
                "must be at least 1 (a cold origin's first acquirer waits for the dial)",
            ));
        }
        if self.h1_max_connections == 0 {
            return Err(Error::invalid_config(
                "h1_max_connections",
                "must be at least 1",
            ));
        }
        if self.min_connections_per_origin > self.max_connections_per_origin {
            return Err(Error::invalid_config(
                "min_connections_per_origin",
                format!(
                    "{} exceeds max_connections_per_origin ({})",
                    self.min_connections_per_origin, self.max_connections_per_origin
                ),
            ));
        }
        if self.max_streams_per_connection == Some(0) {
            return Err(Error::invalid_config(
                "max_streams_per_connection",
                "must be at least 1 (or None for the peer's limit)",
            ));
        }
        if !(self.scale_up_fill_ratio > 0.0 && self.scale_up_fill_ratio <= 1.0) {
            return Err(Error::invalid_config(
                "scale_up_fill_ratio",
                format!("{} is not in (0, 1]", self.scale_up_fill_ratio),
            ));
        }
        for (field, value) in [
            ("acquire_timeout", self.acquire_timeout),
            ("response_head_timeout", self.response_head_timeout),
            ("read_timeout", self.read_timeout),
            ("write_timeout", self.write_timeout),
            ("dial_backoff_initial", self.dial_backoff_initial),
            ("connect_timeout", self.connect_timeout),
            ("tls_handshake_timeout", self.tls_handshake_timeout),
            ("idle_timeout", self.idle_timeout),
            ("h1_idle_timeout", self.h1_idle_timeout),
            ("http2_keep_alive_timeout", self.http2_keep_alive_timeout),
        ] {
            if value.is_zero() {
                return Err(Error::invalid_config(field, "must be greater than zero"));
            }
        }
        if self.request_timeout.is_some_and(|d| d.is_zero()) {
            return Err(Error::invalid_config(
                "request_timeout",
                "must be greater than zero (or None)",
            ));
        }
        if self.dial_backoff_max < self.dial_backoff_initial {
            return Err(Error::invalid_config(
                "dial_backoff_max",
                format!(
                    "{:?} is below dial_backoff_initial ({:?})",
                    self.dial_backoff_max, self.dial_backoff_initial
                ),
            ));
        }
        if self.http2_keep_alive_interval.is_some_and(|d| d.is_zero()) {
            return Err(Error::invalid_config(
                "http2_keep_alive_interval",
                "must be greater than zero (or None to disable)",
            ));
        }
        // The stream window may be set below the protocol's initial 65,535 (that is what
        // SETTINGS_INITIAL_WINDOW_SIZE is for); the connection window can only grow.
        if self.http2_initial_stream_window_size == 0
            || self.http2_initial_stream_window_size > MAX_WINDOW_SIZE
        {
            return Err(Error::invalid_config(
                "http2_initial_stream_window_size",
                format!("must be in 1..={MAX_WINDOW_SIZE}"),
            ));
        }
        if self.http2_initial_connection_window_size < MIN_WINDOW_SIZE
            || self.http2_initial_connection_window_size > MAX_WINDOW_SIZE
        {
            return Err(Error::invalid_config(
                "http2_initial_connection_window_size",
                format!("must be in {MIN_WINDOW_SIZE}..={MAX_WINDOW_SIZE}"),
            ));
        }
        if self.http2_max_send_buf_size == 0 || self.http2_max_send_buf_size > u32::MAX as usize {
            return Err(Error::invalid_config(
                "http2_max_send_buf_size",
                format!("must be in 1..={}", u32::MAX),
            ));
        }
        if self.http2_max_header_list_size == 0 {
            return Err(Error::invalid_config(
                "http2_max_header_list_size",
                "must be at least 1",
            ));
        }
        self.validate_tls()?;
        if self.h2_only && self.cleartext == Cleartext::Http1 {
            return Err(Error::invalid_config(
                "cleartext",
                "Cleartext::Http1 contradicts h2_only; use Cleartext::Http2PriorKnowledge",
            ));
        }
        if let Some((host, _)) = self
            .resolve_overrides
            .iter()
            .find(|(_, ips)| ips.is_empty())
        {
            return Err(Error::invalid_config(
                "resolve_overrides",
                format!("{host} has no address"),
            ));
        }
        if let Some(proxy) = &self.proxy {
            proxy.origin()?;
        }
        Ok(())
    }

    /// The TLS options agree with each other and with the build's features. The material
    /// itself (PEM) is parsed when the connector is built.
    fn validate_tls(&self) -> Result<(), Error> {
        if self.tls_native_roots && !cfg!(feature = "native-roots") {
            return Err(Error::invalid_config(
                "tls_native_roots",
                "this build lacks the `native-roots` feature",
            ));
        }
        if self.tls_webpki_roots && !cfg!(feature = "webpki-roots") {
            return Err(Error::invalid_config(
                "tls_webpki_roots",
                "this build lacks the `webpki-roots` feature",
            ));
        }
        if self.tls_client_config.is_some() {
            // The caller's ClientConfig carries its own roots and identity: options that would
            // build them are refused rather than silently ignored (`tls_webpki_roots` is on by
            // default, so it alone is not held against the caller).
            let conflict = if !self.tls_extra_ca_pem.is_empty() {
                Some("tls_extra_ca_pem")
            } else if self.tls_native_roots {
                Some("tls_native_roots")
            } else if self.tls_client_auth.is_some() {
                Some("tls_client_auth")
            } else {
                None
            };
            if let Some(field) = conflict {
                return Err(Error::invalid_config(
                    field,
                    "has no effect with tls_config: set it on the rustls ClientConfig instead",
                ));
            }
            return Ok(());
        }
        if !self.tls_webpki_roots && !self.tls_native_roots && self.tls_extra_ca_pem.is_empty() {
            return Err(Error::invalid_config(
                "tls_webpki_roots",
                "no trusted roots: no server certificate could be verified; enable webpki roots \
                 (the `webpki-roots` feature) or native roots (`native-roots`), add a CA \
                 certificate with tls_extra_ca_pem, or bring a rustls ClientConfig with tls_config",
            ));
        }
        Ok(())
    }
}
