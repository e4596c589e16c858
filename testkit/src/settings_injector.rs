//! Sending SETTINGS frames the server itself never chose, on a live HTTP/2 connection.
//!
//! hyper's server fixes its SETTINGS at the handshake, but real peers change them
//! mid-connection (RFC 9113 §6.5: "SETTINGS frames … MAY be sent at any time"), most
//! importantly `SETTINGS_MAX_CONCURRENT_STREAMS`. [`SettingsInjector`] sits between hyper and
//! the (TLS-terminated) byte stream. On request it writes a SETTINGS frame between two of
//! hyper's frames, and removes the client's ACK of that frame from what hyper reads, since
//! hyper never sent it and would treat the ACK as a protocol error. ACKs come back in the
//! order the SETTINGS were sent (§6.5.3), which tells ours from hyper's.

use std::collections::VecDeque;
use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker, ready};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

const FRAME_HEADER_LEN: usize = 9;
/// `PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n`, which the client sends before its first frame.
const CLIENT_PREFACE_LEN: usize = 24;
const FRAME_SETTINGS: u8 = 0x4;
const FLAG_ACK: u8 = 0x1;
const SETTINGS_MAX_CONCURRENT_STREAMS: u16 = 0x3;

/// Requests for one connection, shared with the [`TestServer`](crate::TestServer) handle.
#[derive(Debug, Default)]
pub(crate) struct Injections {
    /// `SETTINGS_MAX_CONCURRENT_STREAMS` values waiting to be sent, in order.
    pending: Mutex<VecDeque<u32>>,
    /// Wakes the connection task so an idle connection sends the frame too.
    waker: Mutex<Option<Waker>>,
    /// Injected frames the client has acknowledged.
    acked: AtomicU64,
}

impl Injections {
    /// Queues a SETTINGS frame carrying `SETTINGS_MAX_CONCURRENT_STREAMS = max_streams`.
    pub(crate) fn send_max_concurrent_streams(&self, max_streams: u32) {
        self.pending
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push_back(max_streams);
        if let Some(waker) = self.waker.lock().unwrap_or_else(|p| p.into_inner()).take() {
            waker.wake();
        }
    }

    /// Injected SETTINGS frames the client has acknowledged.
    pub(crate) fn acked(&self) -> u64 {
        self.acked.load(Ordering::SeqCst)
    }

    fn next(&self) -> Option<u32> {
        self.pending
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .pop_front()
    }

    fn register(&self, waker: &Waker) {
        *self.waker.lock().unwrap_or_else(|p| p.into_inner()) = Some(waker.clone());
    }
}

/// Frame position on one direction of the byte stream.
#[derive(Debug, Default)]
struct FrameCursor {
    header: [u8; FRAME_HEADER_LEN],
    header_len: usize,
    payload_left: usize,
}

impl FrameCursor {
    fn at_boundary(&self) -> bool {
        self.header_len == 0 && self.payload_left == 0
    }
}

/// A server-side byte stream that can carry injected SETTINGS frames. See the module docs.
#[derive(Debug)]
pub(crate) struct SettingsInjector<IO> {
    io: IO,
    injections: Arc<Injections>,
    /// Bytes of injected frames not yet written; they go out before any more of hyper's.
    out: Vec<u8>,
    written: FrameCursor,
    /// Every non-ACK SETTINGS frame sent to the client, oldest first: `true` if injected.
    sent_settings: VecDeque<bool>,
    preface_left: usize,
    /// Bytes read from the client and not yet examined.
    raw: Vec<u8>,
    /// Examined bytes ready for hyper.
    ready: Vec<u8>,
    read_payload_left: usize,
}

impl<IO> SettingsInjector<IO> {
    pub(crate) fn new(io: IO, injections: Arc<Injections>) -> SettingsInjector<IO> {
        SettingsInjector {
            io,
            injections,
            out: Vec::new(),
            written: FrameCursor::default(),
            sent_settings: VecDeque::new(),
            preface_left: CLIENT_PREFACE_LEN,
            raw: Vec::new(),
            ready: Vec::new(),
            read_payload_left: 0,
        }
    }

    /// Queues pending injections if hyper is between frames.
    fn stage_injections(&mut self) {
        if !self.written.at_boundary() {
            return;
        }
        while let Some(max_streams) = self.injections.next() {
            let value = max_streams.to_be_bytes();
            let id = SETTINGS_MAX_CONCURRENT_STREAMS.to_be_bytes();
            // Length 6, type SETTINGS, no flags, stream 0; one (id, value) pair.
            self.out
                .extend_from_slice(&[0, 0, 6, FRAME_SETTINGS, 0, 0, 0, 0, 0]);
            self.out.extend_from_slice(&id);
            self.out.extend_from_slice(&value);
            self.sent_settings.push_back(true);
        }
    }

    /// Follows hyper's frames through bytes it wrote, noting its SETTINGS frames.
    fn track_written(&mut self, mut bytes: &[u8]) {
        while !bytes.is_empty() {
            let cursor = &mut self.written;
            if cursor.payload_left > 0 {
                let n = cursor.payload_left.min(bytes.len());
                cursor.payload_left -= n;
                bytes = &bytes[n..];
                continue;
            }
            let n = (FRAME_HEADER_LEN - cursor.header_len).min(bytes.len());
            cursor.header[cursor.header_len..cursor.header_len + n].copy_from_slice(&bytes[..n]);
            cursor.header_len += n;
            bytes = &bytes[n..];
            if cursor.header_len == FRAME_HEADER_LEN {
                let h = cursor.header;
                cursor.header_len = 0;
                cursor.payload_left =
                    usize::from(h[0]) << 16 | usize::from(h[1]) << 8 | usize::from(h[2]);
                if h[3] == FRAME_SETTINGS && h[4] & FLAG_ACK == 0 {
                    self.sent_settings.push_back(false);
                }
            }
        }
    }

    /// How much of hyper's next write may go out before the next frame boundary.
    fn writable_len(&self, offered: usize) -> usize {
        let c = &self.written;
        let to_boundary = if c.payload_left > 0 {
            c.payload_left
        } else {
            FRAME_HEADER_LEN - c.header_len
        };
        // Each write stops at the end of a header or of a payload, so every frame boundary
        // falls between two writes, where an injection can go.
        offered.min(to_boundary)
    }

    /// Moves examined client bytes to `ready`, dropping ACKs of injected SETTINGS.
    fn examine_raw(&mut self) {
        loop {
            if self.preface_left > 0 {
                let n = self.preface_left.min(self.raw.len());
                if n == 0 {
                    return;
                }
                self.ready.extend(self.raw.drain(..n));
                self.preface_left -= n;
                continue;
            }
            if self.read_payload_left > 0 {
                let n = self.read_payload_left.min(self.raw.len());
                if n == 0 {
                    return;
                }
                self.ready.extend(self.raw.drain(..n));
                self.read_payload_left -= n;
                continue;
            }
            if self.raw.len() < FRAME_HEADER_LEN {
                return;
            }
            let h = &self.raw[..FRAME_HEADER_LEN];
            let len = usize::from(h[0]) << 16 | usize::from(h[1]) << 8 | usize::from(h[2]);
            let is_ack = h[3] == FRAME_SETTINGS && h[4] & FLAG_ACK != 0 && len == 0;
            // Every ACK answers the oldest unacknowledged SETTINGS, ours or hyper's.
            if is_ack && self.sent_settings.pop_front() == Some(true) {
                self.raw.drain(..FRAME_HEADER_LEN);
                self.injections.acked.fetch_add(1, Ordering::SeqCst);
                continue;
            }
            self.ready.extend(self.raw.drain(..FRAME_HEADER_LEN));
            self.read_payload_left = len;
        }
    }
}

impl<IO: AsyncWrite + Unpin> SettingsInjector<IO> {
    /// Writes staged injected bytes; `Ready(Ok)` once none are left.
    fn poll_write_out(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        while !self.out.is_empty() {
            let n = ready!(Pin::new(&mut self.io).poll_write(cx, &self.out))?;
            if n == 0 {
                return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
            }
            self.out.drain(..n);
        }
        Poll::Ready(Ok(()))
    }
}

impl<IO: AsyncRead + AsyncWrite + Unpin> AsyncRead for SettingsInjector<IO> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        // hyper keeps a read pending on every live connection: the place to notice requests
        // while the connection is otherwise idle.
        this.injections.register(cx.waker());
        this.stage_injections();
        if !this.out.is_empty() && this.poll_write_out(cx)?.is_ready() {
            // TLS buffers records until flushed.
            let _ = Pin::new(&mut this.io).poll_flush(cx)?;
        }
        loop {
            if !this.ready.is_empty() {
                let n = this.ready.len().min(buf.remaining());
                buf.put_slice(&this.ready[..n]);
                this.ready.drain(..n);
                return Poll::Ready(Ok(()));
            }
            let mut chunk = [0u8; 16 * 1024];
            let mut chunk_buf = ReadBuf::new(&mut chunk);
            ready!(Pin::new(&mut this.io).poll_read(cx, &mut chunk_buf))?;
            if chunk_buf.filled().is_empty() {
                return Poll::Ready(Ok(())); // EOF
            }
            this.raw.extend_from_slice(chunk_buf.filled());
            this.examine_raw();
        }
    }
}

impl<IO: AsyncWrite + Unpin> AsyncWrite for SettingsInjector<IO> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        this.stage_injections();
        ready!(this.poll_write_out(cx))?;
        let len = this.writable_len(buf.len());
        let n = ready!(Pin::new(&mut this.io).poll_write(cx, &buf[..len]))?;
        this.track_written(&buf[..n]);
        Poll::Ready(Ok(n))
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        this.stage_injections();
        ready!(this.poll_write_out(cx))?;
        Pin::new(&mut this.io).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        ready!(this.poll_write_out(cx))?;
        Pin::new(&mut this.io).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn injector() -> SettingsInjector<tokio::io::Empty> {
        SettingsInjector::new(tokio::io::empty(), Arc::default())
    }

    /// Injections wait for a frame boundary; hyper's own SETTINGS are remembered in order.
    #[test]
    fn injects_only_between_frames() {
        let mut inj = injector();
        // hyper's SETTINGS (empty payload), then half a DATA frame header.
        inj.track_written(&[0, 0, 0, FRAME_SETTINGS, 0, 0, 0, 0, 0]);
        inj.track_written(&[0, 0, 4, 0]);
        inj.injections.send_max_concurrent_streams(2);
        inj.stage_injections();
        assert!(inj.out.is_empty(), "mid-header: nothing injected");
        inj.track_written(&[0, 0, 0, 0, 1, b'a', b'b', b'c']);
        inj.stage_injections();
        assert!(inj.out.is_empty(), "mid-payload: nothing injected");
        inj.track_written(b"d");
        inj.stage_injections();
        assert_eq!(
            inj.out,
            [0, 0, 6, FRAME_SETTINGS, 0, 0, 0, 0, 0, 0, 3, 0, 0, 0, 2]
        );
        assert_eq!(inj.sent_settings, [false, true]);
    }

    /// The client's ACKs are matched in order: hyper's passes, ours is removed.
    #[test]
    fn removes_only_the_ack_of_an_injected_frame() {
        let mut inj = injector();
        inj.sent_settings = VecDeque::from([false, true]);
        let ack = [0, 0, 0, FRAME_SETTINGS, FLAG_ACK, 0, 0, 0, 0];
        inj.raw
            .extend_from_slice(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n");
        inj.raw.extend_from_slice(&ack);
        inj.raw
            .extend_from_slice(&[0, 0, 2, 0, 0, 0, 0, 0, 1, b'h', b'i']);
        inj.raw.extend_from_slice(&ack);
        inj.examine_raw();
        let mut expected = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".to_vec();
        expected.extend_from_slice(&ack);
        expected.extend_from_slice(&[0, 0, 2, 0, 0, 0, 0, 0, 1, b'h', b'i']);
        assert_eq!(inj.ready, expected);
        assert_eq!(inj.injections.acked(), 1);
        assert!(inj.raw.is_empty());
    }
}
