//! The `coalescing` criterion: several origins served by one server with one certificate,
//! with HTTP/2 connection coalescing on and off.

use std::net::{IpAddr, Ipv4Addr};

use super::*;

const NAMES: [&str; 4] = ["a.test", "b.test", "c.test", "d.test"];

/// One request to each origin in turn, cold; returns each one's time and the sockets the
/// server accepted.
async fn first_requests(peer: &Peer, port: u16, coalescing: bool) -> Result<(Vec<Duration>, u64)> {
    let localhost = IpAddr::V4(Ipv4Addr::LOCALHOST);
    let mut builder = peer.builder().http2_coalescing(coalescing);
    for name in NAMES {
        builder = builder.resolve(name, [localhost]);
    }
    let pool = builder.build()?;
    let before = peer.sockets_accepted().unwrap_or(0);
    let mut times = Vec::new();
    for name in NAMES {
        let started = Instant::now();
        let response = pool
            .request(get(&format!("https://{name}:{port}/coalesce"))?)
            .await?;
        response.into_body().collect().await?;
        times.push(started.elapsed());
    }
    let sockets = peer.sockets_accepted().unwrap_or(0) - before;
    Ok((times, sockets))
}

/// With coalescing on, one socket serves all four origins.
pub async fn coalescing(ctx: &Ctx<'_>) -> Result<CriterionResult> {
    let target = format!(
        "with http2_coalescing on, one socket serves {} origins whose names one certificate \
         covers and that resolve to its address ({} sockets with it off)",
        NAMES.len(),
        NAMES.len()
    );
    if ctx.live() {
        return Ok(CriterionResult::skipped(
            "coalescing",
            target,
            SERVER_CONTROL,
        ));
    }
    let mut names: Vec<String> = NAMES.iter().map(|n| (*n).to_owned()).collect();
    names.push("127.0.0.1".to_owned());
    let peer = ctx.peer(TestServerConfig::default().cert_names(names))?;
    let port = peer.port()?;
    let (on_times, on_sockets) = first_requests(&peer, port, true).await?;
    let (off_times, off_sockets) = first_requests(&peer, port, false).await?;
    // The first origin dials either way; the others are what coalescing changes.
    let on_later = median(on_times[1..].to_vec());
    let off_later = median(off_times[1..].to_vec());
    let pass = on_sockets == 1 && off_sockets == NAMES.len() as u64;
    Ok(CriterionResult {
        name: "coalescing",
        target,
        measured: format!(
            "on: {on_sockets} socket, first request to origins 2–4 {} (median); off: \
             {off_sockets} sockets, {}",
            human(on_later),
            human(off_later)
        ),
        pass: Some(pass),
        notes: vec![
            "Names map to 127.0.0.1 through resolver overrides; the server's certificate \
             names all four. Each origin's first request is timed from a cold start."
                .to_owned(),
        ],
        figures: vec![
            Figure::new("on: sockets", on_sockets, "count"),
            Figure::new("on: first request, origins 2–4, median", ms(on_later), "ms"),
            Figure::new("off: sockets", off_sockets, "count"),
            Figure::new(
                "off: first request, origins 2–4, median",
                ms(off_later),
                "ms",
            ),
        ],
        charts: Vec::new(),
    })
}
