//! The API's errors and the one place that maps each to an HTTP status and
//! a stable slug, as JSON `{"error": slug, "message": text}`.
//!
//! Owns the status of every failure. The match below is exhaustive over the
//! library's error enums, so a new variant does not compile until it has a
//! status. Our own failures answer 500 with a generic message; the full
//! error goes to the log only.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use utoipa::ToSchema;

use crate::auth::AuthError;
use crate::catalog::CatalogError;
use crate::charts::ChartError;
use crate::indicators::IndicatorError;
use crate::observatory::ObservatoryError;
use crate::query::QueryError;
use crate::report::ReportError;

/// The body of every error response.
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorBody {
    /// Stable identifier of the kind of error, e.g. `invalid_sql`.
    pub error: String,
    /// Human-readable explanation.
    pub message: String,
}

/// Everything a request can fail with.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error(transparent)]
    Auth(#[from] AuthError),
    #[error(transparent)]
    Observatory(#[from] ObservatoryError),
    /// The request is malformed: a bad parameter, body or format name.
    #[error("{0}")]
    BadRequest(String),
    /// No representation the client accepts.
    #[error("{0}")]
    NotAcceptable(String),
    /// No such route.
    #[error("no such resource: {0}")]
    NotFound(String),
    /// The body is over the size limit.
    #[error("the request body is larger than the {0} byte limit")]
    PayloadTooLarge(usize),
    /// The request took longer than the server's request timeout.
    #[error("the request took longer than the {0:?} limit")]
    RequestTimeout(std::time::Duration),
}

impl From<QueryError> for ApiError {
    fn from(error: QueryError) -> Self {
        ApiError::Observatory(ObservatoryError::Query(error))
    }
}

/// A status, a slug, and whether the message may be shown to the client.
struct Mapping {
    status: StatusCode,
    slug: &'static str,
    public: bool,
}

const fn client(status: StatusCode, slug: &'static str) -> Mapping {
    Mapping {
        status,
        slug,
        public: true,
    }
}

const INTERNAL: Mapping = Mapping {
    status: StatusCode::INTERNAL_SERVER_ERROR,
    slug: "internal",
    public: false,
};

/// The object store or the cluster is down: worth retrying, and the
/// details (addresses) stay in the server log.
const UNAVAILABLE: Mapping = Mapping {
    status: StatusCode::SERVICE_UNAVAILABLE,
    slug: "backend_unavailable",
    public: false,
};

fn query_mapping(error: &QueryError) -> Mapping {
    match error {
        QueryError::NotReadOnly(_) => client(StatusCode::BAD_REQUEST, "not_read_only"),
        QueryError::Invalid(_) => client(StatusCode::BAD_REQUEST, "invalid_sql"),
        // A user's query failing while it runs (a bad cast, a division by
        // zero) is the query's fault, not the server's.
        QueryError::Execution(_) => client(StatusCode::BAD_REQUEST, "query_failed"),
        // The memory pool is shared, so the same query may succeed later.
        QueryError::ResourcesExhausted { .. } => {
            client(StatusCode::SERVICE_UNAVAILABLE, "resources_exhausted")
        }
        QueryError::Timeout(_) => client(StatusCode::GATEWAY_TIMEOUT, "timeout"),
        QueryError::Busy { .. } => client(StatusCode::SERVICE_UNAVAILABLE, "busy"),
        QueryError::Cluster { .. } => UNAVAILABLE,
        QueryError::BadEngine(_) => INTERNAL,
        QueryError::Catalog(catalog) => catalog_mapping(catalog),
    }
}

/// Our own indicator queries failing is our fault, and the engine's message
/// may quote data: only load-related failures are the client's to see.
fn indicator_query_mapping(error: &QueryError) -> Mapping {
    match error {
        QueryError::ResourcesExhausted { .. }
        | QueryError::Timeout(_)
        | QueryError::Busy { .. } => query_mapping(error),
        QueryError::Cluster { .. } | QueryError::Catalog(CatalogError::Store { .. }) => UNAVAILABLE,
        QueryError::NotReadOnly(_)
        | QueryError::Invalid(_)
        | QueryError::Execution(_)
        | QueryError::BadEngine(_)
        | QueryError::Catalog(_) => INTERNAL,
    }
}

fn catalog_mapping(error: &CatalogError) -> Mapping {
    match error {
        CatalogError::UnknownDataset { .. } => client(StatusCode::NOT_FOUND, "unknown_dataset"),
        CatalogError::Store { .. } => UNAVAILABLE,
        CatalogError::BadLocation { .. }
        | CatalogError::Dictionary { .. }
        | CatalogError::Reference { .. }
        | CatalogError::ForeignDataDir { .. }
        | CatalogError::MissingDataDir { .. }
        | CatalogError::SchemaMismatch { .. }
        | CatalogError::Delta { .. }
        | CatalogError::Register { .. }
        | CatalogError::Io { .. } => INTERNAL,
    }
}

fn mapping(error: &ApiError) -> Mapping {
    match error {
        ApiError::Auth(auth) => match auth {
            AuthError::InvalidToken => client(StatusCode::UNAUTHORIZED, "invalid_token"),
            AuthError::Unauthenticated(_) => client(StatusCode::UNAUTHORIZED, "unauthenticated"),
            AuthError::Forbidden { .. } => client(StatusCode::FORBIDDEN, "forbidden"),
            AuthError::BadRecord { .. } => INTERNAL,
        },
        ApiError::Observatory(observatory) => match observatory {
            ObservatoryError::Catalog(catalog) => catalog_mapping(catalog),
            ObservatoryError::Query(query) => query_mapping(query),
            ObservatoryError::Indicator(indicator) => match indicator {
                IndicatorError::Unknown { .. } => {
                    client(StatusCode::NOT_FOUND, "unknown_indicator")
                }
                IndicatorError::Parameter { .. } => {
                    client(StatusCode::BAD_REQUEST, "bad_parameter")
                }
                IndicatorError::Query { source, .. } => indicator_query_mapping(source),
                IndicatorError::Directory { .. }
                | IndicatorError::Parse { .. }
                | IndicatorError::Plan { .. }
                | IndicatorError::Duplicate { .. }
                | IndicatorError::Shape { .. }
                | IndicatorError::Disclosure { .. } => INTERNAL,
            },
            ObservatoryError::Chart(chart) => match chart {
                ChartError::Size(..) => client(StatusCode::BAD_REQUEST, "bad_parameter"),
                ChartError::Draw(_) | ChartError::Png(_) => INTERNAL,
            },
            ObservatoryError::Output(_) => INTERNAL,
            ObservatoryError::Report(report) => match report {
                ReportError::Indicator(IndicatorError::Query { source, .. }) => {
                    query_mapping(source)
                }
                ReportError::Indicator(_) | ReportError::Chart(_) | ReportError::Write { .. } => {
                    INTERNAL
                }
            },
        },
        ApiError::BadRequest(_) => client(StatusCode::BAD_REQUEST, "bad_request"),
        ApiError::NotAcceptable(_) => client(StatusCode::NOT_ACCEPTABLE, "not_acceptable"),
        ApiError::NotFound(_) => client(StatusCode::NOT_FOUND, "not_found"),
        ApiError::PayloadTooLarge(_) => client(StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large"),
        ApiError::RequestTimeout(_) => client(StatusCode::GATEWAY_TIMEOUT, "timeout"),
    }
}

impl ApiError {
    /// The status this error answers with.
    pub fn status(&self) -> StatusCode {
        mapping(self).status
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let Mapping {
            status,
            slug,
            public,
        } = mapping(&self);
        let message = if public {
            self.to_string()
        } else {
            let reference = format!("{:016x}", rand::random::<u64>());
            tracing::error!(error = %self, debug = ?self, reference, "request failed");
            format!("internal error; the server log has the details under reference {reference}")
        };
        let body = ErrorBody {
            error: slug.to_string(),
            message,
        };
        let mut response = (status, axum::Json(body)).into_response();
        if status == StatusCode::UNAUTHORIZED {
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"osservatorio\""),
            );
        }
        response
    }
}
