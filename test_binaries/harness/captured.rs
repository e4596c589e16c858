//! The benchmark runs captured by `scripts/capture.sh`, copied verbatim into the final report:
//! for each kind of run, the newest `reports/<UTC timestamp>-<kind>.txt`. They are other
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
    ("bench-acquire", "criterion: the pool's hot path"),
    (
        "before-bench-acquire",
        "criterion: the pool's hot path before the h2-direct engine and the hand-off",
    ),
    ("faults", "Fault scenarios against the embedded server"),
    (
        "large_download",
        "One 16 MiB response over a 40 ms RTT relay: default and adaptive windows",
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

/// The newest capture of `kind` in `dir`: `<timestamp>-<kind>.txt`, the timestamp being
/// exactly the 16 characters `YYYYMMDDTHHMMSSZ`, so that `bench-acquire` does not pick up
/// `before-bench-acquire`.
fn newest(dir: &Path, kind: &str) -> Result<Option<PathBuf>> {
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
    Ok(found.pop())
}

/// The section of the final report with the newest capture of every kind, verbatim except
/// for progress lines (`run k/n: …`) and cargo's build lines.
pub fn section(dir: &Path, link_prefix: &str) -> Result<String> {
    let mut md = String::new();
    let _ = writeln!(md, "## Captured benchmark runs\n");
    let _ = writeln!(
        md,
        "Not part of the harness run above: the newest run of each benchmark saved by \
         `scripts/capture.sh` under `reports/`, copied verbatim (progress lines left out). \
         Each names its command, time, commit and machine. `bash scripts/bench-nginx.sh` \
         produces the `pool_bench` ones; [reports/README.md]({link_prefix}README.md) says what \
         each column means.\n"
    );
    for (kind, title) in KINDS {
        let _ = writeln!(md, "### {title}\n");
        let Some(path) = newest(dir, kind)? else {
            let _ = writeln!(md, "No `*-{kind}.txt` capture in `{}`.\n", dir.display());
            continue;
        };
        let text = std::fs::read_to_string(&path)
            .with_context(|| format!("reading {}", path.display()))?;
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or(kind);
        let _ = writeln!(md, "[`{name}`]({link_prefix}{name})\n");
        let _ = writeln!(md, "```text");
        for line in text.lines().filter(|l| keep(l)) {
            let _ = writeln!(md, "{line}");
        }
        let _ = writeln!(md, "```\n");
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
    fn progress_and_build_lines_are_left_out() {
        assert!(!keep("run 3/5: raw-h2"));
        assert!(!keep("   Compiling https-pool v0.1.0"));
        assert!(keep("| https-pool (shared, max 4 connections) | 155182 |"));
        assert!(keep("running 1 test"));
    }
}
