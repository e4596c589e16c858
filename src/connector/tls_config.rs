//! The rustls [`ClientConfig`] every dial uses: the pool's own (crypto provider, roots, client
//! identity, session store), or the caller's; either way the pool sets ALPN.
//!
//! The crypto provider is chosen by feature: `aws-lc-rs` when enabled (also when `ring`, the
//! default, is on too: `ring` comes with the defaults, so `aws-lc-rs` is the explicit choice),
//! else `ring`, else the process default a caller installed with
//! [`CryptoProvider::install_default`].

use std::sync::Arc;

use rustls::client::Resumption;
use rustls::crypto::CryptoProvider;
use rustls::{ClientConfig, KeyLogFile};

use super::certificate_request::Unanswered;
use super::{client_auth, roots};
use crate::config::PoolConfig;
use crate::error::Error;

pub(super) const ALPN_H2: &[u8] = b"h2";
pub(super) const ALPN_HTTP1: &[u8] = b"http/1.1";

/// The configuration `config` asks for; fails on TLS material that does not parse.
pub(super) fn client_config(config: &PoolConfig) -> Result<ClientConfig, Error> {
    let mut tls = match &config.tls_client_config {
        // The caller's session store (rustls' default: in memory, 256 sessions, as the
        // pool's) is kept: the pool counts full and resumed handshakes from each connection,
        // whatever store resumed it.
        Some(custom) => custom.get().clone(),
        None => own_config(config)?,
    };
    // Offer http/1.1 too even when h2_only is set, so a server without h2 completes the
    // handshake and the caller gets a clear Error::Protocol rather than a TLS alert. Set over
    // a caller's config as well: the pool speaks only these two, and reads which one ALPN chose.
    tls.alpn_protocols = vec![ALPN_H2.to_vec(), ALPN_HTTP1.to_vec()];
    // Noticed, so that a TLS 1.2 server's bare refusal can be named (see the module).
    tls.client_auth_cert_resolver =
        Arc::new(Unanswered(Arc::clone(&tls.client_auth_cert_resolver)));
    if config.tls_early_data {
        // Offered only on resumption with a ticket that allows it; what goes early is the
        // pool's choice (`crate::early_data`).
        tls.enable_early_data = true;
    }
    if config.tls_key_log {
        tls.key_log = Arc::new(KeyLogFile::new());
    }
    // The first use of a provider's random source starts its library up: 30 ms for AWS-LC in
    // a debug build, measured here, which the pool's first handshake would pay otherwise (and
    // with it the first request). Paid at build instead.
    tls.crypto_provider()
        .secure_random
        .fill(&mut [0u8; 1])
        .map_err(|_| Error::invalid_config("tls", "the crypto provider's random source failed"))?;
    Ok(tls)
}

/// The pool's own configuration from the `tls_*` options.
fn own_config(config: &PoolConfig) -> Result<ClientConfig, Error> {
    let roots = roots::root_store(config)?;
    let builder = ClientConfig::builder_with_provider(crypto_provider()?)
        .with_safe_default_protocol_versions()
        .map_err(|e| Error::invalid_config("tls", e.to_string()))?
        .with_root_certificates(roots);
    let mut tls = match &config.tls_client_auth {
        None => builder.with_no_client_auth(),
        Some(auth) => {
            let (chain, key) = client_auth::parse(auth)?;
            // rustls checks that the key signs with a scheme the provider has and that it is
            // the certificate's key.
            builder.with_client_auth_cert(chain, key).map_err(|e| {
                Error::invalid_config(
                    "tls_client_auth",
                    format!("unusable certificate or key: {e}"),
                )
            })?
        }
    };
    tls.resumption = match config.tls_session_cache_size {
        0 => Resumption::disabled(),
        n => Resumption::in_memory_sessions(n),
    };
    Ok(tls)
}

/// The crypto provider the features select (see the module docs).
fn crypto_provider() -> Result<Arc<CryptoProvider>, Error> {
    #[cfg(feature = "aws-lc-rs")]
    let provider = Some(Arc::new(rustls::crypto::aws_lc_rs::default_provider()));
    #[cfg(all(feature = "ring", not(feature = "aws-lc-rs")))]
    let provider = Some(Arc::new(rustls::crypto::ring::default_provider()));
    #[cfg(not(any(feature = "ring", feature = "aws-lc-rs")))]
    let provider = CryptoProvider::get_default().cloned();
    provider.ok_or_else(|| {
        Error::invalid_config(
            "tls",
            "no crypto provider: enable the `ring` or `aws-lc-rs` feature, install a process \
             default with rustls' CryptoProvider::install_default, or bring a ClientConfig \
             with tls_config",
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The features pick the provider: AWS-LC whenever `aws-lc-rs` is on (its default
    /// provider offers the post-quantum X25519MLKEM768 key exchange, *ring*'s does not).
    #[cfg(any(feature = "ring", feature = "aws-lc-rs"))]
    #[test]
    fn the_features_pick_the_crypto_provider() {
        let provider = crypto_provider().expect("a provider feature is on");
        let post_quantum = provider
            .kx_groups
            .iter()
            .any(|group| group.name() == rustls::NamedGroup::X25519MLKEM768);
        assert_eq!(post_quantum, cfg!(feature = "aws-lc-rs"));
    }

    /// ALPN is the pool's, whatever a caller's configuration said.
    #[test]
    fn a_callers_alpn_is_replaced() {
        let mut theirs =
            ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
                .with_safe_default_protocol_versions()
                .expect("ring supports the default versions")
                .with_root_certificates(rustls::RootCertStore::empty())
                .with_no_client_auth();
        theirs.alpn_protocols = vec![b"spdy/3".to_vec()];
        let config = PoolConfig {
            tls_client_config: Some(crate::config::CustomTlsConfig::new(theirs)),
            ..PoolConfig::default()
        };
        let tls = client_config(&config).expect("config");
        assert_eq!(tls.alpn_protocols, [ALPN_H2.to_vec(), ALPN_HTTP1.to_vec()]);
    }
}
