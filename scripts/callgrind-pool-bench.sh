#!/usr/bin/env bash
# Instructions per request of the https-pool row of pool_bench under callgrind, for two or more
# pool_bench binaries (builds of two commits), run alternately: a count that does not depend on
# the machine's noise, to tell whether a change made the request path cheaper or dearer.
# Only the child process that drives the requests is counted (pool_bench runs each row in a
# child of its own). valgrind comes from Debian's package and is installed when missing.
#
#   scripts/callgrind-pool-bench.sh ROUNDS BINARY... -- [pool_bench arguments...]
#   e.g. scripts/callgrind-pool-bench.sh 2 /tmp/before/pool_bench target/release/pool_bench -- \
#        --url https://127.0.0.1:18502/ --ca-cert target/bench-nginx/ms8/ca.pem \
#        --clients 1024 --connections 4 --requests 24576
set -euo pipefail
[ $# -ge 3 ] || { sed -n '2,11p' "$0" >&2; exit 2; }
rounds="$1"
shift
bins=()
while [ $# -gt 0 ] && [ "$1" != "--" ]; do
    [ -x "$1" ] || { echo "not an executable: $1" >&2; exit 2; }
    bins+=("$1")
    shift
done
[ "${1:-}" = "--" ] && shift
requests=""
args=("$@")
for ((i = 0; i < ${#args[@]}; i++)); do
    [ "${args[$i]}" = "--requests" ] && requests="${args[$((i + 1))]}"
done
[ -n "$requests" ] || { echo "pass --requests N among the pool_bench arguments" >&2; exit 2; }
if ! command -v valgrind >/dev/null 2>&1; then
    sudo=""
    [ "$(id -u)" -ne 0 ] && sudo="sudo"
    $sudo apt-get update -qq && $sudo apt-get install -y -qq valgrind >/dev/null
fi
echo "pool_bench --only https-pool --runs 1 $*"
printf '%-6s %-50s %16s %12s\n' round binary instructions "per request"
for round in $(seq 1 "$rounds"); do
    for bin in "${bins[@]}"; do
        out="$(mktemp -d)"
        valgrind --tool=callgrind --trace-children=yes --callgrind-out-file="$out/cg.%p" \
            "$bin" --only https-pool --runs 1 "$@" >/dev/null 2>&1
        # The child driving the requests executes by far the most instructions.
        total="$(grep -h '^summary:' "$out"/cg.* | awk '{print $2}' | sort -n | tail -1)"
        rm -rf "$out"
        per="$(awk -v t="$total" -v n="$requests" 'BEGIN { printf "%.0f", t / n }')"
        printf '%-6s %-50s %16s %12s\n' "$round" "$bin" "$total" "$per"
    done
done
