//! [`ConnectProxy`]: an HTTP forward proxy that speaks only `CONNECT`, as squid or tinyproxy
//! do for `https://` URLs, on 127.0.0.1.
//!
//! Built on hyper's HTTP/1.1 server with upgrades (hyper's own `http_proxy` example): the
//! CONNECT request is parsed by hyper, answered 200 once the target is connected, and the
//! upgraded connection is relayed byte for byte to the target. It relays only to loopback
//! targets: an IP literal on the loopback, or a name given with [`ConnectProxyConfig::host`]
//! (which only the proxy can resolve, so a client that reaches it went through the tunnel).

use std::collections::HashMap;
use std::convert::Infallible;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use bytes::Bytes;
use http::{Method, Request, Response, StatusCode, header};
use http_body_util::Empty;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;
use tokio::sync::watch;

use crate::listener::{loopback_listener, next_connection};

/// How a [`ConnectProxy`] behaves. The default tunnels every CONNECT to a loopback target,
/// without credentials.
#[derive(Debug, Clone, Default)]
pub struct ConnectProxyConfig {
    /// The `Proxy-Authorization` value required (`Basic base64(user:password)`).
    authorization: Option<String>,
    refuse_with: Option<StatusCode>,
    hosts: HashMap<String, IpAddr>,
}

impl ConnectProxyConfig {
    /// The defaults: tunnel every CONNECT to a loopback target.
    pub fn new() -> ConnectProxyConfig {
        ConnectProxyConfig::default()
    }

    /// Require `Proxy-Authorization: Basic` with these credentials; a CONNECT without them
    /// (or with others) gets `407 Proxy Authentication Required`.
    pub fn credentials(mut self, user: &str, password: &str) -> Self {
        let encoded = STANDARD.encode(format!("{user}:{password}"));
        self.authorization = Some(format!("Basic {encoded}"));
        self
    }

    /// Answer every CONNECT with `status` (a 403 from a proxy whose rules forbid the
    /// destination, say) and open no tunnel.
    pub fn refuse_with(mut self, status: StatusCode) -> Self {
        self.refuse_with = Some(status);
        self
    }

    /// Resolve `name` (in a CONNECT target) to `ip`, which must be a loopback address. Other
    /// names get `502 Bad Gateway`, as from a proxy whose lookup failed.
    pub fn host(mut self, name: &str, ip: IpAddr) -> Self {
        self.hosts.insert(name.to_ascii_lowercase(), ip);
        self
    }
}

/// What a [`ConnectProxy`] has seen.
#[derive(Debug, Default)]
struct ProxyCounters {
    tunnels: AtomicU64,
    refused: AtomicU64,
    targets: Mutex<Vec<String>>,
}

/// An HTTP CONNECT proxy on `127.0.0.1` with its own thread and runtime; stops when dropped.
///
/// Counts the tunnels it opened and the CONNECTs it refused, and records each CONNECT's
/// target as the client wrote it.
#[derive(Debug)]
pub struct ConnectProxy {
    addr: SocketAddr,
    counters: Arc<ProxyCounters>,
    stop: watch::Sender<bool>,
    thread: Option<JoinHandle<()>>,
}

impl ConnectProxy {
    /// Starts a proxy on an ephemeral port.
    ///
    /// # Errors
    ///
    /// Binding or starting the runtime failed.
    pub fn start(config: ConnectProxyConfig) -> io::Result<ConnectProxy> {
        let (stop, mut stopped) = watch::channel(false);
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()?;
        let (listener, addr) = loopback_listener(&runtime)?;
        let counters = Arc::new(ProxyCounters::default());
        let config = Arc::new(config);
        let thread = {
            let counters = Arc::clone(&counters);
            std::thread::Builder::new()
                .name(format!("testkit-proxy-{}", addr.port()))
                .spawn(move || {
                    runtime.block_on(async move {
                        while let Some(tcp) = next_connection(&listener, &mut stopped).await {
                            let config = Arc::clone(&config);
                            let counters = Arc::clone(&counters);
                            let mut stopped = stopped.clone();
                            tokio::spawn(async move {
                                let service = service_fn(move |request| {
                                    let config = Arc::clone(&config);
                                    let counters = Arc::clone(&counters);
                                    async move {
                                        Ok::<_, Infallible>(
                                            answer(request, &config, &counters).await,
                                        )
                                    }
                                });
                                let connection = http1::Builder::new()
                                    .serve_connection(TokioIo::new(tcp), service)
                                    .with_upgrades();
                                tokio::select! {
                                    _ = stopped.changed() => {}
                                    _ = connection => {}
                                }
                            });
                        }
                    });
                    runtime.shutdown_timeout(Duration::from_secs(1));
                })?
        };
        Ok(ConnectProxy {
            addr,
            counters,
            stop,
            thread: Some(thread),
        })
    }

    /// `http://127.0.0.1:PORT`, the proxy's URL.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The proxy's address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Tunnels opened: CONNECTs answered 200 with the target connected.
    pub fn tunnels(&self) -> u64 {
        self.counters.tunnels.load(Ordering::SeqCst)
    }

    /// CONNECTs (and other requests) answered with anything but 200.
    pub fn refused(&self) -> u64 {
        self.counters.refused.load(Ordering::SeqCst)
    }

    /// Every CONNECT target seen, as written in the request (`host:port`), in order.
    pub fn targets(&self) -> Vec<String> {
        self.counters
            .targets
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }
}

impl Drop for ConnectProxy {
    fn drop(&mut self) {
        let _ = self.stop.send(true);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// The proxy's answer to one request; a 200 hands the connection to a relay task.
async fn answer(
    mut request: Request<Incoming>,
    config: &ConnectProxyConfig,
    counters: &Arc<ProxyCounters>,
) -> Response<Empty<Bytes>> {
    let refuse = |status: StatusCode| {
        counters.refused.fetch_add(1, Ordering::SeqCst);
        let mut response = Response::new(Empty::new());
        *response.status_mut() = status;
        if status == StatusCode::PROXY_AUTHENTICATION_REQUIRED {
            response.headers_mut().insert(
                header::PROXY_AUTHENTICATE,
                http::HeaderValue::from_static("Basic realm=\"testkit\""),
            );
        }
        response
    };
    if request.method() != Method::CONNECT {
        return refuse(StatusCode::METHOD_NOT_ALLOWED);
    }
    let Some(authority) = request.uri().authority().cloned() else {
        return refuse(StatusCode::BAD_REQUEST);
    };
    counters
        .targets
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .push(authority.to_string());
    if let Some(status) = config.refuse_with {
        return refuse(status);
    }
    if let Some(wanted) = &config.authorization {
        let given = request.headers().get(header::PROXY_AUTHORIZATION);
        if given.is_none_or(|v| v.as_bytes() != wanted.as_bytes()) {
            return refuse(StatusCode::PROXY_AUTHENTICATION_REQUIRED);
        }
    }
    let Some(port) = authority.port_u16() else {
        return refuse(StatusCode::BAD_REQUEST);
    };
    let host = authority.host();
    let host = host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host);
    let ip = match (
        host.parse::<IpAddr>(),
        config.hosts.get(&host.to_ascii_lowercase()),
    ) {
        (Ok(ip), _) | (Err(_), Some(&ip)) => ip,
        (Err(_), None) => return refuse(StatusCode::BAD_GATEWAY),
    };
    if !ip.is_loopback() {
        return refuse(StatusCode::FORBIDDEN);
    }
    let Ok(target) = TcpStream::connect((ip, port)).await else {
        return refuse(StatusCode::BAD_GATEWAY);
    };
    counters.tunnels.fetch_add(1, Ordering::SeqCst);
    let upgrade = hyper::upgrade::on(&mut request);
    tokio::spawn(async move {
        if let Ok(upgraded) = upgrade.await {
            let mut client = TokioIo::new(upgraded);
            let mut target = target;
            let _ = tokio::io::copy_bidirectional(&mut client, &mut target).await;
        }
    });
    Response::new(Empty::new())
}
