//! Where a retried request may go (the rule for *whether* it may be sent again is in
//! [`crate::retry`]).

/// Where a retried request may go: not back to the connection that refused it, and, when a
/// server's rotation refused it as the n-th request sent on that connection, only where it
/// will be among the first n - 1 (the server's per-connection budget evidently ended before
/// the n-th).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct RetryTarget {
    pub(crate) exclude: u64,
    /// n - 1, when known.
    pub(crate) within_first: Option<u64>,
}

/// Requests the pool may send on a connection between counting a request and h2 giving it a
/// stream id, from other tasks: the order of the two can differ by that many.
pub(crate) const SEND_ORDER_SLACK: u64 = 4;

impl RetryTarget {
    /// True when a connection `id` on which `sent` requests went out may take the retry.
    pub(crate) fn admits(&self, id: u64, sent: u64) -> bool {
        id != self.exclude
            && self
                .within_first
                .is_none_or(|n| sent + SEND_ORDER_SLACK < n)
    }
}
