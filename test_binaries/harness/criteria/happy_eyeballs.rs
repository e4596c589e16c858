//! The `happy-eyeballs` criterion: a black-holed first address costs one connection-attempt
//! delay (RFC 8305's 250 ms), not the connect timeout.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use https_pool_testkit::SynDropListener;

use super::*;

const NAME: &str = "race.test";

/// Connects to `NAME` resolved to `addrs`, and returns the dial's TCP time (DNS included).
async fn connect(peer: &Peer, port: u16, addrs: &[IpAddr]) -> Result<Duration> {
    let pool = peer
        .builder()
        .resolve(NAME, addrs.iter().copied())
        .connect_timeout(Duration::from_secs(5))
        .build()?;
    let origin: Origin = format!("https://{NAME}:{port}").parse()?;
    let mut handle = pool.acquire(&origin).await?;
    let response = handle.send(get("/eyeballs")?).await?;
    response.into_body().collect().await?;
    let stats = pool.stats();
    let conn = stats
        .origins
        .iter()
        .flat_map(|o| &o.connections)
        .next()
        .context("one connection")?;
    Ok(conn.tcp_connect)
}

/// With [black hole, live] the dial succeeds on the live address within 400 ms.
pub async fn happy_eyeballs(ctx: &Ctx<'_>) -> Result<CriterionResult> {
    const BOUND: Duration = Duration::from_millis(400);
    let target = format!(
        "with a first address that drops SYNs, the dial connects to the second in under {} ms",
        BOUND.as_millis()
    );
    if ctx.live() {
        return Ok(CriterionResult::skipped(
            "happy-eyeballs",
            target,
            SERVER_CONTROL,
        ));
    }
    let peer = ctx.peer(
        TestServerConfig::default().cert_names(vec![NAME.to_owned(), "127.0.0.1".to_owned()]),
    )?;
    let port = peer.port()?;
    let v4 = IpAddr::V4(Ipv4Addr::LOCALHOST);
    let hole = SynDropListener::bind(SocketAddr::new(IpAddr::V6(Ipv6Addr::LOCALHOST), port))?;
    let direct = connect(&peer, port, &[v4]).await?;
    let raced = connect(&peer, port, &[hole.addr().ip(), v4]).await?;
    let pass = raced < BOUND;
    Ok(CriterionResult {
        name: "happy-eyeballs",
        target,
        measured: format!(
            "{} past a black-holed [::1]:{port} ({} with the live address alone)",
            human(raced),
            human(direct)
        ),
        pass: Some(pass),
        notes: vec![
            "The resolver override maps the name to [::1 (a listener whose accept queue is \
             full, so the kernel drops SYNs), 127.0.0.1]. Times are the dial's TCP phase, \
             lookup included."
                .to_owned(),
        ],
        figures: vec![
            Figure::new("connect with the live address only", ms(direct), "ms"),
            Figure::new("connect past a black-holed first address", ms(raced), "ms"),
            Figure::new("bound", ms(BOUND), "ms"),
        ],
        charts: Vec::new(),
    })
}
