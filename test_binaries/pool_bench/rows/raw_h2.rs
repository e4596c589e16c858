//! The raw h2 rows, the ceiling: the h2 crate on K round-robin connections, bare and with
//! FIFO waiting in front.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use anyhow::Result;
use bytes::Bytes;

use super::{ChildTarget, Row, dial};
use crate::child::drive;
use crate::cli::{Args, client_name};

/// The ceiling: the h2 crate driven directly, as the pool does, with nothing around it.
/// Callers past a connection's stream limit wait inside h2 (its pending-open queue), so a
/// freed stream starts the next request from the connection's task, without waking anyone.
pub(super) async fn row_raw_h2(
    args: &Args,
    target: &ChildTarget,
    per_client: usize,
) -> Result<Row> {
    let senders = Arc::new(raw_h2_senders(target, args.connections).await?);
    let next = Arc::new(AtomicUsize::new(0));
    let url: http::Uri = target.url.parse()?;
    let mut row = drive(
        "raw-h2",
        client_name("raw-h2", args.connections),
        args,
        per_client,
        move |_| {
            let i = next.fetch_add(1, Ordering::Relaxed) % senders.len();
            raw_h2_get(senders[i].clone(), url.clone())
        },
    )
    .await?;
    row.note = "connections dialed before the timed run".to_owned();
    Ok(row)
}

/// The same raw h2 connections with FIFO waiting in front: a tokio `Semaphore` per connection
/// with as many permits as the server's SETTINGS_MAX_CONCURRENT_STREAMS, callers assigned
/// round-robin. No stream waits inside h2; a caller past the limit waits for a permit and is
/// woken to send, as a pool's waiter is. Beside raw-h2 it shows what first-come-first-served
/// waiting costs when nothing else is around it.
pub(super) async fn row_raw_h2_fifo(
    args: &Args,
    target: &ChildTarget,
    per_client: usize,
) -> Result<Row> {
    let url: http::Uri = target.url.parse()?;
    let mut gated = Vec::with_capacity(args.connections);
    for sender in raw_h2_senders(target, args.connections).await? {
        // One request first, so the server's SETTINGS have arrived.
        raw_h2_get(sender.clone(), url.clone()).await?;
        let limit = sender
            .current_max_send_streams()
            .clamp(1, tokio::sync::Semaphore::MAX_PERMITS);
        gated.push((sender, Arc::new(tokio::sync::Semaphore::new(limit))));
    }
    let gated = Arc::new(gated);
    let next = Arc::new(AtomicUsize::new(0));
    let mut row = drive(
        "raw-h2-fifo",
        client_name("raw-h2-fifo", args.connections),
        args,
        per_client,
        move |_| {
            let (sender, permits) = &gated[next.fetch_add(1, Ordering::Relaxed) % gated.len()];
            let (sender, permits, url) = (sender.clone(), Arc::clone(permits), url.clone());
            async move {
                let _permit = permits.acquire_owned().await?;
                raw_h2_get(sender, url).await
            }
        },
    )
    .await?;
    row.note = "connections dialed, and one request sent on each, before the timed run".to_owned();
    Ok(row)
}

/// `n` h2 connections to the target, each driven by a task of its own.
async fn raw_h2_senders(
    target: &ChildTarget,
    n: usize,
) -> Result<Vec<h2::client::SendRequest<Bytes>>> {
    let mut senders = Vec::with_capacity(n);
    for stream in dial(target, n, b"h2").await? {
        let (sender, conn) = h2::client::handshake(stream).await?;
        tokio::spawn(async move {
            let _ = conn.await;
        });
        senders.push(sender);
    }
    Ok(senders)
}

/// One GET on `sender`, its body read to the end.
async fn raw_h2_get(sender: h2::client::SendRequest<Bytes>, url: http::Uri) -> Result<()> {
    let mut sender = sender.ready().await?;
    let request = http::Request::get(url).body(())?;
    let (response, _) = sender.send_request(request, true)?;
    let mut body = response.await?.into_body();
    while let Some(chunk) = body.data().await {
        let chunk = chunk?;
        body.flow_control().release_capacity(chunk.len())?;
    }
    body.trailers().await?;
    Ok(())
}
