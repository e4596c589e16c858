//! Request priority: how urgent a request is, in the terms of RFC 9218 (Extensible
//! Prioritization Scheme for HTTP).
//!
//! The pool is the one place that can reorder what has not been sent yet: when an origin's
//! stream slots are all taken, waiters are served by urgency (0 first), FIFO within an urgency,
//! and a waiter that has waited longer than `priority_aging` is served as urgency 0, so a low
//! urgency is delayed, never starved. The server hears of it too: a request whose priority is
//! not the default carries the `priority` header field (RFC 9218 §4), which servers such as
//! nginx, h2o and Cloudflare's read.

use std::fmt;

use http::HeaderValue;

use crate::error::Error;

/// How urgent a request is: RFC 9218 urgency 0 (most urgent) to 7, and whether the response
/// is useful piece by piece (`incremental`). The default is urgency 3, not incremental.
///
/// Set it as a request extension; [`ConnectionPoolManager::request`], [`StreamHandle::send`]
/// and the tower service read it from there:
///
/// ```
/// use https_pool::Priority;
/// # fn run() -> Result<(), https_pool::Error> {
/// let mut request = http::Request::get("https://api.example.com/health")
///     .body(String::new())
///     .expect("a valid request");
/// request.extensions_mut().insert(Priority::new(0)?);
/// # Ok(())
/// # }
/// ```
///
/// [`ConnectionPoolManager::request`]: crate::ConnectionPoolManager::request
/// [`StreamHandle::send`]: crate::StreamHandle::send
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Priority {
    urgency: u8,
    incremental: bool,
}

impl Priority {
    /// RFC 9218's default urgency.
    pub const DEFAULT_URGENCY: u8 = 3;

    /// The least urgent value RFC 9218 defines.
    pub const MAX_URGENCY: u8 = 7;

    /// A priority of `urgency` (0 most urgent, 7 least), not incremental.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidPriority`] when `urgency` is above 7.
    pub fn new(urgency: u8) -> Result<Priority, Error> {
        if urgency > Self::MAX_URGENCY {
            return Err(Error::InvalidPriority { urgency });
        }
        Ok(Priority {
            urgency,
            incremental: false,
        })
    }

    /// The same urgency, with RFC 9218's incremental flag set as given.
    #[must_use]
    pub fn incremental(self, incremental: bool) -> Priority {
        Priority {
            incremental,
            ..self
        }
    }

    /// The urgency, 0 (most urgent) to 7.
    pub fn urgency(&self) -> u8 {
        self.urgency
    }

    /// True when the response is useful piece by piece.
    pub fn is_incremental(&self) -> bool {
        self.incremental
    }

    /// The `priority` header field value, or `None` for the default (which RFC 9218 §4 says
    /// not to send).
    pub(crate) fn header_value(&self) -> Option<HeaderValue> {
        if *self == Priority::default() {
            return None;
        }
        let text = self.to_string();
        HeaderValue::from_str(&text).ok()
    }
}

impl Default for Priority {
    fn default() -> Priority {
        Priority {
            urgency: Self::DEFAULT_URGENCY,
            incremental: false,
        }
    }
}

impl fmt::Display for Priority {
    /// The RFC 9218 structured-field form: `u=1`, `u=5, i`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "u={}", self.urgency)?;
        if self.incremental {
            f.write_str(", i")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Urgency is 0..=7; anything else is a typed error.
    #[test]
    fn urgency_is_checked() {
        assert_eq!(Priority::new(0).expect("valid").urgency(), 0);
        assert_eq!(Priority::new(7).expect("valid").urgency(), 7);
        assert!(matches!(
            Priority::new(8),
            Err(Error::InvalidPriority { urgency: 8 })
        ));
    }

    /// Only a priority other than the default has a header value.
    #[test]
    fn the_default_is_not_sent() {
        assert_eq!(Priority::default().header_value(), None);
        let urgent = Priority::new(1).expect("valid");
        assert_eq!(urgent.header_value().expect("a value"), "u=1");
        let incremental = Priority::default().incremental(true);
        assert_eq!(incremental.header_value().expect("a value"), "u=3, i");
    }
}
