//! The `resumption` criterion: replacement connections resume their TLS session, and what
//! that saves, over TLS 1.3 and TLS 1.2; and what TLS 1.3 early data (0-RTT) saves the first
//! request on a resumed dial, over the long path.

use super::*;

/// A round trip: what early data must save the first request on a resumed dial, less a
/// quarter of it for the relay's and the scheduler's noise.
const EARLY_DATA_SAVES_RTT: f64 = 0.75;

/// The first requests on resumed dials over the relay, with early data on or off.
#[derive(Default)]
struct FirstRequests {
    /// Each one's time to its whole response, in round trips.
    rtts: Vec<f64>,
    /// The pool's resumed handshakes among the timed dials.
    resumed: u64,
    /// The pool's count of handshakes whose early data the server accepted.
    accepted: u64,
    /// Timed requests the server received as early data.
    early_requests: u64,
}

/// Waits (bounded) until `pool` closed its idle connections, so the next request dials.
async fn until_no_connection(pool: &ConnectionPoolManager) -> Result<()> {
    for _ in 0..1_000 {
        if pool
            .stats()
            .origins
            .iter()
            .all(|o| o.connections.is_empty())
        {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    bail!(
        "the pool kept an idle connection past 5 s: {:?}",
        pool.stats()
    )
}

/// The `i`-th GET through `pool` (early data `on` or off), on a dial of its own that resumes
/// the session the last one left (the pool closed idle connections after its `idle_timeout`,
/// by which time TLS 1.3's tickets had come), timed into `out`. The first one (`i` = 0), on a
/// full handshake, is not timed.
async fn first_request(
    pool: &ConnectionPoolManager,
    peer: &Peer,
    rtt: Duration,
    i: usize,
    on: bool,
    out: &mut FirstRequests,
) -> Result<()> {
    let server = peer.server.as_ref().context("an embedded server")?;
    let early = &server.counters().early_data_requests;
    until_no_connection(pool).await?;
    let early_before = early.load(Ordering::SeqCst);
    let url = format!("{}/zero-rtt/{on}/{i}", peer.url);
    let started = Instant::now();
    let response = pool.request(get(&url)?).await?;
    response.into_body().collect().await?;
    let took = started.elapsed();
    if i == 0 {
        return Ok(());
    }
    out.rtts.push(took.as_secs_f64() / rtt.as_secs_f64());
    out.early_requests += early.load(Ordering::SeqCst) - early_before;
    Ok(())
}

/// The first request on a resumed dial, early data on and off, alternated sample by sample
/// over one relay to one server.
async fn early_data(ctx: &Ctx<'_>, n: usize) -> Result<(FirstRequests, FirstRequests)> {
    let rtt = ctx.path_rtt();
    let peer = embedded_peer(TestServerConfig::default().early_data(true), Some(rtt))?;
    let idle = (rtt * 4).max(Duration::from_millis(100));
    let pool = |on: bool| peer.builder().tls_early_data(on).idle_timeout(idle).build();
    let (with, without) = (pool(true)?, pool(false)?);
    let (mut on, mut off) = (FirstRequests::default(), FirstRequests::default());
    for i in 0..=n {
        first_request(&with, &peer, rtt, i, true, &mut on).await?;
        first_request(&without, &peer, rtt, i, false, &mut off).await?;
    }
    let origin: Origin = peer.url.parse()?;
    for (pool, out) in [(&with, &mut on), (&without, &mut off)] {
        let stats = pool.stats();
        let origin_stats = stats.origin(&origin).context("origin listed")?;
        out.resumed = origin_stats.tls_resumed_handshakes;
        out.accepted = origin_stats.early_data_accepted;
    }
    Ok((on, off))
}

fn median_of(v: &[f64]) -> f64 {
    let mut v = v.to_vec();
    v.sort_by(f64::total_cmp);
    v.get(v.len() / 2).copied().unwrap_or(f64::NAN)
}

/// One TLS version's handshakes: with the session cache on, and with it off (every one full).
struct Handshakes {
    full: Vec<Duration>,
    resumed: Vec<Duration>,
    replacements_resumed: u64,
    replacements: u64,
}

/// Dials `n` connections one after another (each carries one request, then rotates) and
/// collects each one's TLS handshake time by kind.
async fn handshakes(peer: &Peer, n: usize, cache: usize) -> Result<Handshakes> {
    let pool = peer
        .builder()
        .max_requests_per_connection(1)
        .tls_session_cache_size(cache)
        .build()?;
    let origin: Origin = peer.url.parse()?;
    let (mut full, mut resumed) = (Vec::new(), Vec::new());
    for i in 0..n {
        let mut handle = pool.acquire(&origin).await?;
        let id = handle.connection_id();
        let stats = pool.stats();
        let conn = stats
            .origins
            .iter()
            .flat_map(|o| &o.connections)
            .find(|c| c.id == id)
            .context("the leased connection is listed")?;
        match conn.tls_resumed {
            Some(true) => resumed.push(conn.tls_handshake),
            Some(false) => full.push(conn.tls_handshake),
            None => bail!("a cleartext connection in a TLS run"),
        }
        // Read to the end: TLS 1.3 session tickets arrive after the handshake.
        let response = handle.send(get(&format!("/resume/{i}"))?).await?;
        response.into_body().collect().await?;
    }
    let stats = pool.stats();
    let origin_stats = stats.origin(&origin).context("origin listed")?;
    Ok(Handshakes {
        replacements_resumed: origin_stats.tls_resumed_handshakes,
        replacements: n as u64 - 1,
        full,
        resumed,
    })
}

/// Replacements resume, and a resumed handshake is faster than a full one.
pub async fn resumption(ctx: &Ctx<'_>) -> Result<CriterionResult> {
    let target = format!(
        "every replacement connection resumes its TLS session (1.3 and 1.2), none with the \
         cache off, and a resumed TLS 1.2 handshake is faster than a full one (medians); over a \
         {} ms path, the first request on a resumed dial goes as early data with \
         tls_early_data and is {EARLY_DATA_SAVES_RTT} RTT faster than without (medians)",
        ctx.path_rtt().as_millis()
    );
    if ctx.live() {
        return Ok(CriterionResult::skipped(
            "resumption",
            target,
            SERVER_CONTROL,
        ));
    }
    let n = ctx.scale.pick(21, 61, 201);
    let mut figures = Vec::new();
    let mut measured = Vec::new();
    let mut pass = true;
    // TLS 1.2 resumption saves a round trip, TLS 1.3's only CPU (a fraction of a millisecond
    // of wall time, inside the noise of a relay's delay): only the first is a verdict.
    for (label, config, must_be_faster) in [
        ("TLS 1.3", TestServerConfig::default(), false),
        (
            "TLS 1.2",
            TestServerConfig::default().tls12_only(true),
            true,
        ),
    ] {
        let peer = ctx.peer(config)?;
        let on = handshakes(&peer, n, 256).await?;
        let off = handshakes(&peer, n, 0).await?;
        let full = median(off.full.clone());
        let resumed = median(on.resumed.clone());
        let all_resumed = on.replacements_resumed == on.replacements;
        let faster = resumed < full || !must_be_faster;
        pass &= all_resumed && faster && off.resumed.is_empty();
        measured.push(format!(
            "{label}: {}/{} resumed, {} vs {} full",
            on.replacements_resumed,
            on.replacements,
            human(resumed),
            human(full)
        ));
        figures.extend([
            Figure::new(
                format!("{label} replacements resumed"),
                on.replacements_resumed,
                "count",
            ),
            Figure::new(format!("{label} replacements"), on.replacements, "count"),
            Figure::new(format!("{label} full handshake p50"), us(full), "µs"),
            Figure::new(format!("{label} resumed handshake p50"), us(resumed), "µs"),
            Figure::new(
                format!("{label} resumed handshakes with the cache off"),
                off.resumed.len(),
                "count",
            ),
        ]);
    }

    let dials = ctx.scale.pick(5, 9, 15);
    let (on, off) = early_data(ctx, dials).await?;
    let (on_median, off_median) = (median_of(&on.rtts), median_of(&off.rtts));
    let dials = dials as u64;
    let all_early = on.early_requests == dials && on.accepted == dials;
    let all_resumed = on.resumed == dials && off.resumed == dials;
    pass &= all_early
        && all_resumed
        && off.early_requests == 0
        && on_median <= off_median - EARLY_DATA_SAVES_RTT;
    measured.push(format!(
        "first request on a resumed dial: {on_median:.2} RTT with 0-RTT ({}/{dials} sent \
         early), {off_median:.2} RTT without",
        on.early_requests
    ));
    for (label, run) in [("0-RTT on", &on), ("0-RTT off", &off)] {
        let most = run.rtts.iter().copied().fold(0.0, f64::max);
        figures.extend([
            Figure::new(
                format!("{label}: first request on a resumed dial p50"),
                round2(median_of(&run.rtts)),
                "RTT",
            ),
            Figure::new(
                format!("{label}: first request on a resumed dial max"),
                round2(most),
                "RTT",
            ),
            Figure::new(format!("{label}: resumed dials"), run.resumed, "count"),
            Figure::new(
                format!("{label}: early data accepted"),
                run.accepted,
                "count",
            ),
            Figure::new(
                format!("{label}: requests the server got as early data"),
                run.early_requests,
                "count",
            ),
        ]);
    }
    Ok(CriterionResult {
        name: "resumption",
        target,
        measured: measured.join("; "),
        pass: Some(pass),
        notes: vec![
            format!(
                "{n} connections in a row per run, each rotated after one request \
                 (max_requests_per_connection = 1); full handshakes are timed on a pool with \
                 tls_session_cache_size = 0, resumed ones on the default cache. A TLS 1.2 \
                 resumption saves a round trip (visible with --rtt); a TLS 1.3 one saves the \
                 certificate chain and its verification."
            ),
            format!(
                "0-RTT: the embedded server takes early data (served as it arrives, answered \
                 before the client's Finished, as nginx with ssl_early_data on) behind the RTT \
                 relay ({} ms). Two pools, tls_early_data on and off, each close idle \
                 connections so that every GET dials and resumes; {dials} GETs each, \
                 alternated, timed to the end of the response. The relay delays data, not the \
                 TCP handshake, so a resumed dial costs about 2 RTT without early data and 1 \
                 with it; over a real path add the TCP handshake's round trip to both.",
                ctx.path_rtt().as_millis()
            ),
        ],
        figures,
        charts: Vec::new(),
    })
}
