//! Self-contained statement handles and tickets: the SQL, its bound
//! parameters and an expiry, sealed with a key that lives only as long as
//! the server process.
//!
//! Owns the handle format and its signature. It must not run or check SQL:
//! a handle only carries text back to the gate, which checks it again.
//! Because a handle holds everything, the server keeps nothing per client;
//! an abandoned handle simply expires.

use std::io::Cursor;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use arrow::array::RecordBatch;
use arrow::datatypes::{DataType, Field, Schema};
use arrow::ipc::reader::StreamReader;
use arrow::ipc::writer::StreamWriter;
use bytes::Bytes;
use datafusion::scalar::ScalarValue;
use hmac::{Hmac, KeyInit, Mac};
use rand::RngCore;
use serde::{Deserialize, Serialize};
use sha2::Sha256;

const MAC_BYTES: usize = 32;

/// Why a handle or ticket was not accepted.
#[derive(Debug, thiserror::Error)]
pub enum HandleError {
    /// Not made by this server process: forged, altered, or made before a
    /// restart.
    #[error("the statement handle is not valid here (the server may have restarted); prepare or run the query again")]
    Forged,
    #[error("the statement handle has expired; prepare or run the query again")]
    Expired,
    /// The parameters sent to bind cannot be used.
    #[error("parameters: {0}")]
    Parameters(String),
}

/// A statement ready to run: the SQL and the values of its placeholders.
#[derive(Debug, Clone, PartialEq)]
pub struct Statement {
    pub sql: String,
    /// `(placeholder name without $, value)`.
    pub params: Vec<(String, ScalarValue)>,
}

#[derive(Serialize, Deserialize)]
struct Sealed {
    sql: String,
    /// One-row Arrow IPC stream whose columns are named after placeholders.
    params: Option<String>,
    expires: u64,
}

/// Seals and opens handles with a random per-process key.
pub struct HandleSigner {
    key: [u8; 32],
    lifetime: Duration,
}

impl HandleSigner {
    /// A signer whose handles stay valid for `lifetime`.
    pub fn new(lifetime: Duration) -> Self {
        let mut key = [0u8; 32];
        rand::rng().fill_bytes(&mut key);
        Self { key, lifetime }
    }

    fn mac(&self) -> Hmac<Sha256> {
        Hmac::<Sha256>::new_from_slice(&self.key).expect("HMAC takes keys of any length")
    }

    /// The opaque bytes a client passes back to run `statement`.
    pub fn seal(&self, statement: &Statement) -> Result<Bytes, HandleError> {
        let expires = (SystemTime::now() + self.lifetime)
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let params = if statement.params.is_empty() {
            None
        } else {
            Some(hex::encode(params_to_ipc(&statement.params)?))
        };
        let mut bytes = serde_json::to_vec(&Sealed {
            sql: statement.sql.clone(),
            params,
            expires,
        })
        .expect("a handle serialises");
        let mut mac = self.mac();
        mac.update(&bytes);
        bytes.extend_from_slice(&mac.finalize().into_bytes());
        Ok(Bytes::from(bytes))
    }

    /// The statement in `bytes`, if this process sealed them and they have
    /// not expired.
    pub fn open(&self, bytes: &[u8]) -> Result<Statement, HandleError> {
        if bytes.len() < MAC_BYTES {
            return Err(HandleError::Forged);
        }
        let (body, tag) = bytes.split_at(bytes.len() - MAC_BYTES);
        let mut mac = self.mac();
        mac.update(body);
        mac.verify_slice(tag).map_err(|_| HandleError::Forged)?;
        let sealed: Sealed = serde_json::from_slice(body).map_err(|_| HandleError::Forged)?;
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        if now > sealed.expires {
            return Err(HandleError::Expired);
        }
        let params = match sealed.params {
            None => Vec::new(),
            Some(text) => {
                let ipc = hex::decode(text).map_err(|_| HandleError::Forged)?;
                params_from_ipc(&ipc)?
            }
        };
        Ok(Statement {
            sql: sealed.sql,
            params,
        })
    }
}

/// Binds a client's parameter batch to the placeholders of a query.
///
/// The batch must have one row. Its columns bind by name when every name
/// is a placeholder of the query (`year` or `$year`); otherwise by position,
/// the first column to `$1` or to the first placeholder. Values are cast to
/// the type the planner inferred, so an integer from Python binds to an
/// `Int32` column.
pub fn bind(
    batch: &RecordBatch,
    placeholders: &[(String, Option<DataType>)],
) -> Result<Vec<(String, ScalarValue)>, HandleError> {
    if batch.num_columns() == 0 {
        return Ok(Vec::new());
    }
    if batch.num_rows() != 1 {
        return Err(HandleError::Parameters(format!(
            "send one row of parameter values, not {}",
            batch.num_rows()
        )));
    }
    if batch.num_columns() != placeholders.len() {
        return Err(HandleError::Parameters(format!(
            "the query has {} placeholder(s) and {} value(s) were sent",
            placeholders.len(),
            batch.num_columns()
        )));
    }
    let schema = batch.schema();
    let names: Vec<&str> = schema
        .fields()
        .iter()
        .map(|f| f.name().trim_start_matches('$'))
        .collect();
    let by_name = names
        .iter()
        .all(|n| placeholders.iter().any(|(p, _)| p == n));
    batch
        .columns()
        .iter()
        .enumerate()
        .map(|(i, column)| {
            let (name, kind) = if by_name {
                placeholders
                    .iter()
                    .find(|(p, _)| p == names[i])
                    .expect("checked above")
            } else {
                &placeholders[i]
            };
            let value = ScalarValue::try_from_array(column, 0)
                .map_err(|e| HandleError::Parameters(e.to_string()))?;
            let value = match kind {
                Some(kind) if !value.is_null() && value.data_type() != *kind => {
                    value.cast_to(kind).map_err(|_| {
                        HandleError::Parameters(format!(
                            "${name} needs a {kind} value, and {value} cannot be converted"
                        ))
                    })?
                }
                _ => value,
            };
            Ok((name.clone(), value))
        })
        .collect()
}

fn params_to_ipc(params: &[(String, ScalarValue)]) -> Result<Vec<u8>, HandleError> {
    let parameters = |e: arrow::error::ArrowError| HandleError::Parameters(e.to_string());
    let mut fields = Vec::new();
    let mut columns = Vec::new();
    for (name, value) in params {
        fields.push(Field::new(name, value.data_type(), true));
        columns.push(
            value
                .to_array()
                .map_err(|e| HandleError::Parameters(e.to_string()))?,
        );
    }
    let batch = RecordBatch::try_new(Arc::new(Schema::new(fields)), columns).map_err(parameters)?;
    let mut bytes = Vec::new();
    let mut writer = StreamWriter::try_new(&mut bytes, &batch.schema()).map_err(parameters)?;
    writer.write(&batch).map_err(parameters)?;
    writer.finish().map_err(parameters)?;
    drop(writer);
    Ok(bytes)
}

fn params_from_ipc(bytes: &[u8]) -> Result<Vec<(String, ScalarValue)>, HandleError> {
    let reader =
        StreamReader::try_new(Cursor::new(bytes), None).map_err(|_| HandleError::Forged)?;
    let mut params = Vec::new();
    for batch in reader {
        let batch = batch.map_err(|_| HandleError::Forged)?;
        for (field, column) in batch.schema().fields().iter().zip(batch.columns()) {
            let value = ScalarValue::try_from_array(column, 0).map_err(|_| HandleError::Forged)?;
            params.push((field.name().clone(), value));
        }
    }
    Ok(params)
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::{Int64Array, StringArray};

    #[test]
    fn a_sealed_statement_opens_unchanged_and_tampering_is_caught() {
        let signer = HandleSigner::new(Duration::from_secs(60));
        let statement = Statement {
            sql: "SELECT $1".into(),
            params: vec![("1".into(), ScalarValue::Int64(Some(7)))],
        };
        let sealed = signer.seal(&statement).unwrap();
        assert_eq!(signer.open(&sealed).unwrap(), statement);
        let mut altered = sealed.to_vec();
        altered[9] ^= 1;
        assert!(matches!(signer.open(&altered), Err(HandleError::Forged)));
        let other = HandleSigner::new(Duration::from_secs(60));
        assert!(matches!(other.open(&sealed), Err(HandleError::Forged)));
        let expired = HandleSigner {
            key: signer.key,
            lifetime: Duration::ZERO,
        };
        let old = expired.seal(&statement).unwrap();
        std::thread::sleep(Duration::from_millis(1100));
        assert!(matches!(signer.open(&old), Err(HandleError::Expired)));
    }

    #[test]
    fn parameters_bind_by_name_or_position_and_take_the_inferred_type() {
        let batch = RecordBatch::try_from_iter([
            (
                "district",
                Arc::new(StringArray::from(vec!["Cremona"])) as _,
            ),
            ("year", Arc::new(Int64Array::from(vec![2024])) as _),
        ])
        .unwrap();
        let named = [
            ("year".to_string(), Some(DataType::Int32)),
            ("district".to_string(), Some(DataType::Utf8)),
        ];
        let bound = bind(&batch, &named).unwrap();
        assert_eq!(bound[1], ("year".into(), ScalarValue::Int32(Some(2024))));
        let positional = [
            ("1".to_string(), Some(DataType::Utf8)),
            ("2".to_string(), None),
        ];
        let bound = bind(&batch, &positional).unwrap();
        assert_eq!(bound[0].0, "1");
        assert_eq!(bound[1], ("2".into(), ScalarValue::Int64(Some(2024))));
        assert!(bind(&batch, &named[..1]).is_err());
    }
}
