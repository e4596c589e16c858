//! The hyper-util rows: one legacy `Client` shared by every worker, and one per worker.

use std::sync::Arc;

use anyhow::Result;
use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use https_pool_harness::clients;

use super::{ChildTarget, Row, get, tls_config};
use crate::child::drive;
use crate::cli::{Args, client_name};

type HyperUtilClient = clients::HyperUtilClient<Empty<Bytes>>;

fn hyper_util_client(target: &ChildTarget) -> Result<HyperUtilClient> {
    Ok(clients::hyper_util_client(tls_config(target)?))
}

pub(super) async fn row_hyper_util_shared(
    args: &Args,
    target: &ChildTarget,
    per_client: usize,
) -> Result<Row> {
    let client = hyper_util_client(target)?;
    let url: http::Uri = target.url.parse()?;
    drive(
        "hyper-util-shared",
        client_name("hyper-util-shared", args.connections),
        args,
        per_client,
        move |_| {
            let client = client.clone();
            let url = url.clone();
            async move {
                let response = client.request(get(&url)?).await?;
                response.into_body().collect().await?;
                Ok(())
            }
        },
    )
    .await
}

pub(super) async fn row_hyper_util_per_worker(
    args: &Args,
    target: &ChildTarget,
    per_client: usize,
) -> Result<Row> {
    let clients: Arc<Vec<HyperUtilClient>> = Arc::new(
        (0..args.clients)
            .map(|_| hyper_util_client(target))
            .collect::<Result<_>>()?,
    );
    let url: http::Uri = target.url.parse()?;
    drive(
        "hyper-util-per-worker",
        client_name("hyper-util-per-worker", args.connections),
        args,
        per_client,
        move |w| {
            let client = clients[w].clone();
            let url = url.clone();
            async move {
                let response = client.request(get(&url)?).await?;
                response.into_body().collect().await?;
                Ok(())
            }
        },
    )
    .await
}
