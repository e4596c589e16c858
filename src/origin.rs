//! Origins: the key connections are pooled under.
//!
//! An origin is a scheme, a lower-cased host and a port with the scheme's default filled in
//! (RFC 6454), so `https://API.example`, `api.example` and `https://api.example:443/v1` are one
//! origin and share connections. A bare `host[:port]` means `https`. `http://` origins parse,
//! but the pool dials them only when cleartext is enabled
//! ([`PoolBuilder::cleartext`](crate::PoolBuilder::cleartext)).

use std::fmt;
use std::sync::Arc;

use http::Uri;

/// The scheme of an [`Origin`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Scheme {
    /// HTTP over TLS.
    Https,
    /// Cleartext HTTP: dialed only when the pool's
    /// [`cleartext`](crate::PoolConfig::cleartext) mode allows it.
    Http,
}

impl Scheme {
    /// The scheme's default port.
    pub fn default_port(self) -> u16 {
        match self {
            Scheme::Https => 443,
            Scheme::Http => 80,
        }
    }

    /// The scheme as written in a URL.
    pub fn as_str(self) -> &'static str {
        match self {
            Scheme::Https => "https",
            Scheme::Http => "http",
        }
    }
}

/// A scheme, host and port: the unit connections are pooled by.
///
/// Cloning is cheap (the host is shared). Parse one with [`str::parse`] or convert a
/// [`Uri`] with `Origin::try_from(&uri)`.
///
/// ```
/// use https_pool::Origin;
/// let a: Origin = "https://API.example/v1?q=1".parse()?;
/// let b: Origin = "api.example:443".parse()?;
/// assert_eq!(a, b);
/// assert_eq!(a.to_string(), "https://api.example:443");
/// # Ok::<(), https_pool::Error>(())
/// ```
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Origin {
    scheme: Scheme,
    /// The origin as HTTP/1.1's `Host` writes it: the lower-cased host (IPv6 literals keep
    /// their brackets, as in a URL), then `:port` unless the port is the scheme's default.
    /// Kept whole because every HTTP/1.1 request sends it and every request's authority is
    /// compared with it; the host is its first `host_len` bytes.
    host_field: Arc<str>,
    host_len: u32,
    port: u16,
}

impl Origin {
    /// The scheme.
    pub fn scheme(&self) -> Scheme {
        self.scheme
    }

    /// The lower-cased host, IPv6 literals in brackets (`[::1]`).
    pub fn host(&self) -> &str {
        // `host_len` is the length of the host `from_uri` wrote first (a char boundary).
        self.host_field
            .get(..self.host_len as usize)
            .unwrap_or(&self.host_field)
    }

    /// The port, with the scheme's default filled in.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The host without IPv6 brackets, as used for DNS and TLS server names.
    pub(crate) fn host_unbracketed(&self) -> &str {
        let host = self.host();
        host.strip_prefix('[')
            .and_then(|h| h.strip_suffix(']'))
            .unwrap_or(host)
    }

    /// `host:port`, as an HTTP authority.
    pub(crate) fn authority(&self) -> String {
        format!("{}:{}", self.host(), self.port)
    }

    /// The value of HTTP/1.1's `Host` for this origin: the host, with `:port` unless the port
    /// is the scheme's default.
    pub(crate) fn host_field(&self) -> &str {
        &self.host_field
    }

    /// True when the absolute `uri` names this origin (scheme, host ignoring ASCII case, port
    /// with the default filled in), checked without allocating.
    pub(crate) fn matches_uri(&self, uri: &Uri) -> bool {
        let scheme = match uri.scheme_str() {
            Some(s) if s.eq_ignore_ascii_case("https") => Scheme::Https,
            Some(s) if s.eq_ignore_ascii_case("http") => Scheme::Http,
            _ => return false,
        };
        let Some(authority) = uri.authority() else {
            return false;
        };
        let text = authority.as_str();
        // The usual case, a URI written the way the origin writes itself: one compare.
        if scheme == self.scheme && text == &*self.host_field {
            return true;
        }
        let port = if text.ends_with(']') {
            None
        } else {
            text.rsplit_once(':').map(|(_, p)| p)
        };
        let port = match port {
            None => scheme.default_port(),
            Some(p) => match p.parse::<u16>() {
                Ok(p) => p,
                Err(_) => return false,
            },
        };
        scheme == self.scheme
            && port == self.port
            && !text.contains('@')
            && authority.host().eq_ignore_ascii_case(self.host())
    }

    /// `input` renders the text for error messages; it is only called on failure.
    pub(crate) fn from_uri(uri: &Uri, input: impl Fn() -> String) -> Result<Origin, OriginError> {
        let scheme = match uri.scheme_str() {
            Some(s) if s.eq_ignore_ascii_case("https") => Scheme::Https,
            Some(s) if s.eq_ignore_ascii_case("http") => Scheme::Http,
            Some(s) => {
                return Err(OriginError::UnsupportedScheme {
                    input: input(),
                    scheme: s.to_owned(),
                });
            }
            None => {
                return Err(OriginError::InvalidUrl {
                    input: input(),
                    reason: "missing scheme",
                });
            }
        };
        let authority = uri.authority().ok_or_else(|| OriginError::InvalidUrl {
            input: input(),
            reason: "missing host",
        })?;
        if authority.as_str().contains('@') {
            return Err(OriginError::InvalidUrl {
                input: input(),
                reason: "credentials in the authority are not supported",
            });
        }
        let host = authority.host();
        if host.is_empty() {
            return Err(OriginError::InvalidUrl {
                input: input(),
                reason: "empty host",
            });
        }
        // `Authority::port` is None both for "no port" and for one that is not a u16, so
        // read the text: `host:99999` must be an error, not silently port 443.
        let text = authority.as_str();
        let port_text = if text.ends_with(']') {
            None
        } else {
            text.rsplit_once(':').map(|(_, p)| p)
        };
        let port = match port_text {
            None => scheme.default_port(),
            Some(p) => p.parse::<u16>().map_err(|_| OriginError::InvalidUrl {
                input: input(),
                reason: if p.is_empty() {
                    "empty port"
                } else {
                    "port is not a number in 1..=65535"
                },
            })?,
        };
        if port == 0 {
            return Err(OriginError::InvalidUrl {
                input: input(),
                reason: "port 0 cannot be dialed",
            });
        }
        let mut host_field = host.to_ascii_lowercase();
        let host_len = u32::try_from(host_field.len()).map_err(|_| OriginError::InvalidUrl {
            input: input(),
            reason: "host too long",
        })?;
        if port != scheme.default_port() {
            host_field.push(':');
            host_field.push_str(&port.to_string());
        }
        Ok(Origin {
            scheme,
            host_field: Arc::from(host_field),
            host_len,
            port,
        })
    }

    /// Parses `https://host[:port][/path…]` or a bare `host[:port]` (taken as https).
    pub(crate) fn parse(input: &str) -> Result<Origin, OriginError> {
        let trimmed = input.trim();
        if trimmed.is_empty() {
            return Err(OriginError::InvalidUrl {
                input: input.to_owned(),
                reason: "empty",
            });
        }
        let parsed = if trimmed.contains("://") {
            trimmed.parse::<Uri>()
        } else {
            format!("https://{trimmed}").parse::<Uri>()
        };
        let uri = parsed.map_err(|_| OriginError::InvalidUrl {
            input: input.to_owned(),
            reason: "not a valid URL",
        })?;
        Origin::from_uri(&uri, || input.to_owned())
    }
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}://{}:{}",
            self.scheme.as_str(),
            self.host(),
            self.port
        )
    }
}

impl fmt::Debug for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Origin({self})")
    }
}

/// Why a text or URI is not an origin; becomes [`Error::InvalidUrl`] or
/// [`Error::UnsupportedScheme`](crate::Error::UnsupportedScheme) (see `into_origin`).
///
/// [`Error::InvalidUrl`]: crate::Error::InvalidUrl
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum OriginError {
    InvalidUrl { input: String, reason: &'static str },
    UnsupportedScheme { input: String, scheme: String },
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::Error;

    fn origin(s: &str) -> Origin {
        s.parse().expect("valid origin")
    }

    /// Scheme, case and default port are normalised, so equal origins share connections.
    #[test]
    fn equivalent_spellings_are_one_origin() {
        let a = origin("https://API.Example.com");
        assert_eq!(a, origin("api.example.com"));
        assert_eq!(a, origin("https://api.example.com:443/path?q=1"));
        assert_eq!(a, origin("HTTPS://api.example.com/"));
        assert_ne!(a, origin("api.example.com:8443"));
        assert_eq!(a.to_string(), "https://api.example.com:443");
    }

    /// A URI names the origin however it spells it (case, default port); another scheme,
    /// port or host, or credentials, do not. `Host` carries the port only when it is not
    /// the default.
    #[test]
    fn uris_match_their_origin_and_host_field_is_the_host_header() {
        let matches = |o: &Origin, uri: &str| o.matches_uri(&uri.parse().expect("valid URI"));
        let default = origin("https://api.example");
        assert_eq!(default.host_field(), "api.example");
        assert_eq!(default.host(), "api.example");
        for yes in [
            "https://api.example/",
            "https://API.Example/x",
            "https://api.example:443/",
            "HTTPS://api.example/",
        ] {
            assert!(matches(&default, yes), "{yes}");
        }
        for no in [
            "http://api.example/",
            "https://api.example:8443/",
            "https://api.example.org/",
            "https://user@api.example/",
            "/relative",
        ] {
            assert!(!matches(&default, no), "{no}");
        }
        let custom = origin("https://[::1]:8443");
        assert_eq!(custom.host_field(), "[::1]:8443");
        assert_eq!(custom.host(), "[::1]");
        assert!(matches(&custom, "https://[::1]:8443/"));
        assert!(!matches(&custom, "https://[::1]/"));
        assert!(!matches(&custom, "http://[::1]:8443/"));
    }

    /// IPv6 literals keep brackets in the URL form and lose them for dialing and TLS.
    #[test]
    fn ipv6_literal_keeps_brackets_in_display() {
        let o = origin("https://[::1]:8443");
        assert_eq!(o.host(), "[::1]");
        assert_eq!(o.host_unbracketed(), "::1");
        assert_eq!(o.port(), 8443);
        assert_eq!(o.to_string(), "https://[::1]:8443");
    }

    /// Each kind of bad input is its own error, naming the input.
    #[test]
    fn bad_input_is_rejected_with_a_typed_error() {
        for bad in [
            "",
            "   ",
            "https://",
            "https://host:99999",
            "https://host:",
            "ht tp://x",
        ] {
            match bad.parse::<Origin>() {
                Err(Error::InvalidUrl { input, .. }) => assert_eq!(input, bad),
                other => panic!("{bad:?}: expected InvalidUrl, got {other:?}"),
            }
        }
        for bad in ["ftp://example.com", "wss://x:1", "h2c://x"] {
            assert!(
                matches!(bad.parse::<Origin>(), Err(Error::UnsupportedScheme { .. })),
                "{bad}"
            );
        }
        assert!(matches!(
            "https://user:pw@example.com".parse::<Origin>(),
            Err(Error::InvalidUrl { .. })
        ));
        assert!(matches!(
            "https://example.com:0".parse::<Origin>(),
            Err(Error::InvalidUrl { .. })
        ));
    }

    /// `http://` is its own origin, with port 80 by default; a bare host stays https.
    #[test]
    fn cleartext_origins_parse() {
        let o = origin("HTTP://Svc.Cluster.Local");
        assert_eq!(o.scheme(), Scheme::Http);
        assert_eq!(o.port(), 80);
        assert_eq!(o.to_string(), "http://svc.cluster.local:80");
        assert_ne!(origin("http://a:8080"), origin("https://a:8080"));
        assert_eq!(origin("svc:8080").scheme(), Scheme::Https);
    }

    /// Request URIs convert to their origin; origin-form URIs have none.
    #[test]
    fn uri_conversion() {
        let uri: Uri = "https://Example.com:8443/a/b".parse().expect("uri");
        assert_eq!(
            Origin::try_from(&uri).expect("origin"),
            origin("example.com:8443")
        );
        let path_only: Uri = "/a/b".parse().expect("uri");
        assert!(Origin::try_from(&path_only).is_err());
    }
}
