#!/usr/bin/env bash
# Starts or stops a throwaway tinyproxy (an HTTP forward proxy) on 127.0.0.1 that tunnels
# CONNECT to the listed loopback ports only, so the interop suite can reach nginx through a
# third-party proxy.
#
#   scripts/tinyproxy-peer.sh start --port 18880 --connect-ports "18443 18446"
#                                   [--basic-auth USER:PASSWORD] [--dir target/tinyproxy-peer]
#   scripts/tinyproxy-peer.sh stop  [--dir target/tinyproxy-peer]
#
# With --basic-auth, a CONNECT without those credentials gets 407 (wrong ones, 401). Every
# request is logged to DIR/tinyproxy.log ("Request (file descriptor N): CONNECT host:port"),
# which the suite counts. tinyproxy comes from Debian's package and is installed when missing.
set -euo pipefail

cmd="${1:-}"
shift || true
port=18880
connect_ports=""
basic_auth=""
dir="target/tinyproxy-peer"
while [ $# -gt 0 ]; do
    case "$1" in
        --port) port="$2"; shift 2 ;;
        --connect-ports) connect_ports="$2"; shift 2 ;;
        --basic-auth) basic_auth="$2"; shift 2 ;;
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
        command -v tinyproxy >/dev/null 2>&1 || install_packages tinyproxy
        if [ -f "$dir/tinyproxy.pid" ] && kill -0 "$(cat "$dir/tinyproxy.pid")" 2>/dev/null; then
            kill "$(cat "$dir/tinyproxy.pid")"
            rm -f "$dir/tinyproxy.pid"
            sleep 0.2
        fi
        {
            # Run as root, tinyproxy insists on dropping to a user; it writes its pid and log
            # after that, so the directory is writable by that user.
            echo "User nobody"
            echo "Group nogroup"
            echo "Listen 127.0.0.1"
            echo "Port $port"
            echo "Timeout 60"
            echo "MaxClients 256"
            echo "Allow 127.0.0.1"
            echo "DisableViaHeader Yes"
            echo "LogLevel Info"
            echo "LogFile \"$dir/tinyproxy.log\""
            echo "PidFile \"$dir/tinyproxy.pid\""
            for p in $connect_ports; do echo "ConnectPort $p"; done
            if [ -n "$basic_auth" ]; then echo "BasicAuth ${basic_auth%%:*} ${basic_auth#*:}"; fi
        } > "$dir/tinyproxy.conf"
        chmod 0777 "$dir"
        : > "$dir/tinyproxy.log"
        chmod 0666 "$dir/tinyproxy.log"
        tinyproxy -c "$dir/tinyproxy.conf"
        # It daemonizes; wait until it accepts connections.
        for _ in $(seq 50); do
            if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then break; fi
            sleep 0.1
        done
        echo "url=http://127.0.0.1:$port"
        echo "log=$dir/tinyproxy.log"
        ;;
    stop)
        if [ -f "$dir/tinyproxy.pid" ]; then
            kill "$(cat "$dir/tinyproxy.pid")" 2>/dev/null || true
            rm -f "$dir/tinyproxy.pid"
        fi
        ;;
    *)
        sed -n '2,12p' "$0" >&2
        exit 2
        ;;
esac
