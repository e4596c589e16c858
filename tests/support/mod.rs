//! Shared helpers for the integration tests: tracing, a pool that trusts a test server, and
//! request shorthands. Everything runs against real sockets on 127.0.0.1.

#![allow(dead_code, unreachable_pub)]

use std::time::Duration;

use bytes::Bytes;
use http::{Request, Response};
use http_body_util::{BodyExt, Empty};
use https_pool::Body;
use https_pool::{ConnectionPoolManager, PoolBuilder};
use https_pool_testkit::{TestServer, TestServerConfig};

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

/// A server with `config` whose certificate names `names`, listening on `bind` (a loopback
/// address; port 0 for an ephemeral one): the peer for tests that map names to addresses.
pub fn server_named(
    names: &[&str],
    bind: std::net::SocketAddr,
    config: TestServerConfig,
) -> TestServer {
    let names = names.iter().map(|n| (*n).to_owned()).collect();
    TestServer::start(config.cert_names(names).bind(bind)).expect("test server starts")
}

/// A GET with an empty body.
pub fn get(url: &str) -> Request<Empty<Bytes>> {
    Request::get(url)
        .body(Empty::new())
        .expect("a valid request")
}

/// Reads a response body to the end and returns its length.
pub async fn body_len(response: Response<Body>) -> usize {
    response
        .into_body()
        .collect()
        .await
        .expect("body reads to the end")
        .to_bytes()
        .len()
}

/// Sockets of this process connected to `port` on the loopback (the client side of
/// connections to a test server), from `/proc/self/fd` and `/proc/net/tcp{,6}`. `None` where
/// `/proc` is not available. Parallel tests do not disturb it: each server has its own port.
pub fn sockets_to(port: u16) -> Option<usize> {
    let mut inodes = std::collections::HashSet::new();
    for entry in std::fs::read_dir("/proc/self/fd").ok()? {
        let Ok(target) = std::fs::read_link(entry.ok()?.path()) else {
            continue; // closed between listing and reading
        };
        if let Some(inode) = target
            .to_str()
            .and_then(|t| t.strip_prefix("socket:["))
            .and_then(|t| t.strip_suffix(']'))
        {
            inodes.insert(inode.to_owned());
        }
    }
    let mut count = 0;
    for table in ["/proc/self/net/tcp", "/proc/self/net/tcp6"] {
        let Ok(text) = std::fs::read_to_string(table) else {
            continue;
        };
        for line in text.lines().skip(1) {
            let fields: Vec<&str> = line.split_whitespace().collect();
            let (Some(remote), Some(inode)) = (fields.get(2), fields.get(9)) else {
                continue;
            };
            let remote_port = remote
                .rsplit_once(':')
                .and_then(|(_, p)| u16::from_str_radix(p, 16).ok());
            if remote_port == Some(port) && inodes.contains(*inode) {
                count += 1;
            }
        }
    }
    Some(count)
}

/// Waits (bounded, 5 s) until [`sockets_to`] reports `expected`, and returns what it reports
/// last: sockets close asynchronously, after the pool lets go.
pub async fn sockets_settle(port: u16, expected: usize) -> Option<usize> {
    let mut last = sockets_to(port);
    for _ in 0..500 {
        if last.is_none_or(|n| n == expected) {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        last = sockets_to(port);
    }
    last
}

/// What [`run_load`] saw: successes, and each failure with whether it started after the
/// [`BudgetWatch`] (if any) had seen the budget learned.
pub struct LoadOutcome {
    pub succeeded: u64,
    pub failures: Vec<(bool, https_pool::Error)>,
}

/// `tasks` workers, each sending `per_task` GETs one after another to
/// `{base}/{label}/{task}/{i}` (a distinct path per request, for duplicate tracking) and
/// reading each body. `watch` tags each request with whether the budget was learned when it
/// started.
pub async fn run_load(
    pool: &ConnectionPoolManager,
    base: &str,
    label: &str,
    tasks: u64,
    per_task: u64,
    watch: Option<&BudgetWatch>,
) -> LoadOutcome {
    let workers: Vec<_> = (0..tasks)
        .map(|t| {
            let pool = pool.clone();
            let prefix = format!("{base}/{label}/{t}");
            let learned = watch.map(|w| std::sync::Arc::clone(&w.learned));
            tokio::spawn(async move {
                let (mut ok, mut failures) = (0u64, Vec::new());
                for i in 0..per_task {
                    let after = learned
                        .as_ref()
                        .is_some_and(|l| l.load(std::sync::atomic::Ordering::SeqCst));
                    match pool.request(get(&format!("{prefix}/{i}"))).await {
                        Ok(response) => {
                            assert!(response.status().is_success(), "{}", response.status());
                            body_len(response).await;
                            ok += 1;
                        }
                        Err(e) => failures.push((after, e)),
                    }
                }
                (ok, failures)
            })
        })
        .collect();
    let mut outcome = LoadOutcome {
        succeeded: 0,
        failures: Vec::new(),
    };
    for worker in workers {
        let (ok, failures) = worker.await.expect("worker ran");
        outcome.succeeded += ok;
        outcome.failures.extend(failures);
    }
    outcome
}

/// Watches (every millisecond) for the pool to learn `origin`'s request budget, so a load can
/// tell requests started before from those started after.
pub struct BudgetWatch {
    learned: std::sync::Arc<std::sync::atomic::AtomicBool>,
    task: tokio::task::JoinHandle<()>,
}

impl BudgetWatch {
    pub fn start(pool: &ConnectionPoolManager, origin: &https_pool::Origin) -> BudgetWatch {
        use std::sync::atomic::Ordering;
        let learned = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let task = {
            let (pool, origin) = (pool.clone(), origin.clone());
            let learned = std::sync::Arc::clone(&learned);
            tokio::spawn(async move {
                while !learned.load(Ordering::SeqCst) {
                    let budget = pool
                        .stats()
                        .origin(&origin)
                        .and_then(|o| o.learned_request_budget);
                    learned.store(budget.is_some(), Ordering::SeqCst);
                    tokio::time::sleep(std::time::Duration::from_millis(1)).await;
                }
            })
        };
        BudgetWatch { learned, task }
    }
}

impl Drop for BudgetWatch {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// A server allowing one stream and a pool of one connection (`configure` adds to the
/// builder): exactly one stream slot, its connection open and the server's SETTINGS received
/// (waited for, bounded), so waiters queue for that one slot from the start.
pub async fn one_slot(
    configure: impl FnOnce(PoolBuilder) -> PoolBuilder,
) -> (TestServer, ConnectionPoolManager, String) {
    let server = TestServer::start(TestServerConfig::default().max_concurrent_streams(1))
        .expect("server starts");
    let pool = configure(builder_for(&server).max_connections_per_origin(1))
        .build()
        .expect("pool builds");
    let origin = server.url();
    drop(pool.acquire(&origin).await.expect("first acquire"));
    for _ in 0..2_000 {
        let settled = pool
            .stats()
            .origins
            .iter()
            .all(|o| o.connections.iter().all(|c| c.peer_settings_received));
        if settled {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(1)).await;
    }
    (server, pool, origin)
}

/// Waits until every connection of `pool` has closed (idle connections closed by the pool's
/// `idle_timeout` or by the server), polling every 10 ms; panics with the pool's stats after
/// `within`.
pub async fn until_no_connection(pool: &ConnectionPoolManager, within: Duration) {
    let deadline = tokio::time::Instant::now() + within;
    while tokio::time::Instant::now() < deadline {
        if pool
            .stats()
            .origins
            .iter()
            .all(|o| o.connections.is_empty())
        {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!(
        "a connection was still open after {within:?}: {:?}",
        pool.stats()
    );
}
