//! The byte stream under a connection: TLS for `https://`, plain TCP for cleartext `http://`.
//!
//! An enum rather than a boxed trait object: the two cases are known, and hyper polls the
//! stream on every read and write, so static dispatch keeps that path free of an allocation
//! and an indirect call.

use std::error::Error as StdError;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll, ready};

use rustls::AlertDescription;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;

/// A dialed connection's byte stream.
#[derive(Debug)]
pub(crate) enum Transport {
    /// TLS over TCP (`https://`).
    Tls(Box<TlsTransport>),
    /// Plain TCP (`http://`, only when cleartext is enabled).
    Plain(TcpStream),
}

/// A TLS stream, and the flag it raises when the server refuses the connection for want of
/// a client certificate.
///
/// In TLS 1.3 the client's handshake is over before the server reads the client's
/// certificate, so a server requiring one and given none answers with its
/// `certificate_required` alert on the first read after the handshake. The rustls error
/// carrying it does not survive h2, which keeps only the kind and text of an I/O error, so
/// it is noticed here, where it is read, for the connection to report
/// [`Error::ClientCertificateRequired`](crate::Error::ClientCertificateRequired).
#[derive(Debug)]
pub(crate) struct TlsTransport {
    stream: TlsStream<TcpStream>,
    client_certificate_required: Arc<AtomicBool>,
}

impl TlsTransport {
    pub(crate) fn new(
        stream: TlsStream<TcpStream>,
        client_certificate_required: Arc<AtomicBool>,
    ) -> TlsTransport {
        TlsTransport {
            stream,
            client_certificate_required,
        }
    }

    fn poll_read(&mut self, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let result = ready!(Pin::new(&mut self.stream).poll_read(cx, buf));
        if let Err(error) = &result {
            self.note(error);
        }
        Poll::Ready(result)
    }

    /// Runs a write-side operation; when it fails, looks for the alert that may explain why.
    fn on_write<T>(
        &mut self,
        cx: &mut Context<'_>,
        op: impl FnOnce(Pin<&mut TlsStream<TcpStream>>, &mut Context<'_>) -> Poll<io::Result<T>>,
    ) -> Poll<io::Result<T>> {
        let result = ready!(op(Pin::new(&mut self.stream), cx));
        if result.is_err() {
            self.read_pending_alert();
        }
        Poll::Ready(result)
    }

    /// After a failed write. A server that refuses the connection sends its alert and closes;
    /// the client's next bytes (the HTTP/2 preface, a request) then meet a reset, and the
    /// write fails with a broken pipe before anyone read the alert, which still waits in the
    /// socket's receive queue. The reactor may not have seen that queue readable yet, so it
    /// is read with a plain non-blocking `read` on the socket and handed to rustls, a few
    /// records at most: the connection is over either way.
    fn read_pending_alert(&mut self) {
        use std::io::Read;

        let (tcp, tls) = self.stream.get_mut();
        let socket = socket2::SockRef::from(&*tcp);
        let mut scratch = [0u8; 1024];
        for _ in 0..4 {
            let n = match (&*socket).read(&mut scratch) {
                Ok(0) | Err(_) => return,
                Ok(n) => n,
            };
            let mut bytes = &scratch[..n];
            while !bytes.is_empty() {
                if tls.read_tls(&mut bytes).is_err() {
                    return;
                }
                if let Err(error) = tls.process_new_packets() {
                    return self.note(&io::Error::new(io::ErrorKind::InvalidData, error));
                }
            }
        }
    }

    fn note(&self, error: &io::Error) {
        if client_certificate_required(error) {
            // Release: whoever sees the connection fail (through h2's or hyper's state) and
            // then reads the flag sees it set.
            self.client_certificate_required
                .store(true, Ordering::Release);
        }
    }
}

impl AsyncRead for Transport {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Transport::Tls(tls) => tls.poll_read(cx, buf),
            Transport::Plain(tcp) => Pin::new(tcp).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for Transport {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Transport::Tls(tls) => tls.on_write(cx, |stream, cx| stream.poll_write(cx, buf)),
            Transport::Plain(tcp) => Pin::new(tcp).poll_write(cx, buf),
        }
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Transport::Tls(tls) => {
                tls.on_write(cx, |stream, cx| stream.poll_write_vectored(cx, bufs))
            }
            Transport::Plain(tcp) => Pin::new(tcp).poll_write_vectored(cx, bufs),
        }
    }

    fn is_write_vectored(&self) -> bool {
        match self {
            Transport::Tls(tls) => tls.stream.is_write_vectored(),
            Transport::Plain(tcp) => tcp.is_write_vectored(),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Transport::Tls(tls) => tls.on_write(cx, |stream, cx| stream.poll_flush(cx)),
            Transport::Plain(tcp) => Pin::new(tcp).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Transport::Tls(tls) => Pin::new(&mut tls.stream).poll_shutdown(cx),
            Transport::Plain(tcp) => Pin::new(tcp).poll_shutdown(cx),
        }
    }
}

/// True when `error`, or an error it was caused by, is the server's `certificate_required`
/// alert: it wants a client certificate (mutual TLS) and was given none. `io::Error::source`
/// skips the error it wraps, hence the `get_ref` at each I/O error of the chain.
pub(crate) fn client_certificate_required(error: &(dyn StdError + 'static)) -> bool {
    let mut next = Some(error);
    while let Some(error) = next {
        let wrapped = error
            .downcast_ref::<io::Error>()
            .and_then(|io| io.get_ref())
            .map(|inner| inner as &(dyn StdError + 'static));
        for candidate in [Some(error), wrapped].into_iter().flatten() {
            if let Some(rustls::Error::AlertReceived(AlertDescription::CertificateRequired)) =
                candidate.downcast_ref::<rustls::Error>()
            {
                return true;
            }
        }
        next = error.source();
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The alert is found however deep an I/O error carries it, and nothing else is taken for it.
    #[test]
    fn certificate_required_is_found_under_io_errors() {
        let alert = || rustls::Error::AlertReceived(AlertDescription::CertificateRequired);
        let io = io::Error::new(io::ErrorKind::InvalidData, alert());
        assert!(client_certificate_required(&io));
        assert!(client_certificate_required(&alert()));
        let other = io::Error::new(
            io::ErrorKind::InvalidData,
            rustls::Error::AlertReceived(AlertDescription::HandshakeFailure),
        );
        assert!(!client_certificate_required(&other));
    }
}
