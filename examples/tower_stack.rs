//! The pool's `tower::Service` under tower's own middleware, against the embedded HTTPS server
//! on 127.0.0.1:
//!
//! - `pool.service(origin)?.ready().await?.call(request)`: the body type is inferred from the
//!   request, as with hyper-util's `Client`;
//! - `ConcurrencyLimit` → `Retry` → `Timeout` → [`PoolService`] leasing in `call`
//!   ([`PoolService::acquire_in_call`]), so each attempt's `Timeout` counts the wait for a slot;
//! - a `Retry` policy that sends a request again only when [`Error::is_retry_safe`] proves it
//!   never reached the server (a dial that failed, no slot in time, a full wait queue), never
//!   after tower's timeout (it cannot tell whether the request went out) and never after an
//!   error the server may have seen.
//!
//! `cargo run --example tower_stack -- [requests, default 200]`

use std::time::Duration;

use bytes::Bytes;
use http::{Request, Response};
use http_body_util::{BodyExt, Empty, Full};
use https_pool::{Body, ConnectionPoolManager, Error, PoolService};
use https_pool_testkit::{TestServer, TestServerConfig};
use tower::retry::Policy;
use tower::{BoxError, Service, ServiceBuilder, ServiceExt};

/// Retries what provably never reached the server, `retries` times at most, waiting
/// `backoff` × the attempt number before each.
#[derive(Debug, Clone)]
struct RetryUnsent {
    retries: u32,
    attempt: u32,
    backoff: Duration,
}

impl RetryUnsent {
    fn new(retries: u32, backoff: Duration) -> RetryUnsent {
        RetryUnsent {
            retries,
            attempt: 0,
            backoff,
        }
    }
}

impl<B: Clone> Policy<Request<B>, Response<Body>, BoxError> for RetryUnsent {
    type Future = tokio::time::Sleep;

    fn retry(
        &mut self,
        _request: &mut Request<B>,
        result: &mut Result<Response<Body>, BoxError>,
    ) -> Option<Self::Future> {
        let Err(error) = result else { return None };
        // Only the pool's own errors say whether the request left; tower's `Elapsed` does not.
        let unsent = error
            .downcast_ref::<Error>()
            .is_some_and(Error::is_retry_safe);
        if !unsent || self.attempt >= self.retries {
            return None;
        }
        self.attempt += 1;
        Some(tokio::time::sleep(self.backoff * self.attempt))
    }

    fn clone_request(&mut self, request: &Request<B>) -> Option<Request<B>> {
        Some(request.clone())
    }
}

#[tokio::main]
async fn main() -> Result<(), BoxError> {
    let requests: usize = std::env::args().nth(1).map_or(Ok(200), |a| a.parse())?;
    let server = TestServer::start(TestServerConfig::default().max_concurrent_streams(8))?;
    let pool = ConnectionPoolManager::builder()
        .tls_extra_ca_pem(server.ca_pem())
        .max_connections_per_origin(2)
        .build()?;

    // The plain service: `ready` infers the request type from the call that follows.
    let mut service = pool.service(server.url())?;
    let response = service
        .ready()
        .await?
        .call(Request::get("/hello").body(Empty::<Bytes>::new())?)
        .await?;
    println!("plain service: {}", response.status());
    drop(response);

    // The stack: at most 64 requests in flight, each retried twice at most when it never
    // left, each attempt (its wait for a slot included) bounded by 2 s.
    let pool_service: PoolService<Full<Bytes>> = pool.service(server.url())?.acquire_in_call();
    let stack = ServiceBuilder::new()
        .concurrency_limit(64)
        .retry(RetryUnsent::new(2, Duration::from_millis(50)))
        .timeout(Duration::from_secs(2))
        .service(pool_service);
    let calls: Vec<_> = (0..requests)
        .map(|i| {
            let stack = stack.clone();
            tokio::spawn(async move {
                let request = Request::post(format!("/items/{i}"))
                    .body(Full::new(Bytes::from(format!("item {i}"))))?;
                let response = stack.oneshot(request).await?;
                response.into_body().collect().await?;
                Ok::<_, BoxError>(())
            })
        })
        .collect();
    let (mut ok, mut failed) = (0, 0);
    for call in calls {
        match call.await? {
            Ok(()) => ok += 1,
            Err(error) => {
                failed += 1;
                eprintln!("request failed: {error}");
            }
        }
    }
    let stats = pool.stats();
    println!(
        "stack: {ok} ok, {failed} failed; {} connection(s) opened (server accepted {}), at most \
         {} streams at once on one connection",
        stats.connections_opened,
        server.counters().accepted(),
        server.counters().max_concurrent_per_connection()
    );
    pool.shutdown().await;
    Ok(())
}
