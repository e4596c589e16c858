//! What a failed dial was: each TCP or TLS failure becomes its own [`Error`] variant.

use std::io;

use rustls::{AlertDescription, CertificateError};

use super::race::ConnectAttempts;
use crate::error::{Error, shared};
use crate::origin::Origin;

/// Every address failed: refused everywhere is [`Error::ConnectionRefused`], anything else
/// [`Error::Connect`]; either way the source lists every address with its error.
pub(super) fn classify_connect_error(origin: &Origin, attempts: ConnectAttempts) -> Error {
    if attempts.all_refused() {
        Error::ConnectionRefused {
            origin: origin.clone(),
            source: shared(attempts),
        }
    } else {
        Error::Connect {
            origin: origin.clone(),
            source: shared(attempts),
        }
    }
}

/// A failed TLS handshake, by what rustls says went wrong. `certificate_request_unanswered`:
/// the server asked for a client certificate and the pool had none to send.
pub(super) fn classify_tls_error(
    origin: &Origin,
    error: io::Error,
    certificate_request_unanswered: bool,
) -> Error {
    let rustls_error = error
        .get_ref()
        .and_then(|inner| inner.downcast_ref::<rustls::Error>());
    match rustls_error {
        Some(rustls::Error::InvalidCertificate(CertificateError::UnknownIssuer)) => {
            Error::UntrustedCertificate {
                origin: origin.clone(),
                source: shared(error),
            }
        }
        Some(rustls::Error::InvalidCertificate(
            CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
        )) => Error::CertificateNameMismatch {
            origin: origin.clone(),
            source: shared(error),
        },
        // TLS 1.3 names the refusal; TLS 1.2 has no such alert, and OpenSSL (nginx) sends a
        // bare handshake_failure: after a certificate request the pool could not answer,
        // that is what it means.
        Some(rustls::Error::AlertReceived(AlertDescription::CertificateRequired)) => {
            Error::ClientCertificateRequired {
                origin: origin.clone(),
                source: shared(error),
            }
        }
        Some(rustls::Error::AlertReceived(AlertDescription::HandshakeFailure))
            if certificate_request_unanswered =>
        {
            Error::ClientCertificateRequired {
                origin: origin.clone(),
                source: shared(error),
            }
        }
        // The first record's type byte is not a TLS one: "HTTP/1.1 400" starts with 'H'.
        Some(rustls::Error::InvalidMessage(rustls::InvalidMessage::InvalidContentType)) => {
            Error::NotTls {
                origin: origin.clone(),
                source: shared(error),
            }
        }
        _ => Error::Tls {
            origin: origin.clone(),
            source: shared(error),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A bare `handshake_failure` names the missing client certificate only when the server
    /// had asked for one the pool could not give; `certificate_required` always does.
    #[test]
    fn handshake_failure_means_a_missing_certificate_only_after_an_unanswered_request() {
        let origin: Origin = "https://a.test".parse().expect("origin");
        let alert = |description| {
            io::Error::new(
                io::ErrorKind::InvalidData,
                rustls::Error::AlertReceived(description),
            )
        };
        let failure = || alert(AlertDescription::HandshakeFailure);
        assert!(matches!(
            classify_tls_error(&origin, failure(), true),
            Error::ClientCertificateRequired { .. }
        ));
        assert!(matches!(
            classify_tls_error(&origin, failure(), false),
            Error::Tls { .. }
        ));
        assert!(matches!(
            classify_tls_error(&origin, alert(AlertDescription::CertificateRequired), false),
            Error::ClientCertificateRequired { .. }
        ));
    }
}
