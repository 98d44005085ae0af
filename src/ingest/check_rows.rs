//! The rows of one file read into values, cell by cell and then across the
//! row (an end date not before its start, the year from the event date),
//! on every core, in chunks, each chunk into its own Arrow columns.
//!
//! Owns the rules within one row. It must not look at other rows or at the
//! warehouse (that is `checks`), and must not show a personal value except
//! masked.

use chrono::Datelike;
use indicatif::ProgressBar;

use super::cells::Rows;
use super::fields::{CellReader, Value};
use super::report::{Problem, Rule};
use super::rows::RowBuilder;
use super::IngestError;
use crate::catalog::{DatasetSpec, YEAR_COLUMN};
use arrow::array::RecordBatch;

/// The accepted rows of a chunk of a file (a batch per year), and the line
/// and problems of each rejected one.
pub(super) type CheckedChunk = (Vec<RecordBatch>, Vec<(u64, Vec<Problem>)>);

/// Checks the rows of the file `file_index` in about one chunk per core
/// and gives the chunks in order. `column_of` maps each dictionary column
/// to the file's column, if it has one.
pub(super) fn check_records(
    spec: &DatasetSpec,
    reader: &CellReader<'_>,
    column_of: &[Option<usize>],
    file: &str,
    file_index: usize,
    pieces: &[Rows],
    progress: &ProgressBar,
) -> Vec<Result<CheckedChunk, IngestError>> {
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    // Several chunks per core, taken in turn by whichever core is free: with
    // one chunk each, a core that ran slower (its memory came slower, or
    // another thread shared it) kept the others waiting at the end. A file
    // read in one piece (small, or quoted) is cut into chunks the same way.
    let per_piece = (threads * CHUNKS_PER_CORE).div_ceil(pieces.len().max(1));
    let chunks: Vec<_> = pieces
        .iter()
        .flat_map(|piece| {
            let size = piece.len().div_ceil(per_piece).max(1);
            (0..piece.len())
                .step_by(size)
                .map(move |start| (piece, start..(start + size).min(piece.len())))
        })
        .collect();
    let next_chunk = std::sync::atomic::AtomicUsize::new(0);
    let derived = &Derived::of(spec);
    let check_chunk = |piece: &Rows, range: std::ops::Range<usize>| {
        let columns = reader.columns.to_vec();
        let reader = &CellReader {
            columns: &columns,
            ..*reader
        };
        let mut rows = RowBuilder::new(spec, range.len());
        let mut rejected = Vec::new();
        let mut values = Vec::with_capacity(spec.columns.len());
        let mut cell_ends = Vec::new();
        for row in range.clone() {
            let line = piece.line(row);
            let cells = piece.row(row, &mut cell_ends);
            let cell = |c: usize| cells.cell(c);
            let checked = check_row(
                spec,
                derived,
                reader,
                column_of,
                file,
                line,
                cell,
                &mut values,
            );
            match checked {
                Ok(()) => rows.push(file_index as u32, line, &mut values),
                Err(found) => {
                    values.clear();
                    rejected.push((line, found));
                }
            }
        }
        progress.inc(range.len() as u64);
        Ok((rows.finish()?, rejected))
    };
    let mut checked: Vec<(usize, Result<CheckedChunk, IngestError>)> =
        std::thread::scope(|scope| {
            let workers: Vec<_> = (0..threads.min(chunks.len()))
                .map(|_| {
                    let (chunks, next_chunk, check_chunk) = (&chunks, &next_chunk, &check_chunk);
                    scope.spawn(move || {
                        let mut done = Vec::new();
                        loop {
                            let index =
                                next_chunk.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                            let Some((piece, range)) = chunks.get(index) else {
                                return done;
                            };
                            done.push((index, check_chunk(piece, range.clone())));
                        }
                    })
                })
                .collect();
            workers
                .into_iter()
                .flat_map(|w| w.join().expect("a row-checking thread panicked"))
                .collect()
        });
    checked.sort_by_key(|(index, _)| *index);
    checked.into_iter().map(|(_, chunk)| chunk).collect()
}

/// How many chunks of rows each core checks, about.
const CHUNKS_PER_CORE: usize = 4;

/// Reads the values of the row on `line`, whose file column `i` is
/// `cell(i)`, into `values` (empty on entry), or gives its problems.
#[allow(clippy::too_many_arguments)]
fn check_row<'r>(
    spec: &'r DatasetSpec,
    derived: &Derived,
    reader: &CellReader<'r>,
    column_of: &[Option<usize>],
    file: &str,
    line: u64,
    cell: impl Fn(usize) -> &'r str,
    values: &mut Vec<Value<'r>>,
) -> Result<(), Vec<Problem>> {
    let mut problems = Vec::new();
    for (c, column) in spec.columns.iter().enumerate() {
        if derived.year.is_some_and(|(_, year)| year == c) {
            values.push(Value::Null);
            continue;
        }
        let text = column_of[c].map_or("", &cell);
        match reader.read(&reader.columns[c], text, values) {
            Ok(()) => {}
            Err(p) => {
                values.push(Value::Null);
                problems.push(Problem {
                    file: file.to_string(),
                    line,
                    column: Some(column.name.clone()),
                    value: Some(p.shown),
                    rule: p.rule,
                    message: p.message,
                });
            }
        }
    }
    if problems.is_empty() {
        if let Some(p) = cross_column_problem(spec, derived, values) {
            problems.push(Problem {
                file: file.to_string(),
                line,
                ..p
            });
        }
    }
    if problems.is_empty() {
        fill_year(derived, values);
        Ok(())
    } else {
        Err(problems)
    }
}

/// Where the rules between columns of a row look, found once per file.
struct Derived {
    /// The event date's column and the `year` column set from it.
    year: Option<(usize, usize)>,
    /// Each date column that must not come before another, and that other.
    order: Vec<(usize, usize)>,
}

impl Derived {
    fn of(spec: &DatasetSpec) -> Self {
        let position = |name: &str| spec.columns.iter().position(|c| c.name == name);
        let year = spec
            .year_of
            .as_deref()
            .and_then(|date| Some((position(date)?, position(YEAR_COLUMN)?)));
        let order = spec
            .columns
            .iter()
            .enumerate()
            .filter_map(|(end, column)| Some((end, position(column.after.as_deref()?)?)))
            .collect();
        Self { year, order }
    }
}

/// Rules between columns of one row: an end date not before its start.
fn cross_column_problem(
    spec: &DatasetSpec,
    derived: &Derived,
    values: &[Value],
) -> Option<Problem> {
    for &(end_index, start_index) in &derived.order {
        if let (Value::Date(end), Value::Date(begin)) = (&values[end_index], &values[start_index]) {
            if end < begin {
                let column = &spec.columns[end_index];
                let after = &spec.columns[start_index].name;
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
fn fill_year(derived: &Derived, values: &mut [Value]) {
    let Some((date_index, year_index)) = derived.year else {
        return;
    };
    if let Value::Date(days) = values[date_index] {
        if let Some(date) = chrono::NaiveDate::from_num_days_from_ce_opt(days + 719_163) {
            values[year_index] = Value::Int(i64::from(date.year()));
        }
    }
}
