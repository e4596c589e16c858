//! A minimal HTTP/2 frame codec (RFC 9113 §4) and HPACK encoder (RFC 7541) for the hostile
//! server.
//!
//! A hostile peer has to write frames no well-behaved library would write (a header block
//! that never ends, a window update that overflows, a table size update above the limit), so
//! it cannot sit on top of `h2`. What it needs is small: the 9-byte frame header, a reader
//! that cuts frames out of a byte buffer, a writer with one function per frame type, and an
//! HPACK *encoder* for a handful of header fields. The client's header blocks are never
//! decoded: the server only needs their stream ids and flags.

use bytes::{Buf, BufMut, Bytes, BytesMut};

/// `PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n`, which the client sends before its first frame.
pub(crate) const PREFACE: &[u8; 24] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
/// Every frame starts with a header of this many bytes (§4.1).
pub(crate) const FRAME_HEADER_LEN: usize = 9;
/// The largest frame accepted from a client. Clients may not exceed our (default)
/// `SETTINGS_MAX_FRAME_SIZE` of 16 KiB; the slack only keeps the limit from being the test.
/// Anything larger ends the connection, so the read buffer stays bounded.
pub(crate) const MAX_READ_FRAME: usize = 1 << 20;
/// The frame size every peer accepts before its SETTINGS say otherwise (§6.5.2).
pub(crate) const DEFAULT_MAX_FRAME: usize = 16_384;

// ----- Frame types (§6)
pub(crate) const DATA: u8 = 0x0;
pub(crate) const HEADERS: u8 = 0x1;
pub(crate) const PRIORITY: u8 = 0x2;
pub(crate) const RST_STREAM: u8 = 0x3;
pub(crate) const SETTINGS: u8 = 0x4;
pub(crate) const PUSH_PROMISE: u8 = 0x5;
pub(crate) const PING: u8 = 0x6;
pub(crate) const GOAWAY: u8 = 0x7;
pub(crate) const WINDOW_UPDATE: u8 = 0x8;
pub(crate) const CONTINUATION: u8 = 0x9;

// ----- Flags
pub(crate) const END_STREAM: u8 = 0x1;
pub(crate) const ACK: u8 = 0x1;
pub(crate) const END_HEADERS: u8 = 0x4;

// ----- SETTINGS parameters (§6.5.2)
pub(crate) const SETTINGS_HEADER_TABLE_SIZE: u16 = 0x1;
pub(crate) const SETTINGS_MAX_CONCURRENT_STREAMS: u16 = 0x3;
pub(crate) const SETTINGS_INITIAL_WINDOW_SIZE: u16 = 0x4;
pub(crate) const SETTINGS_MAX_FRAME_SIZE: u16 = 0x5;

// ----- Error codes (§7)
pub(crate) const NO_ERROR: u32 = 0x0;
pub(crate) const REFUSED_STREAM: u32 = 0x7;

/// The largest flow-control window (§6.9.1): 2^31 - 1.
pub(crate) const MAX_WINDOW: u32 = 0x7fff_ffff;

/// One frame read from the client.
#[derive(Debug)]
pub(crate) struct Frame {
    pub(crate) kind: u8,
    pub(crate) flags: u8,
    pub(crate) stream: u32,
    pub(crate) payload: Bytes,
}

impl Frame {
    pub(crate) fn has(&self, flag: u8) -> bool {
        self.flags & flag != 0
    }
}

/// Why a connection is ended: the client sent something that is not HTTP/2, or breaks a rule
/// the server relies on. Test peers end the connection rather than guess.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Garbage(pub(crate) &'static str);

// ===== impl FrameReader =====

/// Cuts the client preface, then frames, out of the bytes read so far.
#[derive(Debug, Default)]
pub(crate) struct FrameReader {
    buf: BytesMut,
    preface_seen: bool,
}

impl FrameReader {
    /// The buffer to read into, with room for at least one more read.
    pub(crate) fn buffer(&mut self) -> &mut BytesMut {
        self.buf.reserve(16 * 1024);
        &mut self.buf
    }

    /// The next complete frame, `None` if more bytes are needed.
    pub(crate) fn next_frame(&mut self) -> Result<Option<Frame>, Garbage> {
        if !self.preface_seen {
            if self.buf.len() < PREFACE.len() {
                // A prefix of the preface so far: wait. Anything else cannot become one.
                return if PREFACE.starts_with(&self.buf) {
                    Ok(None)
                } else {
                    Err(Garbage("not an HTTP/2 client preface"))
                };
            }
            if self.buf[..PREFACE.len()] != PREFACE[..] {
                return Err(Garbage("not an HTTP/2 client preface"));
            }
            self.buf.advance(PREFACE.len());
            self.preface_seen = true;
        }
        if self.buf.len() < FRAME_HEADER_LEN {
            return Ok(None);
        }
        let h = &self.buf[..FRAME_HEADER_LEN];
        let len = usize::from(h[0]) << 16 | usize::from(h[1]) << 8 | usize::from(h[2]);
        if len > MAX_READ_FRAME {
            return Err(Garbage("frame larger than the read limit"));
        }
        if self.buf.len() < FRAME_HEADER_LEN + len {
            return Ok(None);
        }
        let kind = h[3];
        let flags = h[4];
        // The reserved high bit is ignored on receipt (§4.1).
        let stream = u32::from_be_bytes([h[5], h[6], h[7], h[8]]) & MAX_WINDOW;
        self.buf.advance(FRAME_HEADER_LEN);
        let payload = self.buf.split_to(len).freeze();
        Ok(Some(Frame {
            kind,
            flags,
            stream,
            payload,
        }))
    }
}

// ===== impl FrameWriter =====

/// Frames queued for the client, in order; one function per frame type.
#[derive(Debug, Default)]
pub(crate) struct FrameWriter {
    buf: BytesMut,
}

impl FrameWriter {
    /// The bytes not yet written to the socket.
    pub(crate) fn pending(&self) -> &[u8] {
        &self.buf
    }

    /// Marks `n` bytes as written.
    pub(crate) fn advance(&mut self, n: usize) {
        self.buf.advance(n);
    }

    pub(crate) fn len(&self) -> usize {
        self.buf.len()
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.buf.is_empty()
    }

    fn header(&mut self, len: usize, kind: u8, flags: u8, stream: u32) {
        debug_assert!(len < 1 << 24, "a frame length has 24 bits");
        debug_assert!(stream <= MAX_WINDOW, "a stream id has 31 bits");
        self.buf.reserve(FRAME_HEADER_LEN + len);
        let len = u32::try_from(len).unwrap_or(u32::MAX).to_be_bytes();
        self.buf.put_slice(&len[1..]);
        self.buf.put_u8(kind);
        self.buf.put_u8(flags);
        self.buf.put_u32(stream);
    }

    /// A SETTINGS frame carrying `params`.
    pub(crate) fn settings(&mut self, params: &[(u16, u32)]) {
        self.header(params.len() * 6, SETTINGS, 0, 0);
        for &(id, value) in params {
            self.buf.put_u16(id);
            self.buf.put_u32(value);
        }
    }

    /// The acknowledgement of the client's SETTINGS.
    pub(crate) fn settings_ack(&mut self) {
        self.header(0, SETTINGS, ACK, 0);
    }

    /// A PING, or the answer to one (`ack`), carrying `payload`.
    pub(crate) fn ping(&mut self, ack: bool, payload: [u8; 8]) {
        self.header(8, PING, if ack { ACK } else { 0 }, 0);
        self.buf.put_slice(&payload);
    }

    /// A HEADERS frame carrying `block` (all or the first part of a header block).
    pub(crate) fn headers(
        &mut self,
        stream: u32,
        block: &[u8],
        end_headers: bool,
        end_stream: bool,
    ) {
        let mut flags = 0;
        if end_headers {
            flags |= END_HEADERS;
        }
        if end_stream {
            flags |= END_STREAM;
        }
        self.header(block.len(), HEADERS, flags, stream);
        self.buf.put_slice(block);
    }

    /// A CONTINUATION frame carrying the next part of a header block.
    pub(crate) fn continuation(&mut self, stream: u32, block: &[u8], end_headers: bool) {
        let flags = if end_headers { END_HEADERS } else { 0 };
        self.header(block.len(), CONTINUATION, flags, stream);
        self.buf.put_slice(block);
    }

    /// A whole header block: one HEADERS frame, then CONTINUATION frames, each at most
    /// `max_frame` bytes, END_HEADERS on the last.
    pub(crate) fn header_block(
        &mut self,
        stream: u32,
        block: &[u8],
        end_stream: bool,
        max_frame: usize,
    ) {
        let max_frame = max_frame.max(1);
        let mut parts = block.chunks(max_frame);
        let first = parts.next().unwrap_or_default();
        let mut rest = parts.peekable();
        self.headers(stream, first, rest.peek().is_none(), end_stream);
        while let Some(part) = rest.next() {
            self.continuation(stream, part, rest.peek().is_none());
        }
    }

    /// A DATA frame of `len` copies of `fill`.
    pub(crate) fn data_fill(&mut self, stream: u32, len: usize, fill: u8, end_stream: bool) {
        self.header(len, DATA, if end_stream { END_STREAM } else { 0 }, stream);
        self.buf.put_bytes(fill, len);
    }

    /// A DATA frame carrying `payload`.
    pub(crate) fn data(&mut self, stream: u32, payload: &[u8], end_stream: bool) {
        self.header(
            payload.len(),
            DATA,
            if end_stream { END_STREAM } else { 0 },
            stream,
        );
        self.buf.put_slice(payload);
    }

    /// RST_STREAM with error `code`.
    pub(crate) fn rst_stream(&mut self, stream: u32, code: u32) {
        self.header(4, RST_STREAM, 0, stream);
        self.buf.put_u32(code);
    }

    /// GOAWAY naming `last_stream` as the last stream processed, with error `code`.
    pub(crate) fn goaway(&mut self, last_stream: u32, code: u32) {
        self.header(8, GOAWAY, 0, 0);
        self.buf.put_u32(last_stream & MAX_WINDOW);
        self.buf.put_u32(code);
    }

    /// WINDOW_UPDATE on `stream` (0: the connection) by `increment`.
    pub(crate) fn window_update(&mut self, stream: u32, increment: u32) {
        self.header(4, WINDOW_UPDATE, 0, stream);
        self.buf.put_u32(increment & MAX_WINDOW);
    }

    /// PUSH_PROMISE on `stream` reserving `promised`, with a complete request header block.
    pub(crate) fn push_promise(&mut self, stream: u32, promised: u32, block: &[u8]) {
        self.header(4 + block.len(), PUSH_PROMISE, END_HEADERS, stream);
        self.buf.put_u32(promised & MAX_WINDOW);
        self.buf.put_slice(block);
    }
}

// ===== HPACK encoding =====

/// HPACK field encoding (RFC 7541 §6), no Huffman, no dynamic table: enough to say what the
/// hostile server says, and nothing the client would have to remember.
pub(crate) mod hpack {
    /// An integer with an `prefix_bits`-bit prefix, the prefix's other bits being `first`
    /// (§5.1).
    pub(crate) fn integer(out: &mut Vec<u8>, first: u8, prefix_bits: u8, value: usize) {
        let max = (1usize << prefix_bits) - 1;
        if value < max {
            // Fits the prefix; `value < max <= 255`, so the cast is exact.
            out.push(first | value as u8);
            return;
        }
        out.push(first | max as u8);
        let mut rest = value - max;
        while rest >= 0x80 {
            out.push((rest & 0x7f) as u8 | 0x80);
            rest >>= 7;
        }
        out.push(rest as u8);
    }

    /// `:status 200`: static table index 8, indexed (§6.1).
    pub(crate) fn status_200(out: &mut Vec<u8>) {
        out.push(0x88);
    }

    /// A string literal without Huffman coding (§5.2).
    fn string(out: &mut Vec<u8>, s: &[u8]) {
        integer(out, 0x00, 7, s.len());
        out.extend_from_slice(s);
    }

    /// Literal header field without indexing, new name (§6.2.2).
    pub(crate) fn literal(out: &mut Vec<u8>, name: &[u8], value: &[u8]) {
        out.push(0x00);
        string(out, name);
        string(out, value);
    }

    /// Literal header field without indexing, name from static table entry `index` (§6.2.2).
    pub(crate) fn literal_indexed_name(out: &mut Vec<u8>, index: usize, value: &[u8]) {
        integer(out, 0x00, 4, index);
        string(out, value);
    }

    /// An indexed field from the static table (§6.1).
    pub(crate) fn indexed(out: &mut Vec<u8>, index: usize) {
        integer(out, 0x80, 7, index);
    }

    /// A dynamic table size update to `size` (§6.3).
    pub(crate) fn table_size_update(out: &mut Vec<u8>, size: usize) {
        integer(out, 0x20, 5, size);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reader_with(bytes: &[u8]) -> FrameReader {
        let mut reader = FrameReader::default();
        reader.buffer().extend_from_slice(bytes);
        reader
    }

    /// The preface is checked, then frames come out whole, with flags and stream id.
    #[test]
    fn reads_preface_then_frames() {
        let mut bytes = PREFACE.to_vec();
        bytes.extend_from_slice(&[0, 0, 2, HEADERS, END_STREAM | END_HEADERS, 0x80, 0, 0, 3]);
        bytes.extend_from_slice(b"ab");
        bytes.extend_from_slice(&[0, 0, 4]);
        let mut reader = reader_with(&bytes);
        let frame = reader.next_frame().ok().flatten();
        let Some(frame) = frame else {
            panic!("a complete frame is read");
        };
        assert_eq!(frame.kind, HEADERS);
        assert!(frame.has(END_STREAM) && frame.has(END_HEADERS));
        assert_eq!(frame.stream, 3, "the reserved bit is dropped");
        assert_eq!(&frame.payload[..], b"ab");
        assert!(
            matches!(reader.next_frame(), Ok(None)),
            "half a header: wait"
        );
    }

    /// Bytes that cannot be a preface, and frames over the read limit, end the connection.
    #[test]
    fn rejects_garbage_and_huge_frames() {
        assert!(reader_with(b"GET / HTTP/1.1\r\n").next_frame().is_err());
        assert!(matches!(reader_with(b"PRI * HT").next_frame(), Ok(None)));
        let mut bytes = PREFACE.to_vec();
        bytes.extend_from_slice(&[0x10, 0, 1, DATA, 0, 0, 0, 0, 1]);
        assert!(reader_with(&bytes).next_frame().is_err());
    }

    /// RFC 7541 C.1: integers with and without continuation bytes.
    #[test]
    fn encodes_hpack_integers() {
        let mut out = Vec::new();
        hpack::integer(&mut out, 0, 5, 10);
        assert_eq!(out, [10]);
        out.clear();
        hpack::integer(&mut out, 0, 5, 1337);
        assert_eq!(out, [31, 154, 10]);
        out.clear();
        hpack::table_size_update(&mut out, 1 << 20);
        assert_eq!(out, [0x3f, 0xe1, 0xff, 0x3f]);
    }

    /// A literal without indexing, new name: 0x00, name, value, each length-prefixed.
    #[test]
    fn encodes_literals() {
        let mut out = Vec::new();
        hpack::status_200(&mut out);
        hpack::literal(&mut out, b"content-length", b"2");
        let mut expected = vec![0x88, 0x00, 14];
        expected.extend_from_slice(b"content-length");
        expected.extend_from_slice(&[1, b'2']);
        assert_eq!(out, expected);
    }

    /// A long header block is cut into HEADERS and CONTINUATION frames within the frame size,
    /// END_HEADERS on the last only.
    #[test]
    fn splits_header_blocks() {
        let mut writer = FrameWriter::default();
        writer.header_block(1, &[7u8; 10], true, 4);
        let mut reader = reader_with(PREFACE);
        reader.buffer().extend_from_slice(writer.pending());
        let mut frames = Vec::new();
        while let Ok(Some(frame)) = reader.next_frame() {
            frames.push((frame.kind, frame.flags, frame.payload.len()));
        }
        assert_eq!(
            frames,
            [
                (HEADERS, END_STREAM, 4),
                (CONTINUATION, 0, 4),
                (CONTINUATION, END_HEADERS, 2)
            ]
        );
    }
}
