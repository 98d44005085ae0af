//! Encoders for query results: an aligned text table for terminals, CSV,
//! JSON, Parquet and the Arrow IPC stream.
//!
//! Owns byte formats only; it must not run queries or decide what is shown.

use std::io::Write;

use arrow::datatypes::SchemaRef;
use arrow::record_batch::RecordBatch;

/// The formats a result can be written in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum OutputFormat {
    /// Aligned text table, for people.
    Table,
    /// Comma-separated values with a header row.
    Csv,
    /// A JSON array of objects, one per row.
    Json,
    /// A Parquet file.
    Parquet,
    /// An Arrow IPC stream.
    Arrow,
}

impl OutputFormat {
    /// True for formats that are not text and should not go to a terminal.
    pub fn is_binary(self) -> bool {
        matches!(self, OutputFormat::Parquet | OutputFormat::Arrow)
    }
}

/// Failures while encoding a result.
#[derive(Debug, thiserror::Error)]
pub enum OutputError {
    #[error("encoding the result: {0}")]
    Arrow(#[from] arrow::error::ArrowError),
    #[error("encoding the result as Parquet: {0}")]
    Parquet(#[from] parquet::errors::ParquetError),
    #[error("writing the result: {0}")]
    Io(#[from] std::io::Error),
}

/// Writes `batches` to `out` in `format`.
pub fn write_batches<W: Write + Send>(
    format: OutputFormat,
    schema: &SchemaRef,
    batches: &[RecordBatch],
    mut out: W,
) -> Result<(), OutputError> {
    match format {
        OutputFormat::Table => {
            let table = arrow::util::pretty::pretty_format_batches(batches)?;
            writeln!(out, "{table}")?;
        }
        OutputFormat::Csv => {
            let mut writer = arrow::csv::WriterBuilder::new()
                .with_header(true)
                .build(out);
            if batches.is_empty() {
                writer.write(&RecordBatch::new_empty(schema.clone()))?;
            }
            for batch in batches {
                writer.write(batch)?;
            }
        }
        OutputFormat::Json => {
            let mut writer = arrow::json::ArrayWriter::new(&mut out);
            for batch in batches {
                writer.write(batch)?;
            }
            writer.finish()?;
            writeln!(out)?;
        }
        OutputFormat::Parquet => {
            let mut writer = parquet::arrow::ArrowWriter::try_new(out, schema.clone(), None)?;
            for batch in batches {
                writer.write(batch)?;
            }
            writer.close()?;
        }
        OutputFormat::Arrow => {
            let mut writer = arrow::ipc::writer::StreamWriter::try_new(out, schema)?;
            for batch in batches {
                writer.write(batch)?;
            }
            writer.finish()?;
        }
    }
    Ok(())
}
