//! The rows that run in a child process, one file per family, and what the families share:
//! the figures a row yields, the target as a child sees it, the TLS settings, the request,
//! and dialing the raw rows' connections.

mod hyper_util;
mod pool;
mod raw_h2;
mod raw_hyper;
mod reqwest;

use std::sync::Arc;

use anyhow::{Context, Result, bail};
use bytes::Bytes;
use http_body_util::Empty;
use serde::{Deserialize, Serialize};

use crate::cli::{Args, client_name};

/// One row's figures. A figure the row could not measure is `None` (JSON `null`, table
/// `n/a`), never 0.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Row {
    pub(crate) row: String,
    pub(crate) client: String,
    /// False when the row could not run against this target; `note` says why.
    pub(crate) ran: bool,
    pub(crate) req_per_sec: Option<f64>,
    pub(crate) p50_us: Option<f64>,
    pub(crate) p99_us: Option<f64>,
    pub(crate) p999_us: Option<f64>,
    /// Client CPU (user + system) per completed request.
    pub(crate) cpu_us_per_req: Option<f64>,
    pub(crate) sockets_opened: Option<u64>,
    pub(crate) errors: u64,
    pub(crate) peak_rss_kib: Option<u64>,
    pub(crate) note: String,
}

impl Row {
    pub(crate) fn not_run(row: &str, connections: usize, why: String) -> Row {
        Row {
            row: row.to_owned(),
            client: client_name(row, connections),
            ran: false,
            req_per_sec: None,
            p50_us: None,
            p99_us: None,
            p999_us: None,
            cpu_us_per_req: None,
            sockets_opened: None,
            errors: 0,
            peak_rss_kib: None,
            note: why,
        }
    }
}

/// The target as the parent hands it to a child: the URL to request (the relay's with `--rtt`)
/// and the extra CA's PEM.
pub(crate) struct ChildTarget {
    pub(crate) url: String,
    pub(crate) ca_pem: Option<String>,
}

/// Runs `row` in this process.
pub(crate) async fn run(
    row: &str,
    args: &Args,
    target: &ChildTarget,
    per_client: usize,
) -> Result<Row> {
    match row {
        "https-pool" => pool::row_pool(args, target, per_client).await,
        "raw-h2" => raw_h2::row_raw_h2(args, target, per_client).await,
        "raw-h2-fifo" => raw_h2::row_raw_h2_fifo(args, target, per_client).await,
        "raw-hyper" => raw_hyper::row_raw_hyper(args, target, per_client).await,
        "raw-h1" => raw_hyper::row_raw_h1(args, target, per_client).await,
        "hyper-util-shared" => hyper_util::row_hyper_util_shared(args, target, per_client).await,
        "reqwest" => reqwest::row_reqwest(args, target, per_client).await,
        "hyper-util-per-worker" => {
            hyper_util::row_hyper_util_per_worker(args, target, per_client).await
        }
        other => bail!("unknown row {other:?}"),
    }
}

pub(crate) fn tls_config(target: &ChildTarget) -> Result<rustls::ClientConfig> {
    let mut roots = rustls::RootCertStore::empty();
    roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    if let Some(pem) = &target.ca_pem {
        use pki_types::pem::PemObject;
        for cert in pki_types::CertificateDer::pem_slice_iter(pem.as_bytes()) {
            roots.add(cert?)?;
        }
    }
    let mut config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()?
    .with_root_certificates(roots)
    .with_no_client_auth();
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(config)
}

/// A GET for the target; every row gets the same pre-parsed URI, so no row pays for URL
/// parsing the others skip (reqwest parses its `&str` itself, as its users' calls do).
fn get(url: &http::Uri) -> Result<http::Request<Empty<Bytes>>> {
    Ok(http::Request::get(url.clone()).body(Empty::new())?)
}

/// `n` TLS connections to the target that negotiated `alpn` (offered alone).
async fn dial(
    target: &ChildTarget,
    n: usize,
    alpn: &[u8],
) -> Result<Vec<tokio_rustls::client::TlsStream<tokio::net::TcpStream>>> {
    let uri: http::Uri = target.url.parse()?;
    // `[::1]` is a URL's spelling; connecting and the TLS name want the bare address.
    let host = uri
        .host()
        .context("URL has no host")?
        .trim_matches(['[', ']'])
        .to_owned();
    let port = uri.port_u16().unwrap_or(443);
    let mut config = tls_config(target)?;
    config.alpn_protocols = vec![alpn.to_vec()];
    let tls = tokio_rustls::TlsConnector::from(Arc::new(config));
    let mut streams = Vec::with_capacity(n);
    for _ in 0..n {
        let tcp = tokio::net::TcpStream::connect((host.as_str(), port)).await?;
        tcp.set_nodelay(true)?;
        let name = pki_types::ServerName::try_from(host.clone())?;
        let stream = tls.connect(name, tcp).await?;
        if stream.get_ref().1.alpn_protocol() != Some(alpn) {
            bail!(
                "the server did not negotiate {} (this row speaks nothing else)",
                String::from_utf8_lossy(alpn)
            );
        }
        streams.push(stream);
    }
    Ok(streams)
}
