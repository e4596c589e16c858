//! tonic clients running unchanged on the pool's `tower::Service`, over cleartext HTTP/2 with
//! prior knowledge (h2c), against a real tonic server on 127.0.0.1.

mod support;

use std::net::SocketAddr;

use https_pool::{Cleartext, ConnectionPoolManager, Error, Origin, Protocol};
use support::trace_init;
use tokio::task::JoinSet;
use tonic::transport::Server;
use tonic::transport::server::TcpIncoming;
use tonic_health::ServingStatus;
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus as WireStatus;
use tonic_health::pb::health_client::HealthClient;
use tonic_health::server::HealthReporter;

/// A tonic server with the standard health service on an ephemeral loopback port, allowing
/// `max_streams` concurrent streams per connection. It stops when the test's runtime ends.
async fn start_health_server(max_streams: Option<u32>) -> (SocketAddr, HealthReporter) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind loopback");
    let addr = listener.local_addr().expect("local addr");
    let (reporter, service) = tonic_health::server::health_reporter();
    tokio::spawn(
        Server::builder()
            .max_concurrent_streams(max_streams)
            .add_service(service)
            .serve_with_incoming(TcpIncoming::from(listener)),
    );
    (addr, reporter)
}

fn h2c_pool() -> ConnectionPoolManager {
    ConnectionPoolManager::builder()
        .cleartext(Cleartext::Http2PriorKnowledge)
        .build()
        .expect("pool builds")
}

fn check(service: &str) -> HealthCheckRequest {
    HealthCheckRequest {
        service: service.to_owned(),
    }
}

/// `HealthClient::new(pool.service(origin))` works as on a tonic `Channel`: statuses the server
/// reports come back, and an unknown service is gRPC NOT_FOUND, not a transport error.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tonic_health_client_runs_on_the_pool_service() {
    trace_init();
    let (addr, reporter) = start_health_server(None).await;
    reporter
        .set_service_status("orders", ServingStatus::NotServing)
        .await;
    let pool = h2c_pool();
    let origin: Origin = format!("http://{addr}").parse().expect("origin");
    let mut client = HealthClient::new(pool.service(&origin).expect("service"));

    let overall = client.check(check("")).await.expect("overall check");
    assert_eq!(overall.into_inner().status(), WireStatus::Serving);
    let orders = client.check(check("orders")).await.expect("orders check");
    assert_eq!(orders.into_inner().status(), WireStatus::NotServing);
    let unknown = client
        .check(check("no.such.Service"))
        .await
        .expect_err("unknown service is an error status");
    assert_eq!(unknown.code(), tonic::Code::NotFound);

    let stats = pool.stats();
    assert_eq!(stats.connections_opened, 1, "three calls, one connection");
    let origin_stats = stats.origin(&origin).expect("origin is pooled");
    assert!(
        origin_stats
            .connections
            .iter()
            .all(|c| c.protocol == Protocol::Http2),
        "h2c connections are HTTP/2"
    );
    assert_eq!(stats.handles_outstanding, 0);
}

/// A shared pool service spreads tonic calls over more connections when the server's
/// SETTINGS_MAX_CONCURRENT_STREAMS is used up, which one tonic `Channel` never does.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_tonic_calls_open_connections_past_the_stream_limit() {
    trace_init();
    const WORKERS: usize = 24;
    const CALLS: usize = 20;
    let (addr, _reporter) = start_health_server(Some(4)).await;
    let pool = ConnectionPoolManager::builder()
        .cleartext(Cleartext::Http2PriorKnowledge)
        .max_connections_per_origin(3)
        .build()
        .expect("pool builds");
    let service = pool
        .service(format!("http://{addr}"))
        .expect("service for the origin");

    let mut workers = JoinSet::new();
    for _ in 0..WORKERS {
        let mut client = HealthClient::new(service.clone());
        workers.spawn(async move {
            for _ in 0..CALLS {
                let reply = client.check(check("")).await?;
                assert_eq!(reply.into_inner().status(), WireStatus::Serving);
            }
            Ok::<_, tonic::Status>(())
        });
    }
    while let Some(result) = workers.join_next().await {
        result.expect("worker ran").expect("every call succeeds");
    }
    let stats = pool.stats();
    assert_eq!(stats.requests_sent, (WORKERS * CALLS) as u64);
    assert_eq!(stats.requests_failed, 0);
    assert!(
        stats.connections_opened > 1 && stats.connections_opened <= 3,
        "24 concurrent callers vs 4 streams per connection use 2..=3 connections, got {}",
        stats.connections_opened
    );
    assert_eq!(stats.handles_outstanding, 0);
    assert_eq!(stats.waiters(), 0);
}

/// Cleartext stays off unless configured: an `http://` origin is a typed error and nothing
/// is dialed.
#[tokio::test]
async fn cleartext_origins_are_refused_by_default() {
    let (addr, _reporter) = start_health_server(None).await;
    let pool = ConnectionPoolManager::builder()
        .build()
        .expect("pool builds");
    let url = format!("http://{addr}");
    match pool.acquire(url.as_str()).await {
        Err(Error::CleartextDisabled { origin }) => assert_eq!(origin.port(), addr.port()),
        other => panic!("expected CleartextDisabled, got {other:?}"),
    }
    assert!(matches!(
        pool.service::<tonic::body::Body>(url.as_str()),
        Err(Error::CleartextDisabled { .. })
    ));
    assert_eq!(pool.stats().connections_opened, 0);
    assert_eq!(pool.stats().connects_failed, 0);
}

/// A server stream (`Health/Watch`) holds its stream slot for as long as it runs, delivers
/// each update as it happens, and frees the slot when the client drops it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_stream_holds_its_slot_while_it_runs() {
    trace_init();
    let (addr, reporter) = start_health_server(None).await;
    reporter
        .set_service_status("orders", ServingStatus::Serving)
        .await;
    let pool = h2c_pool();
    let mut client = HealthClient::new(pool.service(format!("http://{addr}")).expect("service"));

    let mut updates = client
        .watch(check("orders"))
        .await
        .expect("watch starts")
        .into_inner();
    let first = updates
        .message()
        .await
        .expect("first update")
        .expect("a message");
    assert_eq!(first.status(), WireStatus::Serving);
    assert_eq!(
        pool.stats().active_streams(),
        1,
        "the open stream holds its slot"
    );

    reporter
        .set_service_status("orders", ServingStatus::NotServing)
        .await;
    let second = updates
        .message()
        .await
        .expect("second update")
        .expect("a message");
    assert_eq!(second.status(), WireStatus::NotServing);
    assert_eq!(pool.stats().active_streams(), 1);

    drop(updates);
    assert_eq!(
        pool.stats().active_streams(),
        0,
        "dropped: the slot is free"
    );
    assert_eq!(pool.stats().handles_outstanding, 0);
}

/// Raw gRPC messages: bytes in, bytes out. Enough to run a client-streaming method without
/// generated code.
#[derive(Debug, Clone, Copy, Default)]
struct RawCodec;

impl tonic::codec::Codec for RawCodec {
    type Encode = bytes::Bytes;
    type Decode = bytes::Bytes;
    type Encoder = RawCodec;
    type Decoder = RawCodec;

    fn encoder(&mut self) -> RawCodec {
        RawCodec
    }

    fn decoder(&mut self) -> RawCodec {
        RawCodec
    }
}

impl tonic::codec::Encoder for RawCodec {
    type Item = bytes::Bytes;
    type Error = tonic::Status;

    fn encode(
        &mut self,
        item: bytes::Bytes,
        dst: &mut tonic::codec::EncodeBuf<'_>,
    ) -> Result<(), tonic::Status> {
        use bytes::BufMut;
        dst.put_slice(&item);
        Ok(())
    }
}

impl tonic::codec::Decoder for RawCodec {
    type Item = bytes::Bytes;
    type Error = tonic::Status;

    fn decode(
        &mut self,
        src: &mut tonic::codec::DecodeBuf<'_>,
    ) -> Result<Option<bytes::Bytes>, tonic::Status> {
        use bytes::Buf;
        Ok(Some(src.copy_to_bytes(src.remaining())))
    }
}

/// `test.Sum/Add`: a client-streaming method answering with the total length of the messages
/// it received, and INVALID_ARGUMENT (in the trailers) for an empty stream.
#[derive(Debug, Clone, Copy)]
struct SumServer;

impl tonic::server::NamedService for SumServer {
    const NAME: &'static str = "test.Sum";
}

impl tower::Service<http::Request<tonic::body::Body>> for SumServer {
    type Response = http::Response<tonic::body::Body>;
    type Error = std::convert::Infallible;
    type Future = std::pin::Pin<
        Box<dyn std::future::Future<Output = Result<Self::Response, Self::Error>> + Send>,
    >;

    fn poll_ready(
        &mut self,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<(), Self::Error>> {
        std::task::Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: http::Request<tonic::body::Body>) -> Self::Future {
        Box::pin(async move {
            let add = tower::service_fn(
                |request: tonic::Request<tonic::Streaming<bytes::Bytes>>| async move {
                    let mut messages = request.into_inner();
                    let (mut count, mut total) = (0usize, 0usize);
                    while let Some(message) = messages.message().await? {
                        count += 1;
                        total += message.len();
                    }
                    if count == 0 {
                        return Err(tonic::Status::invalid_argument("empty stream"));
                    }
                    Ok(tonic::Response::new(bytes::Bytes::from(total.to_string())))
                },
            );
            let mut grpc = tonic::server::Grpc::new(RawCodec);
            Ok(grpc.client_streaming(add, request).await)
        })
    }
}

/// A client stream of 200 messages goes out through the pool (the request body streams while
/// the call is open) and the answer and its `grpc-status` come back; an error status arrives
/// in the trailers as a typed `tonic::Status`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_stream_runs_on_the_pool_service_and_its_status_arrives_in_trailers() {
    trace_init();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind loopback");
    let addr = listener.local_addr().expect("local addr");
    tokio::spawn(
        Server::builder()
            .add_service(SumServer)
            .serve_with_incoming(TcpIncoming::from(listener)),
    );
    let pool = h2c_pool();
    let mut grpc =
        tonic::client::Grpc::new(pool.service(format!("http://{addr}")).expect("service"));
    let path = http::uri::PathAndQuery::from_static("/test.Sum/Add");

    let messages: Vec<bytes::Bytes> = (0..200)
        .map(|_| bytes::Bytes::from(vec![7u8; 1000]))
        .collect();
    grpc.ready().await.expect("ready");
    let total = grpc
        .client_streaming(
            tonic::Request::new(tonic::codegen::tokio_stream::iter(messages)),
            path.clone(),
            RawCodec,
        )
        .await
        .expect("the call succeeds")
        .into_inner();
    assert_eq!(total, "200000");

    grpc.ready().await.expect("ready");
    let status = grpc
        .client_streaming(
            tonic::Request::new(tonic::codegen::tokio_stream::iter(
                Vec::<bytes::Bytes>::new(),
            )),
            path,
            RawCodec,
        )
        .await
        .expect_err("an empty stream is refused");
    assert_eq!(status.code(), tonic::Code::InvalidArgument);
    assert_eq!(status.message(), "empty stream");

    let stats = pool.stats();
    assert_eq!(
        stats.requests_failed, 0,
        "a gRPC error status is not a transport failure"
    );
    assert_eq!(stats.active_streams(), 0);
    assert_eq!(stats.handles_outstanding, 0);
}
