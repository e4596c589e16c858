#!/usr/bin/env bash
# Runs the interop suite (tests/interop.rs) against third-party servers on 127.0.0.1:
# nginx with HTTP/2 (default stream limit), nginx with http2_max_concurrent_streams 8, nginx
# rotating connections with keepalive_requests 50 (GOAWAY), and nginx without HTTP/2. Each
# nginx gets its own directory, config and throwaway CA (scripts/nginx-peer.sh), and is
# stopped by PID when the suite ends, pass or fail.
set -euo pipefail
cd "$(dirname "$0")/.."
base="target/interop"
peers=(h2 h2-ms8 h2-rotate h1)
stop_all() {
    for p in "${peers[@]}"; do scripts/nginx-peer.sh stop --dir "$base/$p" || true; done
}
trap stop_all EXIT

start() { # name port options...
    local name="$1" port="$2"
    shift 2
    scripts/nginx-peer.sh start --dir "$base/$name" --port "$port" "$@" >/dev/null
    echo "https://127.0.0.1:$port"
}
export HTTPS_POOL_INTEROP=1
export HTTPS_POOL_NGINX_H2="$(start h2 18443 --max-streams 128)"
export HTTPS_POOL_NGINX_H2_MS8="$(start h2-ms8 18444 --max-streams 8)"
export HTTPS_POOL_NGINX_ROTATE="$(start h2-rotate 18445 --keepalive-requests 50)"
export HTTPS_POOL_NGINX_H1="$(start h1 18446 --http1-only --keepalive-timeout 1s)"
# Each peer has its own CA; the suite trusts all of them.
export HTTPS_POOL_INTEROP_CAS="$(for p in "${peers[@]}"; do printf '%s:' "$(pwd)/$base/$p/ca.pem"; done)"

cargo test --all-features --test interop -- --test-threads=1 "$@"
