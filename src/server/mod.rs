//! The HTTP API and the committee page, over axum: routes, authentication
//! of bearer tokens, limits, metrics and graceful shutdown.
//!
//! Owns everything HTTP and nothing else: handlers extract, call one
//! function of [`crate::observatory`] and encode. No SQL and no business
//! rule lives here. Every error leaves through [`error::ApiError`], whose
//! status mapping is the only one.

mod error;
mod metrics;
mod routes;
mod sql;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::{DefaultBodyLimit, MatchedPath, Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::serve::ListenerExt;
use axum::Router;
use utoipa::OpenApi;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::auth::Access;
use crate::observatory::Observatory;

pub use error::{ApiError, ErrorBody};
pub use metrics::Metrics;

/// Request bodies larger than this are refused with 413.
pub const DEFAULT_BODY_LIMIT: usize = 1 << 20;

/// Limits of the HTTP layer; query limits are the observatory's.
#[derive(Debug, Clone, Copy)]
pub struct ServerLimits {
    pub body_bytes: usize,
    /// Time to produce a response head; a streamed body is then bounded by
    /// the query's own time limit.
    pub request_timeout: Duration,
}

/// Problems starting the server.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    /// Serving beyond this machine with nobody able to authenticate would
    /// publish whatever the config leaves public and lock out researchers.
    #[error("refusing to listen on {0}, which other machines can reach, with no tokens configured; create one with `osservatorio token create --role researcher --name NAME` (it goes into the config file) or listen on 127.0.0.1")]
    OpenWithoutTokens(SocketAddr),
    #[error("cannot listen on {address}: {source}")]
    Bind {
        address: SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error("serving HTTP: {0}")]
    Serve(#[source] std::io::Error),
}

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Osservatorio",
        description = "Indicators, charts, the data dictionary and read-only SQL of the observatory on domestic care work. Send tokens as `Authorization: Bearer <token>`."
    ),
    components(schemas(ErrorBody))
)]
struct ApiDoc;

/// Shared state of the handlers.
#[derive(Clone)]
pub struct AppState {
    observatory: Arc<Observatory>,
    access: Access,
    metrics: Arc<Metrics>,
    limits: ServerLimits,
    openapi: axum::body::Bytes,
}

impl AppState {
    pub fn new(observatory: Arc<Observatory>, access: Access, limits: ServerLimits) -> Self {
        Self {
            observatory,
            access,
            metrics: Arc::new(Metrics::default()),
            limits,
            openapi: axum::body::Bytes::new(),
        }
    }
}

/// The routes and their OpenAPI document, from the same list.
fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::with_openapi(ApiDoc::openapi())
        .routes(routes!(routes::page))
        .routes(routes!(routes::list_indicators))
        .routes(routes!(routes::indicator))
        .routes(routes!(routes::chart))
        .routes(routes!(routes::list_datasets))
        .routes(routes!(routes::dataset))
        .routes(routes!(sql::sql))
        .routes(routes!(routes::report))
        .routes(routes!(routes::healthz))
        .routes(routes!(routes::metrics))
        .routes(routes!(routes::openapi))
}

/// The application, ready to serve or to call with `oneshot`.
pub fn router(mut state: AppState) -> Router {
    let (router, document) = routes().split_for_parts();
    state.openapi = document
        .to_pretty_json()
        .expect("the OpenAPI document serialises")
        .into();
    router
        .fallback(not_found)
        .route_layer(axum::middleware::from_fn_with_state(state.clone(), track))
        .layer(DefaultBodyLimit::max(state.limits.body_bytes))
        .with_state(state)
}

async fn not_found(request: Request) -> ApiError {
    ApiError::NotFound(request.uri().path().to_string())
}

/// Applies the request timeout and records the request's metrics.
async fn track(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_string(), |m| m.as_str().to_string());
    let method = request.method().to_string();
    let started = Instant::now();
    let timeout = state.limits.request_timeout;
    let response = match tokio::time::timeout(timeout, next.run(request)).await {
        Ok(response) => response,
        Err(_) => ApiError::RequestTimeout(timeout).into_response(),
    };
    state.metrics.record_request(
        &route,
        &method,
        response.status().as_u16(),
        started.elapsed(),
    );
    response
}

/// Refuses a listen address other machines can reach when no token is set.
pub fn check_exposure(address: SocketAddr, access: &Access) -> Result<(), ServerError> {
    if !address.ip().is_loopback() && access.has_no_tokens() {
        return Err(ServerError::OpenWithoutTokens(address));
    }
    Ok(())
}

/// Binds `address`; port 0 picks a free port.
pub async fn bind(address: SocketAddr) -> Result<tokio::net::TcpListener, ServerError> {
    tokio::net::TcpListener::bind(address)
        .await
        .map_err(|source| ServerError::Bind { address, source })
}

/// Serves until `shutdown` completes, then stops accepting and lets the
/// requests in flight finish.
pub async fn serve(
    listener: tokio::net::TcpListener,
    state: AppState,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> Result<(), ServerError> {
    // A response written in parts (streamed results) must not wait for the
    // client's delayed ACK.
    let listener = listener.tap_io(|stream| {
        if let Err(e) = stream.set_nodelay(true) {
            tracing::debug!("TCP_NODELAY refused on a connection: {e}");
        }
    });
    axum::serve(listener, router(state))
        .with_graceful_shutdown(shutdown)
        .await
        .map_err(ServerError::Serve)
}

/// Completes on Ctrl-C or SIGTERM.
pub async fn shutdown_signal() {
    let interrupt = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = interrupt => {},
        () = terminate => {},
    }
    tracing::info!("shutting down: finishing the requests in flight");
}
