//! Name resolution for dials: the system resolver (`getaddrinfo`, through hyper-util's
//! `GaiResolver`), its failures wrapped in a type of their own so that a dial reports them as
//! [`Error::Dns`](crate::Error::Dns) by type. hyper-util's `ConnectError` only says
//! `"dns error"` in its message, and comparing messages breaks silently when one changes.

use std::error::Error as StdError;
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use hyper_util::client::legacy::connect::dns::{GaiResolver, Name};
use tower_service::Service;

/// A resolver whose failures are [`ResolveError`]s.
#[derive(Debug, Clone)]
pub(crate) struct MarkedResolver<R = GaiResolver>(pub(crate) R);

impl MarkedResolver {
    /// The system resolver.
    pub(crate) fn system() -> MarkedResolver {
        MarkedResolver(GaiResolver::new())
    }
}

/// A name that could not be resolved.
#[derive(Debug)]
pub(crate) struct ResolveError {
    host: String,
    source: io::Error,
}

impl std::fmt::Display for ResolveError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "could not resolve {}", self.host)
    }
}

impl StdError for ResolveError {
    fn source(&self) -> Option<&(dyn StdError + 'static)> {
        Some(&self.source)
    }
}

impl<R> Service<Name> for MarkedResolver<R>
where
    R: Service<Name, Error = io::Error>,
    R::Future: Send + 'static,
{
    type Response = R::Response;
    type Error = ResolveError;
    // Boxed: one allocation per dial, beside a TCP and a TLS handshake.
    type Future = Pin<Box<dyn Future<Output = Result<R::Response, ResolveError>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), ResolveError>> {
        self.0.poll_ready(cx).map_err(|source| ResolveError {
            host: String::new(),
            source,
        })
    }

    fn call(&mut self, name: Name) -> Self::Future {
        let host = name.as_str().to_owned();
        let lookup = self.0.call(name);
        Box::pin(async move { lookup.await.map_err(|source| ResolveError { host, source }) })
    }
}

/// True when `error` or one of its causes is a failed name resolution.
pub(crate) fn is_resolve_error(error: &(dyn StdError + 'static)) -> bool {
    let mut cause = Some(error);
    while let Some(e) = cause {
        if e.is::<ResolveError>() {
            return true;
        }
        cause = e.source();
    }
    false
}
