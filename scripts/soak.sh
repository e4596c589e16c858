#!/usr/bin/env bash
# Soak test: steady load with periodic faults (GOAWAY every 500 requests per connection, a
# connection killed every 2 s) against the embedded server on 127.0.0.1 for SECONDS (default
# 300), then leak checks (handles, streams, waiters, open fds). Prints RSS, fd and error figures.
#   scripts/soak.sh [SECONDS]
set -euo pipefail
cd "$(dirname "$0")/.."
export HTTPS_POOL_SOAK_SECS="${1:-300}"
cargo test --release --all-features --test soak -- --ignored --nocapture
