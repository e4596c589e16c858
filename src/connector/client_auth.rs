//! The client identity for mutual TLS: [`TlsClientAuth`]'s PEM parsed into what rustls takes,
//! with an [`Error::InvalidConfig`] naming what is wrong with it (never the key's bytes).

use pki_types::pem::{self, PemObject};
use pki_types::{CertificateDer, PrivateKeyDer};

use crate::config::TlsClientAuth;
use crate::error::Error;

const FIELD: &str = "tls_client_auth";

/// The certificate chain and private key of `auth`.
pub(super) fn parse(
    auth: &TlsClientAuth,
) -> Result<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>), Error> {
    let chain = CertificateDer::pem_slice_iter(auth.cert_chain_pem())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| {
            Error::invalid_config(FIELD, format!("certificate chain: unreadable PEM: {e}"))
        })?;
    if chain.is_empty() {
        return Err(Error::invalid_config(
            FIELD,
            "certificate chain: no CERTIFICATE block in the PEM",
        ));
    }
    let key = PrivateKeyDer::from_pem_slice(auth.key_pem()).map_err(|e| key_error(auth, &e))?;
    Ok((chain, key))
}

/// Why the key PEM gave no key. The PEM error's own text is left out: it may quote a line.
fn key_error(auth: &TlsClientAuth, error: &pem::Error) -> Error {
    let key = auth.key_pem();
    let reason = if contains(key, b"ENCRYPTED PRIVATE KEY")
        || contains(key, b"Proc-Type: 4,ENCRYPTED")
    {
        "private key: the key is encrypted; give it decrypted (e.g. `openssl pkey -in key.pem`)"
    } else {
        match error {
            pem::Error::NoItemsFound => {
                "private key: no PRIVATE KEY, RSA PRIVATE KEY or EC PRIVATE KEY block in the PEM"
            }
            pem::Error::Base64Decode(_) => "private key: the PEM block is not valid base64",
            _ => "private key: unreadable PEM",
        }
    };
    Error::invalid_config(FIELD, reason)
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack
        .windows(needle.len())
        .any(|window| window == needle)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reason_of(cert: &str, key: &str) -> String {
        match parse(&TlsClientAuth::from_pem(cert, key)) {
            Err(Error::InvalidConfig { field, reason }) => {
                assert_eq!(field, FIELD);
                reason
            }
            other => panic!("expected InvalidConfig, got {other:?}"),
        }
    }

    const CERT: &str = "-----BEGIN CERTIFICATE-----\nMAA=\n-----END CERTIFICATE-----\n";

    /// Each kind of bad PEM gets its own reason, and none quotes the key.
    #[test]
    fn bad_pem_names_what_is_missing() {
        assert!(reason_of("", "").contains("no CERTIFICATE"));
        assert!(reason_of("garbage", "").contains("no CERTIFICATE"));
        assert!(reason_of(CERT, "").contains("no PRIVATE KEY"));
        assert!(reason_of(CERT, "not a key at all").contains("no PRIVATE KEY"));
        let encrypted =
            "-----BEGIN ENCRYPTED PRIVATE KEY-----\nMAA=\n-----END ENCRYPTED PRIVATE KEY-----\n";
        assert!(reason_of(CERT, encrypted).contains("encrypted"));
        let broken = "-----BEGIN PRIVATE KEY-----\nnot*base64\n-----END PRIVATE KEY-----\n";
        let reason = reason_of(CERT, broken);
        assert!(reason.contains("base64") && !reason.contains("not*base64"));
    }
}
