//! Errors of the Flight SQL service and their one mapping to gRPC codes.
//!
//! Owns that mapping and nothing else: it matches the library's error
//! enums with no wildcard, so a new error kind cannot slip through with a
//! made-up code. Messages of internal failures stay in the server's log.

use tonic::{Code, Status};

use super::handle::HandleError;
use crate::auth::AuthError;
use crate::catalog::CatalogError;
use crate::observatory::ObservatoryError;
use crate::query::QueryError;

/// Everything that can go wrong serving Flight SQL.
#[derive(Debug, thiserror::Error)]
pub enum FlightSqlError {
    /// Missing, unknown or insufficient credentials.
    #[error(transparent)]
    Auth(#[from] AuthError),
    /// The gate refused the query, or it failed, timed out or ran out of
    /// memory.
    #[error(transparent)]
    Observatory(#[from] ObservatoryError),
    /// A handle or ticket is forged, expired, or its parameters unusable.
    #[error(transparent)]
    Handle(#[from] HandleError),
    /// Updates, ingestion and transactions: the warehouse is read-only here.
    #[error("this server is read-only: only queries are allowed (ingest data with `osservatorio ingest`)")]
    ReadOnly,
    /// A result schema could not be encoded.
    #[error("encoding a schema: {0}")]
    Encode(#[from] arrow::error::ArrowError),
    #[error("serving Flight SQL: {0}")]
    Serve(String),
}

/// A code, and whether the message may be shown to the client.
fn mapping(error: &FlightSqlError) -> (Code, bool) {
    const INTERNAL: (Code, bool) = (Code::Internal, false);
    match error {
        FlightSqlError::Auth(auth) => match auth {
            AuthError::InvalidToken | AuthError::Unauthenticated(_) => {
                (Code::Unauthenticated, true)
            }
            AuthError::Forbidden { .. } => (Code::PermissionDenied, true),
            AuthError::BadRecord { .. } => INTERNAL,
        },
        FlightSqlError::Observatory(observatory) => match observatory {
            ObservatoryError::Query(query) => query_mapping(query),
            ObservatoryError::Catalog(catalog) => catalog_mapping(catalog),
            ObservatoryError::Report(_)
            | ObservatoryError::Indicator(_)
            | ObservatoryError::Chart(_)
            | ObservatoryError::Output(_) => INTERNAL,
        },
        FlightSqlError::Handle(handle) => match handle {
            HandleError::Forged | HandleError::Parameters(_) => (Code::InvalidArgument, true),
            HandleError::Expired => (Code::NotFound, true),
        },
        FlightSqlError::ReadOnly => (Code::PermissionDenied, true),
        FlightSqlError::Encode(_) | FlightSqlError::Serve(_) => INTERNAL,
    }
}

fn query_mapping(error: &QueryError) -> (Code, bool) {
    match error {
        QueryError::NotReadOnly(_) => (Code::PermissionDenied, true),
        QueryError::Invalid(_) | QueryError::Execution(_) => (Code::InvalidArgument, true),
        QueryError::ResourcesExhausted { .. } => (Code::ResourceExhausted, true),
        QueryError::Timeout(_) => (Code::DeadlineExceeded, true),
        QueryError::Busy { .. } => (Code::Unavailable, true),
        QueryError::Cluster { .. } => (Code::Unavailable, false),
        QueryError::BadEngine(_) => (Code::Internal, false),
        QueryError::Catalog(catalog) => catalog_mapping(catalog),
    }
}

fn catalog_mapping(error: &CatalogError) -> (Code, bool) {
    match error {
        CatalogError::UnknownDataset { .. } => (Code::NotFound, true),
        CatalogError::Store { .. } => (Code::Unavailable, false),
        CatalogError::BadLocation { .. }
        | CatalogError::Dictionary { .. }
        | CatalogError::Reference { .. }
        | CatalogError::ForeignDataDir { .. }
        | CatalogError::MissingDataDir { .. }
        | CatalogError::SchemaMismatch { .. }
        | CatalogError::Delta { .. }
        | CatalogError::Register { .. }
        | CatalogError::Io { .. } => (Code::Internal, false),
    }
}

impl From<FlightSqlError> for Status {
    fn from(error: FlightSqlError) -> Self {
        let (code, public) = mapping(&error);
        if public {
            Status::new(code, error.to_string())
        } else {
            tracing::error!(%error, "flight sql request failed");
            Status::new(code, "internal error; see the server log")
        }
    }
}
