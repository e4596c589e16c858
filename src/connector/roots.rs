//! The trusted roots: webpki's, optionally the operating system's, and extra CA certificates.

use pki_types::CertificateDer;
use pki_types::pem::PemObject;
use rustls::RootCertStore;

use crate::config::PoolConfig;
use crate::error::Error;

/// The root store `config` asks for; fails on CA material that does not parse.
pub(super) fn root_store(config: &PoolConfig) -> Result<RootCertStore, Error> {
    let mut roots = RootCertStore::empty();
    // Without the feature, `validate` has refused `tls_webpki_roots` already.
    #[cfg(feature = "webpki-roots")]
    if config.tls_webpki_roots {
        roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    }
    #[cfg(feature = "native-roots")]
    if config.tls_native_roots {
        // Unreadable individual certificates are skipped, as the OS store often holds some.
        let found = rustls_native_certs::load_native_certs();
        let (added, _ignored) = roots.add_parsable_certificates(found.certs);
        if added == 0 {
            return Err(Error::invalid_config(
                "tls_native_roots",
                "no usable certificate in the operating system's store",
            ));
        }
    }
    for pem in &config.tls_extra_ca_pem {
        let mut added = 0;
        for cert in CertificateDer::pem_slice_iter(pem) {
            let cert = cert.map_err(|e| {
                Error::invalid_config("tls_extra_ca_pem", format!("unreadable PEM: {e}"))
            })?;
            roots.add(cert).map_err(|e| {
                Error::invalid_config("tls_extra_ca_pem", format!("unusable CA certificate: {e}"))
            })?;
            added += 1;
        }
        if added == 0 {
            return Err(Error::invalid_config(
                "tls_extra_ca_pem",
                "no CERTIFICATE block in the PEM",
            ));
        }
    }
    Ok(roots)
}
