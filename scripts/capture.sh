#!/usr/bin/env bash
# Runs a command and saves its output under reports/, headed by what ran, when, at which
# commit and on what machine, so a figure quoted elsewhere can be traced to its run.
#
#   scripts/capture.sh NAME COMMAND [ARGS...]
#   e.g. scripts/capture.sh grpc_shared_channel cargo run --release --example grpc_shared_channel
#
# Writes reports/<UTC timestamp>-NAME.txt and prints the output as it runs.
set -euo pipefail
cd "$(dirname "$0")/.."
[ $# -ge 2 ] || { sed -n '2,8p' "$0" >&2; exit 2; }
name="$1"
shift
stamp="$(date -u +%Y%m%dT%H%M%SZ)"
out="reports/$stamp-$name.txt"
commit="$(git rev-parse --short HEAD 2>/dev/null || echo unknown)"
dirty="$(git status --porcelain --untracked-files=no 2>/dev/null | grep -q . && echo ' (uncommitted changes)' || true)"
cpu="$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo 2>/dev/null | head -1)"
{
    echo "command: $*"
    echo "when:    $(date -u '+%Y-%m-%d %H:%M:%S UTC')"
    echo "commit:  $commit$dirty"
    echo "machine: ${cpu:-unknown CPU}, $(nproc) cores, $(free -g 2>/dev/null | awk '/^Mem:/ {print $2 " GiB"}'), $(uname -sr)"
    echo "rustc:   $(rustc --version)"
    echo
} > "$out"
"$@" 2>&1 | tee -a "$out"
echo "saved: $out" >&2
