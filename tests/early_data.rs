//! TLS 1.3 early data (0-RTT) against a server that does not take it: the testkit's server
//! (tokio-rustls' acceptor hands early data to nobody, so its tickets do not offer it). With
//! `tls_early_data` on, replacements still resume, every request is answered once, and no
//! early data is counted. Early data a server takes is proven against nginx in
//! `tests/interop.rs` (`nginx_answers_a_get_sent_as_early_data_and_a_post_that_was_not`).

mod support;

use https_pool_testkit::{TestServer, TestServerConfig};
use support::{body_len, builder_for, get, trace_init};

/// Early data on, a server whose tickets do not allow it: every dial completes its handshake
/// first, as without the option, and the counts say no early data went.
#[tokio::test]
async fn early_data_on_against_a_server_without_it_resumes_and_sends_nothing_early() {
    trace_init();
    let server = TestServer::start(TestServerConfig::default()).expect("server");
    let pool = builder_for(&server)
        .tls_early_data(true)
        .max_requests_per_connection(1)
        .build()
        .expect("pool");
    for i in 0..4 {
        let response = pool
            .request(get(&server.url_for(&format!("/{i}"))))
            .await
            .expect("request");
        assert_eq!(response.status(), 200);
        // Read to the end: TLS 1.3 session tickets arrive after the handshake, with data.
        body_len(response).await;
    }
    let stats = pool.stats();
    let origin = &stats.origins[0];
    assert_eq!(
        (origin.tls_full_handshakes, origin.tls_resumed_handshakes),
        (1, 3)
    );
    assert_eq!(
        (origin.early_data_accepted, origin.early_data_rejected),
        (0, 0)
    );
    assert_eq!(server.counters().accepted(), 4);
    let text = stats.to_prometheus();
    let line = format!(
        "https_pool_tls_early_data_total{{origin=\"{}\",outcome=\"accepted\"}} 0\n",
        origin.origin
    );
    assert!(text.contains(&line), "{text}");
}
