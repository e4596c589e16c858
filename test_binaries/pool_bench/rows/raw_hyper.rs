//! The raw hyper rows: `hyper::client::conn::http2` on K round-robin connections, and
//! `conn::http1` on K connections behind a `Semaphore`, the HTTP/1.1 ceiling.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use anyhow::{Context, Result};
use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper_util::rt::{TokioExecutor, TokioIo};

use super::{ChildTarget, Row, dial, get};
use crate::child::drive;
use crate::cli::{Args, client_name};

pub(super) async fn row_raw_hyper(
    args: &Args,
    target: &ChildTarget,
    per_client: usize,
) -> Result<Row> {
    let mut senders = Vec::with_capacity(args.connections);
    for stream in dial(target, args.connections, b"h2").await? {
        let (sender, conn) = hyper::client::conn::http2::handshake::<_, _, Empty<Bytes>>(
            TokioExecutor::new(),
            TokioIo::new(stream),
        )
        .await?;
        tokio::spawn(conn);
        senders.push(sender);
    }
    let senders = Arc::new(senders);
    let next = Arc::new(AtomicUsize::new(0));
    let url: http::Uri = target.url.parse()?;
    let mut row = drive(
        "raw-hyper",
        client_name("raw-hyper", args.connections),
        args,
        per_client,
        move |_| {
            let i = next.fetch_add(1, Ordering::Relaxed) % senders.len();
            let mut sender = senders[i].clone();
            let url = url.clone();
            async move {
                let response = sender.send_request(get(&url)?).await?;
                response.into_body().collect().await?;
                Ok(())
            }
        },
    )
    .await?;
    row.note = "connections dialed before the timed run".to_owned();
    Ok(row)
}

/// The HTTP/1.1 ceiling: K hyper `conn::http1` connections behind a tokio `Semaphore` (FIFO,
/// a freed permit handed straight to the longest waiter) and a stack of idle senders: the
/// least a hand-written keep-alive pool does, with no dialing, health or accounting.
pub(super) async fn row_raw_h1(
    args: &Args,
    target: &ChildTarget,
    per_client: usize,
) -> Result<Row> {
    let mut idle = Vec::with_capacity(args.connections);
    for stream in dial(target, args.connections, b"http/1.1").await? {
        let (sender, conn) =
            hyper::client::conn::http1::handshake::<_, Empty<Bytes>>(TokioIo::new(stream)).await?;
        tokio::spawn(conn);
        idle.push(sender);
    }
    let permits = Arc::new(tokio::sync::Semaphore::new(idle.len()));
    let idle = Arc::new(std::sync::Mutex::new(idle));
    let url: http::Uri = target.url.parse()?;
    let authority = url.authority().context("URL has no authority")?.to_string();
    let path = url.path_and_query().map_or("/", |p| p.as_str()).to_owned();
    let mut row = drive(
        "raw-h1",
        client_name("raw-h1", args.connections),
        args,
        per_client,
        move |_| {
            let permits = Arc::clone(&permits);
            let idle = Arc::clone(&idle);
            // What hyper's pooled clients send: origin-form and a Host header.
            let request = http::Request::get(path.as_str())
                .header(http::header::HOST, authority.as_str())
                .body(Empty::new());
            async move {
                let _permit = permits.acquire().await?;
                let lock = || idle.lock().unwrap_or_else(|p| p.into_inner());
                let mut sender = lock().pop().context("no idle connection under a permit")?;
                sender.ready().await?;
                let response = sender.send_request(request?).await?;
                anyhow::ensure!(response.status().is_success(), "{}", response.status());
                response.into_body().collect().await?;
                lock().push(sender);
                Ok(())
            }
        },
    )
    .await?;
    row.note = "connections dialed before the timed run".to_owned();
    Ok(row)
}
