//! The HTTP/2 side of the hostile server: one [`Connection`] state machine per TLS stream,
//! and the loop that moves its bytes.
//!
//! The state machine does no I/O: bytes from the client go in ([`Connection::on_bytes`]),
//! frames for the client pile up in its [`FrameWriter`], and generators (bodies, floods)
//! top that queue up to [`HIGH_WATER`] whenever the socket has taken some. This keeps every
//! behaviour bounded by the client's reading: nothing is produced faster than it is written.
//! It also makes the behaviours unit-testable without a socket.
//!
//! Phases: `Open` reads and answers; `Flooding` writes a flood and reads nothing (a flood's
//! point is a peer that never reads the client's answers; a client that leaves shows up as a
//! failed write); `Closing` reads nothing, writes what is queued, then closes (after the
//! client's GOAWAY or the end of a CONTINUATION flood), within [`CLOSE_GRACE`].

use std::io;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::time::{Instant, Interval, MissedTickBehavior};

use super::Hostile;
use super::frame::{
    ACK, CONTINUATION, DATA, DEFAULT_MAX_FRAME, END_HEADERS, END_STREAM, Frame, FrameReader,
    FrameWriter, GOAWAY, Garbage, HEADERS, MAX_WINDOW, NO_ERROR, PING, PRIORITY, PUSH_PROMISE,
    REFUSED_STREAM, RST_STREAM, SETTINGS, SETTINGS_HEADER_TABLE_SIZE, SETTINGS_INITIAL_WINDOW_SIZE,
    SETTINGS_MAX_CONCURRENT_STREAMS, SETTINGS_MAX_FRAME_SIZE, WINDOW_UPDATE, hpack,
};
use super::streams::{Counters, Headers, StreamTable};

/// Generators stop while this many bytes wait for the socket.
const HIGH_WATER: usize = 256 * 1024;
/// SETTINGS or PING frames in one flood.
const FLOOD_FRAMES: u64 = 100_000;
/// Header-block bytes in one CONTINUATION flood.
const CONTINUATION_FLOOD_BYTES: usize = 64 << 20;
/// The value of the one literal field in each flood CONTINUATION frame.
const CONTINUATION_FIELD_VALUE: usize = 1024;
/// The size of a [`Hostile::HugeHeaders`] header block.
const HUGE_HEADERS_BYTES: usize = 1 << 20;
/// How long [`Hostile::GoAwayAtOnce`] keeps the socket open after its GOAWAY.
const GOAWAY_LINGER: Duration = Duration::from_millis(100);
/// How long a closing connection may take to write what is queued.
const CLOSE_GRACE: Duration = Duration::from_secs(1);
/// `SETTINGS_MAX_CONCURRENT_STREAMS` of the behaviours that do not change it: as
/// [`TestServerConfig`](crate::TestServerConfig)'s default.
const MAX_CONCURRENT_STREAMS: u32 = 250;
/// Both sides' initial windows before SETTINGS say otherwise (§6.9.2).
const DEFAULT_WINDOW: i64 = 65_535;
/// The shortest trickle interval: a zero period would be a busy loop.
const MIN_TRICKLE: Duration = Duration::from_millis(1);

/// Serves one HTTP/2 connection with `behaviour` until the client goes away, the behaviour
/// closes it, or the client sends garbage.
pub(crate) async fn serve<IO>(io: IO, behaviour: Hostile, counters: Arc<Counters>)
where
    IO: AsyncRead + AsyncWrite + Unpin,
{
    let (mut rd, mut wr) = tokio::io::split(io);
    let mut conn = Connection::new(behaviour, counters, Instant::now());
    let mut trickle = conn.trickle_period().map(|period| {
        let mut interval = tokio::time::interval_at(Instant::now() + period, period);
        // A late tick sends one byte, not a burst: a trickle is the point.
        interval.set_missed_tick_behavior(MissedTickBehavior::Delay);
        interval
    });
    // tokio-rustls may keep encrypted bytes after a write; they go out on flush.
    let mut unflushed = false;
    loop {
        conn.produce();
        if conn.phase == Phase::Closing && conn.out.is_empty() && !unflushed {
            break;
        }
        let reading = conn.phase == Phase::Open;
        let writing = !conn.out.is_empty();
        let deadline = conn.deadline;
        tokio::select! {
            biased;
            () = until(deadline) => break,
            read = rd.read_buf(conn.reader.buffer()), if reading => match read {
                Ok(0) | Err(_) => break,
                Ok(_) => if conn.on_bytes().is_err() {
                    break;
                },
            },
            written = write_or_flush(&mut wr, conn.out.pending()), if writing || unflushed => {
                match written {
                    Ok(Written::Bytes(n)) => {
                        conn.out.advance(n);
                        unflushed = true;
                    }
                    Ok(Written::Flushed) => unflushed = false,
                    Err(_) => break,
                }
            },
            () = tick(&mut trickle) => conn.trickle(),
        }
    }
    // A TLS close_notify, if the client still reads; a plain close otherwise.
    let _ = tokio::time::timeout(Duration::from_millis(100), wr.shutdown()).await;
}

enum Written {
    Bytes(usize),
    Flushed,
}

/// Writes some of `pending`, or flushes once nothing is pending. One future for both, as
/// both need the writer. Cancel-safe: a cancelled write has written nothing.
async fn write_or_flush<W: AsyncWrite + Unpin>(wr: &mut W, pending: &[u8]) -> io::Result<Written> {
    if pending.is_empty() {
        wr.flush().await?;
        return Ok(Written::Flushed);
    }
    match wr.write(pending).await? {
        0 => Err(io::ErrorKind::WriteZero.into()),
        n => Ok(Written::Bytes(n)),
    }
}

async fn until(deadline: Option<Instant>) {
    match deadline {
        Some(deadline) => tokio::time::sleep_until(deadline).await,
        None => std::future::pending().await,
    }
}

async fn tick(interval: &mut Option<Interval>) {
    match interval {
        Some(interval) => {
            interval.tick().await;
        }
        None => std::future::pending().await,
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Open,
    Flooding,
    Closing,
}

/// A flood in progress: what is left to send.
#[derive(Debug)]
enum Flood {
    Settings {
        left: u64,
    },
    Ping {
        left: u64,
    },
    Continuation {
        stream: u32,
        left: usize,
        field: Vec<u8>,
    },
}

/// A response body waiting for flow-control credit.
#[derive(Debug)]
struct Body {
    stream: u32,
    left: usize,
    /// The body's bytes, or `None` for `left` filler bytes.
    text: Option<&'static [u8]>,
}

/// What the client's SETTINGS said.
#[derive(Debug)]
struct PeerSettings {
    initial_window: i64,
    max_frame: usize,
    header_table_size: usize,
}

/// One HTTP/2 connection's state; see the module docs.
#[derive(Debug)]
struct Connection {
    behaviour: Hostile,
    counters: Arc<Counters>,
    reader: FrameReader,
    out: FrameWriter,
    streams: StreamTable,
    phase: Phase,
    /// When the connection ends whatever it is doing.
    deadline: Option<Instant>,
    peer: PeerSettings,
    settings_seen: bool,
    /// What the server may still send on the connection (the client's receive window).
    conn_send_window: i64,
    /// A client header block waiting for CONTINUATION frames: its stream, and what its
    /// HEADERS did.
    open_block: Option<(u32, Headers)>,
    bodies: Vec<Body>,
    trickling: Vec<u32>,
    flood: Option<Flood>,
    next_promised: u32,
}

// ===== impl Connection =====

impl Connection {
    /// A connection that has queued its opening frames.
    fn new(behaviour: Hostile, counters: Arc<Counters>, now: Instant) -> Connection {
        let mut conn = Connection {
            streams: StreamTable::new(Arc::clone(&counters)),
            behaviour,
            counters,
            reader: FrameReader::default(),
            out: FrameWriter::default(),
            phase: Phase::Open,
            deadline: None,
            peer: PeerSettings {
                initial_window: DEFAULT_WINDOW,
                max_frame: DEFAULT_MAX_FRAME,
                header_table_size: 4096,
            },
            settings_seen: false,
            conn_send_window: DEFAULT_WINDOW,
            open_block: None,
            bodies: Vec::new(),
            trickling: Vec::new(),
            flood: None,
            next_promised: 2,
        };
        conn.open(now);
        conn
    }

    /// Our SETTINGS (the server's preface, §3.4), then what a behaviour sends unasked.
    fn open(&mut self, now: Instant) {
        let settings: &[(u16, u32)] = match self.behaviour {
            Hostile::ZeroWindow | Hostile::EarlyResponseZeroWindow => &[
                (SETTINGS_MAX_CONCURRENT_STREAMS, MAX_CONCURRENT_STREAMS),
                (SETTINGS_INITIAL_WINDOW_SIZE, 0),
            ],
            Hostile::ZeroStreams => &[(SETTINGS_MAX_CONCURRENT_STREAMS, 0)],
            _ => &[(SETTINGS_MAX_CONCURRENT_STREAMS, MAX_CONCURRENT_STREAMS)],
        };
        self.out.settings(settings);
        match self.behaviour {
            Hostile::GoAwayAtOnce => {
                self.out.goaway(0, NO_ERROR);
                self.deadline = Some(now + GOAWAY_LINGER);
            }
            Hostile::WindowUpdateOverflow => {
                // The first already overflows a default window (65535 + 2^31 - 1); the
                // second overflows any window.
                self.out.window_update(0, MAX_WINDOW);
                self.out.window_update(0, MAX_WINDOW);
            }
            _ => {}
        }
    }

    fn trickle_period(&self) -> Option<Duration> {
        match self.behaviour {
            Hostile::TrickleBody { interval } => Some(interval.max(MIN_TRICKLE)),
            _ => None,
        }
    }

    /// Stops reading; what is queued goes out within [`CLOSE_GRACE`], then the connection
    /// closes.
    fn close(&mut self) {
        self.phase = Phase::Closing;
        let grace = Instant::now() + CLOSE_GRACE;
        self.deadline = Some(self.deadline.map_or(grace, |d| d.min(grace)));
    }

    /// Handles the frames complete in the read buffer, as long as the connection reads.
    fn on_bytes(&mut self) -> Result<(), Garbage> {
        while self.phase == Phase::Open {
            let Some(frame) = self.reader.next_frame()? else {
                return Ok(());
            };
            self.on_frame(frame)?;
        }
        Ok(())
    }

    fn on_frame(&mut self, frame: Frame) -> Result<(), Garbage> {
        // A header block is one unit on the wire (§4.3): nothing may come between its frames.
        if let Some((id, _)) = self.open_block
            && (frame.kind != CONTINUATION || frame.stream != id)
        {
            return Err(Garbage("a frame inside a header block"));
        }
        match frame.kind {
            DATA => self.on_data(&frame),
            HEADERS => self.on_headers(&frame),
            PRIORITY => Ok(()),
            RST_STREAM => self.on_rst_stream(&frame),
            SETTINGS => self.on_settings(&frame),
            PUSH_PROMISE => Err(Garbage("a client cannot push")),
            PING => self.on_ping(&frame),
            GOAWAY => {
                self.close();
                Ok(())
            }
            WINDOW_UPDATE => self.on_window_update(&frame),
            CONTINUATION => self.on_continuation(&frame),
            // Unknown frame types are ignored (§5.5).
            _ => Ok(()),
        }
    }

    fn on_settings(&mut self, frame: &Frame) -> Result<(), Garbage> {
        if frame.stream != 0 {
            return Err(Garbage("SETTINGS on a stream"));
        }
        if frame.has(ACK) {
            // An ACK of ours: nothing to do (the floods never look at them either).
            return if frame.payload.is_empty() {
                Ok(())
            } else {
                Err(Garbage("a SETTINGS ACK with a payload"))
            };
        }
        if !frame.payload.len().is_multiple_of(6) {
            return Err(Garbage("a SETTINGS payload not made of 6-byte parameters"));
        }
        for param in frame.payload.chunks_exact(6) {
            let id = u16::from_be_bytes([param[0], param[1]]);
            let value = u32::from_be_bytes([param[2], param[3], param[4], param[5]]);
            match id {
                SETTINGS_HEADER_TABLE_SIZE => {
                    self.peer.header_table_size = usize::try_from(value).unwrap_or(usize::MAX);
                }
                SETTINGS_INITIAL_WINDOW_SIZE => {
                    if value > MAX_WINDOW {
                        return Err(Garbage("SETTINGS_INITIAL_WINDOW_SIZE above 2^31-1"));
                    }
                    let delta = i64::from(value) - self.peer.initial_window;
                    self.peer.initial_window = i64::from(value);
                    self.streams.shift_send_windows(delta);
                }
                SETTINGS_MAX_FRAME_SIZE => {
                    if !(16_384..=16_777_215).contains(&value) {
                        return Err(Garbage("SETTINGS_MAX_FRAME_SIZE out of range"));
                    }
                    self.peer.max_frame = usize::try_from(value).unwrap_or(DEFAULT_MAX_FRAME);
                }
                // Unknown or unneeded parameters are ignored (§6.5.2).
                _ => {}
            }
        }
        self.out.settings_ack();
        if !self.settings_seen {
            self.settings_seen = true;
            self.after_handshake();
        }
        Ok(())
    }

    /// Both prefaces are exchanged: the floods start.
    fn after_handshake(&mut self) {
        let flood = match self.behaviour {
            Hostile::SettingsFlood => Flood::Settings { left: FLOOD_FRAMES },
            Hostile::PingFlood => Flood::Ping { left: FLOOD_FRAMES },
            _ => return,
        };
        self.flood = Some(flood);
        self.phase = Phase::Flooding;
    }

    fn on_ping(&mut self, frame: &Frame) -> Result<(), Garbage> {
        let Ok(payload) = <[u8; 8]>::try_from(&frame.payload[..]) else {
            return Err(Garbage("a PING payload is 8 bytes"));
        };
        if frame.stream != 0 {
            return Err(Garbage("PING on a stream"));
        }
        if !frame.has(ACK) {
            self.out.ping(true, payload);
        }
        Ok(())
    }

    fn on_window_update(&mut self, frame: &Frame) -> Result<(), Garbage> {
        let Ok(bytes) = <[u8; 4]>::try_from(&frame.payload[..]) else {
            return Err(Garbage("a WINDOW_UPDATE payload is 4 bytes"));
        };
        let increment = i64::from(u32::from_be_bytes(bytes) & MAX_WINDOW);
        if frame.stream == 0 {
            self.conn_send_window += increment;
        } else if let Some(stream) = self.streams.sendable(frame.stream) {
            stream.send_window += increment;
        }
        Ok(())
    }

    fn on_rst_stream(&mut self, frame: &Frame) -> Result<(), Garbage> {
        if frame.payload.len() != 4 || frame.stream == 0 {
            return Err(Garbage("a malformed RST_STREAM"));
        }
        self.counters.resets_received.fetch_add(1, Ordering::SeqCst);
        self.streams.reset(frame.stream);
        Ok(())
    }

    fn on_data(&mut self, frame: &Frame) -> Result<(), Garbage> {
        if frame.stream == 0 {
            return Err(Garbage("DATA on stream 0"));
        }
        let len = frame.payload.len();
        if len > 0 && self.behaviour.returns_credit() {
            // Credit back what arrived, so uploads never stall on the server. The connection
            // window counts DATA even on closed streams (§6.9); the stream's only matters
            // while the client may still send on it.
            let increment = u32::try_from(len).unwrap_or(MAX_WINDOW);
            self.out.window_update(0, increment);
            if !frame.has(END_STREAM) && self.streams.client_open(frame.stream) {
                self.out.window_update(frame.stream, increment);
            }
        }
        if frame.has(END_STREAM) {
            self.streams.client_end(frame.stream);
        }
        Ok(())
    }

    fn on_headers(&mut self, frame: &Frame) -> Result<(), Garbage> {
        if frame.stream == 0 || frame.stream.is_multiple_of(2) {
            return Err(Garbage("HEADERS on a stream a client cannot open"));
        }
        let opened = self.streams.client_headers(
            frame.stream,
            frame.has(END_STREAM),
            self.peer.initial_window,
        );
        if frame.has(END_HEADERS) {
            self.header_block_done(frame.stream, opened);
        } else {
            self.open_block = Some((frame.stream, opened));
        }
        Ok(())
    }

    fn on_continuation(&mut self, frame: &Frame) -> Result<(), Garbage> {
        let Some((id, opened)) = self.open_block else {
            return Err(Garbage("CONTINUATION outside a header block"));
        };
        if frame.has(END_HEADERS) {
            self.open_block = None;
            self.header_block_done(id, opened);
        }
        Ok(())
    }

    fn header_block_done(&mut self, id: u32, opened: Headers) {
        if opened == Headers::Opened {
            self.on_request(id);
        }
    }

    /// A new request on stream `id`: the behaviour's answer.
    fn on_request(&mut self, id: u32) {
        match self.behaviour {
            Hostile::Normal => self.answer_ok(id),
            Hostile::TrickleBody { .. } => {
                self.out.headers(id, &head(None), true, false);
                self.trickling.push(id);
            }
            Hostile::EarlyResponseZeroWindow => {
                self.out.headers(id, &head(None), true, true);
                self.streams.server_end(id);
            }
            Hostile::ZeroStreams => {
                self.out.rst_stream(id, REFUSED_STREAM);
                self.streams.reset(id);
            }
            Hostile::ContinuationFlood => self.start_continuation_flood(id),
            Hostile::HugeHeaders => {
                self.out
                    .header_block(id, &huge_block(), true, self.peer.max_frame);
                self.streams.server_end(id);
            }
            Hostile::HpackTableUpdate => {
                let mut block = Vec::new();
                let too_large = self.peer.header_table_size.saturating_add(1).max(1 << 20);
                hpack::table_size_update(&mut block, too_large);
                hpack::status_200(&mut block);
                self.out.headers(id, &block, true, true);
                self.streams.server_end(id);
            }
            Hostile::PushPromise => {
                // Server stream ids are even and run out at 2^31; then the answer is plain.
                let promised = self.next_promised;
                if promised < MAX_WINDOW {
                    self.next_promised = promised + 2;
                    self.out.push_promise(id, promised, &pushed_request());
                }
                self.answer_ok(id);
            }
            Hostile::UnreadBody { bytes } => {
                self.out.headers(id, &head(Some(bytes)), true, bytes == 0);
                if bytes == 0 {
                    self.streams.server_end(id);
                } else {
                    self.bodies.push(Body {
                        stream: id,
                        left: bytes,
                        text: None,
                    });
                }
            }
            Hostile::SilentStreams
            | Hostile::ZeroWindow
            | Hostile::GoAwayAtOnce
            | Hostile::WindowUpdateOverflow
            | Hostile::SettingsFlood
            | Hostile::PingFlood
            | Hostile::CloseAtOnce
            | Hostile::Http1TrickleStatusLine { .. } => {}
        }
    }

    /// `200`, `content-length: 2`, body `ok` (sent as flow control allows).
    fn answer_ok(&mut self, id: u32) {
        self.out.headers(id, &head(Some(2)), true, false);
        self.bodies.push(Body {
            stream: id,
            left: 2,
            text: Some(b"ok"),
        });
    }

    /// A HEADERS without END_HEADERS; [`produce`](Self::produce) sends the CONTINUATIONs.
    fn start_continuation_flood(&mut self, id: u32) {
        if self.flood.is_some() {
            return;
        }
        self.out.headers(id, &head(None), false, false);
        let mut field = Vec::with_capacity(CONTINUATION_FIELD_VALUE + 16);
        hpack::literal(&mut field, b"x-flood", &[b'f'; CONTINUATION_FIELD_VALUE]);
        self.flood = Some(Flood::Continuation {
            stream: id,
            left: CONTINUATION_FLOOD_BYTES,
            field,
        });
        // Nothing else may be sent until the header block ends, and it never does: stop
        // reading, so no PING or SETTINGS needs an answer.
        self.phase = Phase::Flooding;
    }

    /// Tops the write queue up to [`HIGH_WATER`] from bodies and floods.
    fn produce(&mut self) {
        self.send_bodies();
        self.send_flood();
    }

    fn send_bodies(&mut self) {
        let mut i = 0;
        while i < self.bodies.len() && self.out.len() < HIGH_WATER {
            let body = &mut self.bodies[i];
            let Some(stream) = self.streams.sendable(body.stream) else {
                // Reset by the client: nothing more to send.
                self.bodies.swap_remove(i);
                continue;
            };
            let n = body
                .left
                .min(credit(stream.send_window))
                .min(credit(self.conn_send_window))
                .min(self.peer.max_frame);
            if n == 0 {
                i += 1; // waits for a WINDOW_UPDATE
                continue;
            }
            stream.send_window -= n as i64;
            self.conn_send_window -= n as i64;
            let end = body.left == n;
            match body.text {
                Some(text) => {
                    let start = text.len() - body.left;
                    self.out.data(body.stream, &text[start..start + n], end);
                }
                None => self.out.data_fill(body.stream, n, b'x', end),
            }
            body.left -= n;
            if end {
                let id = body.stream;
                self.bodies.swap_remove(i);
                self.streams.server_end(id);
            }
        }
    }

    fn send_flood(&mut self) {
        while self.out.len() < HIGH_WATER {
            match &mut self.flood {
                None => return,
                Some(Flood::Settings { left: 0 } | Flood::Ping { left: 0 }) => {
                    // Bound reached: read again (the backlog of ACKs is ignored) and answer
                    // nothing, so the client's resets and its close are still seen.
                    self.flood = None;
                    self.phase = Phase::Open;
                }
                Some(Flood::Continuation { left, .. }) if *left == 0 => {
                    // The header block is still open, so nothing valid can follow: close.
                    self.flood = None;
                    self.close();
                }
                Some(Flood::Settings { left }) => {
                    *left -= 1;
                    self.out.settings(&[]);
                }
                Some(Flood::Ping { left }) => {
                    *left -= 1;
                    self.out.ping(false, left.to_be_bytes());
                }
                Some(Flood::Continuation {
                    stream,
                    left,
                    field,
                }) => {
                    *left = left.saturating_sub(field.len());
                    self.out.continuation(*stream, field, false);
                }
            }
        }
    }

    /// One byte on every trickling stream that has credit for it.
    fn trickle(&mut self) {
        let streams = &mut self.streams;
        let conn_window = &mut self.conn_send_window;
        let out = &mut self.out;
        self.trickling.retain(|&id| {
            let Some(stream) = streams.sendable(id) else {
                return false; // reset by the client
            };
            if stream.send_window > 0 && *conn_window > 0 {
                stream.send_window -= 1;
                *conn_window -= 1;
                out.data(id, b".", false);
            }
            true
        });
    }
}

impl Hostile {
    /// Whether received DATA is credited back with WINDOW_UPDATEs.
    fn returns_credit(&self) -> bool {
        !matches!(self, Hostile::ZeroWindow | Hostile::EarlyResponseZeroWindow)
    }
}

/// A window as a byte count: a negative window (after a SETTINGS shrink) allows nothing.
fn credit(window: i64) -> usize {
    usize::try_from(window).unwrap_or(0)
}

/// `:status 200`, and `content-length` if given.
fn head(content_length: Option<usize>) -> Vec<u8> {
    let mut block = Vec::new();
    hpack::status_200(&mut block);
    if let Some(len) = content_length {
        hpack::literal(&mut block, b"content-length", len.to_string().as_bytes());
    }
    block
}

/// `:status 200` and about [`HUGE_HEADERS_BYTES`] of 1000-byte literal fields.
fn huge_block() -> Vec<u8> {
    let mut block = Vec::with_capacity(HUGE_HEADERS_BYTES + 2048);
    hpack::status_200(&mut block);
    let value = [b'h'; 1000];
    let mut i = 0;
    while block.len() < HUGE_HEADERS_BYTES {
        hpack::literal(&mut block, format!("x-huge-{i:05}").as_bytes(), &value);
        i += 1;
    }
    block
}

/// The request a PUSH_PROMISE announces: `GET https://localhost/pushed`.
fn pushed_request() -> Vec<u8> {
    let mut block = Vec::new();
    hpack::indexed(&mut block, 2); // :method GET
    hpack::indexed(&mut block, 7); // :scheme https
    hpack::literal_indexed_name(&mut block, 1, b"localhost"); // :authority
    hpack::literal_indexed_name(&mut block, 4, b"/pushed"); // :path
    block
}

#[cfg(test)]
mod tests {
    use super::super::frame::{FrameReader, PREFACE};
    use super::*;

    /// A connection that has read the client preface and SETTINGS with `params`, and the
    /// frames it answered with so far.
    fn connection(behaviour: Hostile, params: &[(u16, u32)]) -> (Arc<Counters>, Connection) {
        let counters = Arc::new(Counters::default());
        let mut conn = Connection::new(behaviour, Arc::clone(&counters), Instant::now());
        let mut client = FrameWriter::default();
        client.settings(params);
        feed(&mut conn, PREFACE);
        feed(&mut conn, client.pending());
        (counters, conn)
    }

    fn feed(conn: &mut Connection, bytes: &[u8]) {
        conn.reader.buffer().extend_from_slice(bytes);
        assert_eq!(conn.on_bytes(), Ok(()));
    }

    fn send(conn: &mut Connection, frames: impl FnOnce(&mut FrameWriter)) {
        let mut client = FrameWriter::default();
        frames(&mut client);
        feed(conn, client.pending());
    }

    /// The frames the server queued since the last call: (type, flags, stream, payload).
    fn sent(conn: &mut Connection) -> Vec<(u8, u8, u32, Vec<u8>)> {
        conn.produce();
        let mut reader = FrameReader::default();
        reader.buffer().extend_from_slice(PREFACE);
        reader.buffer().extend_from_slice(conn.out.pending());
        conn.out.advance(conn.out.len());
        let mut frames = Vec::new();
        while let Ok(Some(f)) = reader.next_frame() {
            frames.push((f.kind, f.flags, f.stream, f.payload.to_vec()));
        }
        frames
    }

    fn open(c: &Counters) -> u64 {
        Counters::get(&c.open_streams)
    }

    /// `Normal`: SETTINGS first, the client's SETTINGS acknowledged, 200 + "ok" with
    /// END_STREAM, and the stream closed.
    #[test]
    fn normal_answers_ok_and_closes_the_stream() {
        let (c, mut conn) = connection(Hostile::Normal, &[]);
        let opening = sent(&mut conn);
        assert_eq!(opening[0].0, SETTINGS);
        assert_eq!((opening[1].0, opening[1].1), (SETTINGS, ACK));
        send(&mut conn, |w| w.headers(1, &[0x82], true, true));
        let frames = sent(&mut conn);
        assert_eq!((frames[0].0, frames[0].1 & END_STREAM), (HEADERS, 0));
        assert_eq!(frames[1], (DATA, END_STREAM, 1, b"ok".to_vec()));
        assert_eq!(open(&c), 0);
        assert_eq!(Counters::get(&c.streams_opened), 1);
    }

    /// H13: the server ends its half at once; the stream stays open until the client's
    /// END_STREAM, and no credit is ever returned.
    #[test]
    fn early_response_keeps_the_stream_open_while_the_client_sends() {
        let (c, mut conn) = connection(Hostile::EarlyResponseZeroWindow, &[]);
        let opening = sent(&mut conn);
        assert!(
            opening[0].3.ends_with(&[0, 4, 0, 0, 0, 0]),
            "initial window 0"
        );
        send(&mut conn, |w| w.headers(1, &[0x83], true, false));
        let frames = sent(&mut conn);
        assert_eq!(frames.len(), 1);
        assert_eq!(frames[0].1, END_HEADERS | END_STREAM);
        assert_eq!(open(&c), 1, "the client is still sending");
        send(&mut conn, |w| w.data(1, b"late", true));
        assert!(sent(&mut conn).is_empty(), "no WINDOW_UPDATE");
        assert_eq!(open(&c), 0);
    }

    /// H9: no answer; the stream is open until the client resets it.
    #[test]
    fn silent_streams_stay_open_until_reset() {
        let (c, mut conn) = connection(Hostile::SilentStreams, &[]);
        send(&mut conn, |w| {
            w.headers(1, &[0x82], true, true);
            w.headers(3, &[0x82], false, false);
            w.continuation(3, &[0x84], true);
            w.ping(false, [1; 8]);
        });
        let frames = sent(&mut conn);
        assert_eq!(frames.last().map(|f| (f.0, f.1)), Some((PING, ACK)));
        assert_eq!((open(&c), Counters::get(&c.max_open_streams)), (2, 2));
        send(&mut conn, |w| {
            w.rst_stream(1, 8);
            w.rst_stream(3, 8);
        });
        assert_eq!(open(&c), 0);
        assert_eq!(Counters::get(&c.resets_received), 2);
    }

    /// H14: MAX_CONCURRENT_STREAMS 0, and a stream opened anyway is refused.
    #[test]
    fn zero_streams_refuses() {
        let (c, mut conn) = connection(Hostile::ZeroStreams, &[]);
        assert_eq!(sent(&mut conn)[0].3, [0, 3, 0, 0, 0, 0]);
        send(&mut conn, |w| w.headers(1, &[0x82], true, true));
        assert_eq!(sent(&mut conn), [(RST_STREAM, 0, 1, vec![0, 0, 0, 7])]);
        assert_eq!(open(&c), 0);
    }

    /// `UnreadBody` sends no more than the client's windows allow, and the rest after credit.
    #[test]
    fn unread_body_respects_flow_control() {
        let (c, mut conn) = connection(
            Hostile::UnreadBody { bytes: 1000 },
            &[(SETTINGS_INITIAL_WINDOW_SIZE, 300)],
        );
        sent(&mut conn);
        send(&mut conn, |w| w.headers(1, &[0x82], true, true));
        let body: usize = sent(&mut conn)
            .iter()
            .filter(|f| f.0 == DATA)
            .map(|f| f.3.len())
            .sum();
        assert_eq!(body, 300);
        send(&mut conn, |w| w.window_update(1, 10_000));
        let frames = sent(&mut conn);
        let body: usize = frames
            .iter()
            .filter(|f| f.0 == DATA)
            .map(|f| f.3.len())
            .sum();
        assert_eq!(body, 700);
        assert_eq!(frames.last().map(|f| f.1), Some(END_STREAM));
        assert_eq!(open(&c), 0);
    }

    /// A SETTINGS flood stops reading, is bounded, and then reads again.
    #[test]
    fn settings_flood_is_bounded() {
        let (_c, mut conn) = connection(Hostile::SettingsFlood, &[]);
        assert_eq!(conn.phase, Phase::Flooding);
        let mut frames = 0u64;
        while conn.phase == Phase::Flooding {
            frames += sent(&mut conn).len() as u64;
        }
        assert!(frames > FLOOD_FRAMES && frames < FLOOD_FRAMES + 10);
        assert_eq!(conn.phase, Phase::Open);
        send(&mut conn, |w| w.headers(1, &[0x82], true, true));
        assert!(sent(&mut conn).is_empty(), "requests are not answered");
    }

    /// Garbage ends the connection.
    #[test]
    fn garbage_is_an_error() {
        let (_c, mut conn) = connection(Hostile::Normal, &[]);
        conn.reader
            .buffer()
            .extend_from_slice(&[0, 0, 3, PING, 0, 0, 0, 0, 0, 1, 2, 3]);
        assert!(conn.on_bytes().is_err());
    }
}
