//! The `health` criterion: a black-holed connection is evicted by PING timeout.

use super::*;

/// A silent path is detected by PING timeout and the connection replaced.
pub async fn health(ctx: &Ctx<'_>) -> Result<CriterionResult> {
    let target = "black-holed connection evicted by PING timeout; next request succeeds on a \
                  new connection"
        .to_owned();
    if ctx.live() {
        return Ok(CriterionResult::skipped("health", target, SERVER_CONTROL));
    }
    let interval = Duration::from_millis(200);
    let timeout = Duration::from_millis(300);
    let peer = ctx.peer(TestServerConfig::default())?;
    // A black-hole relay in front of whatever the run uses (server or RTT relay).
    let upstream = match (&peer.relay, &peer.server) {
        (Some(relay), _) => relay.addr(),
        (None, Some(server)) => server.addr(),
        (None, None) => bail!("no embedded server"),
    };
    let hole = RttRelay::start(upstream, Duration::ZERO)?;
    let pool = peer
        .builder()
        .http2_keep_alive_interval(interval)
        .http2_keep_alive_timeout(timeout)
        .build()?;
    let url = hole.url();
    let origin: Origin = url.parse()?;
    let first = pool.acquire(&origin).await?;
    let first_id = first.connection_id();
    drop(first);
    hole.set_black_hole(true);
    let silenced = Instant::now();
    let bound = Instant::now() + Duration::from_secs(10);
    while Instant::now() < bound && pool.stats().open_connections() > 0 {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let detected = pool.stats().open_connections() == 0;
    let detection = silenced.elapsed();
    hole.set_black_hole(false);
    let mut handle = pool.acquire(&origin).await?;
    let second_id = handle.connection_id();
    let response = handle.send(get("/after-black-hole")?).await;
    let ok = response.as_ref().is_ok_and(|r| r.status().is_success());
    let pass = detected && ok && second_id != first_id;
    Ok(CriterionResult {
        name: "health",
        target,
        measured: format!(
            "evicted after {}; next request {} on connection {second_id} (was {first_id})",
            human(detection),
            if ok { "ok" } else { "failed" }
        ),
        pass: Some(pass),
        notes: vec![format!(
            "PING interval {} ms, timeout {} ms; the relay drops bytes both ways while silent.",
            interval.as_millis(),
            timeout.as_millis()
        )],
        figures: vec![
            Figure::new("silent connection evicted", detected, "bool"),
            Figure::new("time from silence to eviction", ms(detection), "ms"),
            Figure::new("next request succeeded", ok, "bool"),
            Figure::new("relay connections accepted", hole.accepted(), "count"),
        ],
        charts: Vec::new(),
    })
}
