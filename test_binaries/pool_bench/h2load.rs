//! h2load, the C reference, run from the parent on the same target and load; and the
//! protocol the target picks, which decides whether h2load (and the raw HTTP/1.1 row) speak
//! HTTP/1.1.

use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Arc;

use anyhow::{Context, Result, bail};
use hdrhistogram::Histogram;

use crate::cli::{Args, client_name};
use crate::rows::{ChildTarget, Row, tls_config};
use crate::runner::Target;

/// The protocol the target picks by ALPN when offered h2 and http/1.1 (`None` for a cleartext
/// URL or no ALPN).
pub(crate) fn negotiated_alpn(url: &str, ca_file: Option<&Path>) -> Result<Option<Vec<u8>>> {
    let uri: http::Uri = url.parse()?;
    if uri.scheme_str() != Some("https") {
        return Ok(None);
    }
    let ca_pem = match ca_file {
        Some(p) => Some(std::fs::read_to_string(p)?),
        None => None,
    };
    let config = tls_config(&ChildTarget {
        url: url.to_owned(),
        ca_pem,
    })?;
    // `[::1]` is a URL's spelling; connecting and the TLS name want the bare address.
    let host = uri
        .host()
        .context("URL has no host")?
        .trim_matches(['[', ']'])
        .to_owned();
    let port = uri.port_u16().unwrap_or(443);
    let mut tcp = std::net::TcpStream::connect((host.as_str(), port))?;
    tcp.set_read_timeout(Some(std::time::Duration::from_secs(5)))?;
    tcp.set_write_timeout(Some(std::time::Duration::from_secs(5)))?;
    let name = pki_types::ServerName::try_from(host)?;
    let mut tls = rustls::ClientConnection::new(Arc::new(config), name)?;
    while tls.is_handshaking() {
        tls.complete_io(&mut tcp)?;
    }
    Ok(tls.alpn_protocol().map(<[u8]>::to_vec))
}

/// h2load on the same server and load: -c K connections, -m streams each, -n requests (or,
/// against an HTTP/1.1-only server, `--h1` with one request in flight per connection, as the
/// HTTP/1.1 clients do). Its CPU comes from the shell's `times` (children's user + system),
/// its percentiles from its per-request log (column 3, µs).
pub(crate) fn row_h2load(args: &Args, target: &Target, total: usize, http1: bool) -> Result<Row> {
    let available = Command::new("h2load")
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !available {
        bail!("h2load is not installed (Debian: nghttp2-client)");
    }
    let streams = if http1 {
        1
    } else {
        args.clients.div_ceil(args.connections)
    };
    let log = std::env::temp_dir().join(format!("pool_bench-{}-h2load.log", std::process::id()));
    let accepted_before = target.accepted();
    let script = format!(
        "h2load {}-n {total} -c {} -m {streams} --log-file={} '{}' && times",
        if http1 { "--h1 " } else { "" },
        args.connections,
        log.display(),
        target.url
    );
    let out = Command::new("bash").args(["-c", &script]).output()?;
    let text = String::from_utf8_lossy(&out.stdout);
    if !out.status.success() {
        let err = String::from_utf8_lossy(&out.stderr);
        bail!(
            "h2load failed: {}",
            err.lines().next().unwrap_or("no output")
        );
    }
    let rps = text
        .lines()
        .find(|l| l.starts_with("finished in"))
        .and_then(|l| l.split(", ").nth(1))
        .and_then(|s| s.split_whitespace().next())
        .and_then(|s| s.parse::<f64>().ok())
        .context("h2load printed no req/s")?;
    let counts = text
        .lines()
        .find(|l| l.starts_with("requests:"))
        .context("h2load printed no request counts")?;
    let count = |suffix: &str| -> Result<u64> {
        counts
            .split(", ")
            .find(|p| p.ends_with(suffix))
            .and_then(|p| p.split_whitespace().next())
            .and_then(|s| s.parse().ok())
            .with_context(|| format!("h2load printed no {suffix} count"))
    };
    // "failed" includes "errored" (h2load's manual).
    let failed = count("failed")?;
    let succeeded = count("succeeded")?;
    // `times` prints the shell's and then its children's user and system time.
    let cpu = text
        .lines()
        .rev()
        .find(|l| l.contains('m') && l.ends_with('s'))
        .and_then(|l| {
            let parts: Vec<f64> = l.split_whitespace().filter_map(parse_times).collect();
            (parts.len() == 2).then(|| parts[0] + parts[1])
        });
    let mut histogram = Histogram::<u64>::new_with_bounds(1, 3_600_000_000, 3)?;
    if let Ok(lines) = std::fs::read_to_string(&log) {
        for line in lines.lines() {
            if let Some(us) = line
                .split('\t')
                .nth(2)
                .and_then(|c| c.trim().parse::<u64>().ok())
            {
                histogram.saturating_record(us.max(1));
            }
        }
    }
    let _ = std::fs::remove_file(&log);
    let has = !histogram.is_empty();
    Ok(Row {
        row: "h2load".to_owned(),
        client: if http1 {
            client_name("h2load-h1", args.connections)
        } else {
            format!("h2load -c {} -m {streams} (C reference)", args.connections)
        },
        ran: true,
        req_per_sec: Some(rps),
        p50_us: has.then(|| histogram.value_at_quantile(0.5) as f64),
        p99_us: has.then(|| histogram.value_at_quantile(0.99) as f64),
        p999_us: has.then(|| histogram.value_at_quantile(0.999) as f64),
        cpu_us_per_req: cpu
            .filter(|_| succeeded > 0)
            .map(|s| s * 1e6 / succeeded as f64),
        sockets_opened: target.accepted().zip(accepted_before).map(|(a, b)| a - b),
        errors: failed,
        peak_rss_kib: None,
        note: "separate process; connections dialed inside its timed run".to_owned(),
    })
}

/// `1m2.345s` → seconds.
fn parse_times(s: &str) -> Option<f64> {
    let (m, rest) = s.split_once('m')?;
    let secs = rest.strip_suffix('s')?;
    Some(m.parse::<f64>().ok()? * 60.0 + secs.parse::<f64>().ok()?)
}
