//! The `test_optimized_pool` demo as an example (the same code).
//!
//! `cargo run --release --example optimized_pool` (from the workspace root). The demo itself is
//! `https_pool_harness::optimized_pool`.

#[global_allocator]
static ALLOCATOR: https_pool_harness::alloc::Counting = https_pool_harness::alloc::Counting;

fn main() -> anyhow::Result<()> {
    https_pool_harness::optimized_pool::run()
}
