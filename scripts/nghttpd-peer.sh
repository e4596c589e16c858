#!/usr/bin/env bash
# Starts or stops nghttpd (the nghttp2 project's HTTP/2 server) on 127.0.0.1: over TLS with a
# throwaway CA, or cleartext h2c (HTTP/2 with prior knowledge) with --no-tls.
#
#   scripts/nghttpd-peer.sh start [--port 9443] [--max-streams 100] [--no-tls]
#                                 [--dir target/nghttpd-peer]
#   scripts/nghttpd-peer.sh stop  [--dir target/nghttpd-peer]
#
# `start` prints url=… and, with TLS, ca=…. nghttpd comes from Debian's nghttp2-server package
# and is installed when missing; it serves DIR/htdocs and is stopped by the PID it wrote.
set -euo pipefail

cmd="${1:-}"
shift || true
port=9443
max_streams=100
tls=1
dir="target/nghttpd-peer"
while [ $# -gt 0 ]; do
    case "$1" in
        --port) port="$2"; shift 2 ;;
        --max-streams) max_streams="$2"; shift 2 ;;
        --no-tls) tls=0; shift ;;
        --dir) dir="$2"; shift 2 ;;
        *) echo "unknown option: $1" >&2; exit 2 ;;
    esac
done
mkdir -p "$dir"
dir="$(cd "$dir" && pwd)"
# shellcheck source=scripts/peer-common.sh
. "$(dirname "$0")/peer-common.sh"

case "$cmd" in
    start)
        [ -x /usr/sbin/nghttpd ] || command -v nghttpd >/dev/null 2>&1 || install_packages nghttp2-server
        nghttpd_bin="$(command -v nghttpd || echo /usr/sbin/nghttpd)"
        mkdir -p "$dir/htdocs"
        printf 'ok\n' > "$dir/htdocs/index.html"
        args=(--address=127.0.0.1 --htdocs="$dir/htdocs" --max-concurrent-streams="$max_streams")
        if [ "$tls" = 1 ]; then
            command -v openssl >/dev/null 2>&1 || install_packages openssl
            make_certs "$dir"
            args+=("$port" "$dir/server.key" "$dir/server.pem")
            scheme=https
        else
            args+=(--no-tls "$port")
            scheme=http
        fi
        if [ -f "$dir/nghttpd.pid" ] && kill -0 "$(cat "$dir/nghttpd.pid")" 2>/dev/null; then
            kill "$(cat "$dir/nghttpd.pid")"
        fi
        "$nghttpd_bin" "${args[@]}" >"$dir/nghttpd.log" 2>&1 &
        echo $! > "$dir/nghttpd.pid"
        # Ready once it accepts connections (bounded: 5 s).
        for _ in $(seq 50); do
            (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break
            sleep 0.1
        done
        echo "url=$scheme://127.0.0.1:$port/"
        [ "$tls" = 1 ] && echo "ca=$dir/ca.pem"
        true
        ;;
    stop)
        if [ -f "$dir/nghttpd.pid" ]; then
            kill "$(cat "$dir/nghttpd.pid")" 2>/dev/null || true
            rm -f "$dir/nghttpd.pid"
        fi
        ;;
    *)
        sed -n '2,11p' "$0" >&2
        exit 2
        ;;
esac
