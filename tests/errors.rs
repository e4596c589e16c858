//! Bad input and failed dials: each is its own `Error` variant, names the origin, and loses
//! nothing. Every peer is on 127.0.0.1.

mod support;

use std::time::Duration;

use https_pool::{ConnectionPoolManager, Error, Origin, TimeoutKind};
use https_pool_testkit::{SilentListener, TestServer, TestServerConfig};
use support::{builder_for, get, trace_init};

/// A URL that does not parse is `InvalidUrl`, naming the input.
#[tokio::test]
async fn malformed_url_is_invalid_url() {
    let pool = ConnectionPoolManager::builder()
        .build()
        .expect("pool builds");
    for bad in ["ht tp://x", "https://", "https://host:99999", ""] {
        match pool.acquire(bad).await {
            Err(Error::InvalidUrl { input, .. }) => assert_eq!(input, bad),
            other => panic!("{bad:?}: expected InvalidUrl, got {other:?}"),
        }
    }
    // A request whose URI has no host cannot be routed.
    assert!(matches!(
        pool.request(get("/relative")).await,
        Err(Error::InvalidUrl { .. })
    ));
    assert_eq!(pool.stats().connections_opened, 0);
}

/// A scheme other than https is `UnsupportedScheme`; nothing is dialed.
#[tokio::test]
async fn unsupported_scheme_is_rejected() {
    let pool = ConnectionPoolManager::builder()
        .build()
        .expect("pool builds");
    let err = pool.acquire("ftp://127.0.0.1:21").await.expect_err("ftp");
    assert!(
        matches!(err, Error::UnsupportedScheme { ref scheme, .. } if scheme == "ftp"),
        "{err:?}"
    );
    assert_eq!(pool.stats().connections_opened, 0);
}

/// A closed port is `ConnectionRefused`, naming the origin.
#[tokio::test]
async fn closed_port_is_connection_refused() {
    trace_init();
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        l.local_addr().expect("addr").port()
    };
    let pool = ConnectionPoolManager::builder()
        .build()
        .expect("pool builds");
    let err = pool
        .acquire(format!("127.0.0.1:{port}"))
        .await
        .expect_err("refused");
    assert!(matches!(err, Error::ConnectionRefused { .. }), "{err:?}");
    assert!(err.is_connect());
    assert!(
        err.to_string()
            .contains(&format!("https://127.0.0.1:{port}")),
        "{err}"
    );
    assert_eq!(pool.stats().connects_failed, 1);
    assert_eq!(pool.stats().waiters(), 0);
}

/// A server whose certificate chains to a CA the pool does not trust is
/// `UntrustedCertificate`.
#[tokio::test]
async fn unknown_ca_is_untrusted_certificate() {
    trace_init();
    let server = TestServer::start(TestServerConfig::default()).expect("server starts");
    let other = TestServer::start(TestServerConfig::default()).expect("server starts");
    // Trusts `other`'s CA, not `server`'s; webpki roots don't know either.
    let pool = builder_for(&other).build().expect("pool builds");
    let err = pool.acquire(server.url()).await.expect_err("untrusted");
    assert!(matches!(err, Error::UntrustedCertificate { .. }), "{err:?}");
    assert!(err.to_string().contains(&server.url()), "{err}");
    assert_eq!(server.counters().requests(), 0);
}

/// `https://` to a port that serves plain HTTP is `NotTls`, whose message says so.
#[tokio::test]
async fn plaintext_http_port_is_not_tls() {
    trace_init();
    let plain = TestServer::start(
        TestServerConfig::default()
            .alpn(https_pool_testkit::Alpn::Http1)
            .cleartext(true),
    )
    .expect("server starts");
    let url = plain.url().replacen("http://", "https://", 1);
    let pool = ConnectionPoolManager::builder()
        .build()
        .expect("pool builds");
    let err = pool.acquire(url.as_str()).await.expect_err("not TLS");
    assert!(matches!(err, Error::NotTls { .. }), "{err:?}");
    assert!(err.is_connect());
    assert!(err.to_string().contains("plaintext"), "{err}");
    assert_eq!(
        plain.counters().requests(),
        0,
        "nothing was sent as a request"
    );
}

/// A trusted certificate issued for another name is `CertificateNameMismatch`.
#[tokio::test]
async fn certificate_for_another_name_is_name_mismatch() {
    trace_init();
    let server =
        TestServer::start(TestServerConfig::default().cert_names(vec!["other.example".to_owned()]))
            .expect("server starts");
    let pool = builder_for(&server).build().expect("pool builds");
    let err = pool.acquire(server.url()).await.expect_err("mismatch");
    assert!(
        matches!(err, Error::CertificateNameMismatch { .. }),
        "{err:?}"
    );
}

/// A listener that accepts TCP and never answers TLS ends in a TLS-handshake timeout.
#[tokio::test]
async fn silent_listener_is_a_tls_handshake_timeout() {
    trace_init();
    let silent = SilentListener::start().expect("listener starts");
    let pool = ConnectionPoolManager::builder()
        .tls_handshake_timeout(Duration::from_millis(200))
        .build()
        .expect("pool builds");
    let err = pool.acquire(silent.url()).await.expect_err("timeout");
    match &err {
        Error::Timeout { kind, after, .. } => {
            assert_eq!(*kind, TimeoutKind::TlsHandshake);
            assert_eq!(*after, Duration::from_millis(200));
        }
        other => panic!("expected a TLS handshake timeout, got {other:?}"),
    }
    assert!(err.is_timeout() && err.is_connect());
}

/// With the only slot held, a second acquirer gets an acquire timeout, not a hang.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_free_slot_within_the_deadline_is_an_acquire_timeout() {
    trace_init();
    let server = TestServer::start(TestServerConfig::default().max_concurrent_streams(1))
        .expect("server starts");
    let pool = builder_for(&server)
        .max_connections_per_origin(1)
        .acquire_timeout(Duration::from_millis(300))
        .build()
        .expect("pool builds");
    let origin: Origin = server.url().parse().expect("origin");
    let held = pool.acquire(&origin).await.expect("first slot");
    let err = pool.acquire(&origin).await.expect_err("no slot");
    assert!(
        matches!(
            err,
            Error::Timeout {
                kind: TimeoutKind::Acquire,
                ..
            }
        ),
        "{err:?}"
    );
    assert!(!err.is_connect());
    drop(held);
    let _again = pool.acquire(&origin).await.expect("slot is free again");
    let stats = pool.stats();
    assert_eq!(stats.waiters(), 0);
    assert_eq!(stats.acquires_failed, 1);
}

/// A request naming another origin is refused by the handle before anything is sent.
#[tokio::test]
async fn request_for_another_origin_is_refused_unsent() {
    let server = TestServer::start(TestServerConfig::default()).expect("server starts");
    let pool = builder_for(&server).build().expect("pool builds");
    let mut handle = pool.acquire(server.url()).await.expect("acquire");
    let err = handle
        .send(get("https://elsewhere.example/"))
        .await
        .expect_err("mismatch");
    assert!(matches!(err, Error::InvalidRequest { .. }), "{err:?}");
    assert_eq!(server.counters().requests(), 0);
}

/// Out-of-range configuration is `InvalidConfig` naming the field; bad CA PEM too.
#[test]
fn invalid_configuration_is_rejected_at_build() {
    let err = ConnectionPoolManager::builder()
        .max_connections_per_origin(0)
        .build()
        .expect_err("invalid");
    assert!(
        matches!(
            err,
            Error::InvalidConfig {
                field: "max_connections_per_origin",
                ..
            }
        ),
        "{err:?}"
    );
    let err = ConnectionPoolManager::builder()
        .tls_extra_ca_pem("not a certificate")
        .build()
        .expect_err("invalid");
    assert!(
        matches!(
            err,
            Error::InvalidConfig {
                field: "tls_extra_ca_pem",
                ..
            }
        ),
        "{err:?}"
    );
}
