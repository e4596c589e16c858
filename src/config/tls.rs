//! TLS material a caller brings: a client identity for mutual TLS ([`TlsClientAuth`]) and a
//! whole rustls configuration ([`CustomTlsConfig`]). Both are data in [`PoolConfig`]; they are
//! parsed and checked when the pool is built, so bad material fails
//! [`build`](crate::PoolBuilder::build) with [`Error::InvalidConfig`], never a dial.
//!
//! [`PoolConfig`]: crate::PoolConfig
//! [`Error::InvalidConfig`]: crate::Error::InvalidConfig

use std::fmt;
use std::sync::Arc;

/// A client certificate chain and its private key, PEM-encoded, that the pool presents to
/// servers that ask for one (mutual TLS). Set with
/// [`PoolBuilder::tls_client_auth_pem`](crate::PoolBuilder::tls_client_auth_pem).
///
/// The chain is one or more `CERTIFICATE` blocks, the client's own certificate first. The key
/// is unencrypted: PKCS#8 (`PRIVATE KEY`), or the older PKCS#1 (`RSA PRIVATE KEY`) and SEC1
/// (`EC PRIVATE KEY`) forms; RSA, ECDSA and Ed25519 keys are accepted (whatever the crypto
/// provider signs with). `Debug` never prints the key.
#[derive(Clone, PartialEq, Eq)]
pub struct TlsClientAuth {
    cert_chain_pem: Vec<u8>,
    key_pem: Vec<u8>,
}

impl TlsClientAuth {
    /// The chain and key as given; they are parsed when the pool is built.
    pub fn from_pem(cert_chain_pem: impl Into<Vec<u8>>, key_pem: impl Into<Vec<u8>>) -> Self {
        TlsClientAuth {
            cert_chain_pem: cert_chain_pem.into(),
            key_pem: key_pem.into(),
        }
    }

    /// The certificate chain, PEM.
    pub fn cert_chain_pem(&self) -> &[u8] {
        &self.cert_chain_pem
    }

    pub(crate) fn key_pem(&self) -> &[u8] {
        &self.key_pem
    }
}

impl fmt::Debug for TlsClientAuth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // A configuration is logged; a private key must not be.
        f.debug_struct("TlsClientAuth")
            .field(
                "cert_chain_pem",
                &format_args!("{} bytes", self.cert_chain_pem.len()),
            )
            .field("key_pem", &format_args!("<redacted>"))
            .finish()
    }
}

/// A caller's own [`rustls::ClientConfig`], used instead of the one the pool would build. Set
/// with [`PoolBuilder::tls_config`](crate::PoolBuilder::tls_config), which documents what the
/// pool still changes in it.
///
/// Two values are equal when they share one `ClientConfig` (rustls' type has no equality).
#[derive(Clone)]
pub struct CustomTlsConfig(Arc<rustls::ClientConfig>);

impl CustomTlsConfig {
    /// Wraps `config`.
    pub fn new(config: rustls::ClientConfig) -> Self {
        CustomTlsConfig(Arc::new(config))
    }

    /// The configuration as the caller gave it (before the pool set ALPN on its copy).
    pub fn get(&self) -> &rustls::ClientConfig {
        &self.0
    }
}

impl PartialEq for CustomTlsConfig {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }
}

impl fmt::Debug for CustomTlsConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Only what identifies it: rustls' own Debug walks resolvers and stores.
        f.debug_struct("CustomTlsConfig")
            .field("client_auth", &self.0.client_auth_cert_resolver.has_certs())
            .finish_non_exhaustive()
    }
}
