//! HTTP/1.1 keep-alive pool vs a new connection per request, side by side in one run.
//!
//! 50 concurrent clients send GETs to the embedded HTTP/1.1-only HTTPS server on 127.0.0.1:
//! once through the pool's keep-alive connections, once with `x-close: 1` so the server ends
//! every connection after its response (what a client without keep-alive pays: TCP + TLS per
//! request). Prints requests/s and the connections the server accepted.
//!
//! `cargo run --release --example http1_keepalive -- [requests per client, default 200]`

use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use https_pool::ConnectionPoolManager;
use https_pool_testkit::{Alpn, TestServer, TestServerConfig};

const CLIENTS: usize = 50;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    let per_client: usize = match std::env::args().nth(1) {
        Some(n) => n.parse()?,
        None => 200,
    };
    println!(
        "{CLIENTS} concurrent clients x {per_client} requests, HTTP/1.1-only server on 127.0.0.1"
    );
    println!(
        "{:<28} {:>10} {:>12} {:>8}",
        "client", "req/s", "connections", "errors"
    );
    for (name, close) in [
        ("pool (keep-alive)", false),
        ("new connection per request", true),
    ] {
        let server = TestServer::start(TestServerConfig::default().alpn(Alpn::Http1))?;
        let pool = ConnectionPoolManager::builder()
            .tls_extra_ca_pem(server.ca_pem())
            .h1_max_connections(CLIENTS)
            .max_waiters_per_origin(CLIENTS * 2)
            .build()?;
        let url: Arc<str> = Arc::from(server.url_for("/h1"));
        let started = Instant::now();
        let tasks: Vec<_> = (0..CLIENTS)
            .map(|_| {
                let pool = pool.clone();
                let url = Arc::clone(&url);
                tokio::spawn(async move {
                    let mut errors = 0usize;
                    for _ in 0..per_client {
                        let mut request = http::Request::get(&*url);
                        if close {
                            request = request.header("x-close", "1");
                        }
                        let Ok(request) = request.body(Empty::<Bytes>::new()) else {
                            errors += 1;
                            continue;
                        };
                        match pool.request(request).await {
                            Ok(response) => {
                                if response.into_body().collect().await.is_err() {
                                    errors += 1;
                                }
                            }
                            Err(_) => errors += 1,
                        }
                    }
                    errors
                })
            })
            .collect();
        let mut errors = 0;
        for t in tasks {
            errors += t.await?;
        }
        let elapsed = started.elapsed();
        let total = CLIENTS * per_client;
        println!(
            "{name:<28} {:>10.0} {:>12} {:>8}",
            total as f64 / elapsed.as_secs_f64(),
            server.counters().accepted(),
            errors
        );
        pool.shutdown().await;
    }
    Ok(())
}
