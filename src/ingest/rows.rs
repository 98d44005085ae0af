//! The accepted rows of an ingest as Arrow columns in the dictionary's
//! schema, with the file and line each came from while they are checked.
//!
//! Owns building and reading back those batches. It must not judge a row.

use std::collections::BTreeSet;
use std::sync::Arc;

use arrow::array::{
    Array, ArrayRef, BooleanBuilder, Date32Builder, Float64Builder, Int32Builder, Int64Builder,
    RecordBatch, StringBuilder, UInt32Array, UInt64Array,
};
use arrow::datatypes::{DataType, Field, Schema};

use super::fields::Value;
use super::IngestError;
use crate::catalog::{ColumnSpec, ColumnType, DatasetSpec, YEAR_COLUMN};

/// Columns added to the incoming rows while they are checked.
pub(super) const FILE_COLUMN: &str = "__file";
pub(super) const LINE_COLUMN: &str = "__line";

/// Accepted rows as Arrow columns, plus the file and line of each, kept
/// apart by year when the table is partitioned by it.
pub(super) struct RowBuilder {
    spec: DatasetSpec,
    capacity: usize,
    /// Where `year` sits among the values, if the table is partitioned by it.
    year_index: Option<usize>,
    /// One group per year met, in the order met.
    groups: Vec<RowGroup>,
    /// The group the last row went to: rows of one year tend to come together.
    last: usize,
}

/// The rows of one year (or of every year, for a table not partitioned).
struct RowGroup {
    year: Option<i32>,
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

impl RowGroup {
    fn new(spec: &DatasetSpec, year: Option<i32>, capacity: usize) -> Self {
        let columns = spec
            .columns
            .iter()
            .map(|c| match c.column_type {
                ColumnType::Utf8 => ColumnBuilder::Text(StringBuilder::with_capacity(
                    capacity,
                    capacity * text_bytes_per_row(c),
                )),
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
            year,
            columns,
            files: Vec::with_capacity(capacity),
            lines: Vec::with_capacity(capacity),
        }
    }
}

/// Room for the text of a column, per row: a pseudonym's length, the
/// longest code, or enough for most free text. Room not filled costs no
/// memory until it is written, while a buffer that runs out is copied
/// whole into one twice its size.
fn text_bytes_per_row(column: &ColumnSpec) -> usize {
    if column.pseudonymous {
        return super::identity::PSEUDONYM_LEN;
    }
    match &column.codes {
        Some(codes) => codes.iter().map(String::len).max().unwrap_or(0),
        None => 32,
    }
}

impl RowBuilder {
    pub(super) fn new(spec: &DatasetSpec, capacity: usize) -> Self {
        let year_index = (!spec.partition_columns().is_empty())
            .then(|| spec.columns.iter().position(|c| c.name == YEAR_COLUMN))
            .flatten();
        Self {
            spec: spec.clone(),
            capacity,
            year_index,
            groups: Vec::new(),
            last: 0,
        }
    }

    /// The group of rows of `year`, made if it is the first of its year.
    fn group_of(&mut self, year: Option<i32>) -> &mut RowGroup {
        if self.groups.get(self.last).is_none_or(|g| g.year != year) {
            self.last = match self.groups.iter().position(|g| g.year == year) {
                Some(found) => found,
                None => {
                    // The first year met gets room for the whole chunk, as a
                    // monthly export is of one year; later years grow as needed.
                    let room = if self.groups.is_empty() {
                        self.capacity
                    } else {
                        (self.capacity / 8).max(1024)
                    };
                    self.groups.push(RowGroup::new(&self.spec, year, room));
                    self.groups.len() - 1
                }
            };
        }
        &mut self.groups[self.last]
    }

    /// Appends one row, taking the values out of `values` (left empty for
    /// the next row, with its allocation).
    pub(super) fn push(&mut self, file: u32, line: u64, values: &mut Vec<Value<'_>>) {
        let year = match self.year_index.map(|i| &values[i]) {
            Some(Value::Int(year)) => i32::try_from(*year).ok(),
            _ => None,
        };
        let group = self.group_of(year);
        for (builder, value) in group.columns.iter_mut().zip(values.drain(..)) {
            match (builder, value) {
                (ColumnBuilder::Text(b), Value::Text(t)) => b.append_value(t),
                (ColumnBuilder::Text(b), Value::Pseudonym(p)) => b.append_value(p.as_str()),
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
        group.files.push(file);
        group.lines.push(line);
    }

    /// The rows, one batch per year in year order (one batch, perhaps
    /// empty, for a table not partitioned or with no rows), with the
    /// dictionary's columns (all nullable while checked) and the two
    /// tracking columns. Kept apart by year, they reach the table's files
    /// without being sorted or copied again.
    pub(super) fn finish(self) -> Result<Vec<RecordBatch>, IngestError> {
        let mut fields: Vec<Field> = self
            .spec
            .columns
            .iter()
            .map(|c| Field::new(&c.name, c.column_type.arrow_type(), true))
            .collect();
        fields.push(Field::new(FILE_COLUMN, DataType::UInt32, false));
        fields.push(Field::new(LINE_COLUMN, DataType::UInt64, false));
        let schema = Arc::new(Schema::new(fields));
        let mut groups = self.groups;
        if groups.is_empty() {
            groups.push(RowGroup::new(&self.spec, None, 0));
        }
        groups.sort_by_key(|g| g.year);
        groups
            .into_iter()
            .map(|group| {
                let mut arrays: Vec<ArrayRef> = group
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
                arrays.push(Arc::new(UInt32Array::from(group.files)));
                arrays.push(Arc::new(UInt64Array::from(group.lines)));
                Ok(RecordBatch::try_new(schema.clone(), arrays)?)
            })
            .collect()
    }
}

/// The accepted rows in the dictionary's exact schema.
pub(super) fn strip_tracking(
    spec: &DatasetSpec,
    batch: RecordBatch,
) -> Result<RecordBatch, IngestError> {
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
pub(super) fn tracking(batch: &RecordBatch) -> (&UInt32Array, &UInt64Array) {
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

pub(super) fn years_of(batch: &RecordBatch) -> BTreeSet<i32> {
    batch
        .column_by_name(YEAR_COLUMN)
        .and_then(|c| c.as_any().downcast_ref::<arrow::array::Int32Array>())
        .map(|years| years.iter().flatten().collect())
        .unwrap_or_default()
}

pub(super) fn text_at(array: &ArrayRef, row: usize) -> String {
    if array.is_null(row) {
        return String::new();
    }
    arrow::util::display::array_value_to_string(array, row).unwrap_or_default()
}
