//! The HTTP/1.1 side of the hostile server: [`Hostile::Http1TrickleStatusLine`](crate::Hostile::Http1TrickleStatusLine).
//!
//! The response head never ends: after the status line, one header line is trickled on
//! without its CRLF, so a client that only watches for silence between reads is never
//! told to stop. Only a deadline on the whole head ends the exchange.

use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::time::{Instant, MissedTickBehavior};

use super::streams::{Counters, StreamTable};

/// The largest request head read; a client sending more is cut off.
const MAX_HEAD: usize = 64 * 1024;
const STATUS_LINE: &[u8] = b"HTTP/1.1 200 OK\r\n";
/// Trickled after the status line, then `a` bytes, never a CRLF.
const TRICKLE_HEADER: &[u8] = b"x-trickle: ";
/// Bytes trickled in all before the server falls silent (still never finishing the head): a
/// forgotten connection stops sending.
const MAX_TRICKLE: usize = 64 * 1024;
/// The shortest trickle interval: a zero period would be a busy loop.
const MIN_TRICKLE: Duration = Duration::from_millis(1);

/// Reads one request head, then trickles an endless response head, one byte every
/// `interval`, until the client goes away.
pub(crate) async fn serve_trickle<IO>(io: IO, interval: Duration, counters: Arc<Counters>)
where
    IO: AsyncRead + AsyncWrite + Unpin,
{
    let (mut rd, mut wr) = tokio::io::split(io);
    // HTTP/1.1 has one request in flight: stream 1, open until the connection closes.
    let mut streams = StreamTable::new(counters);
    let mut opened = false;
    let mut head = Vec::with_capacity(1024);
    let mut buf = [0u8; 4096];
    loop {
        let n = match rd.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        head.extend_from_slice(&buf[..n]);
        if !opened && contains(&head, b"\r\n") {
            opened = true;
            streams.client_headers(1, false, 0);
        }
        if contains(&head, b"\r\n\r\n") {
            break;
        }
        if head.len() > MAX_HEAD {
            return;
        }
    }

    let period = interval.max(MIN_TRICKLE);
    let mut ticks = tokio::time::interval_at(Instant::now() + period, period);
    ticks.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let mut sent = 0;
    loop {
        tokio::select! {
            biased;
            // Whatever else the client sends (a body, another request) is dropped; reading
            // it is how the server learns the client has gone.
            read = rd.read(&mut buf) => match read {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            },
            _ = ticks.tick(), if sent < MAX_TRICKLE => {
                let byte = trickle_byte(sent);
                if wr.write_all(&[byte]).await.is_err() || wr.flush().await.is_err() {
                    return;
                }
                sent += 1;
            }
        }
    }
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

/// The `i`-th byte of the endless head.
fn trickle_byte(i: usize) -> u8 {
    let header = i.checked_sub(STATUS_LINE.len());
    STATUS_LINE
        .get(i)
        .or_else(|| header.and_then(|j| TRICKLE_HEADER.get(j)))
        .copied()
        .unwrap_or(b'a')
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The status line, then a header line that never ends.
    #[test]
    fn the_head_never_ends() {
        let head: Vec<u8> = (0..40).map(trickle_byte).collect();
        assert_eq!(&head[..], b"HTTP/1.1 200 OK\r\nx-trickle: aaaaaaaaaaaa");
    }
}
