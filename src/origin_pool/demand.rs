//! Demand-driven warm-up (`PoolConfig::demand_window`): the peak concurrency an origin saw
//! recently, and how many connections that peak needs. The idle sweep keeps that many and
//! the maintenance tick dials back up to it, so a service with bursts finds its connections
//! warm at the next burst, and they close again once the bursts stop.

use std::time::{Duration, Instant};

/// The peak of a number over a sliding window, kept as two half-window buckets: the peak is
/// that of the last half window and the one before it, so a sample counts for between half
/// a window and a whole one. Constant size; no allocation.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct DemandWindow {
    /// Half the window; zero when demand tracking is off.
    half: Duration,
    bucket_start: Option<Instant>,
    current: usize,
    previous: usize,
}

impl DemandWindow {
    /// Tracks over `window`; `None` tracks nothing (every peak is 0).
    pub(crate) fn new(window: Option<Duration>) -> DemandWindow {
        DemandWindow {
            half: window.map_or(Duration::ZERO, |w| w / 2),
            ..DemandWindow::default()
        }
    }

    /// True when demand is tracked (`PoolConfig::demand_window` is set).
    pub(crate) fn enabled(&self) -> bool {
        !self.half.is_zero()
    }

    /// Notes `demand` (streams in use plus acquirers waiting) at `now`.
    pub(crate) fn record(&mut self, now: Instant, demand: usize) {
        if self.half.is_zero() {
            return;
        }
        self.rotate(now);
        self.current = self.current.max(demand);
    }

    /// The highest demand noted within the window before `now`.
    pub(crate) fn peak(&mut self, now: Instant) -> usize {
        if self.half.is_zero() {
            return 0;
        }
        self.rotate(now);
        self.current.max(self.previous)
    }

    fn rotate(&mut self, now: Instant) {
        let start = *self.bucket_start.get_or_insert(now);
        let elapsed = now.saturating_duration_since(start);
        if elapsed >= self.half * 2 {
            self.previous = 0;
            self.current = 0;
            self.bucket_start = Some(now);
        } else if elapsed >= self.half {
            self.previous = self.current;
            self.current = 0;
            self.bucket_start = Some(start + self.half);
        }
    }
}

/// Connections that `peak` concurrent streams need when each carries `per_connection`
/// streams filled to `fill_ratio`, capped at `max`; none while the per-connection limit is
/// unknown (one connection is dialed for a cold origin anyway).
pub(crate) fn connections_for(
    peak: usize,
    per_connection: Option<usize>,
    fill_ratio: f64,
    max: usize,
) -> usize {
    let Some(limit) = per_connection else {
        return 0;
    };
    // Truncation is intended, as in scale-up: 0.75 of 10 slots is 7.
    let usable = ((limit as f64) * fill_ratio).floor().max(1.0) as usize;
    peak.div_ceil(usable).min(max)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A sample counts for at least half a window and at most a whole one.
    #[test]
    fn the_peak_slides_out_of_the_window() {
        let t0 = Instant::now();
        let s = Duration::from_secs;
        let mut w = DemandWindow::new(Some(s(10)));
        w.record(t0, 512);
        w.record(t0 + s(1), 3);
        assert_eq!(w.peak(t0 + s(4)), 512);
        assert_eq!(w.peak(t0 + s(9)), 512, "previous half still counts");
        assert_eq!(w.peak(t0 + s(10)), 0, "two halves later it is gone");
        let mut off = DemandWindow::new(None);
        off.record(t0, 512);
        assert_eq!(off.peak(t0), 0);
    }

    /// Peak streams over usable streams per connection, rounded up, capped.
    #[test]
    fn connections_cover_the_peak() {
        assert_eq!(connections_for(512, Some(32), 1.0, 32), 16);
        assert_eq!(connections_for(513, Some(32), 1.0, 32), 17);
        assert_eq!(connections_for(512, Some(32), 0.5, 64), 32);
        assert_eq!(connections_for(512, Some(32), 1.0, 4), 4);
        assert_eq!(connections_for(512, None, 1.0, 4), 0);
        assert_eq!(connections_for(0, Some(32), 1.0, 4), 0);
    }
}
