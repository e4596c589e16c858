# Shared by the peer scripts (sourced, not run): Debian package installation and a throwaway
# CA with a server certificate for 127.0.0.1 / localhost.

# install_packages PKG... — apt-get install, without letting packages start their services.
install_packages() {
    echo "installing $* (apt)" >&2
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -q >/dev/null
    # Keep packages' own services (nginx on port 80) from starting.
    printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d
    chmod +x /usr/sbin/policy-rc.d
    apt-get install -y -q --no-install-recommends "$@" >/dev/null
    rm -f /usr/sbin/policy-rc.d
}

# make_certs DIR — DIR/ca.pem (a CA made for this run), DIR/server.pem and DIR/server.key.
make_certs() {
    local dir="$1"
    [ -f "$dir/server.pem" ] && return
    openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj "/CN=https-pool test CA $$" \
        -keyout "$dir/ca.key" -out "$dir/ca.pem" 2>/dev/null
    openssl req -newkey rsa:2048 -nodes -subj "/CN=127.0.0.1" \
        -keyout "$dir/server.key" -out "$dir/server.csr" 2>/dev/null
    printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\n' > "$dir/ext.cnf"
    openssl x509 -req -in "$dir/server.csr" -CA "$dir/ca.pem" -CAkey "$dir/ca.key" \
        -CAcreateserial -days 2 -extfile "$dir/ext.cnf" -out "$dir/server.pem" 2>/dev/null
}

# make_client_certs DIR — a client CA (DIR/client-ca.pem) and two client identities it signed
# for mutual TLS: DIR/client-rsa.{pem,key} (RSA 2048) and DIR/client-ec.{pem,key} (ECDSA
# P-256), keys unencrypted PKCS#8, certificates for TLS client authentication.
make_client_certs() {
    local dir="$1"
    [ -f "$dir/client-ec.pem" ] && return
    openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj "/CN=https-pool test client CA $$" \
        -keyout "$dir/client-ca.key" -out "$dir/client-ca.pem" 2>/dev/null
    printf 'basicConstraints=CA:FALSE\nextendedKeyUsage=clientAuth\n' > "$dir/client-ext.cnf"
    local kind
    for kind in rsa ec; do
        if [ "$kind" = rsa ]; then
            openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out "$dir/client-$kind.key" 2>/dev/null
        else
            openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$dir/client-$kind.key" 2>/dev/null
        fi
        openssl req -new -key "$dir/client-$kind.key" -subj "/CN=https-pool $kind client" \
            -out "$dir/client-$kind.csr" 2>/dev/null
        openssl x509 -req -in "$dir/client-$kind.csr" -CA "$dir/client-ca.pem" \
            -CAkey "$dir/client-ca.key" -CAcreateserial -days 2 -extfile "$dir/client-ext.cnf" \
            -out "$dir/client-$kind.pem" 2>/dev/null
    done
}
