//! [`SynDropListener`](crate::SynDropListener): a loopback address whose SYNs go unanswered,
//! as a black-holed server address does.

use std::io;
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use socket2::{Domain, Socket, Type};

/// A listening socket with a full accept queue: the kernel drops further SYNs, so a connect
/// to it neither succeeds nor fails until the client gives up, as with an address behind a
/// firewall that drops packets. Loopback only; dropping it closes the address again.
#[derive(Debug)]
pub struct SynDropListener {
    addr: SocketAddr,
    _listener: Socket,
    _queued: TcpStream,
}

impl SynDropListener {
    /// Listens on `addr` (`127.0.0.1` or `::1`; port 0 for an ephemeral one) with a backlog
    /// of zero and fills that backlog with one connection it never accepts.
    ///
    /// # Errors
    ///
    /// `addr` is not loopback, or binding or the filling connection failed.
    pub fn bind(addr: SocketAddr) -> io::Result<SynDropListener> {
        if !addr.ip().is_loopback() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("SynDropListener listens on loopback only, not {addr}"),
            ));
        }
        let listener = Socket::new(Domain::for_address(addr), Type::STREAM, None)?;
        listener.set_reuse_address(true)?;
        listener.bind(&addr.into())?;
        // Linux counts a queue of n as full at n + 1 waiting connections: one fills backlog 0.
        listener.listen(0)?;
        let addr = listener
            .local_addr()?
            .as_socket()
            .ok_or_else(|| io::Error::other("listener has no socket address"))?;
        let queued = TcpStream::connect_timeout(&addr, Duration::from_secs(5))?;
        Ok(SynDropListener {
            addr,
            _listener: listener,
            _queued: queued,
        })
    }

    /// The address that drops SYNs.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }
}
