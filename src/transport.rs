//! The byte stream under a connection: TLS for `https://`, plain TCP for cleartext `http://`.
//!
//! An enum rather than a boxed trait object: the two cases are known, and hyper polls the
//! stream on every read and write, so static dispatch keeps that path free of an allocation
//! and an indirect call.

use std::error::Error as StdError;
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll, ready};
use std::time::{Duration, Instant};

use rustls::AlertDescription;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;

use crate::early_data::{EarlyHandshake, HandshakeEnd};

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
///
/// A connection dialed into TLS 1.3 early data also carries an [`EarlyWatch`] until its
/// handshake ends: tokio-rustls completes that handshake inside the connection's writes and
/// flushes, so this is where its end is seen (and published to the connection), and where its
/// deadline is kept.
#[derive(Debug)]
pub(crate) struct TlsTransport {
    stream: TlsStream<TcpStream>,
    client_certificate_required: Arc<AtomicBool>,
    early: Option<EarlyWatch>,
}

/// The handshake of a connection that started in early data, watched from its transport.
#[derive(Debug)]
pub(crate) struct EarlyWatch {
    handshake: Arc<EarlyHandshake>,
    /// `tls_handshake_timeout` after the handshake started: the dial no longer waits for it.
    deadline: Pin<Box<tokio::time::Sleep>>,
    timeout: Duration,
    /// The ALPN protocol the early data was written in (h2).
    alpn: &'static [u8],
}

impl EarlyWatch {
    pub(crate) fn new(
        handshake: Arc<EarlyHandshake>,
        deadline: Instant,
        timeout: Duration,
        alpn: &'static [u8],
    ) -> EarlyWatch {
        EarlyWatch {
            handshake,
            deadline: Box::pin(tokio::time::sleep_until(deadline.into())),
            timeout,
            alpn,
        }
    }
}

impl Drop for EarlyWatch {
    fn drop(&mut self) {
        // The connection went before its handshake ended: whoever waits for it must not wait
        // on (a no-op if it ended).
        self.handshake.end(HandshakeEnd::Failed);
    }
}

impl TlsTransport {
    pub(crate) fn new(
        stream: TlsStream<TcpStream>,
        client_certificate_required: Arc<AtomicBool>,
        early: Option<EarlyWatch>,
    ) -> TlsTransport {
        TlsTransport {
            stream,
            client_certificate_required,
            early,
        }
    }

    fn poll_read(&mut self, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        // While in early data tokio-rustls reads nothing (the handshake goes on in writes), so
        // this is also where the handshake deadline wakes the connection's driver.
        if self.early.is_some() {
            self.watch_early(cx)?;
        }
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
        if self.early.is_some() {
            self.watch_early(cx)?;
            let result = op(Pin::new(&mut self.stream), cx);
            // The write may have completed the handshake.
            self.watch_early(cx)?;
            let result = ready!(result);
            if result.is_err() {
                self.read_pending_alert();
            }
            return Poll::Ready(result);
        }
        let result = ready!(op(Pin::new(&mut self.stream), cx));
        if result.is_err() {
            self.read_pending_alert();
        }
        Poll::Ready(result)
    }

    /// While the connection is in early data: publishes the handshake's end once rustls stops
    /// handshaking (counting whether the server took the early data), or fails the
    /// connection when the handshake outlives its deadline or the server chose another
    /// protocol than the HTTP/2 already sent.
    ///
    /// Ending it once rustls stops handshaking is what lets a request that must not go early
    /// be written from then on: rustls writes no early data after the server's Finished, and
    /// tokio-rustls writes rejected early data again before anything written later.
    fn watch_early(&mut self, cx: &mut Context<'_>) -> io::Result<()> {
        let Some(watch) = self.early.as_mut() else {
            return Ok(());
        };
        let session = self.stream.get_ref().1;
        if !session.is_handshaking() {
            let alpn_h2 = session.alpn_protocol() == Some(watch.alpn);
            let accepted = session.is_early_data_accepted();
            tracing::debug!(accepted, alpn_h2, "TLS handshake after early data complete");
            watch.handshake.end(HandshakeEnd::Completed {
                resumed: session.handshake_kind() == Some(rustls::HandshakeKind::Resumed),
                accepted,
            });
            self.early = None;
            if !alpn_h2 {
                // The server did not take early data (it takes it only with the ticket's
                // ALPN), so the preface it got after the handshake is not HTTP it serves.
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    "HTTP/2 was sent as TLS early data, but the server's ALPN did not select h2",
                ));
            }
            return Ok(());
        }
        if watch.deadline.as_mut().poll(cx).is_ready() {
            watch.handshake.end(HandshakeEnd::Failed);
            return Err(io::Error::new(
                io::ErrorKind::TimedOut,
                format!(
                    "TLS handshake (with early data) not complete after {:?}",
                    watch.timeout
                ),
            ));
        }
        Ok(())
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
            Transport::Tls(tls) => {
                if let Some(watch) = &tls.early
                    && watch.handshake.hold(cx)
                {
                    // Held until the first request is written (see `EarlyHandshake`): what
                    // was written waits in rustls' buffer for the ClientHello to go first.
                    return Poll::Ready(Ok(()));
                }
                tls.on_write(cx, |stream, cx| stream.poll_flush(cx))
            }
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
