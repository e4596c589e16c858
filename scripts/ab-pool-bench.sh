#!/usr/bin/env bash
# A/B of two pool_bench binaries (two builds of the project, e.g. a commit and the one before)
# on a noisy machine: the same pool_bench arguments, the two builds alternated A B A B … in
# one sitting, one https-pool row each time; prints each pair's req/s and client CPU, their
# ratio B/A, and the median ratio over the pairs. A ratio is read against the spread of the
# pairs, not against 1.0 alone.
#
#   scripts/ab-pool-bench.sh A_BINARY B_BINARY PAIRS [pool_bench arguments...]
#   e.g. scripts/ab-pool-bench.sh /tmp/before/pool_bench target/release/pool_bench 5 \
#        --url https://127.0.0.1:18502/ --ca-cert target/bench-nginx/ms8/ca.pem \
#        --clients 1024 --connections 4 --requests 200000
set -euo pipefail
[ $# -ge 3 ] || { sed -n '2,12p' "$0" >&2; exit 2; }
a="$1" b="$2" pairs="$3"
shift 3
for bin in "$a" "$b"; do
    [ -x "$bin" ] || { echo "not an executable: $bin" >&2; exit 2; }
done
row() { # binary -> "req/s cpu"
    "$1" --only https-pool --runs 1 --json "${@:2}" 2>/dev/null | python3 -c '
import json, sys
row = json.load(sys.stdin)["rows"][0]
print(row["req_per_sec"] or 0, row["cpu_us_per_req"] or 0)'
}
echo "A: $a"
echo "B: $b"
echo "pool_bench $*"
printf '%-5s %12s %10s %12s %10s %8s\n' pair "A req/s" "A µs/req" "B req/s" "B µs/req" "B/A"
ratios=()
for i in $(seq 1 "$pairs"); do
    read -r a_rps a_cpu < <(row "$a" "$@")
    read -r b_rps b_cpu < <(row "$b" "$@")
    ratio="$(python3 -c "print(f'{$b_rps / $a_rps:.3f}' if $a_rps else 'n/a')")"
    ratios+=("$ratio")
    printf '%-5s %12.0f %10.1f %12.0f %10.1f %8s\n' "$i" "$a_rps" "$a_cpu" "$b_rps" "$b_cpu" "$ratio"
done
python3 -c '
import statistics, sys
r = sorted(float(x) for x in sys.argv[1:] if x != "n/a")
print(f"median B/A req/s over {len(r)} pairs: {statistics.median(r):.3f} (pairs spread {r[0]:.3f} to {r[-1]:.3f})" if r else "no pair ran")' "${ratios[@]}"
