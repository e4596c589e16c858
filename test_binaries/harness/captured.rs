//! The benchmark runs captured by `scripts/capture.sh`, copied verbatim into the final report:
//! for each kind of run, the newest `reports/<UTC timestamp>-<kind>.txt`, with the earlier
//! runs of the same command at the same commit (repeats of one measurement) and, for
//! repeated pool_bench runs, the median of every ratio over them. They are other
//! commands than the harness (pool_bench against nginx, criterion, the fault scenarios, …),
//! each headed by its own command line, time, commit and machine, which the report shows.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

/// The kinds of captured run the final report carries, in order: the capture name and what
/// the run shows.
const KINDS: &[(&str, &str)] = &[
    (
        "pool_bench-nginx-ms128-c1024",
        "HTTP/2 engine: nginx with http2_max_concurrent_streams 128, 1,024 clients, 4 connections",
    ),
    (
        "pool_bench-nginx-ms8-c1024",
        "HTTP/2 engine: nginx with http2_max_concurrent_streams 8, 1,024 clients, 4 connections",
    ),
    (
        "pool_bench-nginx-ms8-clients",
        "Waiting: nginx max streams 8, 4 connections, 16 / 128 / 1,024 clients interleaved",
    ),
    (
        "pool_bench-nginx-ms8-fifo",
        "Waiting: nginx max streams 8, 4 connections, 1,024 clients; raw h2 with FIFO waiting in front",
    ),
    (
        "pool_bench-nginx-h1-clients",
        "Waiting: HTTP/1.1-only nginx, 10 connections, 16 / 128 / 1,024 clients interleaved",
    ),
    (
        "before-pool_bench-nginx-ms128",
        "Before the h2-direct engine (commit e41e197): nginx max streams 128",
    ),
    (
        "before-pool_bench-nginx-ms8",
        "Before the h2-direct engine (commit e41e197): nginx max streams 8",
    ),
    (
        "pool_bench-long-path-1k",
        "Long path: nginx behind a 40 ms relay, 1 KiB GETs one at a time",
    ),
    (
        "pool_bench-long-path-100k",
        "Long path: nginx behind a 40 ms relay, 100 KiB GETs one at a time",
    ),
    (
        "pool_bench-long-path-1m",
        "Long path: nginx behind a 40 ms relay, 1 MiB GETs one at a time",
    ),
    (
        "pool_bench-long-path-16m",
        "Long path: nginx behind a 40 ms relay, 16 MiB GETs one at a time",
    ),
    (
        "pool_bench-long-path-burst",
        "Long path: nginx behind a 40 ms relay, 32 GETs of 100 KiB fired at once on warm connections",
    ),
    (
        "pool_bench-long-path-burst-cold",
        "Long path: nginx behind a 40 ms relay, 32 GETs of 100 KiB fired at once, cold",
    ),
    (
        "pool_bench-nginx-1m-c16",
        "Bulk on loopback: nginx, 16 clients fetching 1 MiB files",
    ),
    (
        "ab-windows-nginx-ms128",
        "Long-path windows A/B: the commit before (A) and after (B), alternated, nginx max streams 128",
    ),
    (
        "ab-windows-nginx-ms8",
        "Long-path windows A/B: the commit before (A) and after (B), alternated, nginx max streams 8",
    ),
    ("bench-acquire", "criterion: the pool's hot path"),
    (
        "before-bench-acquire",
        "criterion: the pool's hot path before the h2-direct engine and the hand-off",
    ),
    ("faults", "Fault scenarios against the embedded server"),
    (
        "large_download",
        "One 16 MiB response over a 40 ms RTT relay through the pool, every window setting",
    ),
    (
        "grpc_shared_channel-ms40",
        "gRPC: tonic channels vs one shared pool, server limit 40 streams",
    ),
    (
        "grpc_shared_channel-ms0",
        "gRPC: tonic channels vs one shared pool, no server stream limit",
    ),
];

/// Every capture of `kind` in `dir` (`<timestamp>-<kind>.txt`, the timestamp being exactly
/// the 16 characters `YYYYMMDDTHHMMSSZ`, so that `bench-acquire` does not pick up
/// `before-bench-acquire`), oldest first.
fn captures(dir: &Path, kind: &str) -> Result<Vec<PathBuf>> {
    let suffix = format!("-{kind}.txt");
    let mut found: Vec<PathBuf> = Vec::new();
    for entry in std::fs::read_dir(dir).with_context(|| format!("reading {}", dir.display()))? {
        let path = entry?.path();
        let Some(name) = path.file_name().and_then(|n| n.to_str()) else {
            continue;
        };
        let Some(stamp) = name.strip_suffix(&suffix) else {
            continue;
        };
        if stamp.len() == 16 && stamp.ends_with('Z') && stamp.as_bytes()[8] == b'T' {
            found.push(path);
        }
    }
    found.sort();
    Ok(found)
}

/// The newest capture of `kind` and every earlier one of the same command at the same
/// commit (the repeats of one measurement), oldest first, with their texts.
fn newest_with_repeats(dir: &Path, kind: &str) -> Result<Vec<(PathBuf, String)>> {
    let mut all = captures(dir, kind)?;
    let Some(newest) = all.pop() else {
        return Ok(Vec::new());
    };
    let read = |path: &Path| {
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))
    };
    let newest_text = read(&newest)?;
    let identity = |text: &str| {
        let field = |name: &str| {
            text.lines()
                .find_map(|l| l.strip_prefix(name))
                .map(str::trim)
                .map(str::to_owned)
        };
        (field("command:"), field("commit:"))
    };
    let id = identity(&newest_text);
    let mut repeats = Vec::new();
    for path in all {
        let text = read(&path)?;
        if id.1.is_some() && identity(&text) == id {
            repeats.push((path, text));
        }
    }
    repeats.push((newest, newest_text));
    Ok(repeats)
}

/// The ratio lines pool_bench ends with (`  <label>: <key> <value>, <key> <value>…` after
/// `ratios of the medians above:`), as (label and key, value).
fn ratios(text: &str) -> Vec<(String, Option<f64>)> {
    let mut out = Vec::new();
    let Some((_, block)) = text.split_once("ratios of the medians above:") else {
        return out;
    };
    for line in block.lines().skip(1) {
        let Some(line) = line.strip_prefix("  ") else {
            break;
        };
        let Some((label, items)) = line.split_once(": ") else {
            continue;
        };
        for item in items.split(", ") {
            if let Some((key, value)) = item.rsplit_once(' ') {
                out.push((format!("{label}: {key}"), value.parse().ok()));
            }
        }
    }
    out
}

/// For repeated pool_bench runs, a table of every ratio in each run and its median over the
/// runs, so the repeats are read by one rule, computed here.
fn ratio_table(runs: &[(PathBuf, String)]) -> Option<String> {
    let per_run: Vec<Vec<(String, Option<f64>)>> = runs.iter().map(|(_, t)| ratios(t)).collect();
    let first = per_run.first()?;
    if runs.len() < 2 || first.is_empty() {
        return None;
    }
    let mut md = String::new();
    let header: Vec<String> = (1..=runs.len()).map(|i| format!("run {i}")).collect();
    let _ = writeln!(md, "| ratio | {} | median |", header.join(" | "));
    let _ = writeln!(md, "|---|{}---:|", "---:|".repeat(runs.len()));
    for (label, _) in first {
        let values: Vec<Option<f64>> = per_run
            .iter()
            .map(|r| r.iter().find(|(l, _)| l == label).and_then(|(_, v)| *v))
            .collect();
        let mut known: Vec<f64> = values.iter().flatten().copied().collect();
        known.sort_by(f64::total_cmp);
        let median = match known.len() {
            0 => None,
            n if n % 2 == 1 => Some(known[n / 2]),
            n => Some((known[n / 2 - 1] + known[n / 2]) / 2.0),
        };
        let cell = |v: Option<f64>| v.map_or("n/a".to_owned(), |v| format!("{v:.3}"));
        let cells: Vec<String> = values.iter().map(|v| cell(*v)).collect();
        let _ = writeln!(md, "| {label} | {} | {} |", cells.join(" | "), cell(median));
    }
    Some(md)
}

/// The section of the final report with the newest capture of every kind, verbatim except
/// for progress lines (`run k/n: …`) and cargo's build lines.
pub fn section(dir: &Path, link_prefix: &str) -> Result<String> {
    let mut md = String::new();
    let _ = writeln!(md, "## Captured benchmark runs\n");
    let _ = writeln!(
        md,
        "Not part of the harness run above: the newest run of each benchmark saved by \
         `scripts/capture.sh` under `reports/` (with any earlier run of the same command at \
         the same commit), copied verbatim (progress lines left out). \
         Each names its command, time, commit and machine. `bash scripts/bench-nginx.sh` \
         produces the `pool_bench` ones; [reports/README.md]({link_prefix}README.md) says what \
         each column means.\n"
    );
    for (kind, title) in KINDS {
        let _ = writeln!(md, "### {title}\n");
        let runs = newest_with_repeats(dir, kind)?;
        if runs.is_empty() {
            let _ = writeln!(md, "No `*-{kind}.txt` capture in `{}`.\n", dir.display());
            continue;
        }
        if runs.len() > 1 {
            let _ = writeln!(
                md,
                "{} runs of the same command at the same commit, oldest first.\n",
                runs.len()
            );
        }
        if let Some(table) = ratio_table(&runs) {
            let _ = writeln!(
                md,
                "Every ratio the runs end with, and its median over the {} runs:\n\n{table}",
                runs.len()
            );
        }
        for (path, text) in &runs {
            let name = path.file_name().and_then(|n| n.to_str()).unwrap_or(kind);
            let _ = writeln!(md, "[`{name}`]({link_prefix}{name})\n");
            let _ = writeln!(md, "```text");
            for line in text.lines().filter(|l| keep(l)) {
                let _ = writeln!(md, "{line}");
            }
            let _ = writeln!(md, "```\n");
        }
    }
    Ok(md)
}

/// False for progress and build noise.
fn keep(line: &str) -> bool {
    let trimmed = line.trim_start();
    let progress = trimmed
        .strip_prefix("run ")
        .and_then(|rest| rest.split_once(": "))
        .is_some_and(|(count, _)| count.contains('/'));
    let cargo = [
        "Compiling ",
        "Finished ",
        "Running ",
        "Blocking ",
        "Downloaded ",
        "Updating ",
    ]
    .iter()
    .any(|p| trimmed.starts_with(p));
    !(progress || cargo || trimmed.starts_with("saved: "))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ratio_lines_are_read_and_their_median_taken() {
        let run = |a: &str, b: &str| {
            format!(
                "| table |\nratios of the medians above:\n  https-pool req/s: 128/16 clients {a}, \
                 1024/16 clients {b}\n  https-pool p99.9 ÷ p50: @ 16 clients n/a\nnot a ratio\n"
            )
        };
        let runs: Vec<(PathBuf, String)> = [("0.9", "1.0"), ("1.1", "0.8"), ("0.95", "0.85")]
            .iter()
            .map(|(a, b)| (PathBuf::from("x"), run(a, b)))
            .collect();
        assert_eq!(
            ratios(&runs[0].1),
            vec![
                ("https-pool req/s: 128/16 clients".to_owned(), Some(0.9)),
                ("https-pool req/s: 1024/16 clients".to_owned(), Some(1.0)),
                ("https-pool p99.9 ÷ p50: @ 16 clients".to_owned(), None),
            ]
        );
        let table = ratio_table(&runs).expect("three runs with ratios");
        assert!(
            table.contains("| https-pool req/s: 128/16 clients | 0.900 | 1.100 | 0.950 | 0.950 |")
        );
        assert!(
            table.contains("| https-pool req/s: 1024/16 clients | 1.000 | 0.800 | 0.850 | 0.850 |")
        );
        assert!(table.contains("| https-pool p99.9 ÷ p50: @ 16 clients | n/a | n/a | n/a | n/a |"));
        assert!(ratio_table(&runs[..1]).is_none());
    }

    #[test]
    fn progress_and_build_lines_are_left_out() {
        assert!(!keep("run 3/5: raw-h2"));
        assert!(!keep("   Compiling https-pool v0.1.0"));
        assert!(keep("| https-pool (shared, max 4 connections) | 155182 |"));
        assert!(keep("running 1 test"));
    }
}
