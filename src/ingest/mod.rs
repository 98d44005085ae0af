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

mod cells;
mod check_rows;
mod checks;
mod erase;
mod fields;
mod identity;
mod read;
mod report;
mod rows;

use std::collections::{BTreeSet, HashMap};
use std::path::PathBuf;
use std::sync::Arc;

use arrow::array::RecordBatch;

use chrono::Utc;
use datafusion::datasource::MemTable;
use indicatif::ProgressBar;
use serde_json::json;

use crate::catalog::{CatalogError, DatasetKind, DatasetSpec, Warehouse, WriteMode, YEAR_COLUMN};
use crate::query::{QueryEngine, QueryError, QueryLimits};

pub use cells::MAX_FIELD_CHARS;
pub use fields::{header_key, parse_date, parse_number, NumberStyle};
pub use identity::{check_tax_code, mask, Pseudonymizer, TaxCodeError, MIN_KEY_BYTES};
pub use read::Encoding;
pub use report::{FileSummary, IngestReport, Outcome, Problem, Rule};

use check_rows::check_records;
use checks::{duplicate_keys_in_batch, refuse_repeats, warehouse_checks};
use fields::{match_headers, CellReader, ColumnRules, HeaderMatch};
use rows::{strip_tracking, tracking, years_of, RowBuilder};

pub use erase::{erase, Erasure};

/// The table name of the incoming rows while they are checked.
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
    let started = std::time::Instant::now();
    let mut raws = Vec::with_capacity(files.len());
    for path in files {
        raws.push(read::read_file(path, options.encoding)?);
    }
    tracing::debug!(elapsed = ?started.elapsed(), "ingest: files read");
    let total: usize = raws.iter().map(read::RawFile::row_count).sum();
    progress.set_length(total as u64);
    progress.set_message(format!("checking {dataset}"));

    let today = Utc::now().date_naive();
    let rules = ColumnRules::of(&spec);
    let reader = CellReader {
        columns: &rules,
        pseudonymizer,
        style: NumberStyle {
            decimal_comma: false,
        },
        latest_date: today + chrono::Duration::days(366),
        earliest_date: chrono::NaiveDate::from_ymd_opt(1900, 1, 1).expect("valid date"),
    };
    let mut problems: Vec<Problem> = Vec::new();
    let mut notes = Vec::new();
    let mut parts: Vec<RecordBatch> = Vec::new();
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
            rejected_lines.extend(
                raw.rows
                    .iter()
                    .flat_map(|piece| piece.lines().iter().map(|&line| (file_index, line))),
            );
            summaries.push(summary(raw, &file));
            continue;
        }
        if raw.row_count() == 0 && raw.problems.is_empty() {
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
        let checked = check_records(
            &spec, &reader, &column_of, &file, file_index, &raw.rows, progress,
        );
        tracing::debug!(elapsed = ?started.elapsed(), file = %file, "ingest: cells read");
        for outcome in checked {
            let (years, rejected) = outcome?;
            parts.extend(years);
            for (line, found) in rejected {
                problems.extend(found);
                rejected_lines.push((file_index, line));
            }
        }
        summaries.push(summary(raw, &file));
    }
    let file_names: Vec<String> = raws.iter().map(|r| report::file_name(&r.path)).collect();
    // The chunks stay apart up to the commit: joining them would copy
    // every row once more.
    let batches = if parts.is_empty() {
        RowBuilder::new(&spec, 0).finish()?
    } else {
        parts
    };
    tracing::debug!(elapsed = ?started.elapsed(), "ingest: rows checked");
    // Only now: the files' digests were computed beside the checks.
    if !options.force {
        refuse_repeats(warehouse, &spec.name, &raws).await?;
    }

    // Checks across rows: keys within the files, on their own threads,
    // while the warehouse is asked about references and keys it has.
    let mut dropped: BTreeSet<(u32, u64)> = BTreeSet::new();
    let keys_within = {
        let (spec, batches, file_names) = (spec.clone(), batches.clone(), file_names.clone());
        tokio::task::spawn_blocking(move || duplicate_keys_in_batch(&spec, &batches, &file_names))
    };
    let years: BTreeSet<i32> = batches.iter().flat_map(years_of).collect();
    let engine =
        QueryEngine::open_only(warehouse, QueryLimits::default(), &checked_tables(&spec)).await?;
    let ctx = engine.context();
    ctx.register_table(
        INCOMING,
        Arc::new(MemTable::try_new(
            batches[0].schema(),
            batches.iter().map(|b| vec![b.clone()]).collect(),
        )?),
    )?;
    for p in warehouse_checks(&spec, options.mode, &years, &engine, &file_names).await? {
        dropped.insert(position_of(&p, &file_names));
        problems.push(p);
    }
    ctx.deregister_table(INCOMING)?;
    tracing::debug!(elapsed = ?started.elapsed(), "ingest: rows checked against the warehouse");
    let keys_within = keys_within
        .await
        .unwrap_or_else(|e| std::panic::resume_unwind(e.into_panic()))?;
    for p in keys_within {
        dropped.insert(position_of(&p, &file_names));
        problems.push(p);
    }
    tracing::debug!(elapsed = ?started.elapsed(), "ingest: keys within the files checked");
    problems.sort_by(|a, b| (&a.file, a.line).cmp(&(&b.file, b.line)));

    let mut valid = Vec::with_capacity(batches.len());
    for batch in batches {
        let batch = if dropped.is_empty() {
            batch
        } else {
            let (files, lines) = tracking(&batch);
            let keep: Vec<bool> = (0..batch.num_rows())
                .map(|i| !dropped.contains(&(files.value(i), lines.value(i))))
                .collect();
            for (i, kept) in keep.iter().enumerate() {
                if !kept {
                    rejected_lines.push((files.value(i) as usize, lines.value(i)));
                }
            }
            arrow::compute::filter_record_batch(&batch, &arrow::array::BooleanArray::from(keep))?
        };
        valid.push(strip_tracking(&spec, batch)?);
    }
    rejected_lines.sort();
    rejected_lines.dedup();
    let rows_read: usize = summaries.iter().map(|s| s.rows).sum();
    let rows_rejected = rejected_lines.len();
    let rows_valid: usize = valid.iter().map(RecordBatch::num_rows).sum();
    let has_problems = !problems.is_empty();
    progress.finish_and_clear();

    // With nothing to reject, the files' text is not needed again: it is
    // handed back beside the commit rather than after it.
    let raws = if has_problems {
        raws
    } else {
        std::thread::spawn(move || drop(raws));
        Vec::new()
    };
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
            .write_recorded(&spec.name, valid, mode, metadata)
            .await?;
        tracing::info!(dataset = %spec.name, version, rows = rows_valid, elapsed = ?started.elapsed(), "ingest committed");
        if has_problems {
            let rejects = write_rejects(&spec, &raws, &rejected_lines, &problems)?;
            Outcome::Quarantined {
                version,
                rejects: rejects
                    .iter()
                    .map(|p| p.display().to_string())
                    .collect::<Vec<_>>()
                    .join(", "),
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

/// The tables the checks against the warehouse read: the dataset itself,
/// for its keys, and each one its columns refer to.
fn checked_tables(spec: &DatasetSpec) -> Vec<&str> {
    let referred = spec
        .columns
        .iter()
        .filter_map(|c| Some(c.references.as_deref()?.split_once('.')?.0));
    let mut tables: Vec<&str> = std::iter::once(spec.name.as_str())
        .chain(referred)
        .collect();
    tables.sort_unstable();
    tables.dedup();
    tables
}

fn summary(raw: &read::RawFile, file: &str) -> FileSummary {
    FileSummary {
        file: file.to_string(),
        sha256: raw.sha256().to_string(),
        bytes: raw.bytes,
        format: raw.format.clone(),
        rows: raw.row_count() + raw.problems.len(),
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
) -> Result<Vec<PathBuf>, IngestError> {
    let mut written = Vec::new();
    for (file_index, raw) in raws.iter().enumerate() {
        let lines: Vec<u64> = rejected
            .iter()
            .filter(|(f, _)| *f == file_index)
            .map(|(_, line)| *line)
            .collect();
        if !lines.is_empty() {
            written.push(write_file_rejects(spec, raw, &lines, problems)?);
        }
    }
    Ok(written)
}

/// The rejects of one input file, beside it, in its own column layout.
fn write_file_rejects(
    spec: &DatasetSpec,
    raw: &read::RawFile,
    lines: &[u64],
    problems: &[Problem],
) -> Result<PathBuf, IngestError> {
    let stem = raw
        .path
        .file_stem()
        .map_or_else(|| "input".into(), |s| s.to_string_lossy().into_owned());
    let path = raw.path.with_file_name(format!("{stem}.rejects.csv"));
    let partial = path.with_extension("csv.partial");
    let error = |source: std::io::Error| IngestError::Rejects {
        path: path.clone(),
        source,
    };
    let file = report::file_name(&raw.path);
    // Masks follow this file's own headers: exports differ in column order.
    let personal: Vec<bool> = match_headers(spec, &raw.header)
        .iter()
        .map(|m| match m {
            HeaderMatch::Column(i) => spec.columns[*i].pseudonymous,
            HeaderMatch::Name => true,
            HeaderMatch::Unknown { .. } | HeaderMatch::Duplicate(_) | HeaderMatch::Derived => false,
        })
        .collect();
    let records: HashMap<u64, (&cells::Rows, usize)> = raw
        .rows
        .iter()
        .flat_map(|piece| (0..piece.len()).map(move |row| (piece.line(row), (piece, row))))
        .collect();
    let mut reasons: HashMap<u64, Vec<String>> = HashMap::new();
    for p in problems.iter().filter(|p| p.file == file) {
        reasons.entry(p.line).or_default().push(format!(
            "{} {}: {}",
            p.column.as_deref().unwrap_or(""),
            p.rule.slug(),
            p.message
        ));
    }
    let mut writer = csv::Writer::from_path(&partial).map_err(|e| error(e.into()))?;
    let mut header = vec!["_line".to_string(), "_problems".to_string()];
    header.extend(raw.header.iter().cloned());
    writer.write_record(&header).map_err(|e| error(e.into()))?;
    for line in lines {
        let mut record = vec![
            line.to_string(),
            reasons.get(line).map(|r| r.join("; ")).unwrap_or_default(),
        ];
        if let Some((piece, row)) = records.get(line) {
            record.extend(piece.cells(*row).enumerate().map(|(i, cell)| {
                // A header that matched nothing may still hold a person's
                // code; only known non-personal columns go out as they are.
                if personal.get(i).copied().unwrap_or(true) {
                    mask(cell.trim())
                } else {
                    cell.to_string()
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
