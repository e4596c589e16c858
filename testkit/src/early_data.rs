//! A TLS server stream that takes TLS 1.3 early data (0-RTT) and hands it to HTTP as it
//! arrives, as nginx with `ssl_early_data on` does.
//!
//! tokio-rustls' acceptor completes the handshake before it returns a stream, so early data
//! waits in rustls until the client's `Finished` has come (one round trip later) and the
//! client saves nothing. This stream is handed to HTTP once the `ClientHello` is processed when
//! rustls accepted early data: HTTP reads the early data at once, and, with rustls'
//! `send_half_rtt_data`, its responses leave before the client's `Finished`. Without early
//! data it completes the handshake first, as tokio-rustls does.

use std::io::{self, Read, Write};
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::task::{Context, Poll, ready};

use rustls::{ServerConfig, ServerConnection};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;

use crate::counters::ServerCounters;

/// The most early data a client may send on one connection, as nginx's limit.
pub(crate) const MAX_EARLY_DATA: u32 = 16 * 1024;

/// A server-side TLS stream over TCP whose reads start with the connection's early data.
pub(crate) struct EarlyDataTls {
    tcp: TcpStream,
    tls: ServerConnection,
    counters: Arc<ServerCounters>,
    /// Whether this connection's first byte of early data has been counted.
    early_counted: bool,
    /// Finds the HTTP/2 requests in the early data.
    early_frames: EarlyFrames,
}

impl EarlyDataTls {
    /// Processes `tcp`'s `ClientHello` and, unless rustls accepted early data, the rest of the
    /// handshake.
    ///
    /// # Errors
    ///
    /// The handshake failed or the client went away (counted in `tls_failures`, as is a
    /// handshake that fails after early data was served).
    pub(crate) async fn accept(
        tcp: TcpStream,
        config: Arc<ServerConfig>,
        counters: Arc<ServerCounters>,
    ) -> io::Result<EarlyDataTls> {
        let tls = ServerConnection::new(config).map_err(io::Error::other)?;
        let mut stream = EarlyDataTls {
            tcp,
            tls,
            counters,
            early_counted: false,
            early_frames: EarlyFrames::default(),
        };
        if let Err(error) = std::future::poll_fn(|cx| stream.poll_accept(cx)).await {
            stream.counters.tls_failures.fetch_add(1, Ordering::SeqCst);
            return Err(error);
        }
        Ok(stream)
    }

    /// The rustls connection (ALPN, server name, peer certificates).
    pub(crate) fn connection(&self) -> &ServerConnection {
        &self.tls
    }

    fn poll_accept(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        // rustls keeps its early-data state `Accepted` from the ClientHello on, through the
        // end of the handshake, so `early_data()` says whether HTTP may start now.
        while self.tls.is_handshaking() && self.tls.early_data().is_none() {
            // Pending writes register the waker too; the handshake goes on when both move.
            let _ = self.poll_flush_tls(cx)?;
            if ready!(self.poll_read_packets(cx))? == 0 {
                return Poll::Ready(Err(io::ErrorKind::UnexpectedEof.into()));
            }
        }
        // The server's flight (and, with early data, nothing yet for HTTP) leaves now.
        let _ = self.poll_flush_tls(cx)?;
        Poll::Ready(Ok(()))
    }

    /// Writes what rustls has queued (handshake messages, tickets, records) until the socket
    /// would block.
    fn poll_flush_tls(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        while self.tls.wants_write() {
            let mut io = SyncIo {
                tcp: &mut self.tcp,
                cx,
            };
            match self.tls.write_tls(&mut io) {
                Ok(0) => return Poll::Ready(Err(io::ErrorKind::WriteZero.into())),
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Poll::Pending,
                Err(e) => return Poll::Ready(Err(e)),
            }
        }
        Poll::Ready(Ok(()))
    }

    /// Reads TLS records from the socket and processes them; `Ok(0)` at the end of the TCP
    /// stream.
    fn poll_read_packets(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<usize>> {
        let mut io = SyncIo {
            tcp: &mut self.tcp,
            cx,
        };
        let n = match self.tls.read_tls(&mut io) {
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Poll::Pending,
            Err(e) => return Poll::Ready(Err(e)),
        };
        if let Err(error) = self.tls.process_new_packets() {
            // Best effort: the alert rustls queued tells the client why.
            let _ = self.tls.write_tls(&mut io);
            return Poll::Ready(Err(io::Error::new(io::ErrorKind::InvalidData, error)));
        }
        Poll::Ready(Ok(n))
    }

    /// Early data first, then what came after the handshake; `WouldBlock` when neither has
    /// a byte.
    fn read_plaintext(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if let Some(mut early) = self.tls.early_data() {
            let n = early.read(buf)?;
            if n > 0 {
                if !self.early_counted {
                    self.early_counted = true;
                    self.counters
                        .early_data_connections
                        .fetch_add(1, Ordering::SeqCst);
                }
                self.counters
                    .early_data_bytes
                    .fetch_add(n as u64, Ordering::SeqCst);
                if self.tls.alpn_protocol() == Some(b"h2") {
                    let requests = self.early_frames.headers_in(&buf[..n]);
                    self.counters
                        .early_data_requests
                        .fetch_add(requests, Ordering::SeqCst);
                }
                return Ok(n);
            }
        }
        self.tls.reader().read(buf)
    }
}

impl AsyncRead for EarlyDataTls {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        loop {
            match this.read_plaintext(buf.initialize_unfilled()) {
                Ok(n) => {
                    // n == 0: the client's close_notify (or an empty `buf`).
                    buf.advance(n);
                    return Poll::Ready(Ok(()));
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(e) => return Poll::Ready(Err(e)),
            }
            // The last records may have queued the end of the handshake's replies: session
            // tickets, a key update, an alert.
            let _ = this.poll_flush_tls(cx)?;
            // At the end of the TCP stream rustls' reader says whether it was clean.
            if let Err(error) = ready!(this.poll_read_packets(cx)) {
                if this.tls.is_handshaking() {
                    // Early data was served, and then the handshake failed.
                    this.counters.tls_failures.fetch_add(1, Ordering::SeqCst);
                }
                return Poll::Ready(Err(error));
            }
        }
    }
}

impl AsyncWrite for EarlyDataTls {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        loop {
            let n = this.tls.writer().write(buf)?;
            if n > 0 || buf.is_empty() {
                // The caller flushes; this only keeps the socket busy meanwhile.
                let _ = this.poll_flush_tls(cx)?;
                return Poll::Ready(Ok(n));
            }
            // rustls' buffer is full: the socket has to take some of it first.
            if !this.tls.wants_write() {
                return Poll::Ready(Err(io::Error::new(
                    io::ErrorKind::WriteZero,
                    "rustls takes no plaintext and has nothing to send",
                )));
            }
            ready!(this.poll_flush_tls(cx))?;
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        this.tls.writer().flush()?;
        ready!(this.poll_flush_tls(cx))?;
        Pin::new(&mut this.tcp).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        this.tls.send_close_notify();
        ready!(this.poll_flush_tls(cx))?;
        Pin::new(&mut this.tcp).poll_shutdown(cx)
    }
}

/// Walks HTTP/2 frames in a connection's early data (the client preface, then frame after
/// frame) and counts the HEADERS frames: requests sent as early data, as nginx's
/// `$ssl_early_data` tells them.
#[derive(Debug, Default)]
struct EarlyFrames {
    /// Bytes of the preface, then of the current frame's header, seen so far.
    seen: usize,
    /// The current frame's header.
    header: [u8; FRAME_HEADER],
    /// Payload bytes of the current frame still to skip.
    payload_left: usize,
}

const PREFACE: usize = 24;
const FRAME_HEADER: usize = 9;
const HEADERS: u8 = 0x1;

impl EarlyFrames {
    /// Feeds the next early bytes; returns how many HEADERS frames started in them.
    fn headers_in(&mut self, mut bytes: &[u8]) -> u64 {
        let mut headers = 0;
        while !bytes.is_empty() {
            if self.seen < PREFACE {
                let take = (PREFACE - self.seen).min(bytes.len());
                self.seen += take;
                bytes = &bytes[take..];
            } else if self.payload_left > 0 {
                let take = self.payload_left.min(bytes.len());
                self.payload_left -= take;
                bytes = &bytes[take..];
            } else {
                let at = self.seen - PREFACE;
                let take = (FRAME_HEADER - at).min(bytes.len());
                self.header[at..at + take].copy_from_slice(&bytes[..take]);
                self.seen += take;
                bytes = &bytes[take..];
                if self.seen == PREFACE + FRAME_HEADER {
                    let [a, b, c, kind, ..] = self.header;
                    self.payload_left =
                        (usize::from(a) << 16) | (usize::from(b) << 8) | usize::from(c);
                    headers += u64::from(kind == HEADERS);
                    self.seen = PREFACE;
                }
            }
        }
        headers
    }
}

/// The socket as blocking `Read`/`Write` for rustls: `WouldBlock` where tokio says `Pending`
/// (the waker is registered by then).
struct SyncIo<'a, 'b> {
    tcp: &'a mut TcpStream,
    cx: &'a mut Context<'b>,
}

impl Read for SyncIo<'_, '_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let mut buf = ReadBuf::new(buf);
        match Pin::new(&mut *self.tcp).poll_read(self.cx, &mut buf) {
            Poll::Ready(Ok(())) => Ok(buf.filled().len()),
            Poll::Ready(Err(e)) => Err(e),
            Poll::Pending => Err(io::ErrorKind::WouldBlock.into()),
        }
    }
}

impl Write for SyncIo<'_, '_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match Pin::new(&mut *self.tcp).poll_write(self.cx, buf) {
            Poll::Ready(result) => result,
            Poll::Pending => Err(io::ErrorKind::WouldBlock.into()),
        }
    }

    fn write_vectored(&mut self, bufs: &[io::IoSlice<'_>]) -> io::Result<usize> {
        match Pin::new(&mut *self.tcp).poll_write_vectored(self.cx, bufs) {
            Poll::Ready(result) => result,
            Poll::Pending => Err(io::ErrorKind::WouldBlock.into()),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// HEADERS frames are found however the early data is split, and other frames' payloads
    /// (here a SETTINGS frame whose payload holds a HEADERS type byte) are skipped.
    #[test]
    fn headers_frames_are_counted_across_any_split() {
        let mut bytes = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".to_vec();
        // SETTINGS, 6 bytes of payload, one of them 0x01.
        bytes.extend_from_slice(&[0, 0, 6, 0x4, 0, 0, 0, 0, 0, 0, 0x1, 0, 0, 0, 0x1]);
        // HEADERS on stream 1, 3 bytes; then HEADERS on stream 3, 2 bytes.
        bytes.extend_from_slice(&[0, 0, 3, HEADERS, 0x5, 0, 0, 0, 1, 0x82, 0x84, 0x87]);
        bytes.extend_from_slice(&[0, 0, 2, HEADERS, 0x5, 0, 0, 0, 3, 0x82, 0x84]);
        for split in 1..bytes.len() {
            let mut frames = EarlyFrames::default();
            let found: u64 = bytes.chunks(split).map(|c| frames.headers_in(c)).sum();
            assert_eq!(found, 2, "split every {split} bytes");
        }
    }
}
