//! HTTP CONNECT proxies: `https://` origins reached through the testkit's `ConnectProxy` on
//! 127.0.0.1. The origin's name (`origin.test`) is one only the proxy resolves, so a response
//! proves the tunnel; the proxy's tunnel count, the server's accepted connections and the
//! pool's connections must agree.

mod support;

use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration;

use http::StatusCode;
use https_pool::{ConnectionPoolManager, Error, Origin, TimeoutKind};
use https_pool_testkit::{
    ConnectProxy, ConnectProxyConfig, SilentListener, TestServer, TestServerConfig,
};
use support::{body_len, builder_for, get, server_named, trace_init};
use tokio::task::JoinSet;

const LOOPBACK: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);

/// A test server whose certificate names `names`, on an ephemeral loopback port.
fn origin_server(names: &[&str]) -> TestServer {
    server_named(
        names,
        "127.0.0.1:0".parse().expect("addr"),
        TestServerConfig::default(),
    )
}

/// A proxy that resolves each of `names` to 127.0.0.1, with `config`'s other settings.
fn proxy_for(names: &[&str], config: ConnectProxyConfig) -> ConnectProxy {
    let config = names.iter().fold(config, |c, name| c.host(name, LOOPBACK));
    ConnectProxy::start(config).expect("proxy starts")
}

fn proxy_origin(proxy: &ConnectProxy) -> Origin {
    proxy.url().parse().expect("proxy origin")
}

/// Concurrent requests go through tunnels: one tunnel per connection the pool opened, each
/// accepted by the server, each connection reporting the proxy; later requests reuse those
/// connections without another CONNECT. The target is sent in authority form.
#[tokio::test]
async fn requests_go_through_the_tunnel_and_reuse_its_connections() {
    trace_init();
    let server = origin_server(&["origin.test"]);
    let proxy = proxy_for(&["origin.test"], ConnectProxyConfig::new());
    let pool = builder_for(&server)
        .proxy(proxy.url())
        .build()
        .expect("pool builds");
    let url = format!("https://origin.test:{}/", server.port());

    let mut first = JoinSet::new();
    for _ in 0..8 {
        let (pool, url) = (pool.clone(), url.clone());
        first.spawn(async move {
            let response = pool
                .request(get(&url))
                .await
                .expect("request through the proxy");
            assert_eq!(response.status(), StatusCode::OK);
            body_len(response).await
        });
    }
    while let Some(done) = first.join_next().await {
        done.expect("request task");
    }
    let tunnels = proxy.tunnels();
    let stats = pool.stats();
    assert!(tunnels >= 1);
    assert_eq!(stats.connections_opened, tunnels);
    assert_eq!(server.counters().accepted(), tunnels);
    for conn in stats.origins.iter().flat_map(|o| &o.connections) {
        assert_eq!(conn.proxy.as_ref(), Some(&proxy_origin(&proxy)));
        assert_eq!(conn.peer_addr, proxy.addr());
    }
    let target = format!("origin.test:{}", server.port());
    assert!(
        proxy.targets().iter().all(|t| *t == target),
        "{:?}",
        proxy.targets()
    );

    for _ in 0..20 {
        let response = pool.request(get(&url)).await.expect("reused connection");
        body_len(response).await;
    }
    assert_eq!(proxy.tunnels(), tunnels, "pooled connections were reused");
    assert_eq!(server.counters().requests(), 28);
    assert!(pool.stats().leases_reused >= 20);
}

/// Credentials in the proxy URL are sent as `Proxy-Authorization: Basic`; without them the
/// proxy's 407 is `ProxyRefused` carrying 407 and naming both ends, and no tunnel opens.
#[tokio::test]
async fn credentials_are_sent_and_their_absence_is_a_407() {
    trace_init();
    let server = origin_server(&["origin.test"]);
    let proxy = proxy_for(
        &["origin.test"],
        ConnectProxyConfig::new().credentials("alice", "s3cret:x"),
    );
    let url = format!("https://origin.test:{}/", server.port());
    let origin: Origin = url.parse().expect("origin");

    let anonymous = builder_for(&server)
        .proxy(proxy.url())
        .build()
        .expect("pool builds");
    let error = anonymous.request(get(&url)).await.expect_err("407");
    match &error {
        Error::ProxyRefused {
            origin: o,
            proxy: p,
            status,
        } => {
            assert_eq!(*status, StatusCode::PROXY_AUTHENTICATION_REQUIRED);
            assert_eq!(o, &origin);
            assert_eq!(p, &proxy_origin(&proxy));
        }
        other => panic!("expected ProxyRefused, got {other:?}"),
    }
    assert!(error.is_connect());
    assert!(error.to_string().contains("407"), "{error}");
    assert_eq!(proxy.tunnels(), 0);
    assert_eq!(server.counters().accepted(), 0);

    // The password's ':' is percent-encoded in the URL.
    let with_credentials = format!(
        "http://alice:s3cret%3Ax@{}",
        proxy.url().trim_start_matches("http://")
    );
    let pool = builder_for(&server)
        .proxy(with_credentials.as_str())
        .build()
        .expect("pool builds");
    let response = pool.request(get(&url)).await.expect("authorized tunnel");
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(proxy.tunnels(), 1);
    assert!(
        !format!("{:?}", pool.config()).contains("s3cret"),
        "the config's Debug hides the password"
    );
}

/// A proxy whose rules forbid the destination answers 403: `ProxyRefused` with 403.
#[tokio::test]
async fn a_forbidding_proxy_is_a_403_refusal() {
    trace_init();
    let server = origin_server(&["origin.test"]);
    let proxy = proxy_for(
        &["origin.test"],
        ConnectProxyConfig::new().refuse_with(StatusCode::FORBIDDEN),
    );
    let pool = builder_for(&server)
        .proxy(proxy.url())
        .build()
        .expect("pool builds");
    let url = format!("https://origin.test:{}/", server.port());
    match pool.request(get(&url)).await {
        Err(Error::ProxyRefused { status, .. }) => assert_eq!(status, StatusCode::FORBIDDEN),
        other => panic!("expected ProxyRefused(403), got {other:?}"),
    }
    assert_eq!(proxy.refused(), 1);
    assert_eq!(server.counters().accepted(), 0);
}

/// `NO_PROXY` names are dialed directly while other origins of the same pool go through the
/// proxy: each origin's route is its own, and its connections say which.
#[tokio::test]
async fn no_proxy_hosts_are_dialed_directly() {
    trace_init();
    let server = origin_server(&["origin.test", "127.0.0.1"]);
    let proxy = proxy_for(&["origin.test"], ConnectProxyConfig::new());
    let pool = builder_for(&server)
        .proxy(proxy.url())
        .no_proxy("localhost, 127.0.0.0/8")
        .build()
        .expect("pool builds");

    let direct = format!("https://127.0.0.1:{}/", server.port());
    let response = pool.request(get(&direct)).await.expect("direct request");
    body_len(response).await;
    assert_eq!(proxy.tunnels(), 0, "a NO_PROXY origin bypasses the proxy");

    let proxied = format!("https://origin.test:{}/", server.port());
    let response = pool.request(get(&proxied)).await.expect("proxied request");
    body_len(response).await;
    assert_eq!(proxy.tunnels(), 1);

    let stats = pool.stats();
    let route_of = |url: &str| {
        let origin: Origin = url.parse().expect("origin");
        let conns = &stats.origin(&origin).expect("origin in stats").connections;
        assert_eq!(conns.len(), 1);
        conns[0].proxy.clone()
    };
    assert_eq!(route_of(&direct), None);
    assert_eq!(route_of(&proxied), Some(proxy_origin(&proxy)));
    assert_eq!(server.counters().accepted(), 2);
}

/// Inside the tunnel, TLS is the origin's: a certificate that does not name the origin's
/// host fails as it would without a proxy, though the tunnel itself opened.
#[tokio::test]
async fn the_origins_certificate_is_verified_through_the_tunnel() {
    trace_init();
    let server = origin_server(&["origin.test"]);
    let proxy = proxy_for(&["origin.test", "impostor.test"], ConnectProxyConfig::new());
    let pool = builder_for(&server)
        .proxy(proxy.url())
        .build()
        .expect("pool builds");
    let url = format!("https://impostor.test:{}/", server.port());
    let error = pool.request(get(&url)).await.expect_err("wrong name");
    assert!(
        matches!(error, Error::CertificateNameMismatch { .. }),
        "{error:?}"
    );
    assert_eq!(proxy.tunnels(), 1);
    assert_eq!(server.counters().requests(), 0);
}

/// A proxy nothing listens on is `ProxyConnect`, whose source is the proxy's own
/// `ConnectionRefused`.
#[tokio::test]
async fn an_unreachable_proxy_is_a_proxy_connect_error_naming_it() {
    trace_init();
    let closed = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        listener.local_addr().expect("addr")
    };
    let proxy: Origin = format!("http://{closed}").parse().expect("proxy origin");
    let pool = ConnectionPoolManager::builder()
        .proxy(format!("http://{closed}"))
        .build()
        .expect("pool builds");
    let error = pool
        .request(get("https://origin.test/"))
        .await
        .expect_err("no proxy there");
    match &error {
        Error::ProxyConnect {
            proxy: p, source, ..
        } => {
            assert_eq!(p, &proxy);
            assert!(
                matches!(&**source, Error::ConnectionRefused { origin, .. } if *origin == proxy),
                "{source:?}"
            );
        }
        other => panic!("expected ProxyConnect, got {other:?}"),
    }
    assert!(error.is_connect() && !error.is_timeout());
    assert!(error.to_string().contains(&proxy.to_string()), "{error}");
}

/// A proxy that accepts TCP and never answers CONNECT holds the dial only until
/// `connect_timeout`: `ProxyConnect` whose source is a connect timeout naming the proxy.
#[tokio::test]
async fn a_proxy_that_never_answers_is_a_connect_timeout() {
    trace_init();
    let silent = SilentListener::start().expect("listener starts");
    let proxy_url = silent.url().replacen("https://", "http://", 1);
    let pool = ConnectionPoolManager::builder()
        .proxy(proxy_url.as_str())
        .connect_timeout(Duration::from_millis(300))
        .build()
        .expect("pool builds");
    let error = pool
        .request(get("https://origin.test/"))
        .await
        .expect_err("no answer");
    match &error {
        Error::ProxyConnect { source, .. } => assert!(
            matches!(
                &**source,
                Error::Timeout { origin, kind: TimeoutKind::Connect, .. }
                    if origin.to_string() == proxy_url
            ),
            "{source:?}"
        ),
        other => panic!("expected ProxyConnect, got {other:?}"),
    }
    assert!(error.is_timeout() && error.is_connect());
}

/// A proxy URL the pool cannot use fails `build()` with a config error naming `proxy`.
#[test]
fn an_unusable_proxy_url_fails_build() {
    for url in [
        "https://proxy.test:3128",
        "http://proxy.test:3128/x",
        "http://:3128",
    ] {
        match ConnectionPoolManager::builder().proxy(url).build() {
            Err(Error::InvalidConfig { field, .. }) => assert_eq!(field, "proxy", "{url}"),
            other => panic!("{url}: expected InvalidConfig, got {other:?}"),
        }
    }
}

/// With coalescing on, a proxied origin neither coalesces onto another origin's tunnel nor
/// lends its own: each gets a tunnel of its own although one certificate names both.
#[tokio::test]
async fn proxied_origins_are_not_coalesced() {
    trace_init();
    let server = origin_server(&["a.test", "b.test"]);
    let proxy = proxy_for(&["a.test", "b.test"], ConnectProxyConfig::new());
    let pool = builder_for(&server)
        .proxy(proxy.url())
        .http2_coalescing(true)
        .resolve("a.test", [LOOPBACK])
        .resolve("b.test", [LOOPBACK])
        .build()
        .expect("pool builds");
    for host in ["a.test", "b.test"] {
        let url = format!("https://{host}:{}/", server.port());
        let response = pool.request(get(&url)).await.expect("request");
        body_len(response).await;
    }
    assert_eq!(proxy.tunnels(), 2);
    assert_eq!(pool.stats().leases_coalesced, 0);
}

/// Set in the child process of `proxy_from_env_reads_the_environment_at_build`.
const CHILD_MARK: &str = "HTTPS_POOL_PROXY_ENV_CHILD";

/// `proxy_from_env(true)` reads `https_proxy` and `no_proxy` at `build()`. The environment is
/// the process's and shared by parallel tests, so this one runs itself again as a child
/// process with the variables set, rather than changing its own: the child's request to
/// `origin.test` (a name only the proxy resolves) must go through the proxy, and its request
/// to 127.0.0.1 (in `no_proxy`) must not.
#[tokio::test]
async fn proxy_from_env_reads_the_environment_at_build() {
    trace_init();
    if let Ok(port) = std::env::var(CHILD_MARK) {
        // The child: a pool whose proxy comes from the environment.
        let ca = std::env::var("HTTPS_POOL_PROXY_ENV_CA").expect("the parent passes its CA");
        let pool = ConnectionPoolManager::builder()
            .tls_webpki_roots(false)
            .tls_extra_ca_pem(ca)
            .proxy_from_env(true)
            .build()
            .expect("pool builds");
        assert!(pool.config().proxy.is_some(), "{:?}", pool.config());
        for host in ["origin.test", "127.0.0.1"] {
            let url = format!("https://{host}:{port}/");
            let response = pool.request(get(&url)).await.expect("request");
            body_len(response).await;
        }
        return;
    }
    let server = origin_server(&["origin.test", "127.0.0.1"]);
    let proxy = proxy_for(&["origin.test"], ConnectProxyConfig::new());
    let test = "proxy_from_env_reads_the_environment_at_build";
    let child = tokio::process::Command::new(std::env::current_exe().expect("test binary"))
        .args(["--exact", test, "--nocapture"])
        .env(CHILD_MARK, server.port().to_string())
        .env("HTTPS_POOL_PROXY_ENV_CA", server.ca_pem())
        .env("https_proxy", proxy.url())
        .env("no_proxy", "127.0.0.1")
        .env_remove("HTTPS_PROXY")
        .env_remove("NO_PROXY")
        .env_remove("ALL_PROXY")
        .env_remove("all_proxy")
        .output()
        .await
        .expect("the test binary runs");
    assert!(
        child.status.success(),
        "child failed:\n{}\n{}",
        String::from_utf8_lossy(&child.stdout),
        String::from_utf8_lossy(&child.stderr)
    );
    assert!(String::from_utf8_lossy(&child.stdout).contains("1 passed"));
    assert_eq!(
        proxy.tunnels(),
        1,
        "only origin.test went through the proxy"
    );
    assert_eq!(server.counters().accepted(), 2);
}
