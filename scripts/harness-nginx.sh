#!/usr/bin/env bash
# The success-criteria harness against a third-party server: nginx (Debian's, TLS, HTTP/2,
# http2_max_concurrent_streams 128) from scripts/nginx-peer.sh on 127.0.0.1. The criteria that
# need a server the harness controls (kills, GOAWAY, SETTINGS changes, a black hole) report
# SKIP with the reason; memory, latency, multiplexing and chaos-herd run against nginx.
#
#   scripts/harness-nginx.sh [harness options...]     e.g. --quick
#
# The report goes to reports/ as every harness run's does (gitignored unless cited).
set -euo pipefail
cd "$(dirname "$0")/.."
dir="target/harness-nginx"
trap 'scripts/nginx-peer.sh stop --dir "$dir" || true' EXIT
scripts/nginx-peer.sh start --dir "$dir" --port 18510 --max-streams 128 \
    --keepalive-requests 100000000 >/dev/null
cargo run --release --bin test_connection_pool_success_criteria -- \
    --target https://127.0.0.1:18510/ --ca-cert "$dir/ca.pem" "$@"
