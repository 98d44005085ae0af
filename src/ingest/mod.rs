//! Ingest of administrative exports: files as desks and offices send them →
//! rows checked against the dictionary and the warehouse → personal
//! identifiers replaced by keyed pseudonyms → one atomic Delta commit that
//! records its source; or nothing at all, with a report of every problem.
//! Also the commit history and the right to erasure.
//!
//! Owns validation across rows (keys, references), the all-or-nothing and
//! quarantine policies, refusing a file already ingested, and what a commit
//! records. It must not write except through `catalog::Warehouse`, and no
//! raw personal identifier may reach the warehouse, a log or a report.

mod fields;
mod identity;
mod read;
mod report;

use std::collections::{BTreeSet, HashMap};
use std::path::PathBuf;
use std::sync::Arc;

use arrow::array::{
    Array, ArrayRef, BooleanBuilder, Date32Builder, Float64Builder, Int32Builder, Int64Builder,
    RecordBatch, StringBuilder, UInt32Array, UInt64Array,
};
use arrow::datatypes::{DataType, Field, Schema};
use chrono::{Datelike, Utc};
use datafusion::datasource::MemTable;
use datafusion::prelude::{col, lit, Expr};
use indicatif::ProgressBar;
use serde_json::json;

use crate::catalog::{
    CatalogError, ColumnType, DatasetKind, DatasetSpec, Warehouse, WriteMode, YEAR_COLUMN,
};
use crate::query::{QueryEngine, QueryError, QueryLimits};

pub use fields::{header_key, parse_date, parse_number, NumberStyle};
pub use identity::{check_tax_code, mask, Pseudonymizer, TaxCodeError, MIN_KEY_BYTES};
pub use read::{Encoding, MAX_FIELD_CHARS};
pub use report::{FileSummary, IngestReport, Outcome, Problem, Rule};

use fields::{match_headers, CellReader, HeaderMatch, Value};

/// Columns added to the incoming rows while they are checked.
const FILE_COLUMN: &str = "__file";
const LINE_COLUMN: &str = "__line";
const INCOMING: &str = "__incoming";

/// Failures that stop an ingest before any row is judged.
#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    #[error("{}: {source}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{}: the file is empty; an export has at least a header line", path.display())]
    Empty { path: PathBuf },
    #[error("{}:{line}: {reason}", path.display())]
    Encoding {
        path: PathBuf,
        line: u64,
        reason: String,
    },
    #[error("{}:{line}: {reason}", path.display())]
    Malformed {
        path: PathBuf,
        line: u64,
        reason: String,
    },
    #[error("`{0}` is a reference table, kept in the repository, and is not ingested")]
    NotIngestible(String),
    #[error("no pseudonymisation key: set OSSERVATORIO_PSEUDONYM_KEY or `pseudonym_key` in the config file (at least {MIN_KEY_BYTES} bytes, kept apart from the data)")]
    MissingKey,
    #[error("the pseudonymisation key is shorter than {MIN_KEY_BYTES} bytes")]
    ShortKey,
    #[error("{file} (SHA-256 {sha256}) was already ingested into `{dataset}` as version {version}; pass --force to ingest it again")]
    AlreadyIngested {
        file: String,
        sha256: String,
        dataset: String,
        version: u64,
    },
    #[error("writing the rejects file {}: {source}", path.display())]
    Rejects {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    Catalog(#[from] CatalogError),
    #[error("checking rows against the warehouse: {0}")]
    Query(#[from] QueryError),
    #[error("checking rows against the warehouse: {0}")]
    DataFusion(#[from] datafusion::error::DataFusionError),
    #[error("building the rows: {0}")]
    Arrow(#[from] arrow::error::ArrowError),
}

/// How the ingested rows combine with the table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum IngestMode {
    /// Add the rows; keys already in the table are duplicates.
    Append,
    /// Replace every row of the years the file covers.
    ReplaceYear,
}

/// Choices of one ingest.
#[derive(Debug, Clone)]
pub struct IngestOptions {
    pub mode: IngestMode,
    /// Check only; commit nothing.
    pub dry_run: bool,
    /// Commit the valid rows and write the others beside the input.
    pub quarantine: bool,
    /// Ingest a file even if its content was ingested before.
    pub force: bool,
    /// Text encoding, when detection is not wanted.
    pub encoding: Option<Encoding>,
}

/// Reads, checks, pseudonymises and commits `files` into `dataset`.
pub async fn ingest(
    warehouse: &Warehouse,
    dataset: &str,
    files: &[PathBuf],
    options: &IngestOptions,
    pseudonymizer: &Pseudonymizer,
    progress: &ProgressBar,
) -> Result<IngestReport, IngestError> {
    let spec = warehouse.dictionary().require(dataset)?.clone();
    if spec.kind == DatasetKind::Reference {
        return Err(IngestError::NotIngestible(spec.name));
    }
    let mut raws = Vec::with_capacity(files.len());
    for path in files {
        raws.push(read::read_file(path, options.encoding)?);
    }
    if !options.force {
        refuse_repeats(warehouse, &spec.name, &raws).await?;
    }
    let total: usize = raws.iter().map(|r| r.records.len()).sum();
    progress.set_length(total as u64);
    progress.set_message(format!("checking {dataset}"));

    let today = Utc::now().date_naive();
    let patterns: HashMap<String, regex::Regex> = spec
        .columns
        .iter()
        .filter_map(|c| {
            let pattern = c.pattern.as_ref()?;
            let regex = regex::Regex::new(pattern).expect("the dictionary checks its patterns");
            Some((c.name.clone(), regex))
        })
        .collect();
    let reader = CellReader {
        patterns: &patterns,
        pseudonymizer,
        style: NumberStyle {
            decimal_comma: false,
        },
        latest_date: today + chrono::Duration::days(366),
        earliest_date: chrono::NaiveDate::from_ymd_opt(1900, 1, 1).expect("valid date"),
    };
    let mut problems: Vec<Problem> = Vec::new();
    let mut notes = Vec::new();
    let mut rows = RowBuilder::new(&spec, total);
    let mut summaries = Vec::new();
    let mut rejected_lines: Vec<(usize, u64)> = Vec::new();
    for (file_index, raw) in raws.iter().enumerate() {
        let file = report::file_name(&raw.path);
        problems.extend(raw.problems.iter().cloned());
        rejected_lines.extend(raw.problems.iter().map(|p| (file_index, p.line)));
        let matches = match_headers(&spec, &raw.header);
        let header_problems = header_problems(&spec, &raw.header, &matches, &file);
        if matches.contains(&HeaderMatch::Name) {
            notes.push(format!(
                "{file}: columns of personal names are read and dropped; the warehouse never stores names"
            ));
        }
        if !header_problems.is_empty() {
            problems.extend(header_problems);
            rejected_lines.extend(raw.records.iter().map(|r| (file_index, r.line)));
            summaries.push(summary(raw, &file));
            continue;
        }
        if raw.records.is_empty() && raw.problems.is_empty() {
            problems.push(Problem::file_level(
                &raw.path,
                2,
                Rule::NoRows,
                "the file has a header and no rows".into(),
            ));
        }
        let style = NumberStyle {
            decimal_comma: raw.format.contains("`;`"),
        };
        let reader = CellReader { style, ..reader };
        let column_of: Vec<Option<usize>> = (0..spec.columns.len())
            .map(|c| matches.iter().position(|m| *m == HeaderMatch::Column(c)))
            .collect();
        // Rows are checked on every core, in chunks, and merged in order.
        let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
        let chunk = raw.records.len().div_ceil(threads).max(1);
        let checked: Vec<Result<Vec<Value>, Vec<Problem>>> = std::thread::scope(|scope| {
            let workers: Vec<_> = raw
                .records
                .chunks(chunk)
                .map(|records| {
                    let (spec, column_of, file) = (&spec, &column_of, &file);
                    scope.spawn(move || {
                        let checked: Vec<_> = records
                            .iter()
                            .map(|record| check_row(spec, &reader, column_of, file, record))
                            .collect();
                        progress.inc(records.len() as u64);
                        checked
                    })
                })
                .collect();
            workers
                .into_iter()
                .flat_map(|w| w.join().expect("a row-checking thread panicked"))
                .collect()
        });
        for (record, outcome) in raw.records.iter().zip(checked) {
            match outcome {
                Ok(values) => rows.push(file_index as u32, record.line, values),
                Err(found) => {
                    problems.extend(found);
                    rejected_lines.push((file_index, record.line));
                }
            }
        }
        summaries.push(summary(raw, &file));
    }
    let file_names: Vec<String> = raws.iter().map(|r| report::file_name(&r.path)).collect();
    let batch = rows.finish()?;

    // Checks across rows: keys within the batch, then against the warehouse.
    let mut dropped: BTreeSet<(u32, u64)> = BTreeSet::new();
    for p in duplicate_keys_in_batch(&spec, &batch, &file_names) {
        dropped.insert(position_of(&p, &file_names));
        problems.push(p);
    }
    let years = years_of(&batch);
    let engine = QueryEngine::open(warehouse, QueryLimits::default()).await?;
    let ctx = engine.context();
    ctx.register_table(
        INCOMING,
        Arc::new(MemTable::try_new(
            batch.schema(),
            vec![vec![batch.clone()]],
        )?),
    )?;
    for p in warehouse_checks(&spec, options.mode, &years, &engine, &file_names).await? {
        dropped.insert(position_of(&p, &file_names));
        problems.push(p);
    }
    ctx.deregister_table(INCOMING)?;
    problems.sort_by(|a, b| (&a.file, a.line).cmp(&(&b.file, b.line)));

    let (files, lines) = tracking(&batch);
    let keep: Vec<bool> = (0..batch.num_rows())
        .map(|i| !dropped.contains(&(files.value(i), lines.value(i))))
        .collect();
    for (i, kept) in keep.iter().enumerate() {
        if !kept {
            rejected_lines.push((files.value(i) as usize, lines.value(i)));
        }
    }
    let valid =
        arrow::compute::filter_record_batch(&batch, &arrow::array::BooleanArray::from(keep))?;
    let valid = strip_tracking(&spec, valid)?;
    rejected_lines.sort();
    rejected_lines.dedup();
    let rows_read: usize = summaries.iter().map(|s| s.rows).sum();
    let rows_rejected = rejected_lines.len();
    let rows_valid = valid.num_rows();
    let has_problems = !problems.is_empty();
    progress.finish_and_clear();

    let outcome = if options.dry_run {
        Outcome::Checked {
            valid: !has_problems,
        }
    } else if has_problems && (!options.quarantine || rows_valid == 0) {
        Outcome::Rejected
    } else {
        let mode = match options.mode {
            IngestMode::Append => WriteMode::Append,
            IngestMode::ReplaceYear => WriteMode::ReplaceYears(years.iter().copied().collect()),
        };
        let metadata = commit_metadata(&summaries, options, rows_valid, rows_rejected);
        let version = warehouse
            .write_recorded(&spec.name, vec![valid], mode, metadata)
            .await?;
        tracing::info!(dataset = %spec.name, version, rows = rows_valid, "ingest committed");
        if has_problems {
            let rejects = write_rejects(&spec, &raws, &rejected_lines, &problems)?;
            Outcome::Quarantined {
                version,
                rejects: rejects.display().to_string(),
            }
        } else {
            Outcome::Committed { version }
        }
    };
    Ok(IngestReport {
        dataset: spec.name.clone(),
        files: summaries,
        rows_read,
        rows_valid: if matches!(outcome, Outcome::Rejected) {
            0
        } else {
            rows_valid
        },
        rows_rejected,
        outcome,
        problems,
        notes,
    })
}

/// One row's values, or its problems.
fn check_row(
    spec: &DatasetSpec,
    reader: &CellReader<'_>,
    column_of: &[Option<usize>],
    file: &str,
    record: &read::Record,
) -> Result<Vec<Value>, Vec<Problem>> {
    let mut values = Vec::with_capacity(spec.columns.len());
    let mut problems = Vec::new();
    for (c, column) in spec.columns.iter().enumerate() {
        if column.name == YEAR_COLUMN && spec.year_of.is_some() {
            values.push(Value::Null);
            continue;
        }
        let cell = column_of[c].map_or("", |i| record.cells[i].as_str());
        match reader.read(column, cell) {
            Ok(value) => values.push(value),
            Err(p) => {
                values.push(Value::Null);
                problems.push(Problem {
                    file: file.to_string(),
                    line: record.line,
                    column: Some(column.name.clone()),
                    value: Some(p.shown),
                    rule: p.rule,
                    message: p.message,
                });
            }
        }
    }
    if problems.is_empty() {
        if let Some(p) = cross_column_problem(spec, &values) {
            problems.push(Problem {
                file: file.to_string(),
                line: record.line,
                ..p
            });
        }
    }
    if problems.is_empty() {
        fill_year(spec, &mut values);
        Ok(values)
    } else {
        Err(problems)
    }
}

fn summary(raw: &read::RawFile, file: &str) -> FileSummary {
    FileSummary {
        file: file.to_string(),
        sha256: raw.sha256.clone(),
        bytes: raw.bytes,
        format: raw.format.clone(),
        rows: raw.records.len() + raw.problems.len(),
    }
}

fn position_of(problem: &Problem, files: &[String]) -> (u32, u64) {
    let index = files.iter().position(|f| *f == problem.file).unwrap_or(0);
    (index as u32, problem.line)
}

/// Unknown, duplicate and missing required columns, reported on line 1.
fn header_problems(
    spec: &DatasetSpec,
    header: &[String],
    matches: &[HeaderMatch],
    file: &str,
) -> Vec<Problem> {
    let mut problems = Vec::new();
    let at_header = |column: &str, rule: Rule, message: String| Problem {
        file: file.to_string(),
        line: 1,
        column: Some(column.to_string()),
        value: None,
        rule,
        message,
    };
    for (text, matched) in header.iter().zip(matches) {
        match matched {
            HeaderMatch::Unknown { suggestion } => problems.push(at_header(
                text,
                Rule::UnknownColumn,
                match suggestion {
                    Some(s) => format!(
                        "`{text}` is not a column of {}; did you mean `{s}`?",
                        spec.name
                    ),
                    None => format!("`{text}` is not a column of {}", spec.name),
                },
            )),
            HeaderMatch::Duplicate(index) => problems.push(at_header(
                text,
                Rule::DuplicateColumn,
                format!("a second header for `{}`", spec.columns[*index].name),
            )),
            HeaderMatch::Column(_) | HeaderMatch::Name | HeaderMatch::Derived => {}
        }
    }
    for (index, column) in spec.columns.iter().enumerate() {
        let derived = column.name == YEAR_COLUMN && spec.year_of.is_some();
        if !column.nullable && !derived && !matches.contains(&HeaderMatch::Column(index)) {
            problems.push(at_header(
                &column.name,
                Rule::MissingColumn,
                format!(
                    "the required column `{}` ({}) is missing",
                    column.name, column.label_it
                ),
            ));
        }
    }
    problems
}

/// Rules between columns of one row: an end date not before its start.
fn cross_column_problem(spec: &DatasetSpec, values: &[Value]) -> Option<Problem> {
    for (index, column) in spec.columns.iter().enumerate() {
        let Some(after) = &column.after else { continue };
        let start = spec.columns.iter().position(|c| &c.name == after)?;
        if let (Value::Date(end), Value::Date(begin)) = (&values[index], &values[start]) {
            if end < begin {
                let shown = chrono::NaiveDate::from_num_days_from_ce_opt(end + 719_163)
                    .map(|d| d.format("%d/%m/%Y").to_string());
                return Some(Problem {
                    file: String::new(),
                    line: 0,
                    column: Some(column.name.clone()),
                    value: shown,
                    rule: Rule::DateOrder,
                    message: format!("before `{after}`"),
                });
            }
        }
    }
    None
}

/// Sets `year` from the dataset's event date.
fn fill_year(spec: &DatasetSpec, values: &mut [Value]) {
    let Some(date_column) = &spec.year_of else {
        return;
    };
    let (Some(date_index), Some(year_index)) = (
        spec.columns.iter().position(|c| &c.name == date_column),
        spec.columns.iter().position(|c| c.name == YEAR_COLUMN),
    ) else {
        return;
    };
    if let Value::Date(days) = values[date_index] {
        if let Some(date) = chrono::NaiveDate::from_num_days_from_ce_opt(days + 719_163) {
            values[year_index] = Value::Int(i64::from(date.year()));
        }
    }
}

/// Accepted rows as Arrow columns, plus the file and line of each.
struct RowBuilder {
    spec: DatasetSpec,
    columns: Vec<ColumnBuilder>,
    files: Vec<u32>,
    lines: Vec<u64>,
}

enum ColumnBuilder {
    Text(StringBuilder),
    Int32(Int32Builder),
    Int64(Int64Builder),
    Float(Float64Builder),
    Bool(BooleanBuilder),
    Date(Date32Builder),
}

impl RowBuilder {
    fn new(spec: &DatasetSpec, capacity: usize) -> Self {
        let columns = spec
            .columns
            .iter()
            .map(|c| match c.column_type {
                ColumnType::Utf8 => {
                    ColumnBuilder::Text(StringBuilder::with_capacity(capacity, capacity * 8))
                }
                ColumnType::Int32 => ColumnBuilder::Int32(Int32Builder::with_capacity(capacity)),
                ColumnType::Int64 => ColumnBuilder::Int64(Int64Builder::with_capacity(capacity)),
                ColumnType::Float64 => {
                    ColumnBuilder::Float(Float64Builder::with_capacity(capacity))
                }
                ColumnType::Boolean => ColumnBuilder::Bool(BooleanBuilder::with_capacity(capacity)),
                ColumnType::Date => ColumnBuilder::Date(Date32Builder::with_capacity(capacity)),
            })
            .collect();
        Self {
            spec: spec.clone(),
            columns,
            files: Vec::with_capacity(capacity),
            lines: Vec::with_capacity(capacity),
        }
    }

    fn push(&mut self, file: u32, line: u64, values: Vec<Value>) {
        for (builder, value) in self.columns.iter_mut().zip(values) {
            match (builder, value) {
                (ColumnBuilder::Text(b), Value::Text(t)) => b.append_value(t),
                (ColumnBuilder::Int32(b), Value::Int(i)) => b.append_value(i as i32),
                (ColumnBuilder::Int64(b), Value::Int(i)) => b.append_value(i),
                (ColumnBuilder::Float(b), Value::Float(f)) => b.append_value(f),
                (ColumnBuilder::Float(b), Value::Int(i)) => b.append_value(i as f64),
                (ColumnBuilder::Bool(b), Value::Bool(v)) => b.append_value(v),
                (ColumnBuilder::Date(b), Value::Date(d)) => b.append_value(d),
                (ColumnBuilder::Text(b), _) => b.append_null(),
                (ColumnBuilder::Int32(b), _) => b.append_null(),
                (ColumnBuilder::Int64(b), _) => b.append_null(),
                (ColumnBuilder::Float(b), _) => b.append_null(),
                (ColumnBuilder::Bool(b), _) => b.append_null(),
                (ColumnBuilder::Date(b), _) => b.append_null(),
            }
        }
        self.files.push(file);
        self.lines.push(line);
    }

    /// The rows with the dictionary's columns (all nullable while checked)
    /// and the two tracking columns.
    fn finish(self) -> Result<RecordBatch, IngestError> {
        let mut fields: Vec<Field> = self
            .spec
            .columns
            .iter()
            .map(|c| Field::new(&c.name, c.column_type.arrow_type(), true))
            .collect();
        fields.push(Field::new(FILE_COLUMN, DataType::UInt32, false));
        fields.push(Field::new(LINE_COLUMN, DataType::UInt64, false));
        let mut arrays: Vec<ArrayRef> = self
            .columns
            .into_iter()
            .map(|b| -> ArrayRef {
                match b {
                    ColumnBuilder::Text(mut b) => Arc::new(b.finish()),
                    ColumnBuilder::Int32(mut b) => Arc::new(b.finish()),
                    ColumnBuilder::Int64(mut b) => Arc::new(b.finish()),
                    ColumnBuilder::Float(mut b) => Arc::new(b.finish()),
                    ColumnBuilder::Bool(mut b) => Arc::new(b.finish()),
                    ColumnBuilder::Date(mut b) => Arc::new(b.finish()),
                }
            })
            .collect();
        arrays.push(Arc::new(UInt32Array::from(self.files)));
        arrays.push(Arc::new(UInt64Array::from(self.lines)));
        Ok(RecordBatch::try_new(Arc::new(Schema::new(fields)), arrays)?)
    }
}

/// The accepted rows in the dictionary's exact schema.
fn strip_tracking(spec: &DatasetSpec, batch: RecordBatch) -> Result<RecordBatch, IngestError> {
    let columns: Vec<ArrayRef> = spec
        .columns
        .iter()
        .map(|c| {
            batch
                .column_by_name(&c.name)
                .expect("a dictionary column")
                .clone()
        })
        .collect();
    Ok(RecordBatch::try_new(spec.arrow_schema(), columns)?)
}

/// The file index and line of every incoming row.
fn tracking(batch: &RecordBatch) -> (&UInt32Array, &UInt64Array) {
    let column = |name: &str| batch.column_by_name(name).expect("a tracking column");
    (
        column(FILE_COLUMN)
            .as_any()
            .downcast_ref::<UInt32Array>()
            .expect("file indexes"),
        column(LINE_COLUMN)
            .as_any()
            .downcast_ref::<UInt64Array>()
            .expect("line numbers"),
    )
}

fn years_of(batch: &RecordBatch) -> BTreeSet<i32> {
    batch
        .column_by_name(YEAR_COLUMN)
        .and_then(|c| c.as_any().downcast_ref::<arrow::array::Int32Array>())
        .map(|years| years.iter().flatten().collect())
        .unwrap_or_default()
}

fn text_at(array: &ArrayRef, row: usize) -> String {
    if array.is_null(row) {
        return String::new();
    }
    arrow::util::display::array_value_to_string(array, row).unwrap_or_default()
}

fn duplicate_keys_in_batch(
    spec: &DatasetSpec,
    batch: &RecordBatch,
    files: &[String],
) -> Vec<Problem> {
    let key_columns: Vec<&ArrayRef> = spec
        .primary_key
        .iter()
        .filter_map(|k| batch.column_by_name(k))
        .collect();
    let (file_ids, lines) = tracking(batch);
    let mut first: HashMap<Vec<String>, (u32, u64)> = HashMap::with_capacity(batch.num_rows());
    let mut problems = Vec::new();
    for row in 0..batch.num_rows() {
        let key: Vec<String> = key_columns.iter().map(|c| text_at(c, row)).collect();
        let here = (file_ids.value(row), lines.value(row));
        if let Some((file, line)) = first.get(&key) {
            problems.push(Problem {
                file: files[here.0 as usize].clone(),
                line: here.1,
                column: Some(spec.primary_key.join(", ")),
                value: Some(key.join(", ")),
                rule: Rule::DuplicateKey,
                message: format!("the same key as {}:{line}", files[*file as usize]),
            });
        } else {
            first.insert(key, here);
        }
    }
    problems
}

fn quoted(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// References that resolve nowhere and keys the table already has.
async fn warehouse_checks(
    spec: &DatasetSpec,
    mode: IngestMode,
    years: &BTreeSet<i32>,
    engine: &QueryEngine,
    files: &[String],
) -> Result<Vec<Problem>, IngestError> {
    let ctx = engine.context();
    let mut problems = Vec::new();
    let mut collect =
        |batches: Vec<RecordBatch>, column: &str, rule: Rule, message: &dyn Fn(&str) -> String| {
            for batch in batches {
                let file_ids = batch
                    .column(0)
                    .as_any()
                    .downcast_ref::<UInt32Array>()
                    .unwrap()
                    .clone();
                let lines = batch
                    .column(1)
                    .as_any()
                    .downcast_ref::<UInt64Array>()
                    .unwrap()
                    .clone();
                for row in 0..batch.num_rows() {
                    let value = text_at(batch.column(2), row);
                    problems.push(Problem {
                        file: files[file_ids.value(row) as usize].clone(),
                        line: lines.value(row),
                        column: Some(column.to_string()),
                        message: message(&value),
                        value: Some(value),
                        rule,
                    });
                }
            }
        };
    for column in &spec.columns {
        let Some(reference) = &column.references else {
            continue;
        };
        let Some((table, key)) = reference.split_once('.') else {
            continue;
        };
        let c = quoted(&column.name);
        let mut sql = format!(
            "SELECT {FILE_COLUMN}, {LINE_COLUMN}, i.{c} FROM {INCOMING} i WHERE i.{c} IS NOT NULL \
             AND NOT EXISTS (SELECT 1 FROM {} r WHERE r.{} = i.{c})",
            quoted(table),
            quoted(key)
        );
        if table == spec.name {
            sql.push_str(&format!(
                " AND NOT EXISTS (SELECT 1 FROM {INCOMING} j WHERE j.{} = i.{c})",
                quoted(key)
            ));
        }
        let batches = ctx.sql(&sql).await?.collect().await?;
        let (rule, message): (Rule, Box<dyn Fn(&str) -> String>) = if table == "territories" {
            (
                Rule::UnknownMunicipality,
                Box::new(|_: &str| "no municipality has this ISTAT code".to_string()),
            )
        } else {
            let reference = reference.clone();
            (
                Rule::ForeignKey,
                Box::new(move |_: &str| format!("not found in {reference}")),
            )
        };
        collect(batches, &column.name, rule, &*message);
    }
    if !spec.primary_key.is_empty() {
        let join: Vec<String> = spec
            .primary_key
            .iter()
            .map(|k| format!("t.{0} = i.{0}", quoted(k)))
            .collect();
        let key_text = spec
            .primary_key
            .iter()
            .map(|k| format!("CAST(i.{} AS VARCHAR)", quoted(k)))
            .collect::<Vec<_>>()
            .join(" || ', ' || ");
        let mut condition = join.join(" AND ");
        if mode == IngestMode::ReplaceYear && !years.is_empty() && spec.year_of.is_some() {
            let list: Vec<String> = years.iter().map(i32::to_string).collect();
            condition.push_str(&format!(
                " AND t.{YEAR_COLUMN} NOT IN ({})",
                list.join(", ")
            ));
        }
        let sql = format!(
            "SELECT {FILE_COLUMN}, {LINE_COLUMN}, {key_text} FROM {INCOMING} i \
             WHERE EXISTS (SELECT 1 FROM {} t WHERE {condition})",
            quoted(&spec.name)
        );
        let batches = ctx.sql(&sql).await?.collect().await?;
        let name = spec.name.clone();
        collect(
            batches,
            &spec.primary_key.join(", "),
            Rule::DuplicateKey,
            &|_| format!("the key is already in {name}"),
        );
    }
    Ok(problems)
}

/// Refuses input whose exact content an earlier commit already ingested.
async fn refuse_repeats(
    warehouse: &Warehouse,
    dataset: &str,
    raws: &[read::RawFile],
) -> Result<(), IngestError> {
    let history = warehouse.history(dataset).await?;
    for raw in raws {
        for commit in &history {
            let seen = commit
                .metadata
                .get("files")
                .and_then(|f| f.as_array())
                .is_some_and(|files| files.iter().any(|f| f["sha256"] == raw.sha256.as_str()));
            if seen {
                return Err(IngestError::AlreadyIngested {
                    file: report::file_name(&raw.path),
                    sha256: raw.sha256.clone(),
                    dataset: dataset.to_string(),
                    version: commit.version,
                });
            }
        }
    }
    Ok(())
}

fn commit_metadata(
    files: &[FileSummary],
    options: &IngestOptions,
    rows: usize,
    rejected: usize,
) -> serde_json::Map<String, serde_json::Value> {
    let mut metadata = serde_json::Map::new();
    metadata.insert("operation".into(), json!("ingest"));
    metadata.insert(
        "files".into(),
        json!(files
            .iter()
            .map(|f| json!({"name": f.file, "sha256": f.sha256, "bytes": f.bytes, "rows": f.rows}))
            .collect::<Vec<_>>()),
    );
    metadata.insert("rows_committed".into(), json!(rows));
    metadata.insert("rows_rejected".into(), json!(rejected));
    metadata.insert(
        "mode".into(),
        json!(match options.mode {
            IngestMode::Append => "append",
            IngestMode::ReplaceYear => "replace-year",
        }),
    );
    metadata.insert("forced".into(), json!(options.force));
    metadata.insert("at".into(), json!(Utc::now().to_rfc3339()));
    metadata.insert("program_version".into(), json!(env!("CARGO_PKG_VERSION")));
    metadata
}

/// Writes the rejected rows beside the (first) input file, personal cells
/// masked, with their line and problems; returns its path.
fn write_rejects(
    spec: &DatasetSpec,
    raws: &[read::RawFile],
    rejected: &[(usize, u64)],
    problems: &[Problem],
) -> Result<PathBuf, IngestError> {
    let first = &raws[0].path;
    let stem = first
        .file_stem()
        .map_or_else(|| "input".into(), |s| s.to_string_lossy().into_owned());
    let path = first.with_file_name(format!("{stem}.rejects.csv"));
    let partial = path.with_extension("csv.partial");
    let error = |source: std::io::Error| IngestError::Rejects {
        path: path.clone(),
        source,
    };
    let mut writer = csv::Writer::from_path(&partial).map_err(|e| error(e.into()))?;
    let header = &raws[0].header;
    let personal: Vec<bool> = match_headers(spec, header)
        .iter()
        .map(|m| match m {
            HeaderMatch::Column(i) => spec.columns[*i].pseudonymous,
            HeaderMatch::Name => true,
            _ => false,
        })
        .collect();
    let mut out_header = vec![
        "_file".to_string(),
        "_line".to_string(),
        "_problems".to_string(),
    ];
    out_header.extend(header.iter().cloned());
    writer
        .write_record(&out_header)
        .map_err(|e| error(e.into()))?;
    for (file_index, line) in rejected {
        let raw = &raws[*file_index];
        let file = report::file_name(&raw.path);
        let reasons: Vec<String> = problems
            .iter()
            .filter(|p| p.file == file && p.line == *line)
            .map(|p| {
                format!(
                    "{} {}: {}",
                    p.column.as_deref().unwrap_or(""),
                    p.rule.slug(),
                    p.message
                )
            })
            .collect();
        let mut record = vec![file.clone(), line.to_string(), reasons.join("; ")];
        if let Some(found) = raw.records.iter().find(|r| r.line == *line) {
            record.extend(found.cells.iter().enumerate().map(|(i, cell)| {
                if personal.get(i).copied().unwrap_or(false) {
                    mask(cell.trim())
                } else {
                    cell.clone()
                }
            }));
        }
        writer.write_record(&record).map_err(|e| error(e.into()))?;
    }
    writer.flush().map_err(error)?;
    drop(writer);
    std::fs::rename(&partial, &path).map_err(error)?;
    Ok(path)
}

/// What `osservatorio erase` did in one dataset.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Erasure {
    pub dataset: String,
    pub version: u64,
    pub rows: usize,
}

/// Removes every row that names `pseudonym` in a personal column, one
/// recorded commit per dataset that had such rows.
pub async fn erase(warehouse: &Warehouse, pseudonym: &str) -> Result<Vec<Erasure>, IngestError> {
    let engine = QueryEngine::open(warehouse, QueryLimits::default()).await?;
    let mut done = Vec::new();
    for spec in warehouse.dictionary().datasets() {
        let personal: Vec<&str> = spec
            .columns
            .iter()
            .filter(|c| c.pseudonymous)
            .map(|c| c.name.as_str())
            .collect();
        if personal.is_empty() {
            continue;
        }
        let predicate: Expr = personal
            .iter()
            .map(|c| col(*c).eq(lit(pseudonym)))
            .reduce(Expr::or)
            .expect("at least one column");
        let count = engine
            .context()
            .table(spec.name.as_str())
            .await?
            .filter(predicate.clone())?
            .count()
            .await?;
        if count == 0 {
            continue;
        }
        let mut metadata = serde_json::Map::new();
        metadata.insert("operation".into(), json!("erase"));
        metadata.insert("person".into(), json!(pseudonym));
        metadata.insert("rows_deleted".into(), json!(count));
        metadata.insert("at".into(), json!(Utc::now().to_rfc3339()));
        if let Some((version, _)) = warehouse
            .delete_recorded(&spec.name, predicate, metadata)
            .await?
        {
            done.push(Erasure {
                dataset: spec.name.clone(),
                version,
                rows: count,
            });
        }
    }
    Ok(done)
}
