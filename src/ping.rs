//! HTTP/2 PINGs, sent by a connection's driver task for two jobs:
//!
//! 1. **Keep-alive.** Every `http2_keep_alive_interval` a PING goes out, busy or idle; one
//!    unanswered for `http2_keep_alive_timeout` evicts the connection (a dead peer behind a NAT
//!    answers nothing, and TCP alone would notice only after minutes).
//! 2. **Adaptive flow control** (`http2_adaptive_window`), hyper's bandwidth-delay-product
//!    estimator: while response DATA arrives, a PING measures the round trip and the bytes
//!    received during it; when a sample reaches half the current window, the window doubles
//!    (up to 16 MiB). Bodies report DATA through a [`DataRecorder`], which exists only when the
//!    option is on; while no sample is due it costs a frame two relaxed atomic operations, no
//!    lock and no clock.
//!
//! h2 allows one user PING in flight, so both jobs share it: a BDP ping in flight also counts
//! as the keep-alive probe.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll};
use std::time::Duration;

use h2::{Ping, PingPong};
use tokio::time::{Instant, Sleep};
use tracing::trace;

/// The largest stream window BDP estimation grows to (the connection window grows to twice
/// it); beyond it TCP's own flow control governs.
pub(crate) const BDP_LIMIT: u32 = 16 * 1024 * 1024;

/// The largest flow-control window HTTP/2 allows (RFC 9113 §6.9.1).
const MAX_WINDOW: u32 = (1 << 31) - 1;

/// What the driver must act on.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum PingEvent {
    /// Raise the receive windows: every stream's to `stream`, the connection's to `connection`.
    WindowUpdate {
        /// The new `SETTINGS_INITIAL_WINDOW_SIZE`, applied to open streams too.
        stream: u32,
        /// The new connection window target.
        connection: u32,
    },
    /// The keep-alive PING went unanswered: evict the connection.
    KeepAliveTimedOut,
}

/// The driver's side: sends keep-alive PINGs, reads PONGs, computes window updates.
pub(crate) struct Pinger {
    shared: Arc<Mutex<Shared>>,
    gate: Arc<Gate>,
    keep_alive: Option<KeepAlive>,
    bdp: Option<Bdp>,
    /// While the estimator backs off: when the gate opens again.
    bdp_sleep: Option<Pin<Box<Sleep>>>,
}

/// A body's side of BDP estimation: counts received DATA and starts a sample when due.
#[derive(Clone)]
pub(crate) struct DataRecorder {
    shared: Arc<Mutex<Shared>>,
    gate: Arc<Gate>,
}

/// What a body checks per DATA frame before taking the lock: whether a sample may run.
struct Gate {
    /// A sample is in flight or may start with the next DATA. Closed while the estimator
    /// backs off after a stable sample; the driver opens it when the delay has passed.
    open: AtomicBool,
    /// Bytes read while closed...
    since_sample: AtomicUsize,
    /// ...and how many open it early (`usize::MAX` once the window is at its limit): backing
    /// off after small responses must not keep a large download that follows from growing it.
    early_sample_after: AtomicUsize,
}

impl std::fmt::Debug for DataRecorder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DataRecorder").finish_non_exhaustive()
    }
}

struct Shared {
    ping_pong: PingPong,
    /// When the PING in flight was sent; `None` when none is.
    sent_at: Option<Instant>,
    /// Bytes received during the current BDP sample.
    bytes: usize,
}

impl Shared {
    fn send_ping(&mut self) {
        match self.ping_pong.send_ping(Ping::opaque()) {
            Ok(()) => self.sent_at = Some(Instant::now()),
            // The connection is closing; the driver learns it from h2 itself.
            Err(error) => trace!(error = %error, "could not send PING"),
        }
    }
}

struct KeepAlive {
    interval: Duration,
    timeout: Duration,
    sleep: Pin<Box<Sleep>>,
    /// A keep-alive probe is out: the sleep is its deadline, not the next interval.
    probing: bool,
}

struct Bdp {
    /// Current window estimate, in bytes: the stream window.
    window: u32,
    /// The connection window never goes below its configured size.
    connection_floor: u32,
    max_bandwidth: f64,
    /// Smoothed round trip, in seconds.
    rtt: f64,
    /// Delay before the next sample; grows while the estimate is stable.
    ping_delay: Duration,
    stable_count: u32,
}

impl Pinger {
    /// `keep_alive`: interval and timeout; `bdp_windows`: the stream and connection windows the
    /// connection opened with, from which BDP grows, `None` when the adaptive window is off.
    /// Returns `None` when neither is on.
    pub(crate) fn new(
        ping_pong: PingPong,
        keep_alive: Option<(Duration, Duration)>,
        bdp_windows: Option<(u32, u32)>,
    ) -> Option<(Pinger, Option<DataRecorder>)> {
        if keep_alive.is_none() && bdp_windows.is_none() {
            return None;
        }
        let shared = Arc::new(Mutex::new(Shared {
            ping_pong,
            sent_at: None,
            bytes: 0,
        }));
        let gate = Arc::new(Gate {
            open: AtomicBool::new(true),
            since_sample: AtomicUsize::new(0),
            early_sample_after: AtomicUsize::new(
                bdp_windows.map_or(usize::MAX, |(stream, _)| early_sample_after(stream)),
            ),
        });
        let keep_alive = keep_alive.map(|(interval, timeout)| KeepAlive {
            interval,
            timeout,
            sleep: Box::pin(tokio::time::sleep(interval)),
            probing: false,
        });
        let bdp = bdp_windows.map(|(stream, connection)| Bdp {
            window: stream,
            connection_floor: connection,
            max_bandwidth: 0.0,
            rtt: 0.0,
            ping_delay: Duration::from_millis(100),
            stable_count: 0,
        });
        let recorder = bdp.as_ref().map(|_| DataRecorder {
            shared: Arc::clone(&shared),
            gate: Arc::clone(&gate),
        });
        Some((
            Pinger {
                shared,
                gate,
                keep_alive,
                bdp,
                bdp_sleep: None,
            },
            recorder,
        ))
    }

    /// Polled by the driver after each poll of the h2 connection.
    pub(crate) fn poll(&mut self, cx: &mut Context<'_>) -> Poll<PingEvent> {
        if let Some(sleep) = &mut self.bdp_sleep
            && sleep.as_mut().poll(cx).is_ready()
        {
            self.bdp_sleep = None;
            self.gate.open.store(true, Ordering::Relaxed);
        }
        let mut shared = lock(&self.shared);
        if let Some(ka) = &mut self.keep_alive
            && !ka.probing
            && ka.sleep.as_mut().poll(cx).is_ready()
        {
            // A BDP ping already in flight serves as the probe.
            if shared.sent_at.is_none() {
                trace!("keep-alive PING");
                shared.send_ping();
            }
            ka.probing = true;
            let deadline = Instant::now() + ka.timeout;
            ka.sleep.as_mut().reset(deadline);
        }
        let Some(sent_at) = shared.sent_at else {
            return Poll::Pending;
        };
        match shared.ping_pong.poll_pong(cx) {
            Poll::Ready(Ok(_)) => {
                let now = Instant::now();
                shared.sent_at = None;
                if let Some(ka) = &mut self.keep_alive {
                    ka.probing = false;
                    ka.sleep.as_mut().reset(now + ka.interval);
                    // Registers the waker for the new deadline.
                    let _ = ka.sleep.as_mut().poll(cx);
                }
                if let Some(bdp) = &mut self.bdp {
                    let bytes = std::mem::take(&mut shared.bytes);
                    let update = bdp.calculate(bytes, now - sent_at);
                    // While the window grows, the next sample starts with the next DATA, so a
                    // long path reaches its window in a few round trips (hyper waits
                    // `ping_delay` here, which took a 16 MiB download from 2 MiB windows
                    // several downloads to reach); once stable, samples back off.
                    self.gate.since_sample.store(0, Ordering::Relaxed);
                    self.gate
                        .early_sample_after
                        .store(early_sample_after(bdp.window), Ordering::Relaxed);
                    if update.is_none() {
                        self.gate.open.store(false, Ordering::Relaxed);
                        let mut sleep = Box::pin(tokio::time::sleep_until(now + bdp.ping_delay));
                        // Registers the waker for the deadline.
                        let _ = sleep.as_mut().poll(cx);
                        self.bdp_sleep = Some(sleep);
                    } else {
                        self.gate.open.store(true, Ordering::Relaxed);
                        self.bdp_sleep = None;
                    }
                    if let Some(window) = update {
                        return Poll::Ready(PingEvent::WindowUpdate {
                            stream: window,
                            connection: bdp.connection_window(window),
                        });
                    }
                }
                Poll::Pending
            }
            // The connection is going away; h2 reports that to the driver itself.
            Poll::Ready(Err(_)) => Poll::Pending,
            Poll::Pending => match &mut self.keep_alive {
                Some(ka) if ka.probing => match ka.sleep.as_mut().poll(cx) {
                    Poll::Ready(()) => Poll::Ready(PingEvent::KeepAliveTimedOut),
                    Poll::Pending => Poll::Pending,
                },
                _ => Poll::Pending,
            },
        }
    }
}

impl DataRecorder {
    /// A DATA frame of `len` bytes was received on some stream of the connection.
    pub(crate) fn record(&self, len: usize) {
        let gate = &self.gate;
        if !gate.open.load(Ordering::Relaxed) {
            let since = gate.since_sample.fetch_add(len, Ordering::Relaxed) + len;
            if since < gate.early_sample_after.load(Ordering::Relaxed) {
                return;
            }
            gate.open.store(true, Ordering::Relaxed);
        }
        let mut shared = lock(&self.shared);
        shared.bytes += len;
        if shared.sent_at.is_none() {
            shared.send_ping();
        }
    }
}

/// Bytes read since the last sample that start a sample during a back-off: two stream
/// windows, so a stable connection carrying a steady transfer pings at most once per two
/// windows of data; never once the window is at its limit, where a sample cannot grow it.
fn early_sample_after(window: u32) -> usize {
    if window >= BDP_LIMIT {
        usize::MAX
    } else {
        (window as usize).saturating_mul(2)
    }
}

fn lock(shared: &Mutex<Shared>) -> MutexGuard<'_, Shared> {
    // Nothing panics while holding it; a poisoned lock still holds consistent numbers.
    shared.lock().unwrap_or_else(|p| p.into_inner())
}

impl Bdp {
    /// hyper's estimator (`proto/h2/ping.rs`): a new window when this sample shows more
    /// bandwidth than any before and filled at least half the current window. hyper asks for
    /// 2/3; but h2 returns credit only once half a window has been read, so a window-limited
    /// transfer delivers between half a window and a whole one per round trip, and with 2/3
    /// the estimate stalled (measured at 40 ms: a 7 MiB window delivering 2.2–4.2 MiB per
    /// sample never grew again). Half grows the window to about twice the path's
    /// bandwidth-delay product, which is what that batching needs.
    fn calculate(&mut self, bytes: usize, rtt: Duration) -> Option<u32> {
        // A window configured above the limit is left as it is.
        if self.window >= BDP_LIMIT {
            self.stabilize_delay();
            return None;
        }
        let rtt = rtt.as_secs_f64();
        if self.rtt == 0.0 {
            self.rtt = rtt;
        } else {
            // A moving average weighing the new sample 1/8.
            self.rtt += (rtt - self.rtt) * 0.125;
        }
        let bandwidth = bytes as f64 / (self.rtt * 1.5);
        if bandwidth < self.max_bandwidth {
            self.stabilize_delay();
            return None;
        }
        self.max_bandwidth = bandwidth;
        if bytes >= self.window as usize / 2 {
            let doubled = bytes.saturating_mul(2).min(BDP_LIMIT as usize);
            self.window = u32::try_from(doubled).unwrap_or(BDP_LIMIT);
            self.stable_count = 0;
            self.ping_delay /= 2;
            trace!(window = self.window, "BDP window grows");
            Some(self.window)
        } else {
            self.stabilize_delay();
            None
        }
    }

    /// The connection window for a stream window: twice it, so that one stream left unread
    /// never takes the whole connection, and so that a connection whose last WINDOW_UPDATE
    /// is still held back (h2 returns credit in batches of half a window) can still carry a
    /// full stream window at once; never below the configured size.
    fn connection_window(&self, stream: u32) -> u32 {
        stream
            .saturating_mul(2)
            .min(MAX_WINDOW)
            .max(self.connection_floor)
    }

    fn stabilize_delay(&mut self) {
        if self.ping_delay < Duration::from_secs(10) {
            self.stable_count += 1;
            if self.stable_count >= 2 {
                self.ping_delay *= 4;
                self.stable_count = 0;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bdp(window: u32) -> Bdp {
        Bdp {
            window,
            connection_floor: window,
            max_bandwidth: 0.0,
            rtt: 0.0,
            ping_delay: Duration::from_millis(100),
            stable_count: 0,
        }
    }

    /// A sample that fills the window doubles it; one that does not leaves it alone.
    #[test]
    fn a_full_sample_doubles_the_window_a_small_one_does_not() {
        let mut b = bdp(65_535);
        assert_eq!(
            b.calculate(65_535, Duration::from_millis(40)),
            Some(131_070)
        );
        assert_eq!(b.calculate(1_000, Duration::from_millis(40)), None);
    }

    /// The window never grows past 16 MiB.
    #[test]
    fn the_window_is_capped_at_16_mib() {
        let mut b = bdp(12 * 1024 * 1024);
        assert_eq!(
            b.calculate(12 * 1024 * 1024, Duration::from_millis(1)),
            Some(BDP_LIMIT)
        );
        assert_eq!(
            b.calculate(BDP_LIMIT as usize, Duration::from_millis(1)),
            None
        );
    }

    /// A window configured above the limit is never lowered to it.
    #[test]
    fn a_window_above_the_limit_is_left_alone() {
        let mut b = bdp(2 * BDP_LIMIT);
        assert_eq!(
            b.calculate(2 * BDP_LIMIT as usize, Duration::from_millis(1)),
            None
        );
    }
}
