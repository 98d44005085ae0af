//! Who may see what: roles, bearer tokens stored only as SHA-256 hashes,
//! and the access policy of aggregate outputs.
//!
//! Owns creating tokens, recognising them and deciding whether a role may
//! use a kind of output. It must not know how a token travels (HTTP header,
//! Flight SQL handshake) or keep a token in clear anywhere.

use rand::RngCore;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// Prefix of every token, so that a leaked one is easy to recognise in logs
/// and secret scanners.
pub const TOKEN_PREFIX: &str = "osv_";

/// Roles, from the least to the most trusted; a role has every right of
/// the roles before it.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    Serialize,
    Deserialize,
    clap::ValueEnum,
)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Anyone, with no token: published aggregates only.
    Public,
    /// Members of the scientific committee: aggregates, even when they are
    /// restricted to the committee.
    Committee,
    /// Researchers: everything the committee sees, plus SQL on the warehouse.
    Researcher,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Public => "public",
            Role::Committee => "committee",
            Role::Researcher => "researcher",
        }
    }
}

/// One token as the config file stores it: a name for people, the role,
/// and the SHA-256 of the secret.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TokenRecord {
    pub name: String,
    pub role: Role,
    /// Lower-case hex SHA-256 of the token.
    pub sha256: String,
}

/// Why a request is not allowed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    /// A credential was given but matches no configured token, or is malformed.
    #[error("the token is not valid")]
    InvalidToken,
    /// No credential was given and the output is not public.
    #[error("this needs a token with the {needed} role; send it as `Authorization: Bearer <token>`", needed = .0.as_str())]
    Unauthenticated(Role),
    /// The credential is valid but its role is not enough.
    #[error("this needs the {needed} role; the token has the {have} role", needed = .needed.as_str(), have = .have.as_str())]
    Forbidden { needed: Role, have: Role },
    /// A token record in the configuration is unusable.
    #[error("token `{name}`: {reason}")]
    BadRecord { name: String, reason: String },
}

/// Who made a request, once the credential is checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    pub role: Role,
    /// The token's name; `None` for anonymous callers.
    pub name: Option<String>,
}

/// What kind of output a request asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Resource {
    /// Indicators, charts, the dictionary and the committee page.
    Aggregates,
    /// SQL on the warehouse, whatever the transport.
    Sql,
}

/// The configured tokens and the access policy.
#[derive(Debug, Clone, Default)]
pub struct Access {
    tokens: Vec<TokenRecord>,
    /// The least role that may see aggregates: public unless the committee
    /// keeps them to itself.
    aggregates: AggregateAccess,
}

/// Who may see aggregate outputs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum AggregateAccess {
    #[default]
    Public,
    Committee,
}

impl Access {
    /// Checks every record: a hash must be 64 hex digits and names unique.
    pub fn new(tokens: Vec<TokenRecord>, aggregates: AggregateAccess) -> Result<Self, AuthError> {
        for (i, record) in tokens.iter().enumerate() {
            let bad = |reason: &str| AuthError::BadRecord {
                name: record.name.clone(),
                reason: reason.to_string(),
            };
            if record.sha256.len() != 64 || !record.sha256.bytes().all(|b| b.is_ascii_hexdigit()) {
                return Err(bad("sha256 must be 64 hexadecimal digits"));
            }
            if tokens[..i].iter().any(|r| r.name == record.name) {
                return Err(bad("the name is used twice"));
            }
        }
        let tokens = tokens
            .into_iter()
            .map(|r| TokenRecord {
                sha256: r.sha256.to_ascii_lowercase(),
                ..r
            })
            .collect();
        Ok(Self { tokens, aggregates })
    }

    /// True when no token is configured.
    pub fn has_no_tokens(&self) -> bool {
        self.tokens.is_empty()
    }

    /// Adds a token, e.g. the one-off token of a session with no config.
    pub fn with_token(mut self, record: TokenRecord) -> Self {
        self.tokens.push(record);
        self
    }

    /// Recognises the caller from an optional bearer token.
    pub fn identify(&self, token: Option<&str>) -> Result<Caller, AuthError> {
        let Some(token) = token else {
            return Ok(Caller {
                role: Role::Public,
                name: None,
            });
        };
        let hash = token_hash(token.trim());
        self.tokens
            .iter()
            .find(|r| r.sha256 == hash)
            .map(|r| Caller {
                role: r.role,
                name: Some(r.name.clone()),
            })
            .ok_or(AuthError::InvalidToken)
    }

    /// The least role that may use `resource`.
    pub fn needed(&self, resource: Resource) -> Role {
        match (resource, self.aggregates) {
            (Resource::Aggregates, AggregateAccess::Public) => Role::Public,
            (Resource::Aggregates, AggregateAccess::Committee) => Role::Committee,
            (Resource::Sql, _) => Role::Researcher,
        }
    }

    /// Identifies the caller and checks that it may use `resource`.
    pub fn authorize(&self, token: Option<&str>, resource: Resource) -> Result<Caller, AuthError> {
        let caller = self.identify(token)?;
        let needed = self.needed(resource);
        if caller.role >= needed {
            Ok(caller)
        } else if caller.name.is_none() {
            Err(AuthError::Unauthenticated(needed))
        } else {
            Err(AuthError::Forbidden {
                needed,
                have: caller.role,
            })
        }
    }
}

/// Lower-case hex SHA-256 of a token, as stored in the config file.
pub fn token_hash(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// A new random token (256 bits from the OS generator) and its record. The
/// token itself is returned once and never stored.
pub fn new_token(name: &str, role: Role) -> (String, TokenRecord) {
    let mut secret = [0u8; 32];
    rand::rng().fill_bytes(&mut secret);
    let token = format!("{TOKEN_PREFIX}{}", hex::encode(secret));
    let record = TokenRecord {
        name: name.to_string(),
        role,
        sha256: token_hash(&token),
    };
    (token, record)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_recognised_by_hash_only() {
        let (token, record) = new_token("anna", Role::Committee);
        assert!(token.starts_with(TOKEN_PREFIX));
        assert!(!record.sha256.contains(&token[4..]));
        let access = Access::new(vec![record], AggregateAccess::Committee).unwrap();
        assert_eq!(
            access
                .authorize(Some(&token), Resource::Aggregates)
                .unwrap()
                .role,
            Role::Committee
        );
        assert_eq!(
            access.authorize(None, Resource::Aggregates),
            Err(AuthError::Unauthenticated(Role::Committee))
        );
        assert_eq!(
            access.authorize(Some(&token), Resource::Sql),
            Err(AuthError::Forbidden {
                needed: Role::Researcher,
                have: Role::Committee
            })
        );
        assert_eq!(
            access.authorize(Some("osv_wrong"), Resource::Aggregates),
            Err(AuthError::InvalidToken)
        );
    }

    #[test]
    fn malformed_records_are_refused() {
        let record = TokenRecord {
            name: "x".into(),
            role: Role::Researcher,
            sha256: "abc".into(),
        };
        assert!(Access::new(vec![record], AggregateAccess::Public).is_err());
    }
}
