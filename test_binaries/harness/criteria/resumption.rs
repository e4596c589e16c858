//! The `resumption` criterion: replacement connections resume their TLS session, and what
//! that saves, over TLS 1.3 and TLS 1.2.

use super::*;

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
    let target = "every replacement connection resumes its TLS session (1.3 and 1.2), none \
                  with the cache off, and a resumed TLS 1.2 handshake is faster than a full one \
                  (medians)"
        .to_owned();
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
    Ok(CriterionResult {
        name: "resumption",
        target,
        measured: measured.join("; "),
        pass: Some(pass),
        notes: vec![format!(
            "{n} connections in a row per run, each rotated after one request \
             (max_requests_per_connection = 1); full handshakes are timed on a pool with \
             tls_session_cache_size = 0, resumed ones on the default cache. A TLS 1.2 \
             resumption saves a round trip (visible with --rtt); a TLS 1.3 one saves the \
             certificate chain and its verification."
        )],
        figures,
        charts: Vec::new(),
    })
}
