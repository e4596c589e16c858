//! [`PoolStats::to_prometheus`]: the snapshot in the Prometheus text exposition format, for
//! services that expose `/metrics` without a metrics facade. Family names, types and help
//! texts come from the one table in `metrics`.

use std::time::Duration;

use crate::metrics::{self, Family};
use crate::otel::{self, buckets::Bounds, buckets::BucketCounts};
use crate::stats::{OriginStats, PoolStats};

impl PoolStats {
    /// Renders the snapshot in the Prometheus text exposition format (version 0.0.4), for
    /// services that expose `/metrics` without a metrics facade.
    ///
    /// OpenTelemetry's HTTP client instruments come under their Prometheus names
    /// (`http_client_request_duration_seconds` and `http_client_connection_duration_seconds`
    /// histograms with the recommended buckets, `http_client_active_requests` and
    /// `http_client_open_connections` gauges), labelled with their attributes, dots made
    /// underscores (`server_address`, `http_request_method`, …). The pool's own numbers are
    /// prefixed `https_pool_`, per-origin ones with an `origin` label, and their latencies
    /// are summaries in seconds. The names are those the `metrics` feature publishes (which
    /// keeps OpenTelemetry's dotted names).
    pub fn to_prometheus(&self) -> String {
        use std::fmt::Write as _;
        // (family, [(label set or "_suffix", value)])
        let mut families: Vec<(Family, Vec<(String, String)>)> = Vec::new();
        let one = |v: u64| vec![(String::new(), v.to_string())];
        let outcomes = |pairs: [(&str, u64); 2]| {
            pairs
                .iter()
                .map(|(outcome, v)| (format!("{{outcome=\"{outcome}\"}}"), v.to_string()))
                .collect::<Vec<_>>()
        };
        families.push((metrics::CONNECTIONS_OPENED, one(self.connections_opened)));
        families.push((metrics::CONNECTIONS_CLOSED, one(self.connections_closed)));
        families.push((metrics::CONNECTS_FAILED, one(self.connects_failed)));
        families.push((
            metrics::ACQUIRES,
            outcomes([
                ("ok", self.acquires_succeeded),
                ("error", self.acquires_failed),
            ]),
        ));
        families.push((metrics::LEASES_REUSED, one(self.leases_reused)));
        families.push((metrics::LEASES_COALESCED, one(self.leases_coalesced)));
        families.push((
            metrics::REQUESTS,
            outcomes([
                ("sent", self.requests_sent),
                ("failed", self.requests_failed),
            ]),
        ));
        families.push((metrics::REQUESTS_RETRIED, one(self.requests_retried)));
        families.push((metrics::HANDLES_OUTSTANDING, one(self.handles_outstanding)));
        let per_origin = |value: &dyn Fn(&OriginStats) -> String| {
            self.origins
                .iter()
                .map(|o| {
                    let origin = escape_label(&o.origin.to_string());
                    (format!("{{origin=\"{origin}\"}}"), value(o))
                })
                .collect::<Vec<_>>()
        };
        families.push((
            metrics::ACTIVE_STREAMS,
            per_origin(&|o| o.active_streams().to_string()),
        ));
        families.push((metrics::WAITERS, per_origin(&|o| o.waiters.to_string())));
        families.push((
            metrics::LEARNED_REQUEST_BUDGET,
            per_origin(&|o| o.learned_request_budget.unwrap_or(0).to_string()),
        ));
        families.push((
            metrics::TLS_HANDSHAKES,
            per_origin_by(&self.origins, "kind", |o| {
                [
                    ("full", o.tls_full_handshakes),
                    ("resumed", o.tls_resumed_handshakes),
                ]
            }),
        ));
        families.push((
            metrics::TLS_EARLY_DATA,
            per_origin_by(&self.origins, "outcome", |o| {
                [
                    ("accepted", o.early_data_accepted),
                    ("rejected", o.early_data_rejected),
                ]
            }),
        ));
        for (family, summary) in [
            (metrics::ACQUIRE_DURATION, &self.acquire_latency),
            (metrics::TIME_IN_QUEUE, &self.time_in_queue),
        ] {
            let q = |label: &str, d: Duration| {
                (
                    format!("{{quantile=\"{label}\"}}"),
                    d.as_secs_f64().to_string(),
                )
            };
            families.push((
                family,
                vec![
                    q("0.5", summary.p50),
                    q("0.9", summary.p90),
                    q("0.99", summary.p99),
                    q("0.999", summary.p999),
                    ("_count".to_owned(), summary.count.to_string()),
                ],
            ));
        }
        let by_urgency = self
            .time_in_queue_by_urgency
            .iter()
            .enumerate()
            .filter(|(_, s)| s.count > 0)
            .flat_map(|(u, s)| {
                let q = move |label: &str, d: Duration| {
                    (
                        format!("{{urgency=\"{u}\",quantile=\"{label}\"}}"),
                        d.as_secs_f64().to_string(),
                    )
                };
                [
                    q("0.5", s.p50),
                    q("0.99", s.p99),
                    (format!("_count{{urgency=\"{u}\"}}"), s.count.to_string()),
                ]
            })
            .collect();
        families.push((metrics::TIME_IN_QUEUE_BY_URGENCY, by_urgency));
        self.push_otel_families(&mut families);
        let mut out = String::new();
        for (family, samples) in families {
            let Family { name, help, .. } = family;
            let _ = writeln!(out, "# HELP {name} {help}");
            let _ = writeln!(out, "# TYPE {name} {}", family.prometheus_type);
            for (suffix, value) in samples {
                match suffix.strip_prefix('_') {
                    Some(tail) => {
                        let _ = writeln!(out, "{name}_{tail} {value}");
                    }
                    None => {
                        let _ = writeln!(out, "{name}{suffix} {value}");
                    }
                }
            }
        }
        out
    }
}

/// A family's samples: a label set (`{…}`), or `_suffix` and a label set, with the value.
type Samples = Vec<(String, String)>;

impl PoolStats {
    /// The OpenTelemetry instruments (`otel.rs`), under their Prometheus names: per origin,
    /// `server_address`, `server_port` and `url_scheme` labels, the rest of each series'
    /// attributes with dots made underscores.
    fn push_otel_families(&self, families: &mut Vec<(Family, Samples)>) {
        let mut durations = Samples::new();
        let mut active = Samples::new();
        let mut open = Samples::new();
        let mut lifetimes = Samples::new();
        for o in &self.origins {
            let origin = otel::origin_attributes(&o.origin);
            for series in &o.telemetry.requests {
                let mut attributes = origin.to_vec();
                attributes.extend(otel::request_attributes(
                    series.method,
                    series.protocol,
                    series.outcome,
                ));
                histogram_samples(
                    &mut durations,
                    &attributes,
                    &otel::REQUEST_DURATION_BOUNDS,
                    &series.counts,
                );
            }
            active.push((
                label_set(&origin),
                (o.active_streams() + o.waiters).to_string(),
            ));
            for (state, n) in [
                ("active", o.active_connections()),
                ("idle", o.idle_connections()),
            ] {
                let mut attributes = vec![("http.connection.state", state.to_owned())];
                attributes.extend(origin.iter().cloned());
                open.push((label_set(&attributes), n.to_string()));
            }
            for (protocol, counts) in &o.telemetry.connections {
                let mut attributes = origin.to_vec();
                attributes.push((
                    "network.protocol.version",
                    otel::protocol_version(*protocol).to_owned(),
                ));
                histogram_samples(
                    &mut lifetimes,
                    &attributes,
                    &otel::CONNECTION_DURATION_BOUNDS,
                    counts,
                );
            }
        }
        families.push((otel::REQUEST_DURATION.prometheus, durations));
        families.push((otel::ACTIVE_REQUESTS.prometheus, active));
        families.push((otel::OPEN_CONNECTIONS.prometheus, open));
        families.push((otel::CONNECTION_DURATION.prometheus, lifetimes));
    }
}

/// One histogram series as Prometheus samples: a `_bucket` per bound, cumulative, then
/// `+Inf`, `_sum` (seconds) and `_count`.
fn histogram_samples(
    samples: &mut Samples,
    attributes: &[(&'static str, String)],
    bounds: &Bounds,
    counts: &BucketCounts,
) {
    let labels = label_set(attributes);
    let inner = labels.trim_start_matches('{').trim_end_matches('}');
    let mut cumulative = 0;
    for (i, count) in counts.counts.iter().enumerate() {
        cumulative += count;
        let le = bounds
            .seconds
            .get(i)
            .map_or_else(|| "+Inf".to_owned(), f64::to_string);
        samples.push((
            format!("_bucket{{{inner},le=\"{le}\"}}"),
            cumulative.to_string(),
        ));
    }
    samples.push((
        format!("_sum{labels}"),
        counts.sum.as_secs_f64().to_string(),
    ));
    samples.push((format!("_count{labels}"), cumulative.to_string()));
}

/// `{key="value",…}` with OpenTelemetry attribute names made Prometheus label names (dots
/// to underscores) and the values escaped.
/// One sample per origin and value of a second label (`kind`, `outcome`):
/// `{origin="…",label="…"}`.
fn per_origin_by<const N: usize>(
    origins: &[OriginStats],
    label: &str,
    values: impl Fn(&OriginStats) -> [(&'static str, u64); N],
) -> Vec<(String, String)> {
    origins
        .iter()
        .flat_map(|o| {
            let origin = escape_label(&o.origin.to_string());
            values(o).map(|(value, n)| {
                (
                    format!("{{origin=\"{origin}\",{label}=\"{value}\"}}"),
                    n.to_string(),
                )
            })
        })
        .collect()
}

fn label_set(attributes: &[(&'static str, String)]) -> String {
    let pairs: Vec<String> = attributes
        .iter()
        .map(|(key, value)| format!("{}=\"{}\"", key.replace('.', "_"), escape_label(value)))
        .collect();
    format!("{{{}}}", pairs.join(","))
}

/// Escapes a Prometheus label value (backslash, quote, newline).
fn escape_label(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::origin::Origin;
    use crate::stats::LatencySummary;

    /// The Prometheus rendering has a HELP/TYPE pair per family and labelled per-origin series.
    #[test]
    fn prometheus_text_has_families_and_origin_labels() {
        let origin: Origin = "https://api.example".parse().expect("origin");
        let stats = PoolStats {
            origins: vec![OriginStats {
                origin,
                connections: Vec::new(),
                connecting: 0,
                waiters: 3,
                warm_minimum: 1,
                recent_peak_demand: 0,
                learned_request_budget: Some(50),
                tls_full_handshakes: 1,
                tls_resumed_handshakes: 2,
                early_data_accepted: 0,
                early_data_rejected: 0,
                dial_failures_in_row: 0,
                telemetry: Default::default(),
            }],
            connections_opened: 2,
            connections_closed: 1,
            connects_failed: 0,
            acquires_succeeded: 10,
            acquires_failed: 1,
            leases_reused: 8,
            leases_coalesced: 0,
            handles_outstanding: 0,
            requests_sent: 10,
            requests_failed: 1,
            requests_retried: 0,
            acquire_latency: LatencySummary::default(),
            time_in_queue: LatencySummary::default(),
            time_in_queue_by_urgency: Default::default(),
        };
        let text = stats.to_prometheus();
        assert!(text.contains("# TYPE https_pool_connections_opened_total counter\n"));
        assert!(text.contains("https_pool_connections_opened_total 2\n"));
        assert!(text.contains("https_pool_acquires_total{outcome=\"error\"} 1\n"));
        assert!(text.contains("https_pool_waiters{origin=\"https://api.example:443\"} 3\n"));
        assert!(text.contains("https_pool_acquire_duration_seconds_count 0\n"));
        assert!(text.contains(
            "http_client_open_connections{http_connection_state=\"idle\",\
             server_address=\"api.example\",server_port=\"443\",url_scheme=\"https\"} 0\n"
        ));
        assert!(text.contains(
            "http_client_active_requests{server_address=\"api.example\",server_port=\"443\",\
             url_scheme=\"https\"} 3\n"
        ));
        assert!(text.contains(
            "https_pool_tls_handshakes_total{origin=\"https://api.example:443\",kind=\"resumed\"} 2\n"
        ));
        assert_eq!(escape_label("a\"b\\c"), "a\\\"b\\\\c");
    }
}
