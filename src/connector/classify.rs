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

/// A failed TLS handshake, by what rustls says went wrong.
pub(super) fn classify_tls_error(origin: &Origin, error: io::Error) -> Error {
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
        Some(rustls::Error::AlertReceived(AlertDescription::CertificateRequired)) => {
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
