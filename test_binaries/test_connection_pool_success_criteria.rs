//! Runs every success criterion of the connection pool on a real network stack, prints a
//! verdict table, writes markdown / JSON / SVG reports, and exits non-zero if any criterion
//! fails.
//!
//! `cargo run --release --bin test_connection_pool_success_criteria -- --help`

use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use clap::Parser;
use https_pool_harness::criteria::{self, Ctx, NAMES};
use https_pool_harness::machine::MachineInfo;
use https_pool_harness::report::RunReport;
use https_pool_harness::{CriterionResult, Scale, Target, Thresholds};
use indicatif::{ProgressBar, ProgressStyle};

#[global_allocator]
static ALLOCATOR: https_pool_harness::alloc::Counting = https_pool_harness::alloc::Counting;

/// Measures https-pool against its success criteria and writes reports.
#[derive(Debug, Parser)]
#[command(version, about, long_about = None)]
struct Args {
    /// Run against these live or private endpoints instead of the embedded server
    /// (repeatable). Criteria that need a server the harness controls are skipped.
    #[arg(long = "target", value_name = "URL")]
    targets: Vec<String>,
    /// Trust this extra CA certificate (PEM file), e.g. for a local self-signed nginx.
    #[arg(long, value_name = "PEM")]
    ca_cert: Option<PathBuf>,
    /// Route embedded-server traffic through a loopback relay adding this round-trip time.
    #[arg(long, value_name = "MS")]
    rtt: Option<u64>,
    /// Run only these criteria (comma-separated; a prefix such as `chaos` selects several).
    #[arg(long, value_delimiter = ',', value_name = "NAME")]
    only: Vec<String>,
    /// Small counts, for CI.
    #[arg(long, conflicts_with = "full")]
    quick: bool,
    /// Large counts and longer phases.
    #[arg(long)]
    full: bool,
    /// Also rewrite FINAL_PERFORMANCE_REPORT.md at the repository root (use with --full).
    #[arg(long = "final")]
    final_report: bool,
    /// Where reports go.
    #[arg(long, default_value = "reports", value_name = "DIR")]
    report_dir: PathBuf,
    /// Print the JSON report to stdout as well.
    #[arg(long)]
    json: bool,
    /// Memory threshold for 100 held handles, MiB.
    #[arg(long, default_value_t = 3.0, value_name = "MIB")]
    max_memory_mb: f64,
    /// Warm-pool acquire p99 threshold, milliseconds.
    #[arg(long, default_value_t = 5.0, value_name = "MS")]
    max_acquire_ms: f64,
    /// Socket bound for 150 concurrent streams (raised to ceil(150 / server limit)).
    #[arg(long, default_value_t = 3, value_name = "N")]
    max_multiplex_sockets: u64,
    /// Failed requests chaos-goaway tolerates (a GOAWAY storm should lose none).
    #[arg(long, default_value_t = 0, value_name = "N")]
    max_goaway_failures: u64,
}

fn main() -> Result<()> {
    let args = Args::parse();
    for name in &args.only {
        anyhow::ensure!(
            NAMES.iter().any(|n| n.starts_with(name.as_str())),
            "unknown criterion {name:?}; known: {}",
            NAMES.join(", ")
        );
    }
    let target = if args.targets.is_empty() {
        Target::Embedded {
            rtt: args.rtt.map(Duration::from_millis),
        }
    } else {
        anyhow::ensure!(
            args.rtt.is_none(),
            "--rtt applies to the embedded server only"
        );
        let ca_pem = match &args.ca_cert {
            Some(path) => Some(
                std::fs::read_to_string(path)
                    .with_context(|| format!("reading --ca-cert {}", path.display()))?,
            ),
            None => None,
        };
        Target::Live {
            urls: args.targets.clone(),
            ca_pem,
        }
    };
    let scale = if args.quick {
        Scale::Quick
    } else if args.full {
        Scale::Full
    } else {
        Scale::Default
    };
    let thresholds = Thresholds {
        max_memory_mb: args.max_memory_mb,
        max_acquire_ms: args.max_acquire_ms,
        max_multiplex_sockets: args.max_multiplex_sockets,
        max_goaway_failures: args.max_goaway_failures,
    };

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("building the tokio runtime")?;
    let started_at = chrono::Utc::now();
    let started = Instant::now();
    let results = runtime.block_on(run(&args, &target, scale, &thresholds));
    let report = RunReport {
        title: "https-pool success criteria",
        started_at: started_at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        finished_at: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        duration_secs: started.elapsed().as_secs_f64(),
        command_line: command_line(),
        target: target.describe(),
        scale,
        thresholds,
        machine: MachineInfo::collect(),
        results,
    };
    drop(runtime);

    println!("{}", report.verdict_table());
    let stamp = started_at.format("%Y%m%dT%H%M%SZ").to_string();
    let md = report.write(&args.report_dir, &stamp)?;
    println!("report: {}", md.display());
    if args.final_report {
        let chart_dir = args.report_dir.to_string_lossy().into_owned();
        report.write_final(
            &PathBuf::from("FINAL_PERFORMANCE_REPORT.md"),
            &chart_dir,
            &stamp,
        )?;
        println!("final report: FINAL_PERFORMANCE_REPORT.md");
    }
    if args.json {
        println!("{}", report.json()?);
    }
    if !report.passed() {
        std::process::exit(1);
    }
    Ok(())
}

async fn run(
    args: &Args,
    target: &Target,
    scale: Scale,
    thresholds: &Thresholds,
) -> Vec<CriterionResult> {
    let ctx = Ctx {
        target,
        scale,
        thresholds,
    };
    let selected =
        |name: &str| args.only.is_empty() || args.only.iter().any(|o| name.starts_with(o.as_str()));
    let mut results = Vec::new();
    for name in NAMES.into_iter().filter(|n| selected(n)) {
        let bar = ProgressBar::new_spinner();
        bar.set_style(
            ProgressStyle::with_template("{spinner} {msg} {elapsed}")
                .unwrap_or_else(|_| ProgressStyle::default_spinner()),
        );
        bar.enable_steady_tick(Duration::from_millis(120));
        bar.set_message(format!("running {name}"));
        let outcome = match name {
            "memory" => criteria::memory(&ctx).await,
            "latency" => criteria::latency(&ctx).await,
            "multiplexing" => criteria::multiplexing(&ctx).await,
            "chaos-herd" => criteria::chaos_herd(&ctx).await,
            "chaos-churn" => criteria::chaos_churn(&ctx).await,
            "chaos-goaway" => criteria::chaos_goaway(&ctx).await,
            "scaling" => criteria::scaling(&ctx).await,
            "health" => criteria::health(&ctx).await,
            "priority" => criteria::priority(&ctx).await,
            "resumption" => criteria::resumption(&ctx).await,
            "happy-eyeballs" => criteria::happy_eyeballs(&ctx).await,
            "bursty" => criteria::bursty(&ctx).await,
            "coalescing" => criteria::coalescing(&ctx).await,
            "long-path" => criteria::long_path(&ctx).await,
            "hostile" => criteria::hostile(&ctx).await,
            "steady-rtt" => criteria::steady_rtt(&ctx).await,
            unknown => Err(anyhow::anyhow!("no criterion is named {unknown:?}")),
        };
        bar.finish_and_clear();
        let result = outcome.unwrap_or_else(|e| CriterionResult {
            name,
            target: "criterion runs to completion".to_owned(),
            measured: "error".to_owned(),
            pass: Some(false),
            notes: vec![format!("the criterion could not run: {e:#}")],
            figures: Vec::new(),
            charts: Vec::new(),
        });
        eprintln!(
            "{:<13} {}  {}",
            result.name,
            result.verdict(),
            result.measured
        );
        results.push(result);
    }
    results
}

fn command_line() -> String {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let profile = if cfg!(debug_assertions) {
        ""
    } else {
        " --release"
    };
    let mut line = format!("cargo run{profile} --bin test_connection_pool_success_criteria");
    if !args.is_empty() {
        line.push_str(" -- ");
        line.push_str(&args.join(" "));
    }
    line
}
