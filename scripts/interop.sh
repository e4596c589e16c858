#!/usr/bin/env bash
# Runs the interop suite (tests/interop.rs) against the third-party servers of
# scripts/peers.sh (nginx and nghttpd on 127.0.0.1), and stops them when the suite ends, pass
# or fail. Extra arguments go to the test binary (e.g. a test name filter).
set -euo pipefail
cd "$(dirname "$0")/.."
trap 'scripts/peers.sh stop' EXIT
scripts/peers.sh start >/dev/null
# shellcheck source=/dev/null
. target/interop/peers.env
# The tests are #[ignore]d in a plain `cargo test` (they need these servers); run them here.
cargo test --all-features --test interop -- --include-ignored --test-threads=1 "$@"
