#!/usr/bin/env bash
# The long-path benchmarks (issue "Long paths") against a third-party server: nginx (Debian's,
# with TLS, on 127.0.0.1, http2_max_concurrent_streams 128) serving files of 1 KiB to 16 MiB,
# reached through pool_bench --rtt 40 (a relay in pool_bench's own process adding 40 ms of
# round trip, as a client a region away sees). https-pool with its defaults (its adaptive
# receive windows included: no window is set here), reqwest and hyper-util's Client, each in
# its own child process, median of 3 runs, on at most 4 connections:
#
#   - one download at a time of each size (1 client), on a connection kept warm by the
#     requests before it: the p50 in round trips (the "p50 RTT" column) is the figure, 1 the
#     floor (the request out, the whole body back, when the windows hold it);
#   - the burst: 32 workers each fire one request for 100 KiB at the same moment, on warm
#     connections (each worker sent one untimed request first), and once more cold;
#   - loopback bulk, no relay: 16 workers download 1 MiB back to back, where the round trip
#     is too short for windows to limit anything, to show nothing is lost there.
#
#   scripts/bench-long-path.sh [--quick]
#
# Every table is saved under reports/ by scripts/capture.sh, headed by the command, the time,
# the commit and the machine. --quick runs fewer requests and one run per row, to check the
# script itself.
set -euo pipefail
cd "$(dirname "$0")/.."
runs=3
single=20      # requests per single-download row (1 KiB to 1 MiB)
single_16m=10  # the same for 16 MiB, which takes many round trips each
bulk=3200      # loopback bulk: 200 downloads of 1 MiB per worker
for arg in "$@"; do
    case "$arg" in
        --quick) runs=1; single=4; single_16m=2; bulk=160 ;;
        *) echo "usage: $0 [--quick]" >&2; exit 2 ;;
    esac
done
dir="target/bench-long-path"
port=18511
trap 'scripts/nginx-peer.sh stop --dir "$dir" || true' EXIT
# nginx serves unlimited requests per connection here (keepalive_requests is raised), so no row
# is measured through connection rotations.
scripts/nginx-peer.sh start --dir "$dir" --port "$port" --keepalive-requests 100000000 \
    --max-streams 128 >/dev/null
cargo build --release --bin pool_bench
bench() { # name file args...
    local name="$1" file="$2"
    shift 2
    scripts/capture.sh "pool_bench-$name" ./target/release/pool_bench \
        --url "https://127.0.0.1:$port/files/$file" --ca-cert "$dir/ca.pem" \
        --only https-pool,reqwest,hyper-util-shared --connections 4 --runs "$runs" "$@"
}
# One download at a time, 40 ms away.
for size in 1k 100k 1m 16m; do
    requests="$single"
    [ "$size" = 16m ] && requests="$single_16m"
    bench "long-path-$size" "$size.bin" --rtt 40 --clients 1 --requests "$requests"
done
# The burst: every worker fires its one request at the same moment, on warm connections (one
# untimed request each first), then again on no connection yet.
bench long-path-burst 100k.bin --rtt 40 --clients 32 --requests 32 --warm-up 1
bench long-path-burst-cold 100k.bin --rtt 40 --clients 32 --requests 32
# Loopback bulk, no relay.
bench nginx-1m-c16 1m.bin --clients 16 --requests "$bulk"
