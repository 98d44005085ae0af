//! The credentials of a Flight SQL call: a bearer token on every call, or
//! `Basic` user and password on the handshake.
//!
//! Owns reading them from the call's metadata. It must not decide what a
//! token may do: that is [`crate::auth`].

use base64::Engine;
use tonic::metadata::MetadataMap;

use super::FlightSqlError;
use crate::auth::AuthError;

/// The bearer token of a request, if any. `Basic` credentials are for the
/// handshake only.
pub(super) fn bearer(metadata: &MetadataMap) -> Result<Option<String>, FlightSqlError> {
    let Some(value) = metadata.get("authorization") else {
        return Ok(None);
    };
    let value = value
        .to_str()
        .map_err(|_| FlightSqlError::Auth(AuthError::InvalidToken))?;
    match value.split_once(' ') {
        Some((scheme, token)) if scheme.eq_ignore_ascii_case("bearer") => {
            Ok(Some(token.trim().to_string()))
        }
        _ => Err(FlightSqlError::Auth(AuthError::InvalidToken)),
    }
}

/// The token in `Basic` credentials: tools that only know user and
/// password send the token as the password, with any user name.
pub(super) fn basic_password(metadata: &MetadataMap) -> Option<String> {
    let value = metadata.get("authorization")?.to_str().ok()?;
    let (scheme, encoded) = value.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(encoded.trim())
        .ok()?;
    let text = String::from_utf8(decoded).ok()?;
    text.split_once(':')
        .map(|(_, password)| password.to_string())
}
