//! The `metrics` feature: the pool's numbers reach whatever recorder the application installed.
//! One test per binary, because the recorder is process-global.

mod support;

use std::collections::HashMap;
use std::time::Duration;

use https_pool_testkit::{TestServer, TestServerConfig};
use metrics_util::MetricKind;
use metrics_util::debugging::{DebugValue, DebuggingRecorder, Snapshotter};
use support::{body_len, builder_for, get, trace_init};

/// `(kind, name, sorted labels)` → value, from one snapshot.
type Readings = HashMap<(MetricKind, String, Vec<(String, String)>), DebugValue>;

fn read(snapshotter: &Snapshotter) -> Readings {
    snapshotter
        .snapshot()
        .into_vec()
        .into_iter()
        .map(|(key, _, _, value)| {
            let (kind, key) = key.into_parts();
            let mut labels: Vec<(String, String)> = key
                .labels()
                .map(|l| (l.key().to_owned(), l.value().to_owned()))
                .collect();
            labels.sort();
            ((kind, key.name().to_owned(), labels), value)
        })
        .collect()
}

fn labels(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    let mut v: Vec<_> = pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    v.sort();
    v
}

/// Counters, the handle gauge and the latency histograms mirror `stats()` exactly; the
/// per-origin gauges arrive on the maintenance tick.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pool_numbers_reach_the_installed_recorder() {
    trace_init();
    let recorder = DebuggingRecorder::new();
    let snapshotter = recorder.snapshotter();
    recorder.install().expect("first recorder in this process");

    let server = TestServer::start(TestServerConfig::default()).expect("server starts");
    let pool = builder_for(&server).build().expect("pool builds");
    for i in 0..50 {
        let response = pool
            .request(get(&server.url_for(&format!("/m/{i}"))))
            .await
            .expect("request succeeds");
        body_len(response).await;
    }
    let stats = pool.stats();
    assert_eq!(stats.requests_sent, 50);

    let origin = server.url().parse::<https_pool::Origin>().expect("origin");
    let origin_label = origin.to_string();
    let port = server.port().to_string();
    // OpenTelemetry's attributes of every series of this origin.
    let otel_origin = [
        ("server.address", "127.0.0.1"),
        ("server.port", port.as_str()),
        ("url.scheme", "https"),
    ];
    let with_origin = |extra: &[(&'static str, &'static str)]| {
        let mut l: Vec<(&str, &str)> = otel_origin.to_vec();
        l.extend_from_slice(extra);
        l
    };
    // The recorder drains on every snapshot (counters and gauges swap to 0, histograms
    // empty), so the first snapshot holds every value recorded so far.
    let readings = read(&snapshotter);
    let counter = |name: &str, l: &[(&str, &str)]| match readings.get(&(
        MetricKind::Counter,
        name.to_owned(),
        labels(l),
    )) {
        Some(DebugValue::Counter(v)) => *v,
        other => panic!("{name} {l:?}: {other:?}"),
    };
    assert_eq!(
        counter("https_pool_connections_opened_total", &[]),
        stats.connections_opened
    );
    assert_eq!(counter("https_pool_connections_opened_total", &[]), 1);
    assert_eq!(
        counter("https_pool_requests_total", &[("outcome", "sent")]),
        50
    );
    assert_eq!(
        counter("https_pool_acquires_total", &[("outcome", "ok")]),
        stats.acquires_succeeded
    );
    assert_eq!(
        counter("https_pool_leases_reused_total", &[]),
        stats.leases_reused
    );

    let gauge = |name: &str, l: &[(&str, &str)]| match readings.get(&(
        MetricKind::Gauge,
        name.to_owned(),
        labels(l),
    )) {
        Some(DebugValue::Gauge(v)) => v.into_inner(),
        other => panic!("{name} {l:?}: {other:?}"),
    };
    assert_eq!(gauge("https_pool_handles_outstanding", &[]), 0.0);

    match readings.get(&(
        MetricKind::Histogram,
        "https_pool_acquire_duration_seconds".to_owned(),
        Vec::new(),
    )) {
        Some(DebugValue::Histogram(values)) => {
            assert_eq!(values.len() as u64, stats.acquire_latency.count);
            assert!(values.iter().all(|v| v.into_inner() > 0.0));
        }
        other => panic!("acquire histogram: {other:?}"),
    }

    // Every request's duration, to its response head, under OpenTelemetry's name and
    // attributes.
    let request_labels = with_origin(&[
        ("http.request.method", "GET"),
        ("network.protocol.version", "2"),
        ("http.response.status_code", "200"),
    ]);
    match readings.get(&(
        MetricKind::Histogram,
        "http.client.request.duration".to_owned(),
        labels(&request_labels),
    )) {
        Some(DebugValue::Histogram(values)) => {
            assert_eq!(values.len(), 50);
            assert!(values.iter().all(|v| v.into_inner() > 0.0));
        }
        other => panic!("request duration histogram: {other:?}"),
    }

    // Per-origin gauges are set on maintenance ticks (at most once a second) and drained by
    // each snapshot: poll (bounded) until a tick after the requests shows the idle connection.
    let gauge_in = |readings: &Readings, name: &str, l: &[(&str, &str)]| match readings.get(&(
        MetricKind::Gauge,
        name.to_owned(),
        labels(l),
    )) {
        Some(DebugValue::Gauge(v)) => Some(v.into_inner()),
        _ => None,
    };
    let idle = with_origin(&[("http.connection.state", "idle")]);
    let mut published = None;
    for _ in 0..500 {
        let now = read(&snapshotter);
        if gauge_in(&now, "http.client.open_connections", &idle) == Some(1.0) {
            published = Some(now);
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let published = published.expect("a maintenance tick published the per-origin gauges");
    let origin_only = [("origin", origin_label.as_str())];
    assert_eq!(
        gauge_in(&published, "https_pool_active_streams", &origin_only),
        Some(0.0)
    );
    assert_eq!(
        gauge_in(&published, "https_pool_waiters", &origin_only),
        Some(0.0)
    );
    assert_eq!(
        gauge_in(
            &published,
            "http.client.open_connections",
            &with_origin(&[("http.connection.state", "active")])
        ),
        Some(0.0)
    );
    assert_eq!(
        gauge_in(&published, "http.client.active_requests", &otel_origin),
        Some(0.0)
    );

    pool.shutdown().await;
    // The driver task records the close as it ends, just after shutdown returns.
    for _ in 0..500 {
        if pool.stats().connections_closed == 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let after = read(&snapshotter);
    match after.get(&(
        MetricKind::Histogram,
        "http.client.connection.duration".to_owned(),
        labels(&with_origin(&[("network.protocol.version", "2")])),
    )) {
        Some(DebugValue::Histogram(values)) => assert_eq!(values.len(), 1, "one connection ended"),
        other => panic!("connection duration histogram: {other:?}"),
    }
}
