//! `POST /api/sql`: researchers' read-only SQL, answered as rows stream
//! out of the query gate, in the format the client accepts.
//!
//! Owns reading the request body, content negotiation for results and the
//! streamed body with its end marker. It must not plan or check SQL itself:
//! that is the observatory's gate.

use std::time::Instant;

use axum::body::{Body, Bytes};
use axum::extract::rejection::BytesRejection;
use axum::extract::{Query, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use datafusion::scalar::ScalarValue;
use futures::StreamExt;
use serde::Deserialize;
use serde_json::Value;

use super::error::{ApiError, ErrorBody};
use super::routes::{accepts, accepts_anything, authorize, split_query, Request};
use super::AppState;
use crate::auth::Resource;
use crate::observatory::ObservatoryError;
use crate::query::{CappedStream, OutputFormat, StreamEncoder};

const MEDIA_ARROW: &str = "application/vnd.apache.arrow.stream";
const MEDIA_PARQUET: &str = "application/vnd.apache.parquet";

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct SqlRequest {
    sql: String,
    #[serde(default)]
    params: serde_json::Map<String, Value>,
}

fn scalar(name: &str, value: &Value) -> Result<ScalarValue, ApiError> {
    Ok(match value {
        Value::Null => ScalarValue::Null,
        Value::Bool(b) => ScalarValue::Boolean(Some(*b)),
        Value::Number(n) => match n.as_i64() {
            Some(i) => ScalarValue::Int64(Some(i)),
            None => ScalarValue::Float64(n.as_f64()),
        },
        Value::String(s) => ScalarValue::Utf8(Some(s.clone())),
        Value::Array(_) | Value::Object(_) => {
            return Err(ApiError::BadRequest(format!(
                "parameter `{name}` must be a string, number, boolean or null"
            )))
        }
    })
}

fn sql_format(request: &Request, headers: &HeaderMap) -> Result<OutputFormat, ApiError> {
    match request.format.as_deref() {
        Some("json") => return Ok(OutputFormat::Json),
        Some("csv") => return Ok(OutputFormat::Csv),
        Some("arrow") => return Ok(OutputFormat::Arrow),
        Some("parquet") => return Ok(OutputFormat::Parquet),
        Some(other) => {
            return Err(ApiError::BadRequest(format!(
                "`format` must be json, csv, arrow or parquet, not `{other}`"
            )))
        }
        None => {}
    }
    if accepts(headers, MEDIA_ARROW) {
        Ok(OutputFormat::Arrow)
    } else if accepts(headers, MEDIA_PARQUET) {
        Ok(OutputFormat::Parquet)
    } else if accepts(headers, "text/csv") {
        Ok(OutputFormat::Csv)
    } else if accepts(headers, "application/json") || accepts_anything(headers) {
        Ok(OutputFormat::Json)
    } else {
        Err(ApiError::NotAcceptable(format!(
            "results come as application/json, text/csv, {MEDIA_ARROW} or {MEDIA_PARQUET}"
        )))
    }
}

fn media_type(format: OutputFormat) -> &'static str {
    match format {
        OutputFormat::Json => "application/json",
        OutputFormat::Csv | OutputFormat::Table => "text/csv; charset=utf-8",
        OutputFormat::Arrow => MEDIA_ARROW,
        OutputFormat::Parquet => MEDIA_PARQUET,
    }
}

/// Runs read-only SQL for researchers. The body is the SQL text, or JSON
/// `{"sql": "...", "params": {"name": value}}` binding `$name`. Rows stream
/// as they are computed; past the row cap the result is cut and marked
/// (see the README). Errors found before the first row get their status;
/// a failure after rows were sent aborts the response.
#[utoipa::path(
    post, path = "/api/sql", tag = "sql",
    params(("format" = Option<String>, Query, description = "json, csv, arrow or parquet; overrides Accept")),
    request_body(description = "SQL text, or JSON {\"sql\": ..., \"params\": {...}}", content((String = "text/plain"), (String = "application/json"))),
    responses(
        (status = 200, description = "The rows", content((String = "application/json"), (String = "text/csv"), (Vec<u8> = "application/vnd.apache.arrow.stream"), (Vec<u8> = "application/vnd.apache.parquet"))),
        (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 406, body = ErrorBody), (status = 413, body = ErrorBody), (status = 503, body = ErrorBody),
        (status = 504, body = ErrorBody),
    )
)]
pub(super) async fn sql(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(pairs): Query<Vec<(String, String)>>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let caller = authorize(&state, &headers, Resource::Sql)?;
    let body = body.map_err(|rejection| {
        if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::PayloadTooLarge(state.limits.body_bytes)
        } else {
            ApiError::BadRequest(rejection.body_text())
        }
    })?;
    let request = split_query(pairs)?;
    let format = sql_format(&request, &headers)?;
    let is_json = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    let (text, params) = if is_json {
        let parsed: SqlRequest = serde_json::from_slice(&body)
            .map_err(|e| ApiError::BadRequest(format!("the JSON body: {e}")))?;
        let params = parsed
            .params
            .iter()
            .map(|(name, value)| {
                Ok((
                    name.trim_start_matches('$').to_string(),
                    scalar(name, value)?,
                ))
            })
            .collect::<Result<Vec<_>, ApiError>>()?;
        (parsed.sql, params)
    } else {
        let text = String::from_utf8(body.to_vec())
            .map_err(|_| ApiError::BadRequest("the SQL text is not UTF-8".into()))?;
        (text, Vec::new())
    };
    if text.trim().is_empty() {
        return Err(ApiError::BadRequest("the request has no SQL".into()));
    }
    // The text may quote personal values; the log keeps its hash and length.
    tracing::info!(
        caller = caller.name.as_deref().unwrap_or("-"),
        sql_sha256 = %hex::encode(<sha2::Sha256 as sha2::Digest>::digest(text.as_bytes())),
        sql_bytes = text.len(),
        "sql over http"
    );
    let started = Instant::now();
    let mut stream = state.observatory.sql(&text, params).await?;
    // Wait for the first rows, so that failures before them (most timeouts
    // and memory refusals) still get a status and a JSON error.
    let first = stream.next().await.transpose()?;
    let schema = stream.schema();
    let row_limit = state.observatory.config().limits.max_rows;
    let (mut encoder, prelude) =
        StreamEncoder::start(format, &schema, row_limit).map_err(ObservatoryError::Output)?;
    let mut opening = prelude;
    if let Some(batch) = &first {
        opening.extend(encoder.batch(batch).map_err(ObservatoryError::Output)?);
    }
    let rest = SqlBody {
        stream,
        encoder: Some(encoder),
        state: state.clone(),
        started,
    };
    let body =
        futures::stream::once(async move { Ok::<Bytes, std::io::Error>(Bytes::from(opening)) })
            .chain(futures::stream::unfold(Some(rest), next_chunk));
    Ok((
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static(media_type(format)),
            ),
            (
                header::HeaderName::from_static("x-row-limit"),
                HeaderValue::from(row_limit),
            ),
        ],
        Body::from_stream(body),
    )
        .into_response())
}

/// What is left to send of a SQL result.
struct SqlBody {
    stream: CappedStream,
    encoder: Option<StreamEncoder>,
    state: AppState,
    started: Instant,
}

async fn next_chunk(
    pending: Option<SqlBody>,
) -> Option<(Result<Bytes, std::io::Error>, Option<SqlBody>)> {
    let mut pending = pending?;
    let encoder = pending
        .encoder
        .as_mut()
        .expect("the encoder lives until the end");
    match pending.stream.next().await {
        Some(Ok(batch)) => match encoder.batch(&batch) {
            Ok(bytes) => Some((Ok(Bytes::from(bytes)), Some(pending))),
            Err(error) => Some((Err(abort(&error)), None)),
        },
        Some(Err(error)) => Some((Err(abort(&error)), None)),
        None => {
            let encoder = pending
                .encoder
                .take()
                .expect("the encoder lives until the end");
            let end = encoder.finish(&pending.stream.schema(), pending.stream.truncated());
            pending
                .state
                .metrics
                .record_work("sql", pending.started.elapsed());
            match end {
                Ok(bytes) => Some((Ok(Bytes::from(bytes)), None)),
                Err(error) => Some((Err(abort(&error)), None)),
            }
        }
    }
}

/// Ends a response already under way: the client sees an incomplete body.
fn abort(error: &dyn std::fmt::Display) -> std::io::Error {
    // The message may quote a value from the data: only at debug level.
    tracing::warn!("a streamed SQL result failed after it started; response aborted");
    tracing::debug!(%error, "the streamed SQL failure");
    std::io::Error::other(error.to_string())
}
