#!/usr/bin/env bash
# Starts or stops a throwaway nginx with TLS (a per-run CA made with openssl) on 127.0.0.1, so
# the harness's --target mode and interop tests have a third-party HTTP/2 server to talk to.
#
#   scripts/nginx-peer.sh start [--port 8443] [--max-streams 128] [--keepalive-requests 1000]
#                               [--keepalive-timeout 75s] [--http1-only] [--dir target/nginx-peer]
#   scripts/nginx-peer.sh stop  [--dir target/nginx-peer]
#
# `start` prints the URL and the CA file, e.g.
#   cargo run --release --bin test_connection_pool_success_criteria -- \
#       --target https://127.0.0.1:8443/ --ca-cert target/nginx-peer/ca.pem
# nginx and openssl come from Debian's packages and are installed when missing.
set -euo pipefail

cmd="${1:-}"
shift || true
port=8443
max_streams=128
keepalive_requests=1000
keepalive_timeout=75s
http2="http2"
dir="target/nginx-peer"
while [ $# -gt 0 ]; do
    case "$1" in
        --port) port="$2"; shift 2 ;;
        --max-streams) max_streams="$2"; shift 2 ;;
        --keepalive-requests) keepalive_requests="$2"; shift 2 ;;
        --keepalive-timeout) keepalive_timeout="$2"; shift 2 ;;
        --http1-only) http2=""; shift ;;
        --dir) dir="$2"; shift 2 ;;
        *) echo "unknown option: $1" >&2; exit 2 ;;
    esac
done
mkdir -p "$dir"
dir="$(cd "$dir" && pwd)"

install_missing() {
    local missing=()
    command -v nginx >/dev/null 2>&1 || [ -x /usr/sbin/nginx ] || missing+=(nginx-light)
    command -v openssl >/dev/null 2>&1 || missing+=(openssl)
    if [ ${#missing[@]} -gt 0 ]; then
        echo "installing ${missing[*]} (apt)" >&2
        export DEBIAN_FRONTEND=noninteractive
        apt-get update -q >/dev/null
        # Keep the package's own service from starting on port 80.
        printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d
        chmod +x /usr/sbin/policy-rc.d
        apt-get install -y -q --no-install-recommends "${missing[@]}" >/dev/null
        rm -f /usr/sbin/policy-rc.d
    fi
}

make_certs() {
    [ -f "$dir/server.pem" ] && return
    openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj "/CN=https-pool nginx test CA $$" \
        -keyout "$dir/ca.key" -out "$dir/ca.pem" 2>/dev/null
    openssl req -newkey rsa:2048 -nodes -subj "/CN=127.0.0.1" \
        -keyout "$dir/server.key" -out "$dir/server.csr" 2>/dev/null
    printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\n' > "$dir/ext.cnf"
    openssl x509 -req -in "$dir/server.csr" -CA "$dir/ca.pem" -CAkey "$dir/ca.key" \
        -CAcreateserial -days 2 -extfile "$dir/ext.cnf" -out "$dir/server.pem" 2>/dev/null
}

case "$cmd" in
    start)
        install_missing
        make_certs
        nginx_bin="$(command -v nginx || echo /usr/sbin/nginx)"
        mkdir -p "$dir/tmp"
        # A 4 MiB file for tests that drop a body half-read.
        [ -f "$dir/big.bin" ] || head -c 4194304 /dev/zero > "$dir/big.bin"
        chmod o+rx "$dir" && chmod o+r "$dir/big.bin"
        cat > "$dir/nginx.conf" <<EOF
worker_processes 1;
pid $dir/nginx.pid;
error_log $dir/error.log warn;
events { worker_connections 4096; }
http {
    access_log off;
    client_body_temp_path $dir/tmp/body;
    proxy_temp_path $dir/tmp/proxy;
    fastcgi_temp_path $dir/tmp/fastcgi;
    uwsgi_temp_path $dir/tmp/uwsgi;
    scgi_temp_path $dir/tmp/scgi;
    keepalive_requests $keepalive_requests;
    keepalive_timeout $keepalive_timeout;
    http2_max_concurrent_streams $max_streams;
    server {
        listen 127.0.0.1:$port ssl $http2;
        ssl_certificate $dir/server.pem;
        ssl_certificate_key $dir/server.key;
        location / { default_type text/plain; return 200 "ok\n"; }
        location = /big.bin { root $dir; }
    }
}
EOF
        if [ -f "$dir/nginx.pid" ] && kill -0 "$(cat "$dir/nginx.pid")" 2>/dev/null; then
            "$nginx_bin" -e "$dir/error.log" -p "$dir" -c "$dir/nginx.conf" -s reload
        else
            "$nginx_bin" -e "$dir/error.log" -p "$dir" -c "$dir/nginx.conf"
        fi
        echo "url=https://127.0.0.1:$port/"
        echo "ca=$dir/ca.pem"
        ;;
    stop)
        if [ -f "$dir/nginx.pid" ]; then
            kill "$(cat "$dir/nginx.pid")" 2>/dev/null || true
            rm -f "$dir/nginx.pid"
        fi
        ;;
    *)
        sed -n '2,14p' "$0" >&2
        exit 2
        ;;
esac
