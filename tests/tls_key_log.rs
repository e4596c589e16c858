//! `tls_key_log(true)` writes the TLS secrets of the pool's connections to the file named by
//! `SSLKEYLOGFILE`. In its own test binary: the variable is process-wide, and rustls reads it
//! when the pool is built.

mod support;

use support::{body_len, builder_for, get, trace_init};

use https_pool_testkit::{TestServer, TestServerConfig};

/// One request through a pool with the key log on leaves the handshake's secrets in the
/// file, in NSS key log format.
#[test]
fn key_log_writes_the_handshake_secrets_to_sslkeylogfile() {
    trace_init();
    let dir = std::env::temp_dir().join(format!("https-pool-keylog-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let path = dir.join("keys.log");
    let _ = std::fs::remove_file(&path);
    // SAFETY: this is the only test of this binary and it sets the variable before it starts
    // a runtime or a server, so no other thread of the process reads the environment now.
    unsafe { std::env::set_var("SSLKEYLOGFILE", &path) };
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime")
        .block_on(one_request());

    let log = std::fs::read_to_string(&path).expect("the key log was written");
    let lines: Vec<&str> = log.lines().collect();
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("CLIENT_HANDSHAKE_TRAFFIC_SECRET ")),
        "{log}"
    );
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("CLIENT_TRAFFIC_SECRET_0 ")),
        "{log}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

async fn one_request() {
    let server = TestServer::start(TestServerConfig::default()).expect("server");
    let pool = builder_for(&server)
        .tls_key_log(true)
        .build()
        .expect("pool");
    let response = pool
        .request(get(&server.url_for("/")))
        .await
        .expect("request");
    body_len(response).await;
    pool.shutdown().await;
}
