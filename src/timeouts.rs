//! Deadlines for the phases of a request after it has a slot: the response head, each wait
//! for the response body, each wait to write the request body, and (optionally) the whole
//! request. Connect, TLS and acquire have theirs in the dial and the wait queue.
//!
//! A server that accepts a stream and never answers, trickles a body, or never opens its
//! flow-control window would otherwise hold a slot, a task and a socket for as long as the
//! caller waits. Each phase ends in [`Error::Timeout`](crate::Error::Timeout) with its own
//! [`TimeoutKind`], and the stream is reset (HTTP/1.1: the connection discarded).
//!
//! The timers cost nothing until a phase actually waits: a response whose body is already
//! buffered when read arms none. A timer is armed at the first wait and moved only when it
//! fires before the phase's current deadline (a body that keeps arriving moves its deadline
//! on every wait, the timer only once per timeout period).

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use tokio::time::Sleep;

use crate::config::PoolConfig;
use crate::error::{Error, TimeoutKind};
use crate::origin::Origin;

/// Deadlines for one request, overriding the pool's
/// ([`response_head_timeout`](crate::PoolConfig::response_head_timeout),
/// [`read_timeout`](crate::PoolConfig::read_timeout),
/// [`write_timeout`](crate::PoolConfig::write_timeout),
/// [`request_timeout`](crate::PoolConfig::request_timeout)). A field left unset keeps the
/// pool's value.
///
/// Set it as a request extension; [`ConnectionPoolManager::request`], [`StreamHandle::send`]
/// and the tower service read it from there:
///
/// ```
/// use std::time::Duration;
/// use https_pool::Timeouts;
///
/// let mut request = http::Request::get("https://api.example.com/events?wait=300")
///     .body(String::new())
///     .expect("a valid request");
/// // A long poll: the server answers within five minutes.
/// request
///     .extensions_mut()
///     .insert(Timeouts::new().response_head(Duration::from_secs(330)));
/// ```
///
/// [`ConnectionPoolManager::request`]: crate::ConnectionPoolManager::request
/// [`StreamHandle::send`]: crate::StreamHandle::send
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct Timeouts {
    response_head: Option<Duration>,
    read: Option<Duration>,
    write: Option<Duration>,
    request: Option<Duration>,
}

impl Timeouts {
    /// No override: every phase keeps the pool's deadline.
    pub fn new() -> Timeouts {
        Timeouts::default()
    }

    /// From the request being sent in full to its response head.
    #[must_use]
    pub fn response_head(mut self, timeout: Duration) -> Timeouts {
        self.response_head = Some(timeout);
        self
    }

    /// The longest wait for the next piece of the response body while the caller reads.
    #[must_use]
    pub fn read(mut self, timeout: Duration) -> Timeouts {
        self.read = Some(timeout);
        self
    }

    /// The longest the request body may make no progress (no flow-control credit, or the
    /// socket takes no bytes).
    #[must_use]
    pub fn write(mut self, timeout: Duration) -> Timeouts {
        self.write = Some(timeout);
        self
    }

    /// The whole request, from acquiring a slot to the end of the response body.
    #[must_use]
    pub fn request(mut self, timeout: Duration) -> Timeouts {
        self.request = Some(timeout);
        self
    }
}

/// A connection's defaults for the phases after acquire, copied from the pool's config.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct PhaseTimeouts {
    pub(crate) response_head: Duration,
    pub(crate) read: Duration,
    pub(crate) write: Duration,
    /// `request_timeout`, for requests sent on a [`StreamHandle`](crate::StreamHandle).
    pub(crate) request: Option<Duration>,
}

impl PhaseTimeouts {
    pub(crate) fn from_config(config: &PoolConfig) -> PhaseTimeouts {
        PhaseTimeouts {
            response_head: config.response_head_timeout,
            read: config.read_timeout,
            write: config.write_timeout,
            request: config.request_timeout,
        }
    }
}

/// A request's own deadlines as its futures and body keep them: nothing but a null pointer
/// unless the request carries a [`Timeouts`] extension or a whole-request deadline; resolved
/// against the connection's defaults only when a phase waits (every byte of a request's
/// future is copied whenever its task moves it).
#[derive(Debug, Default, Clone)]
pub(crate) struct RequestLimits(Option<Box<Custom>>);

#[derive(Debug, Clone)]
struct Custom {
    overrides: Option<Timeouts>,
    end: Option<(Instant, Duration)>,
}

impl RequestLimits {
    /// A request's deadlines from its [`Timeouts`] extension (`overrides`) and the pool's
    /// `request_timeout`; the whole request's deadline counts from now (its acquire).
    pub(crate) fn new(
        overrides: Option<&Timeouts>,
        request_timeout: Option<Duration>,
    ) -> RequestLimits {
        let end = overrides
            .and_then(|t| t.request)
            .or(request_timeout)
            .map(|timeout| (Instant::now() + timeout, timeout));
        if overrides.is_none() && end.is_none() {
            return RequestLimits(None);
        }
        RequestLimits(Some(Box::new(Custom {
            overrides: overrides.copied(),
            end,
        })))
    }

    /// When the whole request must be over, with the timeout itself.
    pub(crate) fn end(&self) -> Option<(Instant, Duration)> {
        self.0.as_ref().and_then(|custom| custom.end)
    }

    /// When the whole request must be over.
    pub(crate) fn end_at(&self) -> Option<Instant> {
        self.end().map(|(at, _)| at)
    }

    /// The deadlines, with `defaults` (the connection's) where the request sets none.
    pub(crate) fn resolve(&self, defaults: PhaseTimeouts) -> Limits {
        match &self.0 {
            None => Limits {
                phases: defaults,
                end: None,
            },
            Some(custom) => Limits::resolve(defaults, custom.overrides.as_ref(), custom.end),
        }
    }
}

/// The deadlines of one request in flight: the phase timeouts with its overrides applied,
/// and when the whole request must end.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Limits {
    pub(crate) phases: PhaseTimeouts,
    /// `request_timeout` after the acquire began, with the timeout itself for the error.
    pub(crate) end: Option<(Instant, Duration)>,
}

impl Limits {
    /// `defaults` with the request's overrides, ending at `end`.
    pub(crate) fn resolve(
        defaults: PhaseTimeouts,
        overrides: Option<&Timeouts>,
        end: Option<(Instant, Duration)>,
    ) -> Limits {
        let mut phases = defaults;
        if let Some(t) = overrides {
            phases.response_head = t.response_head.unwrap_or(phases.response_head);
            phases.read = t.read.unwrap_or(phases.read);
            phases.write = t.write.unwrap_or(phases.write);
        }
        Limits { phases, end }
    }

    /// The deadline of phase `kind` (`ResponseHead`, `Read` or `Write`) begun at `since`:
    /// the phase's own, or the whole request's when that comes first.
    pub(crate) fn deadline(&self, kind: TimeoutKind, since: Instant) -> Deadline {
        let timeout = match kind {
            TimeoutKind::ResponseHead => self.phases.response_head,
            TimeoutKind::Read => self.phases.read,
            TimeoutKind::Write => self.phases.write,
            // Not phases after acquire: only the whole request's deadline applies.
            _ => Duration::MAX,
        };
        // A timeout too long to add to an instant ends with the request, or in a century.
        let own = since
            .checked_add(timeout)
            .unwrap_or(since + Duration::from_secs(100 * 365 * 24 * 3600));
        match self.end {
            Some((end, total)) if end < own => Deadline {
                at: end,
                kind: TimeoutKind::Request,
                after: total,
            },
            _ => Deadline {
                at: own,
                kind,
                after: timeout,
            },
        }
    }

    /// The error for a response head that did not come by its deadline, judged at `now`: the
    /// whole request's when that had passed, else the head's own.
    pub(crate) fn head_timeout(&self, origin: &Origin, now: Instant) -> Error {
        let (kind, after) = match self.end {
            Some((at, total)) if now >= at => (TimeoutKind::Request, total),
            _ => (TimeoutKind::ResponseHead, self.phases.response_head),
        };
        Error::Timeout {
            origin: origin.clone(),
            kind,
            after,
        }
    }

    /// Only the whole request's deadline (while waiting on the caller's own request body).
    pub(crate) fn end_deadline(&self) -> Option<Deadline> {
        self.end.map(|(at, after)| Deadline {
            at,
            kind: TimeoutKind::Request,
            after,
        })
    }
}

/// When a phase ends, and what it is called if it ends by time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Deadline {
    pub(crate) at: Instant,
    pub(crate) kind: TimeoutKind,
    /// The configured timeout, for the error.
    pub(crate) after: Duration,
}

impl Deadline {
    pub(crate) fn error(&self, origin: &Origin) -> Error {
        Error::Timeout {
            origin: origin.clone(),
            kind: self.kind,
            after: self.after,
        }
    }
}

/// One phase's clock: when its current wait began, and the timer that ends it. A pointer
/// until the phase first waits (a response body that is already there never does).
#[derive(Debug, Default)]
pub(crate) struct PhaseClock(Option<Box<ClockState>>);

#[derive(Debug, Default)]
struct ClockState {
    since: Option<Instant>,
    timer: PhaseTimer,
}

impl PhaseClock {
    /// Called when the phase's work returned `Pending`: starts the wait (at the first call
    /// since the last [`progress`](Self::progress)) and returns the deadline once it has
    /// passed. `kind` is `ResponseHead`, `Read` or `Write`.
    pub(crate) fn poll_wait(
        &mut self,
        limits: &Limits,
        kind: TimeoutKind,
        cx: &mut Context<'_>,
    ) -> Poll<Deadline> {
        let state = self.0.get_or_insert_with(Box::default);
        let since = *state.since.get_or_insert_with(Instant::now);
        let deadline = limits.deadline(kind, since);
        state.timer.poll_expired(deadline.at, cx).map(|()| deadline)
    }

    /// Like [`poll_wait`](Self::poll_wait) with only the whole request's deadline (while the
    /// caller's own body is what is slow).
    pub(crate) fn poll_end(&mut self, limits: &Limits, cx: &mut Context<'_>) -> Poll<Deadline> {
        match limits.end_deadline() {
            Some(deadline) => self
                .0
                .get_or_insert_with(Box::default)
                .timer
                .poll_expired(deadline.at, cx)
                .map(|()| deadline),
            None => Poll::Pending,
        }
    }

    /// The phase made progress: the next wait starts its own clock.
    pub(crate) fn progress(&mut self) {
        if let Some(state) = &mut self.0 {
            state.since = None;
        }
    }
}

/// A timer armed at a phase's first wait and moved only when it fires early.
#[derive(Debug, Default)]
pub(crate) struct PhaseTimer {
    sleep: Option<Pin<Box<Sleep>>>,
}

impl PhaseTimer {
    /// Ready once `deadline` has passed; otherwise registers the task's waker to be woken
    /// when it does.
    pub(crate) fn poll_expired(&mut self, deadline: Instant, cx: &mut Context<'_>) -> Poll<()> {
        let target = tokio::time::Instant::from_std(deadline);
        let sleep = self
            .sleep
            .get_or_insert_with(|| Box::pin(tokio::time::sleep_until(target)));
        if sleep.deadline() > target {
            // The deadline moved earlier (the whole request's came into play).
            sleep.as_mut().reset(target);
        }
        loop {
            if sleep.as_mut().poll(cx).is_pending() {
                return Poll::Pending;
            }
            if Instant::now() >= deadline {
                return Poll::Ready(());
            }
            // Fired at an older, earlier deadline: the phase moved on since.
            sleep.as_mut().reset(target);
        }
    }

    /// True once a wait armed it.
    #[cfg(test)]
    pub(crate) fn is_armed(&self) -> bool {
        self.sleep.is_some()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn defaults() -> PhaseTimeouts {
        PhaseTimeouts {
            response_head: Duration::from_secs(10),
            read: Duration::from_secs(20),
            write: Duration::from_secs(30),
            request: None,
        }
    }

    /// Overrides replace only the fields they set.
    #[test]
    fn overrides_replace_only_what_they_set() {
        let t = Timeouts::new().read(Duration::from_secs(1));
        let limits = Limits::resolve(defaults(), Some(&t), None);
        assert_eq!(limits.phases.read, Duration::from_secs(1));
        assert_eq!(limits.phases.response_head, Duration::from_secs(10));
        assert_eq!(limits.phases.write, Duration::from_secs(30));
    }

    /// The whole request's deadline wins when it comes first, and names itself.
    #[test]
    fn the_request_deadline_wins_when_it_comes_first() {
        let now = Instant::now();
        let end = (now + Duration::from_secs(5), Duration::from_secs(5));
        let limits = Limits::resolve(defaults(), None, Some(end));
        let head = limits.deadline(TimeoutKind::ResponseHead, now);
        assert_eq!(head.kind, TimeoutKind::Request);
        assert_eq!(head.at, end.0);
        let later = Limits::resolve(
            defaults(),
            None,
            Some((now + Duration::from_secs(60), Duration::from_secs(60))),
        );
        let head = later.deadline(TimeoutKind::ResponseHead, now);
        assert_eq!(head.kind, TimeoutKind::ResponseHead);
        assert_eq!(head.after, Duration::from_secs(10));
    }

    /// A timer fires at its deadline, and one armed early moves to the later deadline
    /// instead of firing.
    #[tokio::test]
    async fn a_timer_armed_early_moves_to_the_later_deadline() {
        let mut timer = PhaseTimer::default();
        let first = Instant::now() + Duration::from_millis(20);
        let poll = std::future::poll_fn(|cx| Poll::Ready(timer.poll_expired(first, cx))).await;
        assert!(poll.is_pending());
        assert!(timer.is_armed());
        tokio::time::sleep(Duration::from_millis(40)).await;
        let second = Instant::now() + Duration::from_millis(50);
        let poll = std::future::poll_fn(|cx| Poll::Ready(timer.poll_expired(second, cx))).await;
        assert!(poll.is_pending(), "moved, not fired");
        std::future::poll_fn(|cx| timer.poll_expired(second, cx)).await;
        assert!(Instant::now() >= second);
    }
}
