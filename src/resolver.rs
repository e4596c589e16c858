//! Name resolution for dials: the [`Resolve`] trait a pool looks names up through, the system
//! resolver that is its default, and static overrides that win over both (curl's `--resolve`,
//! reqwest's `ClientBuilder::resolve`).
//!
//! Every dial resolves afresh: a replacement connection follows a service that moved to new
//! addresses. Caching, if wanted, belongs in the resolver (hickory's, say), which knows TTLs.

use std::collections::BTreeMap;
use std::fmt;
use std::future::Future;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::Arc;

use crate::error::Error;
use crate::origin::Origin;

/// What [`Resolve::resolve`] returns: a boxed future of the host's addresses.
pub type Resolving = Pin<Box<dyn Future<Output = io::Result<Vec<IpAddr>>> + Send>>;

/// Looks up the addresses of a host name. Plug one in with
/// [`PoolBuilder::resolver`](crate::PoolBuilder::resolver) to use your own DNS (hickory, a
/// service registry) instead of the system's.
///
/// The pool calls it for every dial, for DNS names only (an IP literal is dialed as is, and a
/// name in [`PoolConfig::resolve_overrides`](crate::PoolConfig::resolve_overrides) is not looked
/// up). The addresses carry no port: the origin's port is used. Their order is the order of
/// preference; the pool races them per RFC 8305, alternating address families.
///
/// Closures `Fn(&str) -> Resolving` implement it:
///
/// ```
/// use std::net::{IpAddr, Ipv4Addr};
/// use https_pool::{ConnectionPoolManager, Resolving};
///
/// let pool = ConnectionPoolManager::builder()
///     .resolver(|host: &str| -> Resolving {
///         let known = host == "api.internal";
///         Box::pin(async move {
///             if known {
///                 Ok(vec![IpAddr::V4(Ipv4Addr::LOCALHOST)])
///             } else {
///                 Err(std::io::Error::other("unknown name"))
///             }
///         })
///     })
///     .build()?;
/// # Ok::<(), https_pool::Error>(())
/// ```
pub trait Resolve: Send + Sync + 'static {
    /// The addresses of `host`, most preferred first. An error, or an empty list, fails the
    /// dial with [`Error::Dns`].
    fn resolve(&self, host: &str) -> Resolving;
}

impl<F> Resolve for F
where
    F: Fn(&str) -> Resolving + Send + Sync + 'static,
{
    fn resolve(&self, host: &str) -> Resolving {
        self(host)
    }
}

/// The operating system's resolver (`getaddrinfo` on a blocking thread, through
/// [`tokio::net::lookup_host`]). The default.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemResolver;

impl Resolve for SystemResolver {
    fn resolve(&self, host: &str) -> Resolving {
        let host = host.to_owned();
        Box::pin(async move {
            let found = tokio::net::lookup_host((host.as_str(), 0)).await?;
            Ok(found.map(|addr| addr.ip()).collect())
        })
    }
}

/// The resolver a pool was built with, shareable and printable.
#[derive(Clone)]
pub(crate) struct SharedResolver(pub(crate) Arc<dyn Resolve>);

impl fmt::Debug for SharedResolver {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SharedResolver(..)")
    }
}

impl Default for SharedResolver {
    fn default() -> Self {
        SharedResolver(Arc::new(SystemResolver))
    }
}

/// A name that could not be resolved: the source of [`Error::Dns`].
#[derive(Debug)]
pub(crate) struct ResolveError {
    host: String,
    source: Option<io::Error>,
}

impl fmt::Display for ResolveError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.source {
            Some(_) => write!(f, "could not resolve {}", self.host),
            None => write!(f, "{} resolved to no address", self.host),
        }
    }
}

impl std::error::Error for ResolveError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.source
            .as_ref()
            .map(|e| e as &(dyn std::error::Error + 'static))
    }
}

/// Overrides first, then the resolver; what every dial calls.
#[derive(Debug, Clone)]
pub(crate) struct Lookup {
    overrides: BTreeMap<String, Vec<IpAddr>>,
    resolver: SharedResolver,
}

impl Lookup {
    pub(crate) fn new(overrides: BTreeMap<String, Vec<IpAddr>>, resolver: SharedResolver) -> Self {
        Lookup {
            overrides,
            resolver,
        }
    }

    /// The socket addresses to try for `origin`, most preferred first (never empty).
    pub(crate) async fn addresses(&self, origin: &Origin) -> Result<Vec<SocketAddr>, Error> {
        let host = origin.host_unbracketed();
        let port = origin.port();
        if let Ok(ip) = host.parse::<IpAddr>() {
            return Ok(vec![SocketAddr::new(ip, port)]);
        }
        let ips = match self.overrides.get(host) {
            Some(ips) => ips.clone(),
            None => self
                .resolver
                .0
                .resolve(host)
                .await
                .map_err(|source| dns_error(origin, Some(source)))?,
        };
        if ips.is_empty() {
            return Err(dns_error(origin, None));
        }
        Ok(ips
            .into_iter()
            .map(|ip| SocketAddr::new(ip, port))
            .collect())
    }
}

fn dns_error(origin: &Origin, source: Option<io::Error>) -> Error {
    Error::Dns {
        origin: origin.clone(),
        source: Arc::new(ResolveError {
            host: origin.host_unbracketed().to_owned(),
            source,
        }),
    }
}

#[cfg(test)]
mod tests {
    use std::net::Ipv4Addr;

    use super::*;

    fn failing(_: &str) -> Resolving {
        Box::pin(async { Err(io::Error::other("no such host")) })
    }

    fn empty(_: &str) -> Resolving {
        Box::pin(async { Ok(Vec::new()) })
    }

    /// A failed lookup and an empty answer are both `Error::Dns` naming the origin; an
    /// override wins over the resolver; an IP literal is not looked up at all.
    #[tokio::test]
    async fn lookups_and_their_failures() {
        let origin: Origin = "https://nowhere.test:8443".parse().expect("origin");
        for resolver in [failing as fn(&str) -> Resolving, empty] {
            let lookup = Lookup::new(BTreeMap::new(), SharedResolver(Arc::new(resolver)));
            match lookup.addresses(&origin).await {
                Err(Error::Dns { origin: o, .. }) => assert_eq!(o, origin),
                other => panic!("expected Error::Dns, got {other:?}"),
            }
        }

        let local = IpAddr::V4(Ipv4Addr::LOCALHOST);
        let overrides = BTreeMap::from([("nowhere.test".to_owned(), vec![local])]);
        let lookup = Lookup::new(overrides, SharedResolver(Arc::new(failing)));
        let found = lookup.addresses(&origin).await.expect("overridden");
        assert_eq!(found, vec![SocketAddr::new(local, 8443)]);

        let literal: Origin = "https://[::1]:9".parse().expect("origin");
        let found = lookup.addresses(&literal).await.expect("literal");
        assert_eq!(found, vec!["[::1]:9".parse::<SocketAddr>().expect("addr")]);
    }
}
