//! The `long-path` criterion: what a real network path's round trip does to downloads,
//! bursts and uploads with every client's default settings, measured through the testkit's
//! RTT relay (40 ms unless `--rtt` says otherwise), the pool beside reqwest and hyper-util's
//! `Client` in the same run, and the memory that unread bodies hold against its stated bound.

use std::fmt::Write as _;

use bytes::Bytes;
use http_body_util::Full;
use https_pool::PoolConfig;
use https_pool_testkit::Alpn;

use super::*;
use crate::clients::{self, HyperUtilClient};

const KIB: usize = 1024;
const MIB: usize = 1024 * 1024;
/// The response sizes, each fetched one at a time on a warm connection.
const SIZES: [(&str, usize); 4] = [
    ("1 KiB", KIB),
    ("100 KiB", 100 * KIB),
    ("1 MiB", MIB),
    ("16 MiB", 16 * MIB),
];
/// Concurrent 100 KiB GETs fired at once.
const BURST: usize = 32;
/// The upload: one POST of this many bytes.
const UPLOAD: usize = 16 * MIB;
/// Streams left unread for the memory bound, and their bodies.
const UNREAD_STREAMS: usize = 100;
const UNREAD_BODY: usize = MIB;
/// Samples of each quick figure (the burst, transfers up to 1 MiB) in every mode.
const CHEAP_RUNS: usize = 9;
/// The burst's column.
const BURST_COLUMN: &str = "32 × 100 KiB";
/// How much slower than reqwest a figure of the pool may be and still count as not slower:
/// the spread of one client's median from run to run here (up to 0.09 RTT for the burst,
/// whose 3.2 MiB of TLS on two shared cores is most of a round trip's noise; the relay itself
/// adds up to 1 ms each way, tokio's timer tick).
const SAME_WITHIN_RTT: f64 = 0.1;
/// A 16 MiB POST to a server with large windows must take at most this many round trips: a
/// send path that held back to one buffer per round trip would take 16.
const MAX_UPLOAD_RTT: f64 = 2.0;

/// A client as a service team would build it: defaults, plus trust in the test CA.
enum Client {
    Pool(ConnectionPoolManager),
    Reqwest(reqwest::Client),
    // Boxed: hyper-util's client is several times the size of the others.
    HyperUtil(Box<HyperUtilClient<Full<Bytes>>>),
}

impl Client {
    fn pool(peer: &Peer) -> Result<Client> {
        Ok(Client::Pool(peer.builder().build()?))
    }

    /// The pool with the windows it had before they were chosen for long paths.
    fn pool_seed_windows(peer: &Peer) -> Result<Client> {
        Ok(Client::Pool(
            peer.builder()
                .http2_initial_stream_window_size(32 * 1024)
                .http2_initial_connection_window_size(64 * 1024)
                .http2_adaptive_window(false)
                .build()?,
        ))
    }

    /// The pool with windows far above this path's bandwidth-delay product: the best a
    /// window setting can do here.
    fn pool_huge_windows(peer: &Peer) -> Result<Client> {
        Ok(Client::Pool(
            peer.builder()
                .http2_initial_stream_window_size(64 << 20)
                .http2_initial_connection_window_size(64 << 20)
                .http2_adaptive_window(false)
                .build()?,
        ))
    }

    fn reqwest(peer: &Peer) -> Result<Client> {
        let mut builder = reqwest::Client::builder().use_rustls_tls();
        if let Some(pem) = &peer.ca_pem {
            builder = builder.add_root_certificate(reqwest::Certificate::from_pem(pem.as_bytes())?);
        }
        Ok(Client::Reqwest(builder.build()?))
    }

    fn hyper_util(peer: &Peer) -> Result<Client> {
        let mut roots = rustls::RootCertStore::empty();
        if let Some(pem) = &peer.ca_pem {
            use pki_types::pem::PemObject;
            for cert in pki_types::CertificateDer::pem_slice_iter(pem.as_bytes()) {
                roots.add(cert?)?;
            }
        }
        let tls = rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()?
        .with_root_certificates(roots)
        .with_no_client_auth();
        Ok(Client::HyperUtil(Box::new(clients::hyper_util_client(tls))))
    }

    /// GETs `url` asking for `size` bytes and reads the body to its end.
    async fn get(&self, url: &str, size: usize) -> Result<()> {
        let received = match self {
            Client::Pool(pool) => {
                let response = pool.request(sized_get(url, size)?).await?;
                response.into_body().collect().await?.to_bytes().len()
            }
            Client::Reqwest(client) => {
                let response = client.get(url).header("x-body-bytes", size).send().await?;
                response.bytes().await?.len()
            }
            Client::HyperUtil(client) => {
                let request = Request::get(url)
                    .header("x-body-bytes", size)
                    .body(Full::new(Bytes::new()))?;
                let response = client.request(request).await?;
                response.into_body().collect().await?.to_bytes().len()
            }
        };
        anyhow::ensure!(received == size, "{received} of {size} body bytes arrived");
        Ok(())
    }

    /// POSTs `body` (the server answers with 16 bytes) and reads the response.
    async fn post(&self, url: &str, body: Bytes) -> Result<()> {
        let request = || {
            Request::post(url)
                .header("x-body-bytes", 16)
                .body(Full::new(body.clone()))
        };
        let echoed = match self {
            Client::Pool(pool) => {
                let response = pool.request(request()?).await?;
                let echoed = received_bytes(response.headers());
                response.into_body().collect().await?;
                echoed
            }
            Client::Reqwest(client) => {
                let response = client
                    .post(url)
                    .header("x-body-bytes", 16)
                    .body(body.clone())
                    .send()
                    .await?;
                let echoed = received_bytes(response.headers());
                response.bytes().await?;
                echoed
            }
            Client::HyperUtil(client) => {
                let response = client.request(request()?).await?;
                let echoed = received_bytes(response.headers());
                response.into_body().collect().await?;
                echoed
            }
        };
        anyhow::ensure!(
            echoed == Some(body.len()),
            "the server received {echoed:?} of {} bytes",
            body.len()
        );
        Ok(())
    }

    async fn close(self) {
        if let Client::Pool(pool) = self {
            pool.shutdown().await;
        }
    }
}

fn sized_get(url: &str, size: usize) -> Result<Request<Full<Bytes>>> {
    Ok(Request::get(url)
        .header("x-body-bytes", size)
        .body(Full::new(Bytes::new()))?)
}

fn received_bytes(headers: &http::HeaderMap) -> Option<usize> {
    headers.get("x-received-bytes")?.to_str().ok()?.parse().ok()
}

/// Medians in round trips, per client and measurement; `None` where not measured.
struct Table {
    rtt: Duration,
    columns: Vec<&'static str>,
    rows: Vec<(String, Vec<Option<f64>>)>,
}

impl Table {
    fn cell(&self, row: usize, column: &str) -> Option<f64> {
        let c = self.columns.iter().position(|c| *c == column)?;
        self.rows.get(row)?.1.get(c).copied().flatten()
    }

    fn markdown(&self) -> String {
        let mut out = format!("| client | {} |\n|---|", self.columns.join(" | "));
        for _ in &self.columns {
            out.push_str("---:|");
        }
        for (name, cells) in &self.rows {
            let _ = write!(out, "\n| {name} |");
            for cell in cells {
                match cell {
                    Some(v) => {
                        let _ = write!(out, " {v:.2} |");
                    }
                    None => out.push_str(" n/a |"),
                }
            }
        }
        let _ = write!(
            out,
            "\n\nMedians in round trips of {} ms (a figure of 1.00 is one round trip).",
            self.rtt.as_millis()
        );
        out
    }
}

/// `BURST` GETs of 100 KiB fired at the same moment; the time until the last one ends.
async fn burst(client: &Arc<Client>, url: &str) -> Result<()> {
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..BURST {
        let client = Arc::clone(client);
        let url = url.to_owned();
        tasks.spawn(async move { client.get(&url, 100 * KIB).await });
    }
    while let Some(joined) = tasks.join_next().await {
        joined??;
    }
    Ok(())
}

/// What `UNREAD_STREAMS` open streams with unread bodies of `body` bytes add to the heap,
/// once data has stopped arriving. Returns the responses (still unread) with it.
async fn hold_unread(
    pool: &ConnectionPoolManager,
    url: &str,
    body: usize,
) -> Result<(Vec<http::Response<https_pool::Body>>, i64)> {
    let before = live_bytes();
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..UNREAD_STREAMS {
        let pool = pool.clone();
        let request = sized_get(url, body)?;
        tasks.spawn(async move { pool.request(request).await });
    }
    let mut responses = Vec::with_capacity(UNREAD_STREAMS);
    while let Some(joined) = tasks.join_next().await {
        responses.push(joined??);
    }
    // Data stops once the windows are spent: wait (bounded) until the heap has held still for
    // longer than a round trip.
    let mut last = live_bytes();
    let mut still = Duration::ZERO;
    let step = Duration::from_millis(25);
    for _ in 0..800 {
        tokio::time::sleep(step).await;
        let now = live_bytes();
        if (now - last).abs() < 4096 {
            still += step;
            if still > Duration::from_millis(250) {
                break;
            }
        } else {
            still = Duration::ZERO;
        }
        last = now;
    }
    Ok((responses, live_bytes() - before))
}

/// The unread-bodies memory against the documented bound: (data held, bound).
async fn unread_memory(peer: &Peer) -> Result<(i64, i64)> {
    let pool = peer.builder().build()?;
    let url = format!("{}/unread", peer.url);
    // Warm: the connection is open and the server's shared body is as large as it will be.
    Client::Pool(pool.clone()).get(&url, UNREAD_BODY).await?;
    let (small, bookkeeping) = hold_unread(&pool, &url, 16).await?;
    for response in small {
        response.into_body().collect().await?;
    }
    let (unread, held) = hold_unread(&pool, &url, UNREAD_BODY).await?;
    let connections = pool
        .stats()
        .origins
        .iter()
        .map(|o| o.connections.len())
        .sum::<usize>();
    // Read together, as data arrives: one at a time, the first body could wait forever for
    // credit that the unread others hold (HTTP/2's connection window is shared).
    let mut readers = tokio::task::JoinSet::new();
    for response in unread {
        readers.spawn(async move { response.into_body().collect().await });
    }
    while let Some(joined) = readers.join_next().await {
        let len = joined??.to_bytes().len();
        anyhow::ensure!(len == UNREAD_BODY, "an unread body read back {len} bytes");
    }
    pool.shutdown().await;
    let window = i64::from(PoolConfig::default().http2_initial_connection_window_size);
    let bound = (window + window / 16) * connections.max(1) as i64;
    Ok((held - bookkeeping, bound))
}

/// Downloads, the burst and the upload over a long path: the pool's defaults beside reqwest's
/// and hyper-util's; and the unread-bodies memory against its bound.
pub async fn long_path(ctx: &Ctx<'_>) -> Result<CriterionResult> {
    let rtt = ctx.path_rtt();
    let target = format!(
        "over a {} ms path, with defaults: https-pool ≤ reqwest (+{SAME_WITHIN_RTT} RTT of \
         noise) at every size and the burst, ≤ 1.2 RTT up to 1 MiB, {BURST} × 100 KiB ≤ 1.5 \
         RTT, 16 MiB POST ≤ {MAX_UPLOAD_RTT} RTT, unread bodies within the stated bound",
        rtt.as_millis()
    );
    if ctx.live() {
        return Ok(CriterionResult::skipped(
            "long-path",
            target,
            SERVER_CONTROL,
        ));
    }
    let runs = ctx.scale.pick(3, 5, 7);

    // HTTP/2 downloads, the burst and the upload.
    let peer = embedded_peer(TestServerConfig::default(), Some(rtt))?;
    let url = format!("{}/long-path", peer.url);
    // The upload's server takes 16 MiB before returning credit, so only the client's own
    // sending can slow it down.
    let upload_peer = embedded_peer(
        TestServerConfig::default().receive_window(32 << 20),
        Some(rtt),
    )?;
    let upload_url = format!("{}/upload", upload_peer.url);
    let upload = Bytes::from(vec![b'u'; UPLOAD]);
    type Make = fn(&Peer) -> Result<Client>;
    // (name, client, whether it runs the 16 MiB transfers: through the seed's 64 KiB windows
    // 16 MiB takes about 22 s at 40 ms, and the windows do not matter to an upload).
    let makers: [(&str, Make, bool); 5] = [
        ("https-pool (defaults)", Client::pool, true),
        ("reqwest (defaults)", Client::reqwest, true),
        ("hyper-util `Client` (defaults)", Client::hyper_util, true),
        (
            "https-pool, seed windows (32 KiB / 64 KiB, fixed)",
            Client::pool_seed_windows,
            false,
        ),
        (
            "https-pool, 64 MiB windows (fixed; the best setting here)",
            Client::pool_huge_windows,
            true,
        ),
    ];
    let mut clients = Vec::new();
    for (name, make, large) in makers {
        clients.push((
            name,
            Arc::new(make(&peer)?),
            Arc::new(make(&upload_peer)?),
            large,
        ));
    }
    let mut columns: Vec<&'static str> = SIZES.iter().map(|(name, _)| *name).collect();
    columns.push(BURST_COLUMN);
    columns.push("16 MiB POST");
    let mut h2 = Table {
        rtt,
        columns: columns.clone(),
        rows: clients
            .iter()
            .map(|(name, ..)| ((*name).to_owned(), Vec::new()))
            .collect(),
    };
    for column in columns {
        let size = SIZES
            .iter()
            .find(|(name, _)| *name == column)
            .map(|(_, s)| *s);
        let large = size.is_none_or(|s| s > MIB);
        // Three warm-up transfers for 16 MiB: the connection is open, and an adaptive window
        // has seen transfers of that size; one otherwise.
        let warm = if size.is_some_and(|s| s > MIB) { 3 } else { 1 };
        // The burst and transfers up to 1 MiB take a round trip or two each: at least
        // CHEAP_RUNS of them, so their medians settle within the 0.1 RTT the verdict allows.
        let n = if large && column != BURST_COLUMN {
            runs
        } else {
            runs.max(CHEAP_RUNS)
        };
        let call = |client: &Arc<Client>, uploader: &Arc<Client>| {
            let (client, uploader) = (Arc::clone(client), Arc::clone(uploader));
            let (url, upload_url, upload) = (url.clone(), upload_url.clone(), upload.clone());
            async move {
                match size {
                    Some(size) => client.get(&url, size).await,
                    None if column.ends_with("POST") => uploader.post(&upload_url, upload).await,
                    None => burst(&client, &url).await,
                }
            }
        };
        let runs_for = |large_client: bool| !large || large_client;
        for (_, client, uploader, large_client) in &clients {
            if runs_for(*large_client) {
                for _ in 0..warm {
                    call(client, uploader).await?;
                }
            }
        }
        // Interleaved, run by run, so that no client is measured at a quieter moment of
        // the machine than another.
        let mut times = vec![Vec::with_capacity(n); clients.len()];
        for _ in 0..n {
            for (i, (_, client, uploader, large_client)) in clients.iter().enumerate() {
                if runs_for(*large_client) {
                    let started = Instant::now();
                    call(client, uploader).await?;
                    times[i].push(started.elapsed());
                }
            }
        }
        for (row, samples) in h2.rows.iter_mut().zip(times) {
            row.1.push(
                (!samples.is_empty()).then(|| median(samples).as_secs_f64() / rtt.as_secs_f64()),
            );
        }
    }
    for (_, client, uploader, _) in clients {
        for c in [client, uploader] {
            if let Ok(c) = Arc::try_unwrap(c) {
                c.close().await;
            }
        }
    }
    drop(upload_peer);
    drop(peer);

    // HTTP/1.1 over the same path: TCP's own flow control only, as a check.
    let h1_peer = embedded_peer(TestServerConfig::default().alpn(Alpn::Http1), Some(rtt))?;
    let h1_url = format!("{}/long-path", h1_peer.url);
    let h1_makers: [(&str, Make); 3] = [
        ("https-pool (defaults), HTTP/1.1", Client::pool),
        ("reqwest (defaults), HTTP/1.1", Client::reqwest),
        (
            "hyper-util `Client` (defaults), HTTP/1.1",
            Client::hyper_util,
        ),
    ];
    let mut h1_clients = Vec::new();
    for (name, make) in h1_makers {
        h1_clients.push((name, make(&h1_peer)?));
    }
    let mut h1 = Table {
        rtt,
        columns: SIZES.iter().map(|(name, _)| *name).collect(),
        rows: h1_clients
            .iter()
            .map(|(name, _)| ((*name).to_owned(), Vec::new()))
            .collect(),
    };
    for (_, size) in SIZES {
        for (_, client) in &h1_clients {
            client.get(&h1_url, size).await?;
        }
        let mut times = vec![Vec::with_capacity(runs); h1_clients.len()];
        for _ in 0..runs {
            for (i, (_, client)) in h1_clients.iter().enumerate() {
                let started = Instant::now();
                client.get(&h1_url, size).await?;
                times[i].push(started.elapsed());
            }
        }
        for (row, samples) in h1.rows.iter_mut().zip(times) {
            row.1
                .push(Some(median(samples).as_secs_f64() / rtt.as_secs_f64()));
        }
    }
    for (_, client) in h1_clients {
        client.close().await;
    }
    drop(h1_peer);

    // The memory bound, through the same relay.
    let memory_peer = embedded_peer(TestServerConfig::default(), Some(rtt))?;
    let (unread, bound) = unread_memory(&memory_peer).await?;
    drop(memory_peer);

    // The verdict: pool row 0 against reqwest row 1.
    let mut pass = unread <= bound;
    let mut misses = Vec::new();
    for column in h2.columns.clone() {
        if column.ends_with("POST") {
            continue;
        }
        let (Some(pool), Some(reqwest)) = (h2.cell(0, column), h2.cell(1, column)) else {
            continue;
        };
        if pool > reqwest + SAME_WITHIN_RTT {
            misses.push(format!("{column}: {pool:.2} vs reqwest {reqwest:.2}"));
        }
    }
    for (name, size) in SIZES {
        if size <= MIB && h2.cell(0, name).is_some_and(|v| v > 1.2) {
            misses.push(format!(
                "{name} took {:.2} RTT",
                h2.cell(0, name).unwrap_or(0.0)
            ));
        }
    }
    if h2.cell(0, BURST_COLUMN).is_some_and(|v| v > 1.5) {
        misses.push("the burst took more than 1.5 RTT".to_owned());
    }
    if h2
        .cell(0, "16 MiB POST")
        .is_some_and(|v| v > MAX_UPLOAD_RTT)
    {
        misses.push(format!(
            "the 16 MiB POST took more than {MAX_UPLOAD_RTT} RTT"
        ));
    }
    pass &= misses.is_empty();

    let pool_cells: Vec<String> = h2
        .columns
        .iter()
        .filter_map(|c| h2.cell(0, c).map(|v| format!("{c} {v:.2}")))
        .collect();
    let reqwest_16 = h2.cell(1, "16 MiB").unwrap_or(f64::NAN);
    let mut measured = format!(
        "pool in RTTs: {}; reqwest 16 MiB {reqwest_16:.2}; unread bodies {:.1} MiB (bound {:.1} MiB)",
        pool_cells.join(", "),
        unread as f64 / MIB as f64,
        bound as f64 / MIB as f64
    );
    if !misses.is_empty() {
        let _ = write!(measured, "; missed: {}", misses.join("; "));
    }

    let mut figures = Vec::new();
    for table in [&h2, &h1] {
        for (name, cells) in &table.rows {
            for (column, cell) in table.columns.iter().zip(cells) {
                if let Some(v) = cell {
                    figures.push(Figure::new(format!("{name}: {column}"), round2(*v), "RTT"));
                }
            }
        }
    }
    figures.extend([
        Figure::new("unread bodies: data held", unread, "bytes"),
        Figure::new("unread bodies: stated bound", bound, "bytes"),
        Figure::new("round trip", rtt.as_millis() as u64, "ms"),
    ]);
    Ok(CriterionResult {
        name: "long-path",
        target,
        measured,
        pass: Some(pass),
        notes: vec![
            format!(
                "The embedded HTTPS server behind the testkit's relay, which delays each \
                 direction by half of {} ms and buffers without limit, so only HTTP/2 flow \
                 control (and, for HTTP/1.1, TCP's) paces a transfer. Each figure is the median \
                 of {runs} requests ({CHEAP_RUNS} for the burst and up to 1 MiB) one at a time on a warm connection (16 MiB after three \
                 warm-up downloads), in round trips, the clients taking turns request by \
                 request; every client runs with its own defaults. The burst fires {BURST} \
                 GETs at once and times the last.",
                rtt.as_millis()
            ),
            "The upload goes to a server advertising 32 MiB receive windows, so the time is \
             the client's own sending (judged against a bound, not against reqwest: the \
             clients' medians spread by ±0.07 RTT from run to run, CPU-bound TLS on two shared \
             cores); against a server with hyper's 1 MiB windows every client takes about 16 \
             round trips for 16 MiB."
                .to_owned(),
            format!(
                "Unread bodies: {UNREAD_STREAMS} GETs of 1 MiB whose bodies are not read, heap \
                 growth (counting allocator) minus that of {UNREAD_STREAMS} GETs of 16 bytes, \
                 against the stated bound (one connection window plus 1/16 per connection); \
                 every body then reads to the end."
            ),
            format!("HTTP/2:\n\n{}", h2.markdown()),
            format!("HTTP/1.1, as a check (TCP only):\n\n{}", h1.markdown()),
        ],
        figures,
        charts: Vec::new(),
    })
}
