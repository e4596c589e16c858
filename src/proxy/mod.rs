//! HTTP CONNECT proxies: which route an origin's connections take, decided once per origin.
//!
//! A pool has at most one proxy ([`PoolConfig::proxy`], or `HTTPS_PROXY` read at `build()`
//! with [`PoolConfig::proxy_from_env`]). An `https://` origin is reached either directly or
//! through a CONNECT tunnel to that proxy, and which one is fixed for the pool's lifetime by
//! the `NO_PROXY` list ([`PoolConfig::no_proxy`]). So an origin's pool of connections is keyed
//! by origin *and* route: the route is a function of the origin, decided when its pool is
//! created, and every connection of that pool takes it.
//!
//! Cleartext `http://` origins are always dialed directly: CONNECT is what the pool uses to
//! carry TLS through a proxy, and the cleartext modes exist for peers on a trusted network
//! (h2c with prior knowledge, a sidecar on localhost). `HTTP_PROXY` is not read.
//!
//! The `NO_PROXY` rules are hyper-util's proxy matcher's, the code reqwest uses: the same
//! rules as curl (see [`PoolConfig::no_proxy`]). The tunnel itself is opened by
//! `connector/tunnel.rs`.
//!
//! [`PoolConfig::proxy`]: crate::PoolConfig::proxy
//! [`PoolConfig::proxy_from_env`]: crate::PoolConfig::proxy_from_env
//! [`PoolConfig::no_proxy`]: crate::PoolConfig::no_proxy

mod env;
mod url;

use std::fmt;
use std::sync::Arc;

use http::HeaderValue;
use hyper_util::client::proxy::matcher::Matcher;

use crate::error::Error;
use crate::origin::{Origin, Scheme};

pub(crate) use env::{EnvProxy, read_env};
pub use url::ProxyUrl;

/// How a connection to an origin is dialed.
#[derive(Debug, Clone)]
pub(crate) enum Route {
    /// TCP to the origin's own addresses.
    Direct,
    /// TCP to the proxy, then `CONNECT` to the origin through it; TLS to the origin inside.
    Tunnel(Arc<Tunnel>),
}

impl Route {
    /// The proxy connections on this route go through.
    pub(crate) fn proxy(&self) -> Option<&Origin> {
        match self {
            Route::Direct => None,
            Route::Tunnel(tunnel) => Some(&tunnel.proxy),
        }
    }
}

/// A proxy to tunnel through, with the credentials its URL carried.
pub(crate) struct Tunnel {
    /// The proxy's scheme (`http`), host and port.
    pub(crate) proxy: Origin,
    /// `Proxy-Authorization: Basic …` from the URL's user and password (marked sensitive).
    pub(crate) authorization: Option<HeaderValue>,
}

impl fmt::Debug for Tunnel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Never the credentials.
        f.debug_struct("Tunnel")
            .field("proxy", &self.proxy)
            .field("authorization", &self.authorization.is_some())
            .finish()
    }
}

/// The pool's proxy and its `NO_PROXY` rules: what [`Routes::route`] decides from.
#[derive(Clone, Default)]
pub(crate) struct Routes {
    proxied: Option<Proxied>,
}

#[derive(Clone)]
struct Proxied {
    tunnel: Arc<Tunnel>,
    /// Intercepts every `https://` destination except those `NO_PROXY` names.
    matcher: Arc<Matcher>,
}

impl fmt::Debug for Routes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.proxied {
            None => f.write_str("Routes(direct)"),
            Some(p) => f
                .debug_struct("Routes")
                .field("tunnel", &p.tunnel)
                .field("matcher", &p.matcher)
                .finish(),
        }
    }
}

impl Routes {
    /// The routes a pool's `proxy` and `no_proxy` settings ask for (`proxy_from_env` already
    /// applied by the builder).
    ///
    /// # Errors
    ///
    /// [`Error::InvalidConfig`] naming `proxy` when the URL is not `http://host[:port]`.
    pub(crate) fn new(proxy: Option<&ProxyUrl>, no_proxy: Option<&str>) -> Result<Routes, Error> {
        let Some(url) = proxy else {
            return Ok(Routes::default());
        };
        let proxy = url.origin()?;
        let no_proxy = no_proxy.unwrap_or("");
        // The credentials, as the matcher reads them from the URL (percent-decoded, Basic). A
        // destination nothing excludes is always intercepted, so this also proves the matcher
        // understood the URL we validated: with `NO_PROXY` applied, "not intercepted" can
        // then only mean "excluded".
        let probe = http::Uri::from_static("https://proxy-probe.invalid/");
        let intercept = Matcher::builder()
            .https(url.as_str())
            .build()
            .intercept(&probe)
            .ok_or_else(|| {
                Error::invalid_config("proxy", format!("{url:?} is not an http:// proxy URL"))
            })?;
        let tunnel = Tunnel {
            proxy,
            authorization: intercept.basic_auth().cloned(),
        };
        let matcher = Matcher::builder().https(url.as_str()).no(no_proxy).build();
        Ok(Routes {
            proxied: Some(Proxied {
                tunnel: Arc::new(tunnel),
                matcher: Arc::new(matcher),
            }),
        })
    }

    /// The route of `origin`'s connections: through the proxy unless there is none, the
    /// origin is cleartext, or `NO_PROXY` names its host.
    pub(crate) fn route(&self, origin: &Origin) -> Route {
        let Some(proxied) = &self.proxied else {
            return Route::Direct;
        };
        if origin.scheme() != Scheme::Https {
            return Route::Direct;
        }
        if excluded(&proxied.matcher, origin) {
            Route::Direct
        } else {
            Route::Tunnel(Arc::clone(&proxied.tunnel))
        }
    }
}

/// True when the matcher (built with an `https` proxy) does not intercept `origin`: its
/// `NO_PROXY` names the host. Only the host is matched (a port in a `NO_PROXY` entry makes it
/// match nothing), as in reqwest.
fn excluded(matcher: &Matcher, origin: &Origin) -> bool {
    let uri = http::Uri::builder()
        .scheme("https")
        .authority(origin.authority())
        .path_and_query("/")
        .build();
    match uri {
        Ok(uri) => matcher.intercept(&uri).is_none(),
        // An origin is a parsed authority, so this cannot fail; were it to, the proxy is the
        // safe side (a direct dial would bypass a proxy the operator asked for).
        Err(_) => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn routes(proxy: &str, no_proxy: Option<&str>) -> Routes {
        Routes::new(Some(&ProxyUrl::from(proxy)), no_proxy).expect("valid proxy")
    }

    fn tunnelled(routes: &Routes, origin: &str) -> bool {
        let origin: Origin = origin.parse().expect("origin");
        matches!(routes.route(&origin), Route::Tunnel(_))
    }

    /// Without a proxy everything is direct; with one, every https origin is tunnelled.
    #[test]
    fn a_proxy_takes_every_https_origin() {
        assert!(!tunnelled(&Routes::default(), "https://a.test"));
        let r = routes("http://127.0.0.1:3128", None);
        assert!(tunnelled(&r, "https://a.test"));
        assert!(tunnelled(&r, "https://[::1]:8443"));
        // Cleartext origins never go through CONNECT.
        assert!(!tunnelled(&r, "http://a.test"));
    }

    /// `NO_PROXY` as curl reads it: a domain matches itself and its subdomains (leading dot
    /// optional), not names that merely end with it; IPs and CIDR blocks; `*` is everything;
    /// entries are trimmed; case is ignored.
    #[test]
    fn no_proxy_matches_like_curl() {
        let r = routes(
            "http://proxy.test:3128",
            Some("example.com, .internal.test,198.51.100.0/24, ::1 ,192.0.2.7"),
        );
        for direct in [
            "https://example.com",
            "https://api.EXAMPLE.com:8443",
            "https://internal.test",
            "https://a.b.internal.test",
            "https://198.51.100.3",
            "https://[::1]:443",
            "https://192.0.2.7",
        ] {
            assert!(!tunnelled(&r, direct), "{direct} should bypass the proxy");
        }
        for proxied in [
            "https://notexample.com",
            "https://example.com.evil.test",
            "https://198.51.101.1",
            "https://192.0.2.8",
            "https://[::2]",
        ] {
            assert!(tunnelled(&r, proxied), "{proxied} should use the proxy");
        }
        let all = routes("http://proxy.test:3128", Some("*"));
        assert!(!tunnelled(&all, "https://anything.test"));
        // A port in an entry matches nothing (reqwest's reading; curl ignores the port).
        let ported = routes("http://proxy.test:3128", Some("example.com:443"));
        assert!(tunnelled(&ported, "https://example.com"));
    }

    /// Credentials in the URL become a Basic `Proxy-Authorization`, percent-decoded, and never
    /// show in `Debug`.
    #[test]
    fn credentials_become_basic_authorization() {
        let r = routes("http://alice:s%40cret@127.0.0.1:3128", None);
        let Some(Proxied { tunnel, .. }) = &r.proxied else {
            panic!("a proxy is configured");
        };
        // base64("alice:s@cret")
        assert_eq!(
            tunnel.authorization.as_ref().map(HeaderValue::as_bytes),
            Some(&b"Basic YWxpY2U6c0BjcmV0"[..])
        );
        assert_eq!(tunnel.proxy.to_string(), "http://127.0.0.1:3128");
        let shown = format!("{r:?}");
        assert!(
            !shown.contains("cret") && !shown.contains("YWxp"),
            "{shown}"
        );
        assert!(
            routes("http://127.0.0.1:3128", None)
                .proxied
                .is_some_and(|p| p.tunnel.authorization.is_none())
        );
    }
}
