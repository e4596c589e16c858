//! Origins do not stay forever: every host a URL ever named used to keep its state in the
//! pool. An origin with no connection, dial, waiter or warm minimum, vacant for
//! `idle_timeout`, leaves the pool; a prewarmed one stays. Heap is counted by a global
//! allocator wrapper in this test binary. Everything runs on 127.0.0.1.

mod support;

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicIsize, Ordering};
use std::time::Duration;

use https_pool::{ConnectionPoolManager, Error};
use https_pool_testkit::{TestServer, TestServerConfig};
use support::{builder_for, get, trace_init};

/// Live heap bytes of this process.
static LIVE: AtomicIsize = AtomicIsize::new(0);

struct Counting;

// SAFETY: every call is forwarded to the system allocator unchanged; the wrapper only counts.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        LIVE.fetch_add(layout.size() as isize, Ordering::Relaxed);
        // SAFETY: the caller upholds `GlobalAlloc::alloc`'s contract, passed on as is.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE.fetch_sub(layout.size() as isize, Ordering::Relaxed);
        // SAFETY: `ptr` came from `alloc` above with this `layout`.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

const ORIGINS: usize = 10_000;

/// `n` ports on 127.0.0.1 that nobody listens on (each was free to bind a moment ago), so a
/// dial to them is refused at once.
fn closed_ports(n: usize) -> Vec<u16> {
    (20_000..u16::MAX)
        .filter(|&port| std::net::TcpListener::bind(("127.0.0.1", port)).is_ok())
        .take(n)
        .collect()
}

/// One acquire per port, 32 at a time; returns how many were refused.
async fn acquire_each(pool: &ConnectionPoolManager, ports: &[u16]) -> usize {
    let mut refused = 0;
    for chunk in ports.chunks(32) {
        let attempts = chunk.iter().map(|port| {
            let pool = pool.clone();
            let origin = format!("https://127.0.0.1:{port}");
            tokio::spawn(async move { pool.acquire(origin.as_str()).await })
        });
        for attempt in attempts.collect::<Vec<_>>() {
            match attempt.await.expect("task ran") {
                Err(Error::ConnectionRefused { .. }) => refused += 1,
                other => panic!("a closed port should refuse, got {other:?}"),
            }
        }
    }
    refused
}

/// Waits (bounded) until the pool holds `n` origins; returns how many it holds.
async fn settle_to(pool: &ConnectionPoolManager, n: usize) -> usize {
    for _ in 0..1_000 {
        let held = pool.stats().origins.len();
        if held == n {
            return held;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    pool.stats().origins.len()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_thousand_one_off_origins_leave_nothing_behind() {
    trace_init();
    let ports = closed_ports(ORIGINS);
    assert_eq!(ports.len(), ORIGINS, "enough free loopback ports");
    let used = TestServer::start(TestServerConfig::default()).expect("server starts");
    let warm = TestServer::start(TestServerConfig::default()).expect("server starts");
    let pool = builder_for(&used)
        .tls_extra_ca_pem(warm.ca_pem())
        .idle_timeout(Duration::from_millis(50))
        .build()
        .expect("pool builds");

    // A prewarmed origin stays; an origin that served a request goes once it is idle.
    let warmed = pool.prewarm_hosts(&[warm.url()]).await;
    assert!(warmed.iter().all(|w| w.is_ok()), "{warmed:?}");
    let response = pool.request(get(&used.url_for("/once"))).await.expect("ok");
    drop(response);

    // Warm-up: the first one-off origins pay for what any run allocates once (the
    // maintenance task, timers, TLS configuration), then the baseline is taken.
    let (first, rest) = ports.split_at(100);
    assert_eq!(acquire_each(&pool, first).await, first.len());
    assert_eq!(
        settle_to(&pool, 1).await,
        1,
        "only the prewarmed origin is left"
    );
    let baseline = LIVE.load(Ordering::SeqCst);

    assert_eq!(acquire_each(&pool, rest).await, rest.len());
    let right_after = pool.stats().origins.len();
    assert_eq!(
        settle_to(&pool, 1).await,
        1,
        "only the prewarmed origin is left"
    );
    let stats = pool.stats();
    assert_eq!(stats.origins[0].origin.to_string(), warm.url());
    assert_eq!(stats.acquires_failed, ORIGINS as u64);
    let grown = LIVE.load(Ordering::SeqCst) - baseline;
    println!(
        "{ORIGINS} one-off origins: {right_after} held right after the burst, 1 after \
         idle_timeout; heap {grown:+} bytes against the baseline"
    );
    assert!(
        grown < 256 * 1024,
        "{grown} heap bytes left behind by {} forgotten origins",
        rest.len()
    );
}
