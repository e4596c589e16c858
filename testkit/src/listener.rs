//! Loopback listeners registered with a peer's own runtime.

use std::io;
use std::net::{SocketAddr, TcpListener as StdTcpListener};
use std::time::Duration;

use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

/// Binds `127.0.0.1:0` and registers the listener with `runtime`, so a failure is an error
/// here rather than a panic on the peer's thread.
pub(crate) fn loopback_listener(
    runtime: &tokio::runtime::Runtime,
) -> io::Result<(TcpListener, SocketAddr)> {
    listener_on(runtime, SocketAddr::from(([127, 0, 0, 1], 0)))
}

/// Binds `addr` (std sets `SO_REUSEADDR`, so a restarted server gets its port back while old
/// connections sit in TIME_WAIT) and registers the listener with `runtime`.
pub(crate) fn listener_on(
    runtime: &tokio::runtime::Runtime,
    addr: SocketAddr,
) -> io::Result<(TcpListener, SocketAddr)> {
    let listener = StdTcpListener::bind(addr)?;
    listener.set_nonblocking(true)?;
    let addr = listener.local_addr()?;
    let _entered = runtime.enter();
    Ok((TcpListener::from_std(listener)?, addr))
}

/// The next connection `listener` accepts, or `None` once `stopped` changes. An accept error
/// (out of file descriptors, say) waits 5 ms and tries again rather than spin.
pub(crate) async fn next_connection(
    listener: &TcpListener,
    stopped: &mut watch::Receiver<bool>,
) -> Option<TcpStream> {
    loop {
        let accepted = tokio::select! {
            _ = stopped.changed() => return None,
            accepted = listener.accept() => accepted,
        };
        match accepted {
            Ok((tcp, _peer)) => return Some(tcp),
            Err(_) => tokio::time::sleep(Duration::from_millis(5)).await,
        }
    }
}
