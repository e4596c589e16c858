//! The short demo: prewarm a pool, hold 100 stream handles, print their memory and the acquire
//! latency percentiles, against the embedded HTTPS server on 127.0.0.1.
//!
//! `cargo run --release --bin test_optimized_pool` (from the workspace root). The demo itself is
//! `https_pool_harness::optimized_pool`.

#[global_allocator]
static ALLOCATOR: https_pool_harness::alloc::Counting = https_pool_harness::alloc::Counting;

fn main() -> anyhow::Result<()> {
    https_pool_harness::optimized_pool::run()
}
