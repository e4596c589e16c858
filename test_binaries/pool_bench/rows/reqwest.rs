//! The reqwest row: one `Client` shared by every worker, given the URL as a string, as its
//! users call it.

use std::sync::Arc;

use anyhow::Result;

use super::{ChildTarget, Row};
use crate::child::drive;
use crate::cli::{Args, client_name};

pub(super) async fn row_reqwest(
    args: &Args,
    target: &ChildTarget,
    per_client: usize,
) -> Result<Row> {
    let mut builder = reqwest::Client::builder().use_rustls_tls();
    if let Some(pem) = &target.ca_pem {
        builder = builder.add_root_certificate(reqwest::Certificate::from_pem(pem.as_bytes())?);
    }
    let client = builder.build()?;
    let url: Arc<str> = Arc::from(target.url.as_str());
    drive(
        "reqwest",
        client_name("reqwest", args.connections),
        args,
        per_client,
        move |_| {
            let client = client.clone();
            let url = Arc::clone(&url);
            async move {
                client.get(&*url).send().await?.bytes().await?;
                Ok(())
            }
        },
    )
    .await
}
