//! The child process: one row in this process, the load loop every row family drives, and
//! the probes of this process's CPU time and peak RSS that the row's figures come from.

use std::future::Future;
use std::io::Write;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use anyhow::{Context, Result};
use hdrhistogram::Histogram;
use tokio::sync::Barrier;

use crate::cli::Args;
use crate::rows::{self, ChildTarget, Row};

pub(crate) fn child(args: &Args, row: &str) -> Result<()> {
    let url = args.url.clone().context("--child-row needs --url")?;
    let ca_pem = match &args.ca_cert {
        Some(p) => {
            Some(std::fs::read_to_string(p).with_context(|| format!("reading {}", p.display()))?)
        }
        None => None,
    };
    let target = ChildTarget { url, ca_pem };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let per_client = args.requests.div_ceil(args.clients);
    let mut row = runtime.block_on(rows::run(row, args, &target, per_client))?;
    row.peak_rss_kib = peak_rss_kib();
    drop(runtime);
    let mut stdout = std::io::stdout().lock();
    serde_json::to_writer(&mut stdout, &row)?;
    stdout.flush()?;
    Ok(())
}

/// Peak resident set of this process, from `/proc/self/status` (`VmHWM`).
fn peak_rss_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}

/// User + system CPU of this process so far (all threads), from `/proc/self/stat`, in clock
/// ticks of 1/100 s (Linux's USER_HZ on every mainstream architecture).
fn cpu_ticks() -> Option<u64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // Fields after the command name (which may contain spaces) start after the last ')'.
    let rest = stat.rsplit_once(')')?.1;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // utime and stime are fields 14 and 15 of the whole line: 12 and 13 after the ')'.
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    Some(utime + stime)
}

const TICK_US: f64 = 10_000.0;

/// Runs `per_client` requests on each of `clients` workers, all starting together; `send`
/// gets the worker index.
pub(crate) async fn drive<F, Fut>(
    row: &str,
    name: String,
    args: &Args,
    per_client: usize,
    send: F,
) -> Result<Row>
where
    F: Fn(usize) -> Fut + Clone + Send + Sync + 'static,
    Fut: Future<Output = Result<()>> + Send,
{
    let clients = args.clients;
    let warm_up = args.warm_up;
    // With a warm-up, this task waits at the barrier too, and the clock starts when every
    // worker has warmed up; without one, it starts before the workers are spawned, as it
    // always did (so runs stay comparable with earlier captures).
    let barrier = Arc::new(Barrier::new(clients + usize::from(warm_up > 0)));
    let errors = Arc::new(AtomicU64::new(0));
    let first_error = Arc::new(std::sync::Mutex::new(None::<String>));
    let mut cpu_before = cpu_ticks();
    let mut started = Instant::now();
    let workers: Vec<_> = (0..clients)
        .map(|w| {
            let send = send.clone();
            let barrier = Arc::clone(&barrier);
            let errors = Arc::clone(&errors);
            let first_error = Arc::clone(&first_error);
            tokio::spawn(async move {
                let mut samples = Vec::with_capacity(per_client);
                for _ in 0..warm_up {
                    if let Err(e) = send(w).await {
                        errors.fetch_add(1, Ordering::Relaxed);
                        first_error
                            .lock()
                            .unwrap_or_else(|p| p.into_inner())
                            .get_or_insert_with(|| format!("warm-up: {e:#}"));
                    }
                }
                barrier.wait().await;
                for _ in 0..per_client {
                    let t = Instant::now();
                    match send(w).await {
                        Ok(()) => samples.push(t.elapsed()),
                        Err(e) => {
                            errors.fetch_add(1, Ordering::Relaxed);
                            first_error
                                .lock()
                                .unwrap_or_else(|p| p.into_inner())
                                .get_or_insert_with(|| format!("{e:#}"));
                        }
                    }
                }
                samples
            })
        })
        .collect();
    if warm_up > 0 {
        barrier.wait().await;
        cpu_before = cpu_ticks();
        started = Instant::now();
    }
    let mut all = Vec::with_capacity(clients);
    for w in workers {
        all.push(w.await?);
    }
    let elapsed = started.elapsed();
    let cpu_after = cpu_ticks();
    let mut histogram = Histogram::<u64>::new_with_bounds(1, 3_600_000_000, 3)?;
    for samples in all {
        for s in samples {
            histogram.saturating_record(u64::try_from(s.as_micros()).unwrap_or(u64::MAX).max(1));
        }
    }
    let ok = histogram.len();
    let cpu_us_per_req = match (cpu_before, cpu_after) {
        (Some(b), Some(a)) if ok > 0 => Some((a - b) as f64 * TICK_US / ok as f64),
        _ => None,
    };
    let errors = errors.load(Ordering::Relaxed);
    let note = match first_error.lock().unwrap_or_else(|p| p.into_inner()).take() {
        Some(e) => format!("first error: {e}"),
        None => String::new(),
    };
    Ok(Row {
        row: row.to_owned(),
        client: name,
        ran: true,
        req_per_sec: Some(ok as f64 / elapsed.as_secs_f64()),
        p50_us: (ok > 0).then(|| histogram.value_at_quantile(0.5) as f64),
        p99_us: (ok > 0).then(|| histogram.value_at_quantile(0.99) as f64),
        p999_us: (ok > 0).then(|| histogram.value_at_quantile(0.999) as f64),
        cpu_us_per_req,
        sockets_opened: None,
        errors,
        peak_rss_kib: None,
        note,
    })
}
