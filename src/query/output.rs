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

/// Schema metadata key, and Parquet footer key, carrying the row cap.
pub const ROW_LIMIT_KEY: &str = "osservatorio:row_limit";
/// Parquet footer key saying whether rows beyond the cap were dropped.
pub const TRUNCATED_KEY: &str = "osservatorio:truncated";

/// Encodes a result batch by batch, for sending while the query runs. Each
/// call returns the bytes ready to send; [`StreamEncoder::finish`] returns
/// the end of the document with the truncation marker:
///
/// - JSON: `{"columns": [...], "rows": [...], "row_count": n, "truncated": b}`;
/// - CSV: a header, the rows and, when cut, a last line `# truncated …`;
/// - Parquet: footer metadata `osservatorio:truncated` = `true`/`false`;
/// - Arrow IPC stream: the schema metadata carries `osservatorio:row_limit`,
///   since the stream format has no footer; a result with that many rows may
///   have been cut.
pub struct StreamEncoder {
    kind: EncoderKind,
    rows: usize,
    row_limit: usize,
}

enum EncoderKind {
    Csv { header_written: bool },
    Json,
    Arrow(arrow::ipc::writer::StreamWriter<Vec<u8>>),
    Parquet(parquet::arrow::ArrowWriter<Vec<u8>>),
}

impl StreamEncoder {
    /// An encoder for `format` (not `Table`, which needs every row to align
    /// columns) and the bytes that open the document.
    pub fn start(
        format: OutputFormat,
        schema: &SchemaRef,
        row_limit: usize,
    ) -> Result<(Self, Vec<u8>), OutputError> {
        let mut metadata = schema.metadata().clone();
        metadata.insert(ROW_LIMIT_KEY.to_string(), row_limit.to_string());
        let schema = std::sync::Arc::new(schema.as_ref().clone().with_metadata(metadata));
        let (kind, prelude) = match format {
            OutputFormat::Csv | OutputFormat::Table => (
                EncoderKind::Csv {
                    header_written: false,
                },
                Vec::new(),
            ),
            OutputFormat::Json => {
                let columns: Vec<serde_json::Value> = schema
                    .fields()
                    .iter()
                    .map(|f| serde_json::json!({"name": f.name(), "type": f.data_type().to_string()}))
                    .collect();
                let mut prelude = b"{\"columns\":".to_vec();
                serde_json::to_writer(&mut prelude, &columns).map_err(std::io::Error::from)?;
                prelude.extend_from_slice(b",\"rows\":[");
                (EncoderKind::Json, prelude)
            }
            OutputFormat::Arrow => {
                let mut writer = arrow::ipc::writer::StreamWriter::try_new(Vec::new(), &schema)?;
                let prelude = std::mem::take(writer.get_mut());
                (EncoderKind::Arrow(writer), prelude)
            }
            OutputFormat::Parquet => {
                let writer = parquet::arrow::ArrowWriter::try_new(Vec::new(), schema, None)?;
                (EncoderKind::Parquet(writer), Vec::new())
            }
        };
        let encoder = Self {
            kind,
            rows: 0,
            row_limit,
        };
        Ok((encoder, prelude))
    }

    /// Encodes one batch.
    pub fn batch(&mut self, batch: &RecordBatch) -> Result<Vec<u8>, OutputError> {
        let first_rows = self.rows == 0;
        self.rows += batch.num_rows();
        match &mut self.kind {
            EncoderKind::Csv { header_written } => {
                let mut out = Vec::new();
                let mut writer = arrow::csv::WriterBuilder::new()
                    .with_header(!*header_written)
                    .build(&mut out);
                writer.write(batch)?;
                drop(writer);
                *header_written = true;
                Ok(out)
            }
            EncoderKind::Json => {
                let mut lines = Vec::new();
                let mut writer = arrow::json::LineDelimitedWriter::new(&mut lines);
                writer.write(batch)?;
                writer.finish()?;
                drop(writer);
                let mut out = Vec::with_capacity(lines.len() + 1);
                for (i, line) in lines
                    .split(|b| *b == b'\n')
                    .filter(|l| !l.is_empty())
                    .enumerate()
                {
                    if !(first_rows && i == 0) {
                        out.push(b',');
                    }
                    out.extend_from_slice(line);
                }
                Ok(out)
            }
            EncoderKind::Arrow(writer) => {
                writer.write(batch)?;
                Ok(std::mem::take(writer.get_mut()))
            }
            EncoderKind::Parquet(writer) => {
                writer.write(batch)?;
                // Send finished row groups as they close; the writer tracks
                // offsets itself, so its buffer can be emptied.
                Ok(std::mem::take(writer.inner_mut()))
            }
        }
    }

    /// Ends the document, marking it truncated if rows were dropped.
    pub fn finish(self, schema: &SchemaRef, truncated: bool) -> Result<Vec<u8>, OutputError> {
        match self.kind {
            EncoderKind::Csv { header_written } => {
                let mut out = Vec::new();
                if !header_written {
                    arrow::csv::WriterBuilder::new()
                        .with_header(true)
                        .build(&mut out)
                        .write(&RecordBatch::new_empty(schema.clone()))?;
                }
                if truncated {
                    writeln!(
                        out,
                        "# truncated: the result was cut at {} rows",
                        self.row_limit
                    )?;
                }
                Ok(out)
            }
            EncoderKind::Json => Ok(format!(
                "],\"row_count\":{},\"row_limit\":{},\"truncated\":{truncated}}}\n",
                self.rows, self.row_limit
            )
            .into_bytes()),
            EncoderKind::Arrow(mut writer) => {
                writer.finish()?;
                Ok(writer.into_inner()?)
            }
            EncoderKind::Parquet(mut writer) => {
                writer.append_key_value_metadata(parquet::file::metadata::KeyValue::new(
                    TRUNCATED_KEY.to_string(),
                    truncated.to_string(),
                ));
                Ok(writer.into_inner()?)
            }
        }
    }
}
