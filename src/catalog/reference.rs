//! Loading the committed reference tables (`datasets/*.csv`) into Arrow
//! batches typed by the dictionary.
//!
//! Owns parsing of files that ship with the code; it must not accept user
//! exports, which belong to ingest with its validation report.

use std::io::Cursor;

use arrow::csv::ReaderBuilder;
use arrow::record_batch::RecordBatch;

use super::{reference_csv, CatalogError, DatasetSpec};

/// Reads a reference dataset's committed CSV into one batch with the
/// dictionary's schema.
pub fn load_reference_table(spec: &DatasetSpec) -> Result<RecordBatch, CatalogError> {
    let file = spec
        .source_csv
        .as_deref()
        .ok_or_else(|| CatalogError::Reference {
            file: format!("{}.toml", spec.name),
            reason: "has no source_csv".into(),
        })?;
    let bad = |reason: String| CatalogError::Reference {
        file: file.to_string(),
        reason,
    };
    let text = reference_csv(file).ok_or_else(|| bad("is not embedded in the program".into()))?;
    let header = text.lines().next().unwrap_or_default();
    let expected: Vec<&str> = spec.columns.iter().map(|c| c.name.as_str()).collect();
    let found: Vec<&str> = header.trim_end_matches('\r').split(',').collect();
    if found != expected {
        return Err(bad(format!(
            "header is {found:?}, the dictionary expects {expected:?}"
        )));
    }
    let schema = spec.arrow_schema();
    let reader = ReaderBuilder::new(schema.clone())
        .with_header(true)
        .with_batch_size(1 << 16)
        .build(Cursor::new(text.as_bytes()))
        .map_err(|e| bad(e.to_string()))?;
    let batches = reader
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| bad(e.to_string()))?;
    arrow::compute::concat_batches(&schema, &batches).map_err(|e| bad(e.to_string()))
}
