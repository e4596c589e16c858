//! tower's middleware on the pool's service, against a real HTTPS server on 127.0.0.1: the
//! request type inferred from the call (no turbofish), `Timeout` counting the wait for a slot
//! (and the abandoned request leaving the wait queue), `ConcurrencyLimit` bounding what the
//! server sees, and `Retry` sending again only what [`Error::is_retry_safe`] proves never
//! reached the server.

mod support;

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http::{Request, Response};
use http_body_util::{Empty, Full};
use https_pool::{Body, Error, TimeoutKind};
use https_pool_testkit::{TestServer, TestServerConfig};
use support::{body_len, builder_for, one_slot, trace_init};
use tokio::sync::Notify;
use tower::retry::Policy;
use tower::{Service, ServiceBuilder, ServiceExt};

/// Waits (bounded) until `condition` holds; the caller asserts it afterwards.
async fn until(mut condition: impl FnMut() -> bool) {
    for _ in 0..5_000 {
        if condition() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
}

/// `pool.service(origin)?.ready().await` compiles as it does on hyper-util's `Client`: the
/// body type comes from the request the service is called with.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ready_infers_the_request_type_from_the_call() {
    trace_init();
    let server = TestServer::start(TestServerConfig::default()).expect("server starts");
    let pool = builder_for(&server).build().expect("pool builds");
    let mut service = pool.service(server.url()).expect("service");
    let request = Request::get("/inferred")
        .body(Empty::<Bytes>::new())
        .expect("request");
    let response = service
        .ready()
        .await
        .expect("ready")
        .call(request)
        .await
        .expect("response");
    assert!(response.status().is_success());
    assert_eq!(body_len(response).await, 16);

    // Chained from the pool, with `oneshot`, and re-typed for another body.
    let response = pool
        .service(server.url())
        .expect("service")
        .oneshot(Request::get("/oneshot").body(String::new()).expect("req"))
        .await
        .expect("response");
    assert_eq!(body_len(response).await, 16);
    let full = service.for_body::<Full<Bytes>>();
    let response = full
        .oneshot(
            Request::post("/full")
                .body(Full::new(Bytes::from_static(b"payload")))
                .expect("req"),
        )
        .await
        .expect("response");
    assert_eq!(response.headers()["x-received-bytes"], "7");
    drop(response);
    assert_eq!(server.counters().requests(), 3);
    assert_eq!(pool.stats().active_streams(), 0);
}

/// The origin's only slot is held; a request through a tower `Timeout` around a service that
/// acquires in `call` waits in the pool's queue, and the timeout (not the pool's longer
/// `acquire_timeout`) ends it. The request leaves the queue, never reaches the server, and
/// the same stack serves the next request once the slot is free.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tower_timeout_counts_the_wait_for_a_slot_and_its_request_leaves_the_queue() {
    trace_init();
    let (server, pool, origin) = one_slot(|b| b.acquire_timeout(Duration::from_secs(60))).await;
    let requests_before = server.counters().requests();
    let holder = pool.acquire(&origin).await.expect("the only slot");

    let service = pool
        .service(origin.as_str())
        .expect("service")
        .acquire_in_call();
    let mut stack = ServiceBuilder::new()
        .timeout(Duration::from_millis(500))
        .service(service);
    let waiting = {
        let mut stack = stack.clone();
        tokio::spawn(async move {
            stack
                .ready()
                .await?
                .call(Request::get("/timed-out").body(Empty::<Bytes>::new())?)
                .await
        })
    };
    until(|| pool.stats().waiters() == 1 || waiting.is_finished()).await;
    assert_eq!(
        pool.stats().waiters(),
        1,
        "the request waits in the pool's queue"
    );
    let error = waiting
        .await
        .expect("task")
        .expect_err("no slot came before the timeout");
    assert!(
        error.is::<tower::timeout::error::Elapsed>(),
        "tower's timeout fired, not the pool's: {error}"
    );
    assert_eq!(pool.stats().waiters(), 0, "the waiter left the queue");
    assert_eq!(pool.stats().active_streams(), 1, "only the holder's slot");
    assert_eq!(server.counters().requests(), requests_before);

    drop(holder);
    let response = stack
        .ready()
        .await
        .expect("ready")
        .call(
            Request::get("/after")
                .body(Empty::<Bytes>::new())
                .expect("req"),
        )
        .await
        .expect("the slot is free again");
    assert_eq!(body_len(response).await, 16);
    assert_eq!(server.counters().requests(), requests_before + 1);
    assert_eq!(server.counters().accepted(), 1);
    assert_eq!(pool.stats().active_streams(), 0);
}

/// `ConcurrencyLimit(2)` in front of the pool: of 8 overlapping slow requests the server
/// never sees more than 2 at once, and all of them succeed on one connection.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrency_limit_bounds_the_streams_the_server_sees() {
    trace_init();
    let server = TestServer::start(TestServerConfig::default()).expect("server starts");
    let pool = builder_for(&server).build().expect("pool builds");
    let stack = ServiceBuilder::new()
        .concurrency_limit(2)
        .service(pool.service(server.url()).expect("service"));
    let calls: Vec<_> = (0..8)
        .map(|i| {
            let stack = stack.clone();
            tokio::spawn(async move {
                let request = Request::get(format!("/limited/{i}"))
                    .header("x-delay-ms", "20")
                    .body(Empty::<Bytes>::new())
                    .expect("req");
                let response = stack.oneshot(request).await?;
                Ok::<_, Error>(body_len(response).await)
            })
        })
        .collect();
    for call in calls {
        assert_eq!(call.await.expect("task").expect("request"), 16);
    }
    assert!(server.counters().max_concurrent_per_connection() <= 2);
    assert_eq!(server.counters().requests(), 8);
    assert_eq!(server.counters().accepted(), 1);
}

/// A `Retry` policy that sends a request again only when [`Error::is_retry_safe`] proves it
/// never reached the server, at most `retries` times. It records every error it is shown, and
/// each retry waits for `gate`, so a test decides when the next attempt goes.
#[derive(Clone)]
struct RetryUnsent {
    retries: usize,
    seen: Arc<Mutex<Vec<Error>>>,
    gate: Arc<Notify>,
}

impl RetryUnsent {
    fn new(retries: usize) -> RetryUnsent {
        RetryUnsent {
            retries,
            seen: Arc::default(),
            gate: Arc::new(Notify::new()),
        }
    }

    fn seen(&self) -> Vec<Error> {
        self.seen.lock().expect("seen").clone()
    }
}

impl<B: Clone> Policy<Request<B>, Response<Body>, Error> for RetryUnsent {
    type Future = Pin<Box<dyn Future<Output = ()> + Send>>;

    fn retry(
        &mut self,
        _request: &mut Request<B>,
        result: &mut Result<Response<Body>, Error>,
    ) -> Option<Self::Future> {
        let Err(error) = result else { return None };
        self.seen.lock().expect("seen").push(error.clone());
        if !error.is_retry_safe() || self.retries == 0 {
            return None;
        }
        self.retries -= 1;
        let gate = self.gate.clone();
        Some(Box::pin(async move { gate.notified().await }))
    }

    fn clone_request(&mut self, request: &Request<B>) -> Option<Request<B>> {
        Some(request.clone())
    }
}

/// The wait queue is full, so the pool refuses the request (`PoolExhausted`, nothing sent);
/// `Retry` sends it again once the slot is free and it succeeds. The server saw it once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retry_sends_again_a_request_the_pool_refused() {
    trace_init();
    let (server, pool, origin) = one_slot(|b| b.max_waiters_per_origin(1)).await;
    let requests_before = server.counters().requests();
    let holder = pool.acquire(&origin).await.expect("the only slot");
    let queued = {
        let pool = pool.clone();
        let origin = origin.clone();
        tokio::spawn(async move { pool.acquire(&origin).await })
    };
    until(|| pool.stats().waiters() == 1).await;
    assert_eq!(pool.stats().waiters(), 1, "the queue is full");

    let policy = RetryUnsent::new(2);
    let stack = ServiceBuilder::new().retry(policy.clone()).service(
        pool.service(origin.as_str())
            .expect("service")
            .acquire_in_call(),
    );
    let call = tokio::spawn(
        stack.oneshot(
            Request::get("/retried")
                .body(Empty::<Bytes>::new())
                .expect("req"),
        ),
    );
    until(|| !policy.seen().is_empty()).await;
    let seen = policy.seen();
    assert!(
        matches!(seen.as_slice(), [Error::PoolExhausted { .. }]),
        "the first attempt was refused: {seen:?}"
    );

    // Free the slot (the queued acquirer takes it and gives it back), then let the retry go.
    drop(holder);
    drop(queued.await.expect("task").expect("the queued acquire"));
    policy.gate.notify_one();
    let response = call.await.expect("task").expect("the retry succeeds");
    assert_eq!(body_len(response).await, 16);
    assert_eq!(policy.seen().len(), 1, "one failure, one retry");
    assert_eq!(server.counters().requests(), requests_before + 1);
    assert_eq!(pool.stats().active_streams(), 0);
}

/// A request whose response head did not come in time may have been processed: the policy
/// leaves it alone, and the server saw it once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retry_leaves_alone_a_request_that_reached_the_server() {
    trace_init();
    let server = TestServer::start(TestServerConfig::default()).expect("server starts");
    let pool = builder_for(&server)
        .response_head_timeout(Duration::from_millis(100))
        .build()
        .expect("pool builds");
    let policy = RetryUnsent::new(1);
    // The gate is open: were the request retried, the server would count it twice.
    policy.gate.notify_one();
    let stack = ServiceBuilder::new()
        .retry(policy.clone())
        .service(pool.service(server.url()).expect("service"));
    let request = Request::get("/slow")
        .header("x-delay-ms", "5000")
        .body(Empty::<Bytes>::new())
        .expect("req");
    match stack.oneshot(request).await {
        Err(Error::Timeout {
            kind: TimeoutKind::ResponseHead,
            ..
        }) => {}
        other => panic!("expected the response-head timeout, got {other:?}"),
    }
    assert_eq!(policy.seen().len(), 1);
    assert!(!policy.seen()[0].is_retry_safe());
    assert_eq!(server.counters().requests(), 1);
    assert_eq!(pool.stats().active_streams(), 0);
}

/// What `is_retry_safe` accepts: failures before the request left (no slot, a dial that may
/// pass), and nothing the server may have seen or that would only fail again.
#[test]
fn is_retry_safe_accepts_only_failures_before_the_request_left() {
    let origin: https_pool::Origin = "https://api.example.com".parse().expect("origin");
    let timeout = |kind| Error::Timeout {
        origin: origin.clone(),
        kind,
        after: Duration::from_secs(1),
    };
    for kind in [
        TimeoutKind::Acquire,
        TimeoutKind::Connect,
        TimeoutKind::TlsHandshake,
    ] {
        assert!(timeout(kind).is_retry_safe(), "{kind:?}");
    }
    for kind in [
        TimeoutKind::ResponseHead,
        TimeoutKind::Read,
        TimeoutKind::Write,
        TimeoutKind::Request,
    ] {
        assert!(!timeout(kind).is_retry_safe(), "{kind:?}");
    }
    assert!(!Error::PoolClosed.is_retry_safe());
    assert!(
        !Error::CleartextDisabled {
            origin: origin.clone()
        }
        .is_retry_safe()
    );
    // A backoff, or a proxy that could not be reached, is as safe as the failure behind it.
    let backing_off = |source: Error| Error::BackingOff {
        origin: origin.clone(),
        failures: 2,
        retry_in: Duration::from_secs(1),
        source: Box::new(source),
    };
    assert!(backing_off(timeout(TimeoutKind::Connect)).is_retry_safe());
    let refused = Error::ProxyRefused {
        origin: origin.clone(),
        proxy: "http://proxy.example:3128".parse().expect("proxy origin"),
        status: http::StatusCode::FORBIDDEN,
    };
    assert!(!refused.is_retry_safe());
    assert!(!backing_off(refused).is_retry_safe());
    let unreachable = Error::ProxyConnect {
        origin: origin.clone(),
        proxy: "http://proxy.example:3128".parse().expect("proxy origin"),
        source: Box::new(timeout(TimeoutKind::Connect)),
    };
    assert!(unreachable.is_retry_safe());
}

/// The service is `Send` whatever its body type (it holds no body), so a stack built on it
/// moves into spawned tasks.
#[test]
fn the_service_is_send_whatever_its_body_type() {
    fn assert_send<T: Send>() {}
    assert_send::<https_pool::PoolService>();
    assert_send::<https_pool::PoolService<std::rc::Rc<()>>>();
}
