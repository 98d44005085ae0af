//! The handlers. Each one extracts the request, checks the caller, calls one
//! function of the observatory and encodes the answer; none holds SQL or a
//! business rule.
//!
//! Owns content negotiation, conditional requests (`ETag`, `If-None-Match`)
//! and the aggregate routes; SQL is in `sql`. It must not decide what a figure is or
//! whether a cell is published.

use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};

use super::error::{ApiError, ErrorBody};
use super::AppState;
use crate::auth::{AuthError, Caller, Resource};
use crate::charts::{ChartOptions, ImageFormat};
use crate::indicators::{IndicatorFormat, Lang, ParameterValues};
use crate::observatory::{PageSelection, Rendered};

const MEDIA_SDMX_CSV: &str = "application/vnd.sdmx.data+csv";

fn bearer(headers: &HeaderMap) -> Result<Option<&str>, AuthError> {
    match headers.get(header::AUTHORIZATION) {
        None => Ok(None),
        Some(value) => value
            .to_str()
            .ok()
            .and_then(|v| v.strip_prefix("Bearer "))
            .map(Some)
            .ok_or(AuthError::InvalidToken),
    }
}

pub(super) fn authorize(
    state: &AppState,
    headers: &HeaderMap,
    resource: Resource,
) -> Result<Caller, ApiError> {
    Ok(state.access.authorize(bearer(headers)?, resource)?)
}

/// The response options and the indicator parameters of a query string.
pub(super) struct Request {
    lang: Lang,
    pub(super) format: Option<String>,
    width: Option<u32>,
    height: Option<u32>,
    values: ParameterValues,
}

pub(super) fn split_query(pairs: Vec<(String, String)>) -> Result<Request, ApiError> {
    let mut request = Request {
        lang: Lang::It,
        format: None,
        width: None,
        height: None,
        values: ParameterValues::new(),
    };
    let size = |name: &str, text: &str| {
        text.parse::<u32>().map_err(|_| {
            ApiError::BadRequest(format!("`{name}` must be a number of pixels, not `{text}`"))
        })
    };
    for (key, value) in pairs {
        match key.as_str() {
            "lang" => request.lang = parse_lang(&value)?,
            "format" => request.format = Some(value),
            "width" => request.width = Some(size("width", &value)?),
            "height" => request.height = Some(size("height", &value)?),
            // An empty value is what a form sends for "no choice".
            _ if value.is_empty() => {}
            _ => {
                request.values.insert(key, value);
            }
        }
    }
    Ok(request)
}

fn parse_lang(text: &str) -> Result<Lang, ApiError> {
    match text {
        "it" | "" => Ok(Lang::It),
        "en" => Ok(Lang::En),
        other => Err(ApiError::BadRequest(format!(
            "`lang` must be `it` or `en`, not `{other}`"
        ))),
    }
}

/// True when the `Accept` header lists `media` (or its type wildcard).
pub(super) fn accepts(headers: &HeaderMap, media: &str) -> bool {
    headers
        .get_all(header::ACCEPT)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|item| item.split(';').next().unwrap_or("").trim())
        .any(|item| item.eq_ignore_ascii_case(media))
}

/// True when the client takes anything (no `Accept`, or a wildcard).
pub(super) fn accepts_anything(headers: &HeaderMap) -> bool {
    headers.get(header::ACCEPT).is_none() || accepts(headers, "*/*")
}

fn indicator_format(request: &Request, headers: &HeaderMap) -> Result<IndicatorFormat, ApiError> {
    match request.format.as_deref() {
        Some("json") => return Ok(IndicatorFormat::Json),
        Some("csv") => return Ok(IndicatorFormat::Csv),
        Some("sdmx-csv") | Some("sdmx") => return Ok(IndicatorFormat::SdmxCsv),
        Some(other) => {
            return Err(ApiError::BadRequest(format!(
                "`format` must be json, csv or sdmx-csv, not `{other}`"
            )))
        }
        None => {}
    }
    if accepts(headers, MEDIA_SDMX_CSV) {
        Ok(IndicatorFormat::SdmxCsv)
    } else if accepts(headers, "text/csv") {
        Ok(IndicatorFormat::Csv)
    } else if accepts(headers, "application/json") || accepts_anything(headers) {
        Ok(IndicatorFormat::Json)
    } else {
        Err(ApiError::NotAcceptable(
            "indicators come as application/json, text/csv or application/vnd.sdmx.data+csv".into(),
        ))
    }
}

/// A rendered output, or 304 when the client already has these bytes.
fn conditional(headers: &HeaderMap, rendered: Rendered, private: bool) -> Response {
    let matches = headers
        .get_all(header::IF_NONE_MATCH)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .any(|tag| tag == "*" || tag.trim_start_matches("W/") == rendered.etag);
    let etag = HeaderValue::from_str(&rendered.etag).expect("an entity tag is a header value");
    let cache_control = HeaderValue::from_static(if private {
        "private, no-cache"
    } else {
        "no-cache"
    });
    let vary = HeaderValue::from_static("Accept, Authorization");
    if matches {
        return (
            StatusCode::NOT_MODIFIED,
            [
                (header::ETAG, etag),
                (header::CACHE_CONTROL, cache_control),
                (header::VARY, vary),
            ],
        )
            .into_response();
    }
    (
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static(rendered.media_type),
            ),
            (header::ETAG, etag),
            (header::CACHE_CONTROL, cache_control),
            (header::VARY, vary),
        ],
        rendered.bytes,
    )
        .into_response()
}

/// Records a rendered output in the metrics and answers it, or 304.
fn respond(
    state: &AppState,
    headers: &HeaderMap,
    kind: &'static str,
    rendered: Rendered,
) -> Response {
    state
        .metrics
        .record_render(kind, rendered.cached, rendered.compute_time);
    conditional(headers, rendered, aggregates_are_private(state))
}

fn aggregates_are_private(state: &AppState) -> bool {
    state.access.needed(Resource::Aggregates) != crate::auth::Role::Public
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub(super) struct LangQuery {
    /// `it` (default) or `en`.
    lang: Option<String>,
}

/// The indicator catalog with metadata and the table versions it reads.
#[utoipa::path(
    get, path = "/api/indicators", tag = "indicators",
    params(LangQuery),
    responses(
        (status = 200, description = "Every indicator with its metadata", content_type = "application/json"),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
    )
)]
pub(super) async fn list_indicators(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(query): Query<LangQuery>,
) -> Result<Json<Value>, ApiError> {
    authorize(&state, &headers, Resource::Aggregates)?;
    let lang = parse_lang(query.lang.as_deref().unwrap_or("it"))?;
    Ok(Json(state.observatory.indicator_list(lang)))
}

/// One indicator after disclosure control. Any other query parameter
/// (`year`, `district`, `province`) is bound to the indicator's parameter of
/// that name; unknown ones are refused.
#[utoipa::path(
    get, path = "/api/indicators/{id}", tag = "indicators",
    params(
        ("id" = String, Path, description = "Indicator id"),
        ("year" = Option<i32>, Query, description = "Year"),
        ("district" = Option<String>, Query, description = "Social-care district"),
        ("province" = Option<String>, Query, description = "ISTAT province code"),
        ("lang" = Option<String>, Query, description = "`it` (default) or `en`"),
        ("format" = Option<String>, Query, description = "json, csv or sdmx-csv; overrides Accept"),
    ),
    responses(
        (status = 200, description = "Values with flags, metadata and targets", content((String = "application/json"), (String = "text/csv"), (String = "application/vnd.sdmx.data+csv"))),
        (status = 304, description = "Not modified since the given ETag"),
        (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 406, body = ErrorBody), (status = 504, body = ErrorBody),
    )
)]
pub(super) async fn indicator(
    State(state): State<AppState>,
    Path(id): Path<String>,
    headers: HeaderMap,
    Query(pairs): Query<Vec<(String, String)>>,
) -> Result<Response, ApiError> {
    authorize(&state, &headers, Resource::Aggregates)?;
    let request = split_query(pairs)?;
    let format = indicator_format(&request, &headers)?;
    let rendered = state
        .observatory
        .indicator(&id, &request.values, format, request.lang)
        .await?;
    Ok(respond(&state, &headers, "indicator", rendered))
}

/// One indicator's chart: `{id}.svg` or `{id}.png`, with the same parameters
/// as the indicator plus `width` and `height` in pixels.
#[utoipa::path(
    get, path = "/api/charts/{file}", tag = "charts",
    params(
        ("file" = String, Path, description = "`{id}.svg` or `{id}.png`"),
        ("year" = Option<i32>, Query, description = "Year"),
        ("district" = Option<String>, Query, description = "Social-care district"),
        ("province" = Option<String>, Query, description = "ISTAT province code"),
        ("lang" = Option<String>, Query, description = "`it` (default) or `en`"),
        ("width" = Option<u32>, Query, description = "Pixels, 100 to 4000 (default 800)"),
        ("height" = Option<u32>, Query, description = "Pixels, 100 to 4000 (default 480)"),
    ),
    responses(
        (status = 200, description = "The chart", content((String = "image/svg+xml"), (Vec<u8> = "image/png"))),
        (status = 304, description = "Not modified since the given ETag"),
        (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 504, body = ErrorBody),
    )
)]
pub(super) async fn chart(
    State(state): State<AppState>,
    Path(file): Path<String>,
    headers: HeaderMap,
    Query(pairs): Query<Vec<(String, String)>>,
) -> Result<Response, ApiError> {
    authorize(&state, &headers, Resource::Aggregates)?;
    let (id, format) = match file.rsplit_once('.') {
        Some((id, "svg")) => (id, ImageFormat::Svg),
        Some((id, "png")) => (id, ImageFormat::Png),
        _ => {
            return Err(ApiError::NotFound(format!(
                "/api/charts/{file}: charts are `{{id}}.svg` or `{{id}}.png`"
            )))
        }
    };
    let request = split_query(pairs)?;
    let defaults = ChartOptions::default();
    let options = ChartOptions {
        lang: request.lang,
        width: request.width.unwrap_or(defaults.width),
        height: request.height.unwrap_or(defaults.height),
    };
    let rendered = state
        .observatory
        .chart(id, &request.values, format, options)
        .await?;
    Ok(respond(&state, &headers, "chart", rendered))
}

/// The data dictionary with each table's current version and size.
#[utoipa::path(
    get, path = "/api/datasets", tag = "datasets",
    responses(
        (status = 200, description = "Every dataset: columns, version, rows, files, bytes", content_type = "application/json"),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
    )
)]
pub(super) async fn list_datasets(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> Result<Json<Value>, ApiError> {
    authorize(&state, &headers, Resource::Aggregates)?;
    Ok(Json(state.observatory.datasets(None).await?))
}

/// One dataset of the dictionary with its current version and size.
#[utoipa::path(
    get, path = "/api/datasets/{name}", tag = "datasets",
    params(("name" = String, Path, description = "Dataset name")),
    responses(
        (status = 200, description = "The dataset: columns, version, rows, files, bytes", content_type = "application/json"),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
    )
)]
pub(super) async fn dataset(
    State(state): State<AppState>,
    Path(name): Path<String>,
    headers: HeaderMap,
) -> Result<Json<Value>, ApiError> {
    authorize(&state, &headers, Resource::Aggregates)?;
    Ok(Json(state.observatory.datasets(Some(&name)).await?))
}

/// The committee page: every indicator by theme with its chart, selectors
/// and CSV link. Works without scripts and loads nothing external.
#[utoipa::path(
    get, path = "/", tag = "page",
    params(("lang" = Option<String>, Query, description = "`it` (default) or `en`")),
    responses(
        (status = 200, description = "The page", content_type = "text/html"),
        (status = 304, description = "Not modified since the given ETag"),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
    )
)]
pub(super) async fn page(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(pairs): Query<Vec<(String, String)>>,
) -> Result<Response, ApiError> {
    authorize(&state, &headers, Resource::Aggregates)?;
    let lang = match pairs.iter().find(|(k, _)| k == "lang") {
        Some((_, value)) => parse_lang(value)?,
        None => Lang::It,
    };
    let selection = PageSelection::from_pairs(pairs.iter().map(|(k, v)| (k.as_str(), v.as_str())));
    let rendered = state.observatory.page(lang, &selection).await?;
    Ok(respond(&state, &headers, "page", rendered))
}

/// The annual report of a year, `{year}.html`: one self-contained document
/// for the observatory's whole area.
#[utoipa::path(
    get, path = "/api/reports/{file}", tag = "reports",
    params(
        ("file" = String, Path, description = "`{year}.html`, e.g. `2024.html`"),
        ("lang" = Option<String>, Query, description = "`it` (default) or `en`"),
    ),
    responses(
        (status = 200, description = "The report", content_type = "text/html"),
        (status = 304, description = "Not modified since the given ETag"),
        (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody),
    )
)]
pub(super) async fn report(
    State(state): State<AppState>,
    Path(file): Path<String>,
    headers: HeaderMap,
    Query(query): Query<LangQuery>,
) -> Result<Response, ApiError> {
    authorize(&state, &headers, Resource::Aggregates)?;
    let year: i32 = file
        .strip_suffix(".html")
        .and_then(|y| y.parse().ok())
        .filter(|y| (2000..=2100).contains(y))
        .ok_or_else(|| {
            ApiError::NotFound(format!("/api/reports/{file}: reports are `{{year}}.html`"))
        })?;
    let lang = parse_lang(query.lang.as_deref().unwrap_or("it"))?;
    let rendered = state.observatory.report(year, lang).await?;
    Ok(respond(&state, &headers, "report", rendered))
}

/// Liveness, with the table versions being served.
#[utoipa::path(
    get, path = "/healthz", tag = "operations",
    responses((status = 200, description = "Serving", content_type = "application/json"))
)]
pub(super) async fn healthz(State(state): State<AppState>) -> Json<Value> {
    let snapshot = state.observatory.snapshot();
    Json(json!({
        "status": "ok",
        "version": env!("CARGO_PKG_VERSION"),
        "snapshot_age_seconds": snapshot.age().as_secs(),
        "versions": snapshot.versions(),
    }))
}

/// Prometheus metrics: requests and latencies by route, query durations,
/// cache hits, snapshot reloads.
#[utoipa::path(
    get, path = "/metrics", tag = "operations",
    responses((status = 200, description = "Prometheus text format 0.0.4", content_type = "text/plain"))
)]
pub(super) async fn metrics(State(state): State<AppState>) -> impl IntoResponse {
    let reloads = state
        .observatory
        .stats()
        .reloads
        .load(std::sync::atomic::Ordering::Relaxed);
    (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
        )],
        state.metrics.encode(reloads),
    )
}

/// This document: OpenAPI 3.1, generated from the handlers.
#[utoipa::path(
    get, path = "/api/openapi.json", tag = "operations",
    responses((status = 200, description = "The OpenAPI document", content_type = "application/json"))
)]
pub(super) async fn openapi(State(state): State<AppState>) -> impl IntoResponse {
    (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        )],
        state.openapi.clone(),
    )
}
