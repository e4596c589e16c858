#!/usr/bin/env bash
# The harness's steady-rtt criterion against nginx (Debian's, TLS, HTTP/2) with
# `keepalive_requests 100`: every connection ends with nginx's GOAWAY after 100 requests, as
# the issue measured. The criterion puts its RTT relay (40 ms unless --rtt says otherwise)
# in front of nginx on 127.0.0.1 and runs the pool beside reqwest.
#
#   scripts/steady-rtt-nginx.sh [harness options...]     e.g. --full
#
# The report goes to reports/ as every harness run's does (gitignored unless cited).
set -euo pipefail
cd "$(dirname "$0")/.."
dir="target/steady-rtt-nginx"
trap 'scripts/nginx-peer.sh stop --dir "$dir" || true' EXIT
scripts/nginx-peer.sh start --dir "$dir" --port 18511 --max-streams 128 \
    --keepalive-requests 100 >/dev/null
cargo run --release --bin test_connection_pool_success_criteria -- \
    --target https://127.0.0.1:18511/ --ca-cert "$dir/ca.pem" --only steady-rtt "$@"
