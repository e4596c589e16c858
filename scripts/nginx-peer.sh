#!/usr/bin/env bash
# Starts or stops a throwaway nginx with TLS (a per-run CA made with openssl) on 127.0.0.1, so
# the harness's --target mode and interop tests have a third-party HTTP/2 server to talk to.
#
#   scripts/nginx-peer.sh start [--port 8443] [--max-streams 128] [--keepalive-requests 1000]
#                               [--keepalive-timeout 75s] [--http1-only] [--access-log]
#                               [--client-ca FILE [--client-cert-in-handshake]] [--early-data]
#                               [--dir target/nginx-peer]
#   scripts/nginx-peer.sh stop  [--dir target/nginx-peer]
#
# --access-log writes every request's URI, one per line, to DIR/access.log (the interop suite
# counts repeats there to prove nothing was processed twice).
#
# --client-ca FILE turns on mutual TLS: `ssl_verify_client on` with FILE as the CA of client
# certificates; every response body is then `$ssl_client_verify` (SUCCESS, or NONE without a
# certificate). Plain `ssl_verify_client on` completes the handshake without a certificate and
# answers 400; --client-cert-in-handshake also sets OpenSSL's verify mode to Require (through
# `ssl_conf_command`), so a client without a certificate is refused in the handshake itself,
# with TLS 1.3's certificate_required alert (--client-ca turns TLS 1.3 on for this).
#
# --early-data turns on TLS 1.3 and `ssl_early_data on` (0-RTT on resumed sessions); every
# response body is then `$ssl_early_data` ("1" when the request came as early data, else
# empty), and under /too-early/ a request that came as early data is answered 425 Too Early.
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
access_log="access_log off;"
dir="target/nginx-peer"
client_ca=""
cert_in_handshake=""
early_data=""
while [ $# -gt 0 ]; do
    case "$1" in
        --port) port="$2"; shift 2 ;;
        --max-streams) max_streams="$2"; shift 2 ;;
        --keepalive-requests) keepalive_requests="$2"; shift 2 ;;
        --keepalive-timeout) keepalive_timeout="$2"; shift 2 ;;
        --http1-only) http2=""; shift ;;
        --access-log) access_log="ACCESS_LOG"; shift ;;
        --client-ca) client_ca="$2"; shift 2 ;;
        --client-cert-in-handshake) cert_in_handshake=1; shift ;;
        --early-data) early_data=1; shift ;;
        --dir) dir="$2"; shift 2 ;;
        *) echo "unknown option: $1" >&2; exit 2 ;;
    esac
done
mkdir -p "$dir"
dir="$(cd "$dir" && pwd)"
if [ "$access_log" = "ACCESS_LOG" ]; then
    access_log="log_format uri '\$request_uri'; access_log $dir/access.log uri;"
fi

# shellcheck source=scripts/peer-common.sh
. "$(dirname "$0")/peer-common.sh"

page='"ok\n"'
mtls=""
if [ -n "$client_ca" ]; then
    client_ca="$(cd "$(dirname "$client_ca")" && pwd)/$(basename "$client_ca")"
    page='"$ssl_client_verify\n"'
    # TLS 1.3 as well: nginx 1.22 offers only up to TLS 1.2 unless told, and over TLS 1.2 a
    # refusal is a bare handshake_failure alert that does not say what was missing.
    mtls="ssl_protocols TLSv1.2 TLSv1.3; ssl_verify_client on; ssl_client_certificate $client_ca;"
    if [ -n "$cert_in_handshake" ]; then
        mtls="$mtls ssl_conf_command VerifyMode Require;"
    fi
fi

early=""
if [ -n "$early_data" ]; then
    page='"$ssl_early_data\n"'
    # nginx 1.22 offers TLS 1.3 only when told; early data is TLS 1.3's.
    early="ssl_protocols TLSv1.2 TLSv1.3; ssl_early_data on;
        location /too-early/ { default_type text/plain; if (\$ssl_early_data) { return 425; } return 200 $page; }"
fi

case "$cmd" in
    start)
        [ -x /usr/sbin/nginx ] || command -v nginx >/dev/null 2>&1 || install_packages nginx-light
        command -v openssl >/dev/null 2>&1 || install_packages openssl
        make_certs "$dir"
        nginx_bin="$(command -v nginx || echo /usr/sbin/nginx)"
        mkdir -p "$dir/tmp"
        # A 4 MiB file for tests that drop a body half-read.
        [ -f "$dir/big.bin" ] || head -c 4194304 /dev/zero > "$dir/big.bin"
        chmod o+rx "$dir" && chmod o+r "$dir/big.bin"
        # Downloads of every size for the long-path benchmark (scripts/bench-long-path.sh),
        # served under /files/. Written under a temporary name first: an interrupted run must
        # not leave a short file that later runs would serve as if whole. nginx's worker runs
        # as another user: it needs x on the directories and r on the files.
        mkdir -p "$dir/files"
        for spec in 1k:1024 100k:102400 1m:1048576 16m:16777216; do
            file="$dir/files/${spec%%:*}.bin"
            if [ ! -f "$file" ]; then
                head -c "${spec#*:}" /dev/zero > "$file.part"
                mv "$file.part" "$file"
            fi
            chmod o+r "$file"
        done
        chmod o+rx "$dir/files"
        cat > "$dir/nginx.conf" <<EOF
worker_processes 1;
pid $dir/nginx.pid;
error_log $dir/error.log warn;
events { worker_connections 4096; }
http {
    $access_log
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
        $mtls
        $early
        location / { default_type text/plain; return 200 $page; }
        location = /big.bin { root $dir; }
        location /files/ { alias $dir/files/; }
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
