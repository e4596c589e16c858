//! What a client's tests against the hostile servers need on their own side: a request body
//! that never ends, and the most dials a connection backoff allows in a window.

use std::convert::Infallible;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http_body::Frame;

/// A request body that yields 16 KiB chunks for ever: only the client (or the server, by
/// resetting the stream) can stop it. For uploads into a window that never opens, and
/// uploads a server answers before they end.
#[derive(Debug, Clone, Copy, Default)]
pub struct EndlessBody;

static CHUNK: [u8; 16 * 1024] = [b'x'; 16 * 1024];

impl http_body::Body for EndlessBody {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        self: Pin<&mut Self>,
        _: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        Poll::Ready(Some(Ok(Frame::data(Bytes::from_static(&CHUNK)))))
    }
}

/// The most dials an exponential backoff allows within `window`: the first at once, then
/// waits of `initial`, growing by `multiplier`, each shortened by up to `jitter` (a fraction,
/// 0.2 for ±20 %). gRPC's connection backoff is `(1 s, 1.6, 0.2)`.
pub fn most_dials_within(window: Duration, initial: Duration, multiplier: f64, jitter: f64) -> u64 {
    let mut at = 0.0;
    let mut wait = initial.as_secs_f64() * (1.0 - jitter);
    let mut dials = 1;
    loop {
        at += wait;
        if at > window.as_secs_f64() || wait <= 0.0 {
            return dials;
        }
        dials += 1;
        wait *= multiplier;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// gRPC's schedule at its shortest: 0.8, 1.28, 2.05, 3.28 s apart, so dials at 0, 0.8,
    /// 2.08, 4.13 and 7.41 s: five in 10 s, three in 3 s.
    #[test]
    fn grpc_backoff_allows_five_dials_in_ten_seconds() {
        let second = Duration::from_secs(1);
        assert_eq!(
            most_dials_within(Duration::from_secs(10), second, 1.6, 0.2),
            5
        );
        assert_eq!(
            most_dials_within(Duration::from_secs(3), second, 1.6, 0.2),
            3
        );
        assert_eq!(most_dials_within(Duration::ZERO, second, 1.6, 0.2), 1);
    }
}
