//! What a [`HostileServer`](crate::HostileServer) counts, and the per-connection stream table
//! that keeps the open-stream gauge honest.
//!
//! A stream is open from the client's HEADERS until it is closed in both directions (RFC
//! 9113 §5.1, simplified to the two halves that matter here):
//!
//! - the client's half closes on END_STREAM (on HEADERS or DATA) or on its RST_STREAM;
//! - the server's half closes when the server sends END_STREAM or RST_STREAM;
//! - any RST_STREAM closes both halves, and a closed connection closes all its streams.
//!
//! So a stream the server answered early (END_STREAM on its HEADERS) stays open while the
//! client is still sending, and a stream the server never answers stays open until the
//! client resets it. The table is the only writer of `open_streams`, and removes a stream
//! (lowering the gauge) exactly when both halves are closed, or when the connection ends.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

/// The server's counters, shared by its connections and the handle.
#[derive(Debug, Default)]
pub(crate) struct Counters {
    /// TCP connections accepted.
    pub(crate) connections_accepted: AtomicU64,
    /// Connections whose socket is still open; changed only by [`LiveConnection`].
    pub(crate) live_connections: AtomicU64,
    /// Client HEADERS frames that opened a stream (HTTP/1.1: request lines read).
    pub(crate) streams_opened: AtomicU64,
    /// Streams open now, over live connections; changed only by [`StreamTable`].
    pub(crate) open_streams: AtomicU64,
    /// The most streams open at once on any one connection.
    pub(crate) max_open_streams: AtomicU64,
    /// RST_STREAM frames from clients.
    pub(crate) resets_received: AtomicU64,
}

impl Counters {
    pub(crate) fn get(counter: &AtomicU64) -> u64 {
        counter.load(Ordering::SeqCst)
    }
}

/// Counts one connection as live for as long as it is held.
#[derive(Debug)]
pub(crate) struct LiveConnection(Arc<Counters>);

impl LiveConnection {
    pub(crate) fn new(counters: Arc<Counters>) -> LiveConnection {
        counters.live_connections.fetch_add(1, Ordering::SeqCst);
        LiveConnection(counters)
    }
}

impl Drop for LiveConnection {
    fn drop(&mut self) {
        let before = self.0.live_connections.fetch_sub(1, Ordering::SeqCst);
        debug_assert!(before > 0, "live_connections fell below zero");
    }
}

/// One open stream.
#[derive(Debug)]
pub(crate) struct Stream {
    client_open: bool,
    server_open: bool,
    /// What the server may still send on this stream (the client's receive window).
    pub(crate) send_window: i64,
}

/// What a client HEADERS frame did to the table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Headers {
    /// It opened a new stream: a request.
    Opened,
    /// It belongs to a stream already open (trailers).
    Existing,
    /// It names a stream that was opened before and has closed: nothing to do.
    Stale,
}

/// The open streams of one connection. See the module docs for when a stream closes.
#[derive(Debug)]
pub(crate) struct StreamTable {
    counters: Arc<Counters>,
    streams: HashMap<u32, Stream>,
    /// The highest stream id the client has opened: lower ids not in `streams` are closed.
    last_opened: u32,
}

impl StreamTable {
    pub(crate) fn new(counters: Arc<Counters>) -> StreamTable {
        StreamTable {
            counters,
            streams: HashMap::new(),
            last_opened: 0,
        }
    }

    /// A client HEADERS on `id`; `end_stream` closes the client's half at once.
    pub(crate) fn client_headers(
        &mut self,
        id: u32,
        end_stream: bool,
        send_window: i64,
    ) -> Headers {
        if let Some(stream) = self.streams.get_mut(&id) {
            if end_stream {
                stream.client_open = false;
                self.remove_if_closed(id);
            }
            return Headers::Existing;
        }
        if id <= self.last_opened {
            return Headers::Stale;
        }
        self.last_opened = id;
        self.streams.insert(
            id,
            Stream {
                client_open: !end_stream,
                server_open: true,
                send_window,
            },
        );
        self.counters.streams_opened.fetch_add(1, Ordering::SeqCst);
        self.counters.open_streams.fetch_add(1, Ordering::SeqCst);
        self.counters
            .max_open_streams
            .fetch_max(self.streams.len() as u64, Ordering::SeqCst);
        Headers::Opened
    }

    /// The client sent END_STREAM on `id`.
    pub(crate) fn client_end(&mut self, id: u32) {
        if let Some(stream) = self.streams.get_mut(&id) {
            stream.client_open = false;
            self.remove_if_closed(id);
        }
    }

    /// The server sent END_STREAM on `id`.
    pub(crate) fn server_end(&mut self, id: u32) {
        if let Some(stream) = self.streams.get_mut(&id) {
            stream.server_open = false;
            self.remove_if_closed(id);
        }
    }

    /// Either side sent RST_STREAM on `id`: both halves close.
    pub(crate) fn reset(&mut self, id: u32) {
        if self.streams.remove(&id).is_some() {
            self.closed(1);
        }
    }

    /// Whether the client may still send on `id` (so a stream WINDOW_UPDATE means something).
    pub(crate) fn client_open(&self, id: u32) -> bool {
        self.streams.get(&id).is_some_and(|s| s.client_open)
    }

    /// The stream, if the server may still send on it.
    pub(crate) fn sendable(&mut self, id: u32) -> Option<&mut Stream> {
        self.streams.get_mut(&id).filter(|s| s.server_open)
    }

    /// Moves every stream's send window by `delta` (a new SETTINGS_INITIAL_WINDOW_SIZE,
    /// §6.9.2).
    pub(crate) fn shift_send_windows(&mut self, delta: i64) {
        for stream in self.streams.values_mut() {
            stream.send_window += delta;
        }
    }

    fn remove_if_closed(&mut self, id: u32) {
        if self
            .streams
            .get(&id)
            .is_some_and(|s| !s.client_open && !s.server_open)
        {
            self.streams.remove(&id);
            self.closed(1);
        }
    }

    fn closed(&self, n: u64) {
        let before = self.counters.open_streams.fetch_sub(n, Ordering::SeqCst);
        debug_assert!(before >= n, "open_streams fell below zero");
    }
}

impl Drop for StreamTable {
    /// The connection is gone: its streams are closed.
    fn drop(&mut self) {
        if !self.streams.is_empty() {
            self.closed(self.streams.len() as u64);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table() -> (Arc<Counters>, StreamTable) {
        let counters = Arc::new(Counters::default());
        (Arc::clone(&counters), StreamTable::new(counters))
    }

    fn open(c: &Counters) -> u64 {
        Counters::get(&c.open_streams)
    }

    /// A stream stays open until both halves close, in either order.
    #[test]
    fn a_stream_closes_when_both_halves_have() {
        let (c, mut t) = table();
        assert_eq!(t.client_headers(1, false, 10), Headers::Opened);
        assert_eq!(t.client_headers(3, false, 10), Headers::Opened);
        t.server_end(1);
        assert_eq!(open(&c), 2, "server ended, client still sending");
        t.client_end(1);
        t.client_end(3);
        assert_eq!(open(&c), 1);
        t.server_end(3);
        assert_eq!(open(&c), 0);
        assert_eq!(Counters::get(&c.streams_opened), 2);
        assert_eq!(Counters::get(&c.max_open_streams), 2);
    }

    /// A reset closes both halves; HEADERS on a closed stream does not reopen it.
    #[test]
    fn resets_close_and_stale_headers_do_not_reopen() {
        let (c, mut t) = table();
        t.client_headers(1, true, 10);
        t.reset(1);
        assert_eq!(open(&c), 0);
        assert_eq!(t.client_headers(1, false, 10), Headers::Stale);
        assert_eq!(open(&c), 0);
        assert_eq!(Counters::get(&c.streams_opened), 1);
    }

    /// Dropping the table (the connection closed) closes what was still open.
    #[test]
    fn a_closed_connection_closes_its_streams() {
        let (c, mut t) = table();
        t.client_headers(1, false, 10);
        t.client_headers(3, true, 10);
        assert_eq!(open(&c), 2);
        drop(t);
        assert_eq!(open(&c), 0);
    }
}
