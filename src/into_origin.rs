//! What converts into an [`Origin`], and how a bad one becomes an [`Error`]: the parsing
//! itself is in `origin` (which knows nothing of the crate's error type).

use std::str::FromStr;

use http::Uri;

use crate::error::Error;
use crate::origin::{Origin, OriginError};

impl From<OriginError> for Error {
    fn from(e: OriginError) -> Error {
        match e {
            OriginError::InvalidUrl { input, reason } => Error::InvalidUrl { input, reason },
            OriginError::UnsupportedScheme { input, scheme } => {
                Error::UnsupportedScheme { input, scheme }
            }
        }
    }
}

impl FromStr for Origin {
    type Err = Error;

    /// Parses `https://host[:port][/path…]` or a bare `host[:port]` (taken as https).
    fn from_str(input: &str) -> Result<Origin, Error> {
        Ok(Origin::parse(input)?)
    }
}

impl TryFrom<&Uri> for Origin {
    type Error = Error;

    fn try_from(uri: &Uri) -> Result<Origin, Error> {
        Ok(Origin::from_uri(uri, || uri.to_string())?)
    }
}

impl TryFrom<&str> for Origin {
    type Error = Error;

    fn try_from(s: &str) -> Result<Origin, Error> {
        s.parse()
    }
}

/// Something that names an origin: an [`Origin`], a `&str` or `String` URL, or a [`Uri`].
///
/// Passing an `&Origin` to [`acquire`](crate::ConnectionPoolManager::acquire) on the hot path
/// avoids re-parsing.
pub trait IntoOrigin {
    /// Converts into an origin, or explains why it is not one.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidUrl`] or [`Error::UnsupportedScheme`].
    fn into_origin(self) -> Result<Origin, Error>;
}

impl IntoOrigin for Origin {
    fn into_origin(self) -> Result<Origin, Error> {
        Ok(self)
    }
}

impl IntoOrigin for &Origin {
    fn into_origin(self) -> Result<Origin, Error> {
        Ok(self.clone())
    }
}

impl IntoOrigin for &str {
    fn into_origin(self) -> Result<Origin, Error> {
        self.parse()
    }
}

impl IntoOrigin for String {
    fn into_origin(self) -> Result<Origin, Error> {
        self.parse()
    }
}

impl IntoOrigin for &String {
    fn into_origin(self) -> Result<Origin, Error> {
        self.parse()
    }
}

impl IntoOrigin for &Uri {
    fn into_origin(self) -> Result<Origin, Error> {
        Origin::try_from(self)
    }
}
