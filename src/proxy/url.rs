//! [`ProxyUrl`]: a proxy's URL as configured, checked at `build()`, never printed with its
//! credentials.

use std::fmt;

use http::Uri;

use crate::error::Error;
use crate::origin::{Origin, Scheme};

/// The URL of an HTTP proxy: `http://[user:password@]host[:port]`.
///
/// Held as given; [`PoolBuilder::build`](crate::PoolBuilder::build) checks it and fails with
/// [`Error::InvalidConfig`] (field `proxy`) when the scheme is not `http` (TLS to the proxy
/// itself is not supported), a path, query or fragment follows the authority, or the host or
/// port is unusable. Without a scheme, `http://` is assumed, and without a port, 80 (as
/// reqwest does; curl assumes 1080). A user and password, percent-encoded, are sent as
/// `Proxy-Authorization: Basic`. `Debug` hides the credentials.
///
/// ```
/// use https_pool::ProxyUrl;
/// let url = ProxyUrl::from("http://alice:secret@proxy.internal:3128");
/// assert_eq!(format!("{url:?}"), "ProxyUrl(\"http://***@proxy.internal:3128\")");
/// ```
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct ProxyUrl(String);

impl ProxyUrl {
    /// The URL as given, credentials included.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The proxy's `http` origin (host and port, no credentials).
    pub(crate) fn origin(&self) -> Result<Origin, Error> {
        let invalid = |reason: &str| {
            Error::invalid_config("proxy", format!("{:?}: {reason}", self.redacted()))
        };
        let text = self.0.trim();
        let with_scheme = if text.contains("://") {
            text.to_owned()
        } else {
            format!("http://{text}")
        };
        let uri: Uri = with_scheme
            .parse()
            .map_err(|_| invalid("not a URL of the form http://host[:port]"))?;
        if !uri
            .scheme_str()
            .is_some_and(|s| s.eq_ignore_ascii_case("http"))
        {
            return Err(invalid(
                "the scheme must be http:// (TLS to the proxy itself is not supported)",
            ));
        }
        if uri.path_and_query().is_some_and(|p| p.as_str() != "/") || with_scheme.contains('#') {
            return Err(invalid("a proxy URL has no path, query or fragment"));
        }
        let authority = uri
            .authority()
            .ok_or_else(|| invalid("missing host"))?
            .as_str();
        // The credentials are the matcher's to read; the origin is what follows them.
        let host_port = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
        let origin: Origin = format!("http://{host_port}")
            .parse()
            .map_err(|e: Error| match e {
                Error::InvalidUrl { reason, .. } => invalid(reason),
                other => invalid(&other.to_string()),
            })?;
        debug_assert_eq!(origin.scheme(), Scheme::Http);
        Ok(origin)
    }

    /// The URL with any user and password replaced by `***`.
    fn redacted(&self) -> String {
        let (scheme, rest) = match self.0.split_once("://") {
            Some((scheme, rest)) => (Some(scheme), rest),
            None => (None, self.0.as_str()),
        };
        let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
        let (authority, tail) = rest.split_at(authority_end);
        let authority = match authority.rsplit_once('@') {
            Some((_, host)) => format!("***@{host}"),
            None => authority.to_owned(),
        };
        match scheme {
            Some(scheme) => format!("{scheme}://{authority}{tail}"),
            None => format!("{authority}{tail}"),
        }
    }
}

impl fmt::Debug for ProxyUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("ProxyUrl").field(&self.redacted()).finish()
    }
}

/// Surrounding whitespace (an env file's, a config template's) is dropped here, so what is
/// validated and what the tunnel's matcher reads are the same text.
impl From<&str> for ProxyUrl {
    fn from(url: &str) -> ProxyUrl {
        ProxyUrl(url.trim().to_owned())
    }
}

impl From<String> for ProxyUrl {
    fn from(url: String) -> ProxyUrl {
        match url.trim() {
            trimmed if trimmed.len() == url.len() => ProxyUrl(url),
            trimmed => ProxyUrl(trimmed.to_owned()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn origin_of(url: &str) -> Result<String, String> {
        ProxyUrl::from(url)
            .origin()
            .map(|o| o.to_string())
            .map_err(|e| match e {
                Error::InvalidConfig { field, reason } => {
                    assert_eq!(field, "proxy");
                    reason
                }
                other => panic!("expected InvalidConfig, got {other:?}"),
            })
    }

    /// Good URLs give the proxy's origin: scheme assumed, port 80 by default, credentials and
    /// a trailing slash dropped.
    #[test]
    fn surrounding_whitespace_is_dropped() {
        assert_eq!(
            ProxyUrl::from("  http://proxy:3128\n").as_str(),
            "http://proxy:3128"
        );
        assert_eq!(
            ProxyUrl::from(String::from("\thttp://proxy:3128 ")).as_str(),
            "http://proxy:3128"
        );
    }

    #[test]
    fn good_urls_name_the_proxy() {
        assert_eq!(
            origin_of("http://proxy.test:3128").as_deref(),
            Ok("http://proxy.test:3128")
        );
        assert_eq!(
            origin_of("proxy.test:3128").as_deref(),
            Ok("http://proxy.test:3128")
        );
        assert_eq!(
            origin_of("HTTP://Proxy.Test/").as_deref(),
            Ok("http://proxy.test:80")
        );
        assert_eq!(
            origin_of("http://u:p%40ss@[::1]:8080").as_deref(),
            Ok("http://[::1]:8080")
        );
    }

    /// Each unusable URL is a config error saying why, without the password.
    #[test]
    fn bad_urls_are_config_errors() {
        for (url, why) in [
            ("https://proxy.test:3128", "scheme must be http"),
            ("socks5://proxy.test:1080", "scheme must be http"),
            ("http://proxy.test:3128/path", "no path"),
            ("http://proxy.test:3128?q=1", "no path"),
            ("http://proxy.test:99999", "port"),
            ("http://proxy.test:0", "port 0"),
            ("http://user:hunter2@proxy.test:x", "port"),
            ("http://", "URL"),
        ] {
            let reason = origin_of(url).expect_err(url);
            assert!(reason.contains(why), "{url}: {reason}");
            assert!(!reason.contains("hunter2"), "{reason}");
        }
    }

    /// `Debug` hides the user and password, and keeps the rest.
    #[test]
    fn debug_hides_credentials() {
        let shown = format!("{:?}", ProxyUrl::from("http://u:pw@h:1/x"));
        assert_eq!(shown, "ProxyUrl(\"http://***@h:1/x\")");
        let shown = format!("{:?}", ProxyUrl::from("u:pw@h:1"));
        assert_eq!(shown, "ProxyUrl(\"***@h:1\")");
    }
}
