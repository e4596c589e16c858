//! The https-pool row: one shared pool, at most `--connections` connections.

use anyhow::Result;
use http_body_util::BodyExt;
use https_pool::ConnectionPoolManager;

use super::{ChildTarget, Row, get};
use crate::child::drive;
use crate::cli::{Args, client_name};

pub(super) async fn row_pool(args: &Args, target: &ChildTarget, per_client: usize) -> Result<Row> {
    let mut builder = ConnectionPoolManager::builder()
        .max_connections_per_origin(args.connections)
        .max_waiters_per_origin(args.clients.max(1024));
    if let Some(pem) = &target.ca_pem {
        builder = builder.tls_extra_ca_pem(pem.clone());
    }
    let pool = builder.build()?;
    let url: http::Uri = target.url.parse()?;
    let mut row = drive(
        "https-pool",
        client_name("https-pool", args.connections),
        args,
        per_client,
        {
            let pool = pool.clone();
            move |_| {
                let pool = pool.clone();
                let url = url.clone();
                async move {
                    let response = pool.request(get(&url)?).await?;
                    response.into_body().collect().await?;
                    Ok(())
                }
            }
        },
    )
    .await?;
    let stats = pool.stats();
    row.sockets_opened = Some(stats.connections_opened);
    let sep = if row.note.is_empty() { "" } else { "; " };
    row.note = format!(
        "{}{sep}{} connections opened, {} leases reused, {} retried",
        row.note, stats.connections_opened, stats.leases_reused, stats.requests_retried
    );
    Ok(row)
}
