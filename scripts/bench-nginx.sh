#!/usr/bin/env bash
# The HTTP/2 engine and waiting benchmarks against a third-party server, in one run: nginx
# (Debian's, with TLS, on 127.0.0.1) with http2_max_concurrent_streams 128 and 8, and an
# HTTP/1.1-only nginx; pool_bench's rows (https-pool, raw h2, raw hyper, hyper-util, reqwest,
# h2load), each in its own child process, median of 5 runs, client CPU per request beside
# req/s. nginx serves unlimited requests per connection here (keepalive_requests is raised), so
# no row is measured through connection rotations.
#
#   scripts/bench-nginx.sh [--quick] [--waiting]
#
# Every table is saved under reports/ by scripts/capture.sh, headed by the command, the time,
# the commit and the machine, and ends with the ratios the comparisons are read by. --quick
# runs 20,000 requests and one run per row, to check the script itself. --waiting runs only
# the two client-count comparisons (the "waiting" issue's), for repeating them.
set -euo pipefail
cd "$(dirname "$0")/.."
requests=200000
runs=5
waiting_only=false
for arg in "$@"; do
    case "$arg" in
        --quick) requests=20000; runs=1 ;;
        --waiting) waiting_only=true ;;
        *) echo "usage: $0 [--quick] [--waiting]" >&2; exit 2 ;;
    esac
done
base="target/bench-nginx"
trap 'for d in ms128 ms8 h1; do scripts/nginx-peer.sh stop --dir "$base/$d" || true; done' EXIT
start() { # dir port options...
    local dir="$1" port="$2"
    shift 2
    scripts/nginx-peer.sh start --dir "$base/$dir" --port "$port" --keepalive-requests 100000000 "$@" >/dev/null
}
start ms128 18501 --max-streams 128
start ms8 18502 --max-streams 8
start h1 18503 --http1-only
cargo build --release --bin pool_bench
bench() { # name dir port args...
    local name="$1" dir="$2" port="$3"
    shift 3
    scripts/capture.sh "pool_bench-$name" ./target/release/pool_bench \
        --url "https://127.0.0.1:$port/" --ca-cert "$base/$dir/ca.pem" \
        --requests "$requests" --runs "$runs" "$@"
}
# Issue "HTTP/2 engine": every row, 1,024 clients, 4 connections, both stream limits.
if ! $waiting_only; then
    bench nginx-ms128-c1024 ms128 18501 --clients 1024 --connections 4
    bench nginx-ms8-c1024 ms8 18502 --clients 1024 --connections 4
fi
# Issue "waiting": the same connections, only the number of clients changes. The counts are
# interleaved within every run (pool_bench --clients 16,128,1024), so their ratio does not
# compare two moments of a noisy machine. Each has its ceiling beside the pool: raw h2 on the
# same 4 connections, and for HTTP/1.1 raw hyper on 10 behind a tokio Semaphore (what 1,024
# tasks cost when the waiting itself costs next to nothing).
bench nginx-ms8-clients ms8 18502 --clients 16,128,1024 --connections 4 \
    --only https-pool,raw-h2
# raw h2 queues callers past the stream limit inside h2 and serves them unfairly; with a FIFO
# Semaphore per connection in front it waits as a pool does. Both beside the pool.
bench nginx-ms8-fifo ms8 18502 --clients 1024 --connections 4 \
    --only https-pool,raw-h2,raw-h2-fifo
bench nginx-h1-clients h1 18503 --clients 16,128,1024 --connections 10 \
    --only https-pool,raw-h1,reqwest,hyper-util-shared
