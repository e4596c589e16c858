#!/usr/bin/env bash
# Starts or stops every third-party peer of the interop suite, all on 127.0.0.1, each with its
# own directory, config and (for TLS) throwaway CA under target/interop/:
#
#   nginx  h2         :18443  HTTP/2, http2_max_concurrent_streams 128
#   nginx  h2-ms8     :18444  HTTP/2, http2_max_concurrent_streams 8
#   nginx  h2-rotate  :18445  HTTP/2, keepalive_requests 50 (GOAWAY every 50 requests),
#                             every request URI logged to target/interop/h2-rotate/access.log
#   nginx  h1         :18446  HTTP/1.1 only, keepalive_timeout 1s
#   nghttpd tls-ms8   :18447  HTTP/2 over TLS, max concurrent streams 8
#   nghttpd h2c       :18448  cleartext HTTP/2 with prior knowledge
#   nginx  mtls       :18449  HTTP/2, ssl_verify_client on; a client without a certificate is
#                             refused in the handshake (OpenSSL verify mode Require)
#   nginx  mtls-http  :18450  HTTP/2, plain ssl_verify_client on (400 without a certificate)
#                             Both trust the client CA of target/interop/clients/.
#   nginx  early      :18451  HTTP/2, TLS 1.3 with ssl_early_data on; bodies say $ssl_early_data,
#                             /too-early/ answers 425 to early data; URIs logged to
#                             target/interop/early/access.log; keepalive_timeout 2s (past the
#                             pool's 1 s "in use" window), so the next request dials again
#   tinyproxy proxy      :18880  HTTP CONNECT proxy to the nginx ports 18443 and 18446
#   tinyproxy proxy-auth :18881  the same, requiring Basic credentials interop:s3cret
#
#   scripts/peers.sh start   # prints the environment the suite reads (also in target/interop/peers.env)
#   scripts/peers.sh stop    # stops them all by PID
#
# nginx, nghttpd, tinyproxy and openssl come from Debian packages and are installed when
# missing.
set -euo pipefail
cd "$(dirname "$0")/.."
base="target/interop"
nginx_peers=(h2 h2-ms8 h2-rotate h1 mtls mtls-http early)
nghttpd_peers=(tls-ms8 h2c)
tinyproxy_peers=(proxy proxy-auth)

case "${1:-}" in
    start)
        mkdir -p "$base"
        nginx() { # name port options...
            local name="$1" port="$2"
            shift 2
            scripts/nginx-peer.sh start --dir "$base/$name" --port "$port" "$@" >/dev/null
            echo "https://127.0.0.1:$port"
        }
        nghttpd() { # name port options...
            local name="$1" port="$2"
            shift 2
            scripts/nghttpd-peer.sh start --dir "$base/$name" --port "$port" "$@" \
                | sed -n 's/^url=\(.*\)\/$/\1/p'
        }
        tinyproxy() { # name port options...
            local name="$1" port="$2"
            shift 2
            scripts/tinyproxy-peer.sh start --dir "$base/$name" --port "$port" \
                --connect-ports "18443 18446" "$@" | sed -n 's/^url=//p'
        }
        {
            echo "export HTTPS_POOL_INTEROP=1"
            echo "export HTTPS_POOL_NGINX_H2=$(nginx h2 18443 --max-streams 128)"
            echo "export HTTPS_POOL_NGINX_H2_MS8=$(nginx h2-ms8 18444 --max-streams 8)"
            echo "export HTTPS_POOL_NGINX_ROTATE=$(nginx h2-rotate 18445 --keepalive-requests 50 --access-log)"
            echo "export HTTPS_POOL_NGINX_ROTATE_LOG=$(pwd)/$base/h2-rotate/access.log"
            echo "export HTTPS_POOL_NGINX_H1=$(nginx h1 18446 --http1-only --keepalive-timeout 1s)"
            echo "export HTTPS_POOL_NGHTTPD_MS8=$(nghttpd tls-ms8 18447 --max-streams 8)"
            echo "export HTTPS_POOL_NGHTTPD_H2C=$(nghttpd h2c 18448 --no-tls)"
            echo "export HTTPS_POOL_TINYPROXY=$(tinyproxy proxy 18880)"
            echo "export HTTPS_POOL_TINYPROXY_LOG=$(pwd)/$base/proxy/tinyproxy.log"
            echo "export HTTPS_POOL_TINYPROXY_AUTH=$(tinyproxy proxy-auth 18881 --basic-auth interop:s3cret)"
            echo "export HTTPS_POOL_TINYPROXY_CREDENTIALS=interop:s3cret"
            # Client identities for mutual TLS, and the nginx servers that ask for them.
            clients="$(pwd)/$base/clients"
            mkdir -p "$clients"
            (. scripts/peer-common.sh && make_client_certs "$clients")
            echo "export HTTPS_POOL_NGINX_MTLS=$(nginx mtls 18449 --client-ca "$clients/client-ca.pem" --client-cert-in-handshake)"
            echo "export HTTPS_POOL_NGINX_MTLS_HTTP=$(nginx mtls-http 18450 --client-ca "$clients/client-ca.pem")"
            echo "export HTTPS_POOL_INTEROP_CLIENTS=$clients"
            echo "export HTTPS_POOL_NGINX_EARLY=$(nginx early 18451 --early-data --access-log --keepalive-timeout 2s)"
            echo "export HTTPS_POOL_NGINX_EARLY_LOG=$(pwd)/$base/early/access.log"
            # Each TLS peer has its own CA; the suite trusts all of them.
            cas=""
            for p in "${nginx_peers[@]}" tls-ms8; do cas="$cas$(pwd)/$base/$p/ca.pem:"; done
            echo "export HTTPS_POOL_INTEROP_CAS=$cas"
        } > "$base/peers.env"
        cat "$base/peers.env"
        ;;
    stop)
        for p in "${nginx_peers[@]}"; do scripts/nginx-peer.sh stop --dir "$base/$p" || true; done
        for p in "${nghttpd_peers[@]}"; do scripts/nghttpd-peer.sh stop --dir "$base/$p" || true; done
        for p in "${tinyproxy_peers[@]}"; do scripts/tinyproxy-peer.sh stop --dir "$base/$p" || true; done
        ;;
    *)
        sed -n '2,23p' "$0" >&2
        exit 2
        ;;
esac
