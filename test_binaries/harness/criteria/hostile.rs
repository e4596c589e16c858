//! The `hostile` criterion: every phase of a request is bounded, dials to a failing server
//! back off, and nothing leaks. Runs the testkit's `HostileServer` matrix (a real HTTP/2 or
//! HTTP/1.1 server over rustls that misbehaves one way per case) and records, per case, the
//! outcome, the time to it, the dials the server saw and what was left behind.

use bytes::Bytes;
use https_pool::{PoolBuilder, PoolConfig, TimeoutKind};
use https_pool_testkit::{EndlessBody, Hostile, HostileServer, most_dials_within};

use super::*;

/// The phase deadlines the cases configure.
const PHASE: Duration = Duration::from_millis(300);
/// A case's outcome must come within this many times its deadline.
const SLACK: u32 = 2;
/// The bound for the protocol-abuse cases: a connection the server breaks before the
/// request went out fails it unsent, so it is sent again on a fresh dial, which waits for the
/// backoff (at most the acquire timeout, 1 s) and then fails the same way within the phase.
const ABUSE_BOUND: Duration = Duration::from_millis(1000 + 2 * 300);
/// H14's bound: when its one provisional stream reaches the server before SETTINGS(0) is
/// read, the refusal is a failed dial, and the retry waits for the backoff (at most the
/// acquire timeout), then for a slot the zero-stream connection never offers (another
/// acquire timeout): two acquire timeouts and the phase, at most.
const ZERO_STREAMS_BOUND: Duration = Duration::from_millis(2 * 1000 + 2 * 300);
/// The harness's own guard around every request.
const GUARD: Duration = Duration::from_secs(10);

/// What one case expects.
#[derive(Clone, Copy)]
enum Expect {
    /// A timeout of this kind, within `SLACK` × the deadline.
    Timeout(TimeoutKind, Duration),
    /// Any typed connection, protocol, request or timeout error, within `ABUSE_BOUND`.
    Typed,
    /// The same, within this bound.
    TypedWithin(Duration),
}

/// One row of the matrix.
struct Row {
    case: &'static str,
    outcome: String,
    took: Duration,
    dials: u64,
    leaks: String,
    pass: bool,
}

fn pool_for(server: &HostileServer) -> PoolBuilder {
    ConnectionPoolManager::builder()
        .tls_webpki_roots(false)
        .tls_extra_ca_pem(server.ca_pem().as_bytes().to_vec())
        .response_head_timeout(PHASE)
        .read_timeout(PHASE)
        .write_timeout(PHASE)
        .acquire_timeout(Duration::from_secs(1))
}

fn live_tasks() -> usize {
    tokio::runtime::Handle::current()
        .metrics()
        .num_alive_tasks()
}

/// Streams the server still sees open, pool streams/handles/waiters, sockets and tasks left
/// once the case is over and the pool shut down; empty when nothing leaked.
async fn leaks(pool: ConnectionPoolManager, server: &HostileServer, tasks_before: usize) -> String {
    let mut left = Vec::new();
    let open = settle_to_zero(|| server.open_streams()).await;
    if open > 0 {
        left.push(format!("{open} streams open at the server"));
    }
    let stats = pool.stats();
    if stats.handles_outstanding > 0 || stats.active_streams() > 0 || stats.waiters() > 0 {
        left.push(format!(
            "{} handles, {} streams, {} waiters in the pool",
            stats.handles_outstanding,
            stats.active_streams(),
            stats.waiters()
        ));
    }
    pool.shutdown().await;
    drop(pool);
    let sockets = settle_to_zero(|| server.live_connections()).await;
    if sockets > 0 {
        left.push(format!("{sockets} connections open at the server"));
    }
    let mut tasks = live_tasks();
    for _ in 0..500 {
        if tasks <= tasks_before {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
        tasks = live_tasks();
    }
    if tasks > tasks_before {
        left.push(format!("{} tasks", tasks - tasks_before));
    }
    left.join(", ")
}

/// Polls `read` (bounded, 5 s) until it reads 0; returns the last reading.
async fn settle_to_zero(read: impl Fn() -> u64) -> u64 {
    let mut last = read();
    for _ in 0..500 {
        if last == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
        last = read();
    }
    last
}

/// Runs one request against `behaviour` and judges it by `expect`.
async fn one(
    case: &'static str,
    behaviour: Hostile,
    configure: impl FnOnce(PoolBuilder) -> PoolBuilder,
    post: bool,
    expect: Expect,
) -> Result<Row> {
    let tasks_before = live_tasks();
    let server = HostileServer::start(behaviour)?;
    let pool = configure(pool_for(&server)).build()?;
    let request = if post {
        Request::post(server.url()).body(http_body_util::Either::Left(EndlessBody))?
    } else {
        Request::get(server.url()).body(http_body_util::Either::Right(Empty::<Bytes>::new()))?
    };
    let started = Instant::now();
    let outcome = tokio::time::timeout(GUARD, async {
        let response = pool.request(request).await?;
        response.into_body().collect().await.map(|_| ())
    })
    .await;
    let took = started.elapsed();
    let (outcome, pass) = match (outcome, expect) {
        (Err(_), _) => (format!("no outcome within the {GUARD:?} guard"), false),
        (Ok(Ok(())), _) => ("served (expected an error)".to_owned(), false),
        (Ok(Err(e)), Expect::Timeout(kind, deadline)) => {
            let right = matches!(e, Error::Timeout { kind: k, .. } if k == kind);
            (e.to_string(), right && took <= deadline * SLACK)
        }
        (Ok(Err(e)), Expect::Typed | Expect::TypedWithin(_)) => {
            let bound = match expect {
                Expect::TypedWithin(bound) => bound,
                _ => ABUSE_BOUND,
            };
            // BackingOff too: a request the broken connection never sent goes again on a
            // fresh dial after the backoff, and when that dial fails the same way the origin
            // has failed twice in a row and the retry fails fast, carrying the dial's error.
            let typed = matches!(
                e,
                Error::Protocol { .. }
                    | Error::ConnectionClosed { .. }
                    | Error::Request { .. }
                    | Error::Timeout { .. }
                    | Error::BackingOff { .. }
            );
            (e.to_string(), typed && took <= bound)
        }
    };
    let dials = server.connections_accepted();
    let leaks = leaks(pool, &server, tasks_before).await;
    Ok(Row {
        case,
        pass: pass && leaks.is_empty(),
        outcome,
        took,
        dials,
        leaks,
    })
}

/// H13: 20 uploads the server answers (END_STREAM) at once while its window stays 0, on one
/// 4-slot connection: each upload must stop and reset its stream when the response ends.
async fn early_responses() -> Result<Row> {
    const SLOTS: usize = 4;
    let tasks_before = live_tasks();
    let server = HostileServer::start(Hostile::EarlyResponseZeroWindow)?;
    let pool = pool_for(&server)
        .max_connections_per_origin(1)
        .max_streams_per_connection(SLOTS)
        .build()?;
    let started = Instant::now();
    let mut failure = None;
    for _ in 0..20 {
        let request = Request::post(server.url()).body(EndlessBody)?;
        match tokio::time::timeout(GUARD, pool.request(request)).await {
            Ok(Ok(response)) => drop(response),
            Ok(Err(e)) => failure = Some(e.to_string()),
            Err(_) => failure = Some("guard".to_owned()),
        }
    }
    let took = started.elapsed();
    let most = server.max_open_streams();
    let dials = server.connections_accepted();
    let leaks = leaks(pool, &server, tasks_before).await;
    let within = most <= SLOTS as u64;
    Ok(Row {
        case: "H13 early response, window 0, 20 uploads",
        outcome: failure.unwrap_or_else(|| {
            format!("20 × 200; at most {most} streams open at the server on {SLOTS} slots")
        }),
        took,
        dials,
        pass: within && leaks.is_empty(),
        leaks,
    })
}

/// H2 / H15: 8 callers request in a loop (one attempt a millisecond each) for `window`
/// against `behaviour`; the server must see no more dials than the backoff allows, and most
/// callers must fail fast with `BackingOff`.
async fn dial_rate(case: &'static str, behaviour: Hostile, window: Duration) -> Result<Row> {
    let tasks_before = live_tasks();
    let server = HostileServer::start(behaviour)?;
    // Longer than the first backoff (1.2 s at most): a caller waiting for the dial after the
    // first failure gets that dial's error, not an acquire timeout.
    let pool = pool_for(&server)
        .acquire_timeout(Duration::from_secs(2))
        .build()?;
    let until = Instant::now() + window;
    let callers: Vec<_> = (0..8)
        .map(|_| {
            let pool = pool.clone();
            let url = server.url();
            tokio::spawn(async move {
                let (mut attempts, mut fast, mut untyped) = (0u64, 0u64, 0u64);
                while Instant::now() < until {
                    attempts += 1;
                    match tokio::time::timeout(GUARD, pool.request(get(&url)?)).await {
                        Ok(Err(Error::BackingOff { .. })) => fast += 1,
                        Ok(Err(e)) if e.is_connect() => {}
                        _ => untyped += 1,
                    }
                    tokio::time::sleep(Duration::from_millis(1)).await;
                }
                anyhow::Ok((attempts, fast, untyped))
            })
        })
        .collect();
    let (mut attempts, mut fast, mut untyped) = (0, 0, 0);
    for caller in callers {
        let (a, f, u) = caller.await??;
        attempts += a;
        fast += f;
        untyped += u;
    }
    let dials = server.connections_accepted();
    let bound = most_dials_within(window, PoolConfig::default().dial_backoff_initial, 1.6, 0.2);
    let leaks = leaks(pool, &server, tasks_before).await;
    Ok(Row {
        case,
        outcome: format!(
            "{attempts} requests, {fast} failed fast (BackingOff), {untyped} other; \
             {dials} dials, backoff allows {bound}"
        ),
        took: window,
        dials,
        pass: dials <= bound && untyped == 0 && fast * 2 > attempts && leaks.is_empty(),
        leaks,
    })
}

/// Every case of the matrix ends in its typed error within its bound, leaks nothing, and
/// failing servers are dialed on the backoff schedule.
pub async fn hostile(ctx: &Ctx<'_>) -> Result<CriterionResult> {
    let target = format!(
        "every hostile case ends in its typed error within {SLACK}× its deadline (abuse \
         cases: any typed error within {} ms, one retry on a fresh dial included; zero \
         streams: within {} ms), with 0 streams, sockets or tasks left, and failing servers \
         dialed no more often than the backoff allows",
        ABUSE_BOUND.as_millis(),
        ZERO_STREAMS_BOUND.as_millis()
    );
    if ctx.live() {
        return Ok(CriterionResult::skipped("hostile", target, SERVER_CONTROL));
    }
    let window = ctx.scale.pick(
        Duration::from_secs(5),
        Duration::from_secs(10),
        Duration::from_secs(10),
    );
    let head = Expect::Timeout(TimeoutKind::ResponseHead, PHASE);
    let mut rows = vec![
        one(
            "H9 stream never answered",
            Hostile::SilentStreams,
            |b| b,
            false,
            head,
        )
        .await?,
        one(
            "H11 body trickles, 1 byte / 2 s",
            Hostile::TrickleBody {
                interval: Duration::from_secs(2),
            },
            |b| b,
            false,
            Expect::Timeout(TimeoutKind::Read, PHASE),
        )
        .await?,
        one(
            "H11 body trickles, 1 byte / 50 ms, request_timeout 800 ms",
            Hostile::TrickleBody {
                interval: Duration::from_millis(50),
            },
            |b| b.request_timeout(Duration::from_millis(800)),
            false,
            Expect::Timeout(TimeoutKind::Request, Duration::from_millis(800)),
        )
        .await?,
        one(
            "H12 window 0, upload",
            Hostile::ZeroWindow,
            |b| b,
            true,
            Expect::Timeout(TimeoutKind::Write, PHASE),
        )
        .await?,
        early_responses().await?,
        one(
            "H14 MAX_CONCURRENT_STREAMS 0",
            Hostile::ZeroStreams,
            |b| b,
            false,
            // The provisional first stream parks in h2 until the head's deadline when
            // SETTINGS(0) is read before it leaves; when it leaves first the server refuses it,
            // a failed dial, and the retry meets the backoff. Which comes first is a race on
            // loopback: either is the typed end this case is about.
            Expect::TypedWithin(ZERO_STREAMS_BOUND),
        )
        .await?,
        one(
            "H16a HTTP/1.1 status line, 1 byte / 100 ms",
            Hostile::Http1TrickleStatusLine {
                interval: Duration::from_millis(100),
            },
            |b| b,
            false,
            head,
        )
        .await?,
    ];
    for (case, behaviour) in [
        ("CONTINUATION flood", Hostile::ContinuationFlood),
        ("1 MiB response headers", Hostile::HugeHeaders),
        ("HPACK table size over the limit", Hostile::HpackTableUpdate),
        ("WINDOW_UPDATE overflow", Hostile::WindowUpdateOverflow),
        ("PUSH_PROMISE with push off", Hostile::PushPromise),
        ("SETTINGS flood", Hostile::SettingsFlood),
        ("PING flood", Hostile::PingFlood),
    ] {
        rows.push(one(case, behaviour, |b| b, false, Expect::Typed).await?);
    }
    rows.push(
        dial_rate(
            "H2 closes every connection at once",
            Hostile::CloseAtOnce,
            window,
        )
        .await?,
    );
    rows.push(
        dial_rate(
            "H15 GOAWAY(0) right after SETTINGS",
            Hostile::GoAwayAtOnce,
            window,
        )
        .await?,
    );

    let passed = rows.iter().filter(|r| r.pass).count();
    let pass = passed == rows.len();
    let mut notes = vec![format!(
        "Phase deadlines {} ms (response head, read, write), acquire 1 s (2 s in the \
         dial-rate rows); 8 callers for {} s in the dial-rate rows, default backoff (1 s ×1.6 \
         ±20 %). One line per case: \
         outcome | time to it | dials the server saw | left behind.",
        PHASE.as_millis(),
        window.as_secs()
    )];
    let mut figures = Vec::new();
    for row in &rows {
        notes.push(format!(
            "{} {}: {} | {} | {} dials | {}",
            if row.pass { "PASS" } else { "FAIL" },
            row.case,
            row.outcome,
            human(row.took),
            row.dials,
            if row.leaks.is_empty() {
                "nothing left"
            } else {
                &row.leaks
            }
        ));
        figures.push(Figure::new(
            format!("{}: time to outcome", row.case),
            ms(row.took),
            "ms",
        ));
        figures.push(Figure::new(
            format!("{}: dials", row.case),
            row.dials,
            "count",
        ));
    }
    Ok(CriterionResult {
        name: "hostile",
        target,
        measured: format!("{passed}/{} cases typed, bounded and leak-free", rows.len()),
        pass: Some(pass),
        notes,
        figures,
        charts: Vec::new(),
    })
}
