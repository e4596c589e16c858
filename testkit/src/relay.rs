//! Peers that misbehave on the wire: [`SilentListener`](crate::SilentListener) and [`RttRelay`](crate::RttRelay).

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use tokio::sync::watch;

use crate::listener::loopback_listener;

/// A TCP listener on `127.0.0.1` that accepts connections and never writes a byte: a TLS
/// handshake against it hangs until the client's deadline.
#[derive(Debug)]
pub struct SilentListener {
    addr: SocketAddr,
    stop: watch::Sender<bool>,
    thread: Option<JoinHandle<()>>,
}

impl SilentListener {
    /// Starts the listener on an ephemeral port.
    ///
    /// # Errors
    ///
    /// Binding failed.
    pub fn start() -> io::Result<SilentListener> {
        let (stop, mut stopped) = watch::channel(false);
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        let (listener, addr) = loopback_listener(&runtime)?;
        let thread = std::thread::Builder::new()
            .name("testkit-silent".into())
            .spawn(move || {
                runtime.block_on(async move {
                    let mut held = Vec::new();
                    loop {
                        tokio::select! {
                            _ = stopped.changed() => return,
                            accepted = listener.accept() => {
                                if let Ok((tcp, _)) = accepted {
                                    held.push(tcp);
                                }
                            }
                        }
                    }
                });
            })?;
        Ok(SilentListener {
            addr,
            stop,
            thread: Some(thread),
        })
    }

    /// `https://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("https://{}", self.addr)
    }
}

impl Drop for SilentListener {
    fn drop(&mut self) {
        let _ = self.stop.send(true);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// A loopback TCP relay that delays each direction by half the configured round-trip time,
/// and can silently stop forwarding (a black hole, as a dead NAT or peer looks).
///
/// Point a client at [`RttRelay::url`](crate::RttRelay::url); the relay connects to `target` for each connection.
/// The TLS server name stays `127.0.0.1`, so a [`TestServer`](crate::TestServer) certificate still verifies.
#[derive(Debug)]
pub struct RttRelay {
    addr: SocketAddr,
    black_hole: Arc<std::sync::atomic::AtomicBool>,
    accepted: Arc<AtomicU64>,
    stop: watch::Sender<bool>,
    thread: Option<JoinHandle<()>>,
}

impl RttRelay {
    /// Starts a relay to `target` adding `rtt` of round-trip delay (half each way).
    ///
    /// # Errors
    ///
    /// Binding failed.
    pub fn start(target: SocketAddr, rtt: Duration) -> io::Result<RttRelay> {
        let (stop, mut stopped) = watch::channel(false);
        let black_hole = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let accepted = Arc::new(AtomicU64::new(0));
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()?;
        let (listener, addr) = loopback_listener(&runtime)?;
        let one_way = rtt / 2;
        let thread = {
            let black_hole = Arc::clone(&black_hole);
            let accepted = Arc::clone(&accepted);
            std::thread::Builder::new()
                .name(format!("testkit-relay-{}", addr.port()))
                .spawn(move || {
                    runtime.block_on(async move {
                        loop {
                            let (client, _) = tokio::select! {
                                _ = stopped.changed() => return,
                                accepted = listener.accept() => match accepted {
                                    Ok(pair) => pair,
                                    Err(_) => continue,
                                },
                            };
                            accepted.fetch_add(1, Ordering::SeqCst);
                            let black_hole = Arc::clone(&black_hole);
                            let mut stopped = stopped.clone();
                            tokio::spawn(async move {
                                tokio::select! {
                                    _ = stopped.changed() => {}
                                    _ = relay(client, target, one_way, black_hole) => {}
                                }
                            });
                        }
                    });
                    runtime.shutdown_timeout(Duration::from_secs(1));
                })?
        };
        Ok(RttRelay {
            addr,
            black_hole,
            accepted,
            stop,
            thread: Some(thread),
        })
    }

    /// `https://127.0.0.1:PORT` of the relay.
    pub fn url(&self) -> String {
        format!("https://{}", self.addr)
    }

    /// The relay's address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Connections the relay accepted.
    pub fn accepted(&self) -> u64 {
        self.accepted.load(Ordering::SeqCst)
    }

    /// While on, bytes in both directions are read and dropped: connections stay open but
    /// nothing arrives, as with a dead peer behind a NAT.
    pub fn set_black_hole(&self, on: bool) {
        self.black_hole.store(on, Ordering::SeqCst);
    }
}

impl Drop for RttRelay {
    fn drop(&mut self) {
        let _ = self.stop.send(true);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

async fn relay(
    client: tokio::net::TcpStream,
    target: SocketAddr,
    one_way: Duration,
    black_hole: Arc<std::sync::atomic::AtomicBool>,
) {
    let Ok(server) = tokio::net::TcpStream::connect(target).await else {
        return;
    };
    let _ = client.set_nodelay(true);
    let _ = server.set_nodelay(true);
    let (client_read, client_write) = client.into_split();
    let (server_read, server_write) = server.into_split();
    tokio::join!(
        pump(client_read, server_write, one_way, Arc::clone(&black_hole)),
        pump(server_read, client_write, one_way, black_hole),
    );
}

/// Copies one direction, delivering each chunk `delay` after it was read, in order.
async fn pump(
    mut from: tokio::net::tcp::OwnedReadHalf,
    mut to: tokio::net::tcp::OwnedWriteHalf,
    delay: Duration,
    black_hole: Arc<std::sync::atomic::AtomicBool>,
) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<(tokio::time::Instant, Vec<u8>)>();
    let writer = async move {
        while let Some((due, chunk)) = rx.recv().await {
            tokio::time::sleep_until(due).await;
            if to.write_all(&chunk).await.is_err() {
                return;
            }
        }
        let _ = to.shutdown().await;
    };
    let reader = async move {
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            match from.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(n) => {
                    if black_hole.load(Ordering::SeqCst) {
                        continue;
                    }
                    let due = tokio::time::Instant::now() + delay;
                    if tx.send((due, buf[..n].to_vec())).is_err() {
                        return;
                    }
                }
            }
        }
    };
    tokio::join!(reader, writer);
}
