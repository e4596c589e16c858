//! What a run prints: its configuration, the table of the medians, the ratios between them,
//! and with `--json` the JSON report of every run.

use anyhow::Result;
use https_pool_harness::machine;
use serde::Serialize;

use crate::rows::Row;

/// The run's settings: the table's first lines and the JSON's `config`.
#[derive(Debug, Serialize)]
pub(crate) struct Config {
    /// The client counts measured (interleaved when several).
    pub(crate) clients: Vec<usize>,
    pub(crate) requests_per_row: usize,
    pub(crate) runs: usize,
    pub(crate) target: String,
    /// The round trip the relay in front of the target adds, when there is one.
    pub(crate) rtt_ms: Option<u64>,
    pub(crate) server_max_streams: Option<u32>,
    pub(crate) body_bytes: Option<usize>,
    pub(crate) connections: usize,
    pub(crate) machine: machine::MachineInfo,
}

/// Prints the table and the ratios; with `json`, to stderr, and the JSON report to stdout.
pub(crate) fn print(
    config: &Config,
    cells: &[(usize, &str)],
    medians: &[Row],
    runs: &[Vec<Row>],
    json: bool,
) -> Result<()> {
    let mut table = render_table(config, medians);
    table.push_str(&render_ratios(cells, medians));
    if json {
        eprint!("{table}");
        let report = serde_json::json!({ "config": config, "rows": medians, "runs": runs });
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print!("{table}");
    }
    Ok(())
}

fn render_table(config: &Config, rows: &[Row]) -> String {
    let mut out = String::new();
    let mut line = |s: String| {
        out.push_str(&s);
        out.push('\n');
    };
    line(format!(
        "{} clients{}, {} requests per row at most (a multiple of the clients), {} run(s) per row (median shown), target: {}{}{}",
        config
            .clients
            .iter()
            .map(usize::to_string)
            .collect::<Vec<_>>()
            .join(" / "),
        if config.clients.len() > 1 {
            " (interleaved in every run)"
        } else {
            ""
        },
        config.requests_per_row,
        config.runs,
        config.target,
        config
            .rtt_ms
            .map(|ms| format!(
                ", through a relay adding {ms} ms round trip ({} ms each way, in the parent process)",
                ms as f64 / 2.0
            ))
            .unwrap_or_default(),
        config
            .server_max_streams
            .map(|m| format!(", server max streams {m}"))
            .unwrap_or_default()
    ));
    line(format!("machine: {}", config.machine.summary()));
    let width = rows
        .iter()
        .map(|r| r.client.chars().count())
        .max()
        .unwrap_or(0)
        .max(44);
    let f0 = |v: Option<f64>| v.map_or("n/a".to_owned(), |v| format!("{v:.0}"));
    let f1 = |v: Option<f64>| v.map_or("n/a".to_owned(), |v| format!("{v:.1}"));
    let u = |v: Option<u64>| v.map_or("n/a".to_owned(), |v| v.to_string());
    // Latency in round trips is what a long path is read by: about 1 per request once the
    // connection is warm and the windows hold the whole body, more while they grow.
    let rtt_us = config.rtt_ms.map(|ms| ms as f64 * 1000.0);
    let in_rtts = |v: Option<f64>| match (v, rtt_us) {
        (Some(v), Some(rtt)) if rtt > 0.0 => format!("{:.2}", v / rtt),
        _ => "n/a".to_owned(),
    };
    // (header, width, the cell of a row), in the order they print.
    type Cell<'a> = Box<dyn Fn(&Row) -> String + 'a>;
    let mut columns: Vec<(&str, usize, Cell)> = vec![
        ("req/s", 9, Box::new(|r: &Row| f0(r.req_per_sec))),
        ("CPU µs/req", 10, Box::new(|r: &Row| f1(r.cpu_us_per_req))),
        ("p50 µs", 9, Box::new(|r: &Row| f0(r.p50_us))),
        ("p99 µs", 9, Box::new(|r: &Row| f0(r.p99_us))),
        ("p99.9 µs", 9, Box::new(|r: &Row| f0(r.p999_us))),
    ];
    if rtt_us.is_some() {
        columns.push(("p50 RTT", 7, Box::new(|r: &Row| in_rtts(r.p50_us))));
        columns.push(("p99 RTT", 7, Box::new(|r: &Row| in_rtts(r.p99_us))));
    }
    columns.push(("sockets", 7, Box::new(|r: &Row| u(r.sockets_opened))));
    columns.push((
        "errors",
        6,
        Box::new(|r: &Row| {
            if r.ran {
                r.errors.to_string()
            } else {
                "n/a".to_owned()
            }
        }),
    ));
    columns.push(("peak RSS KiB", 12, Box::new(|r: &Row| u(r.peak_rss_kib))));
    let mut header = format!("| {:<width$} |", "client");
    let mut dashes = format!("|{:-<w$}|", "", w = width + 2);
    for (name, w, _) in &columns {
        header.push_str(&format!(" {name:>w$} |"));
        dashes.push_str(&format!("{:->w$}|", ":", w = w + 2));
    }
    line(header);
    line(dashes);
    for r in rows {
        let mut cells = format!("| {:<width$} |", r.client);
        for (_, w, cell) in &columns {
            cells.push_str(&format!(" {:>w$} |", cell(r)));
        }
        line(cells);
    }
    for r in rows.iter().filter(|r| !r.note.is_empty()) {
        line(format!("{}: {}", r.client, r.note));
    }
    out
}

/// The ratios the comparisons are read by, computed here from the medians above so nobody
/// divides by hand: each row's req/s between client counts, https-pool's req/s over every
/// other row's at the same count, and each cell's p99.9 over its p50.
fn render_ratios(cells: &[(usize, &str)], medians: &[Row]) -> String {
    let figure = |clients: usize, row: &str, pick: fn(&Row) -> Option<f64>| {
        cells
            .iter()
            .zip(medians)
            .find(|((c, r), m)| *c == clients && *r == row && m.ran)
            .and_then(|(_, m)| pick(m))
    };
    let req_per_sec = |r: &Row| r.req_per_sec;
    let ratio = |a: Option<f64>, b: Option<f64>| match (a, b) {
        (Some(a), Some(b)) if b > 0.0 => format!("{:.3}", a / b),
        _ => "n/a".to_owned(),
    };
    let mut counts: Vec<usize> = cells.iter().map(|(c, _)| *c).collect();
    counts.dedup();
    let mut rows: Vec<&str> = Vec::new();
    for (_, r) in cells {
        if !rows.contains(r) {
            rows.push(r);
        }
    }
    let mut out = String::from("ratios of the medians above:\n");
    if counts.len() > 1 {
        for row in &rows {
            let mut pairs = Vec::new();
            for (i, &hi) in counts.iter().enumerate() {
                for &lo in &counts[..i] {
                    pairs.push(format!(
                        "{hi}/{lo} clients {}",
                        ratio(figure(hi, row, req_per_sec), figure(lo, row, req_per_sec))
                    ));
                }
            }
            out.push_str(&format!("  {row} req/s: {}\n", pairs.join(", ")));
        }
    }
    if rows.contains(&"https-pool") {
        for &c in &counts {
            let others: Vec<String> = rows
                .iter()
                .filter(|r| **r != "https-pool")
                .map(|r| {
                    format!(
                        "{r} {}",
                        ratio(
                            figure(c, "https-pool", req_per_sec),
                            figure(c, r, req_per_sec)
                        )
                    )
                })
                .collect();
            if !others.is_empty() {
                out.push_str(&format!(
                    "  https-pool req/s ÷ each row @ {c} clients: {}\n",
                    others.join(", ")
                ));
            }
        }
    }
    for row in &rows {
        let tails: Vec<String> = counts
            .iter()
            .map(|&c| {
                format!(
                    "@ {c} clients {}",
                    ratio(figure(c, row, |r| r.p999_us), figure(c, row, |r| r.p50_us))
                )
            })
            .collect();
        out.push_str(&format!("  {row} p99.9 ÷ p50: {}\n", tails.join(", ")));
    }
    out
}
