//! TLS for service teams: a client identity for servers that require one (mutual TLS), the
//! typed error when the pool has none, bad identity material refused at `build()`, and a
//! caller's own rustls `ClientConfig` (ALPN still the pool's, handshakes still counted).
//! Every server is the testkit's rustls server on 127.0.0.1; nginx's `ssl_verify_client` is
//! in `tests/interop.rs`.

mod support;

use std::sync::Arc;
use std::sync::atomic::Ordering;

use https_pool::rustls::pki_types::pem::PemObject;
use https_pool::rustls::pki_types::{CertificateDer, PrivateKeyDer};
use https_pool::rustls::{self, ClientConfig, RootCertStore};
use https_pool::{ConnectionPoolManager, Error, Protocol};
use https_pool_testkit::{Alpn, TestClientCa, TestServer, TestServerConfig};
use support::{body_len, builder_for, get, trace_init};

/// An RSA key (PKCS#8, 2048 bits) made with `openssl genpkey` for these tests only: *ring*,
/// which the testkit's rcgen signs with, cannot generate RSA keys.
const RSA_KEY_PEM: &str = include_str!("data/client-rsa-key.pem");

/// A server that requires a client certificate signed by `ca`.
fn mtls_server(ca: &TestClientCa, config: TestServerConfig) -> TestServer {
    TestServer::start(config.client_auth_ca_pem(ca.ca_pem())).expect("server")
}

/// One request through `pool`; the response body is read to the end.
async fn request(pool: &ConnectionPoolManager, server: &TestServer) -> Result<u16, Error> {
    let response = pool.request(get(&server.url_for("/"))).await?;
    let status = response.status().as_u16();
    body_len(response).await;
    Ok(status)
}

/// An ECDSA client certificate is presented and accepted: the request is served and the
/// server saw a verified client certificate.
#[tokio::test]
async fn an_ec_client_certificate_is_accepted_by_a_server_that_requires_one() {
    trace_init();
    let ca = TestClientCa::generate().expect("client CA");
    let server = mtls_server(&ca, TestServerConfig::default());
    let id = ca.issue("orders-service").expect("identity");
    let pool = builder_for(&server)
        .tls_client_auth_pem(id.cert_chain_pem, id.key_pem)
        .build()
        .expect("pool");
    assert_eq!(request(&pool, &server).await.expect("request"), 200);
    let counters = server.counters();
    assert_eq!(counters.client_certificates.load(Ordering::SeqCst), 1);
    assert_eq!(counters.tls_failures.load(Ordering::SeqCst), 0);
}

/// An RSA client certificate works the same, over HTTP/1.1 as well as HTTP/2.
#[tokio::test]
async fn an_rsa_client_certificate_is_accepted_over_either_protocol() {
    trace_init();
    let ca = TestClientCa::generate().expect("client CA");
    let id = ca.issue_for_key("billing", RSA_KEY_PEM).expect("identity");
    for alpn in [Alpn::H2, Alpn::Http1] {
        let server = mtls_server(&ca, TestServerConfig::default().alpn(alpn));
        let pool = builder_for(&server)
            .tls_client_auth_pem(id.cert_chain_pem.clone(), id.key_pem.clone())
            .build()
            .expect("pool");
        assert_eq!(request(&pool, &server).await.expect("request"), 200);
        assert_eq!(
            server.counters().client_certificates.load(Ordering::SeqCst),
            1
        );
    }
}

/// Without a certificate, a TLS 1.3 server's `certificate_required` alert (which arrives after
/// the client's handshake, on the first read) fails the request with
/// `Error::ClientCertificateRequired`, over HTTP/2 and HTTP/1.1, and the request is not
/// retried on further connections: one dial, nothing served.
#[tokio::test]
async fn no_certificate_for_a_tls13_server_that_requires_one_is_a_typed_error() {
    trace_init();
    let ca = TestClientCa::generate().expect("client CA");
    for alpn in [Alpn::H2, Alpn::Http1] {
        let server = mtls_server(&ca, TestServerConfig::default().alpn(alpn));
        let pool = builder_for(&server).build().expect("pool");
        let error = request(&pool, &server).await.expect_err("refused");
        assert!(
            matches!(error, Error::ClientCertificateRequired { .. }),
            "{alpn:?}: {error:?}"
        );
        assert!(error.is_connect());
        assert!(error.to_string().contains("requires a client certificate"));
        let counters = server.counters();
        assert_eq!(
            counters.accepted(),
            1,
            "{alpn:?}: no retry on a new connection"
        );
        assert_eq!(counters.requests(), 0);
        assert_eq!(counters.client_certificates.load(Ordering::SeqCst), 0);
    }
}

/// Over TLS 1.2 the alert comes inside the handshake: the dial fails with the same error.
#[tokio::test]
async fn no_certificate_for_a_tls12_server_that_requires_one_is_a_typed_error() {
    trace_init();
    let ca = TestClientCa::generate().expect("client CA");
    let server = mtls_server(&ca, TestServerConfig::default().tls12_only(true));
    let pool = builder_for(&server).build().expect("pool");
    let error = request(&pool, &server).await.expect_err("refused");
    assert!(
        matches!(error, Error::ClientCertificateRequired { .. }),
        "{error:?}"
    );
    assert_eq!(server.counters().requests(), 0);
}

/// A certificate from a CA the server does not trust is refused by the server; the pool
/// reports a TLS failure, not a missing certificate.
#[tokio::test]
async fn a_certificate_from_another_ca_is_refused_as_a_tls_failure() {
    trace_init();
    let trusted = TestClientCa::generate().expect("client CA");
    let other = TestClientCa::generate().expect("other CA");
    let server = mtls_server(&trusted, TestServerConfig::default());
    let id = other.issue("stranger").expect("identity");
    let pool = builder_for(&server)
        .tls_client_auth_pem(id.cert_chain_pem, id.key_pem)
        .build()
        .expect("pool");
    let error = request(&pool, &server).await.expect_err("refused");
    assert!(
        !matches!(error, Error::ClientCertificateRequired { .. }),
        "{error:?}"
    );
    assert_eq!(server.counters().requests(), 0);
}

/// Bad identity material fails `build()` with `InvalidConfig` naming `tls_client_auth`:
/// no certificate, garbage, no key, an encrypted key, a key that is not the certificate's.
/// The key's bytes never appear in the message.
#[test]
fn bad_client_identity_pem_fails_build_with_a_named_reason() {
    let ca = TestClientCa::generate().expect("client CA");
    let id = ca.issue("a").expect("identity");
    let other = ca.issue("b").expect("identity");
    let encrypted =
        "-----BEGIN ENCRYPTED PRIVATE KEY-----\nMAA=\n-----END ENCRYPTED PRIVATE KEY-----\n";
    let cases: Vec<(&str, String, String)> = vec![
        ("no CERTIFICATE", String::new(), id.key_pem.clone()),
        ("no CERTIFICATE", "garbage".into(), id.key_pem.clone()),
        ("no PRIVATE KEY", id.cert_chain_pem.clone(), String::new()),
        (
            "no PRIVATE KEY",
            id.cert_chain_pem.clone(),
            id.cert_chain_pem.clone(),
        ),
        ("encrypted", id.cert_chain_pem.clone(), encrypted.into()),
        ("unusable", id.cert_chain_pem.clone(), other.key_pem.clone()),
    ];
    for (expected, cert, key) in cases {
        let result = ConnectionPoolManager::builder()
            .tls_client_auth_pem(cert, key.clone())
            .build();
        match result {
            Err(Error::InvalidConfig { field, reason }) => {
                assert_eq!(field, "tls_client_auth");
                assert!(reason.contains(expected), "{expected}: {reason}");
                let key_line = key.lines().nth(1).unwrap_or("-");
                assert!(key.is_empty() || !reason.contains(key_line), "{reason}");
            }
            other => panic!("{expected}: expected InvalidConfig, got {other:?}"),
        }
    }
    // The configuration's Debug output does not show the key either.
    let builder =
        ConnectionPoolManager::builder().tls_client_auth_pem(id.cert_chain_pem, id.key_pem.clone());
    let debug = format!("{:?}", builder.config());
    assert!(!debug.contains(id.key_pem.lines().nth(1).expect("a base64 line")));
}

/// A root store holding `server`'s CA.
fn roots_for(server: &TestServer) -> RootCertStore {
    let mut roots = RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(server.ca_pem().as_bytes()) {
        roots.add(cert.expect("CA PEM")).expect("CA");
    }
    roots
}

/// What a caller's own ClientConfig starts from: *ring* and the default protocol versions.
fn caller_builder() -> rustls::ConfigBuilder<ClientConfig, rustls::WantsVerifier> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("versions")
}

/// The caller's ClientConfig is used: its ALPN list is replaced by the pool's (the server
/// offers only h2 and would refuse the caller's), and full and resumed handshakes are still
/// counted, the caller's session store resuming each replacement connection.
#[tokio::test]
async fn a_callers_client_config_gets_the_pools_alpn_and_keeps_handshake_counts() {
    trace_init();
    let server = TestServer::start(TestServerConfig::default()).expect("server");
    let mut config = caller_builder()
        .with_root_certificates(roots_for(&server))
        .with_no_client_auth();
    config.alpn_protocols = vec![b"not-http".to_vec()];
    let pool = ConnectionPoolManager::builder()
        .tls_config(config)
        .max_requests_per_connection(1)
        .build()
        .expect("pool");
    for _ in 0..3 {
        assert_eq!(request(&pool, &server).await.expect("request"), 200);
    }
    let stats = pool.stats();
    let origin = &stats.origins[0];
    assert_eq!(server.counters().accepted(), 3);
    assert_eq!(server.counters().connections_h2.load(Ordering::SeqCst), 3);
    assert_eq!(
        (origin.tls_full_handshakes, origin.tls_resumed_handshakes),
        (1, 2)
    );
}

/// A caller's ClientConfig with a client identity does mutual TLS; one without roots for
/// the server fails as untrusted, as the pool's own would.
#[tokio::test]
async fn a_callers_client_config_brings_its_identity_and_roots() {
    trace_init();
    let ca = TestClientCa::generate().expect("client CA");
    let server = mtls_server(&ca, TestServerConfig::default());
    let id = ca.issue("caller").expect("identity");
    let chain = CertificateDer::pem_slice_iter(id.cert_chain_pem.as_bytes())
        .collect::<Result<Vec<_>, _>>()
        .expect("chain");
    let key = PrivateKeyDer::from_pem_slice(id.key_pem.as_bytes()).expect("key");
    let config = caller_builder()
        .with_root_certificates(roots_for(&server))
        .with_client_auth_cert(chain, key)
        .expect("identity");
    let pool = ConnectionPoolManager::builder()
        .tls_config(config)
        .build()
        .expect("pool");
    assert_eq!(request(&pool, &server).await.expect("request"), 200);
    assert_eq!(
        server.counters().client_certificates.load(Ordering::SeqCst),
        1
    );
    assert_eq!(
        pool.stats().origins[0].connections[0].protocol,
        Protocol::Http2
    );

    let stranger = TestServer::start(TestServerConfig::default()).expect("server");
    let config = caller_builder()
        .with_root_certificates(roots_for(&server))
        .with_no_client_auth();
    let pool = ConnectionPoolManager::builder()
        .tls_config(config)
        .build()
        .expect("pool");
    let error = request(&pool, &stranger).await.expect_err("untrusted");
    assert!(
        matches!(error, Error::UntrustedCertificate { .. }),
        "{error:?}"
    );
}

/// Each refusal counts as a failed dial, and every later request says why it failed: the
/// refusal itself, or, while the origin backs off, `BackingOff` whose source is the refusal.
#[tokio::test]
async fn repeated_refusals_back_off_naming_the_missing_certificate() {
    trace_init();
    let ca = TestClientCa::generate().expect("client CA");
    let server = mtls_server(&ca, TestServerConfig::default());
    let pool = builder_for(&server)
        .dial_backoff_initial(std::time::Duration::from_millis(20))
        .build()
        .expect("pool");
    let mut errors = Vec::new();
    for _ in 0..3 {
        errors.push(request(&pool, &server).await.expect_err("refused"));
    }
    assert!(
        errors.iter().all(|error| match error {
            Error::ClientCertificateRequired { .. } => true,
            Error::BackingOff { source, .. } => {
                matches!(**source, Error::ClientCertificateRequired { .. })
            }
            _ => false,
        }),
        "{errors:?}"
    );
    assert_eq!(server.counters().requests(), 0);
}
