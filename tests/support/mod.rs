//! Shared helpers for the integration tests: tracing, a pool that trusts a test server, and
//! request shorthands. Everything runs against real sockets on 127.0.0.1.

#![allow(dead_code, unreachable_pub)]

use bytes::Bytes;
use http::{Request, Response};
use http_body_util::{BodyExt, Empty};
use https_pool::testkit::TestServer;
use https_pool::{ConnectionPoolManager, PoolBuilder};
use hyper::body::Incoming;

/// Installs a test-writer subscriber once; `RUST_LOG=https_pool=debug` shows pool events.
pub fn trace_init() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_test_writer()
        .try_init();
}

/// A builder that trusts `server`'s CA (and nothing else).
pub fn builder_for(server: &TestServer) -> PoolBuilder {
    ConnectionPoolManager::builder()
        .tls_webpki_roots(false)
        .tls_extra_ca_pem(server.ca_pem())
}

/// A GET with an empty body.
pub fn get(url: &str) -> Request<Empty<Bytes>> {
    Request::get(url)
        .body(Empty::new())
        .expect("a valid request")
}

/// Reads a response body to the end and returns its length.
pub async fn body_len(response: Response<Incoming>) -> usize {
    response
        .into_body()
        .collect()
        .await
        .expect("body reads to the end")
        .to_bytes()
        .len()
}
