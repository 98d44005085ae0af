//! What a write to the warehouse is made of, apart from the table it goes
//! to: the check of the batches against the dictionary, the writer's input
//! plan, the Parquet settings, the commit's recorded metadata, and the
//! files of an append whose rows already come apart by year.
//!
//! Owns how files are written. It must not decide what is written or when:
//! that is `Warehouse::write_recorded`.

use std::sync::Arc;

use arrow::record_batch::RecordBatch;
use deltalake::parquet::basic::{Compression, ZstdLevel};
use deltalake::parquet::file::properties::{EnabledStatistics, WriterProperties};
use deltalake::parquet::schema::types::ColumnPath;

use super::warehouse::COMMIT_METADATA_PREFIX;
use super::{CatalogError, ColumnSpec, ColumnType, DatasetSpec};

pub(super) fn commit_properties(
    metadata: serde_json::Map<String, serde_json::Value>,
) -> deltalake::kernel::transaction::CommitProperties {
    deltalake::kernel::transaction::CommitProperties::default().with_metadata(
        metadata
            .into_iter()
            .map(|(k, v)| (format!("{COMMIT_METADATA_PREFIX}{k}"), v)),
    )
}

/// A scan of `batches` with one input partition per batch.
pub(super) fn side_by_side(
    dataset: &str,
    batches: Vec<RecordBatch>,
) -> Result<datafusion::logical_expr::LogicalPlan, CatalogError> {
    use datafusion::datasource::{provider_as_source, MemTable};
    use datafusion::logical_expr::LogicalPlanBuilder;
    let failed = |source: datafusion::error::DataFusionError| CatalogError::Delta {
        dataset: dataset.to_string(),
        source: source.into(),
    };
    let schema = batches[0].schema();
    let partitions = batches.into_iter().map(|b| vec![b]).collect();
    let table = MemTable::try_new(schema, partitions).map_err(failed)?;
    LogicalPlanBuilder::scan(dataset, provider_as_source(Arc::new(table)), None)
        .and_then(LogicalPlanBuilder::build)
        .map_err(failed)
}

/// Parquet settings for every file the warehouse writes: zstd, and page-level
/// statistics so the query engine can skip row groups and pages, on the
/// columns where a range can skip anything (see [`range_can_skip`]). A key
/// of one column is unique in every row, so a dictionary of its values
/// would only be built to be dropped: it is written plain.
pub(super) fn writer_properties(spec: &DatasetSpec) -> WriterProperties {
    let mut properties = WriterProperties::builder()
        .set_compression(Compression::ZSTD(
            ZstdLevel::try_new(1).expect("valid zstd level"),
        ))
        .set_statistics_enabled(EnabledStatistics::Page)
        .set_max_row_group_row_count(Some(512 * 1024));
    if let [key] = spec.primary_key.as_slice() {
        properties =
            properties.set_column_dictionary_enabled(ColumnPath::from(key.as_str()), false);
    }
    for column in spec.columns.iter().filter(|c| !range_can_skip(c)) {
        properties = properties.set_column_statistics_enabled(
            ColumnPath::from(column.name.as_str()),
            EnabledStatistics::None,
        );
    }
    properties.build()
}

/// Whether the least and greatest value of `column` in a file, row group
/// or page can let a query skip it: numbers, dates, identifiers of a
/// pattern and references (an export of one province holds a narrow range
/// of municipality codes). Not the other text columns:
/// - a keyed pseudonym, whose values the key's hash spreads evenly, so
///   every row group spans nearly all of them;
/// - a code of a short list (sex, job type, outcome), whose few codes
///   nearly all occur in any file of an export;
/// - free text (lists of skills, names, labels), which no query selects
///   by range.
///
/// The writer finds those bounds by comparing every value: for these
/// columns about a tenth of an ingest of `workers`, to save no read (the
/// indicator suite took as long without them).
fn range_can_skip(column: &ColumnSpec) -> bool {
    column.column_type != ColumnType::Utf8
        || !column.pseudonymous && (column.pattern.is_some() || column.references.is_some())
}

/// Refuses batches whose schema is not the dictionary's.
pub(super) fn check_batches(
    spec: &DatasetSpec,
    batches: &[RecordBatch],
) -> Result<(), CatalogError> {
    let expected = spec.arrow_schema();
    for batch in batches {
        let found = batch.schema();
        if found.fields() != expected.fields() {
            let describe = |s: &arrow::datatypes::Schema| {
                s.fields()
                    .iter()
                    .map(|f| {
                        format!(
                            "{}:{}{}",
                            f.name(),
                            f.data_type(),
                            if f.is_nullable() { "?" } else { "" }
                        )
                    })
                    .collect::<Vec<_>>()
                    .join(", ")
            };
            return Err(CatalogError::SchemaMismatch {
                dataset: spec.name.clone(),
                reason: format!(
                    "batch schema [{}] differs from the dictionary's [{}]",
                    describe(&found),
                    describe(&expected)
                ),
            });
        }
    }
    Ok(())
}

/// The year of `batch` if all its rows are of one year, else `None`.
fn single_year(batch: &RecordBatch) -> Option<i32> {
    let years = batch
        .column_by_name(super::YEAR_COLUMN)?
        .as_any()
        .downcast_ref::<arrow::array::Int32Array>()?;
    if arrow::array::Array::null_count(years) > 0 {
        return None;
    }
    let first = arrow::compute::min(years)?;
    (arrow::compute::max(years)? == first).then_some(first)
}

/// Writes batches that each hold the rows of one year straight to their
/// year's files, the years shared among the cores, and gives the files'
/// `add` actions for the caller to commit. `Ok(None)`, having written
/// nothing, when a batch holds several years or a row without one, or when
/// the table's schema is not the batches': the general writer, which splits
/// rows by year and checks schemas, takes those.
///
/// The general writer would hash every row to a stream, then sort and copy
/// each batch by year: both are skipped for rows already kept apart by year.
pub(super) async fn write_by_year(
    table: &deltalake::DeltaTable,
    spec: &DatasetSpec,
    batches: &[RecordBatch],
    properties: WriterProperties,
) -> Result<Option<Vec<deltalake::kernel::Add>>, deltalake::DeltaTableError> {
    use deltalake::datafile::writer::{DeltaWriter, WriterConfig};
    use deltalake::table::config::TablePropertiesExt;

    let partition_columns = spec.partition_columns();
    if partition_columns != [super::YEAR_COLUMN] {
        return Ok(None);
    }
    let snapshot = table.snapshot()?;
    let schema = spec.arrow_schema();
    let table_config = snapshot.table_config();
    // Files are written under the columns' own names and with no table
    // constraint checked: a table that maps column names or has
    // constraints (none of ours, but a table may be altered by other
    // tools) goes through the general writer, which handles both.
    let mapped = table_config
        .column_mapping_mode
        .is_some_and(|mode| mode != delta_kernel::table_features::ColumnMappingMode::None);
    if mapped
        || !table_config.get_constraints().is_empty()
        || snapshot.snapshot().arrow_schema().fields() != schema.fields()
        || snapshot.metadata().partition_columns() != &partition_columns
    {
        return Ok(None);
    }
    let mut by_year: std::collections::BTreeMap<i32, Vec<RecordBatch>> = Default::default();
    for batch in batches.iter().filter(|b| b.num_rows() > 0) {
        match single_year(batch) {
            Some(year) => by_year.entry(year).or_default().push(batch.clone()),
            None => return Ok(None),
        }
    }
    let (num_indexed_cols, stats_columns) =
        deltalake::operations::get_num_idx_cols_and_stats_columns(
            Some(table_config),
            Default::default(),
        );
    let config = WriterConfig::new(
        schema,
        partition_columns,
        Some(properties),
        Some(table_config.target_file_size()),
        None,
        num_indexed_cols,
        stats_columns,
    );
    // The batches dealt to the cores, the largest first, each to the core
    // with the fewest rows so far. A year's batches may go to several
    // cores, each writing a file of it: an export of one month, all of one
    // year, is then still written on every core.
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let mut pieces: Vec<(i32, RecordBatch)> = by_year
        .into_iter()
        .flat_map(|(year, batches)| batches.into_iter().map(move |b| (year, b)))
        .collect();
    pieces.sort_by_key(|(year, batch)| (std::cmp::Reverse(batch.num_rows()), *year));
    let mut shares: Vec<(usize, Vec<(i32, RecordBatch)>)> = (0..cores.min(pieces.len()))
        .map(|_| (0, Vec::new()))
        .collect();
    for (year, batch) in pieces {
        let share = shares
            .iter_mut()
            .min_by_key(|(rows, _)| *rows)
            .expect("a share per core");
        share.0 += batch.num_rows();
        share.1.push((year, batch));
    }
    let mut writers = tokio::task::JoinSet::new();
    for (_, share) in shares {
        let mut writer = DeltaWriter::new(table.object_store(), config.clone());
        writers.spawn(async move {
            for (year, batch) in share {
                let partition = indexmap::IndexMap::from([(
                    super::YEAR_COLUMN.to_string(),
                    delta_kernel::expressions::Scalar::Integer(year),
                )]);
                if let Err(e) = writer.write_partition(batch, &partition).await {
                    let _ = writer.abort().await;
                    return Err(e);
                }
            }
            writer.close().await
        });
    }
    let mut adds = Vec::new();
    while let Some(written) = writers.join_next().await {
        let written = written.map_err(|e| {
            deltalake::DeltaTableError::Generic(format!("a file-writing task failed: {e}"))
        })?;
        adds.extend(written?);
    }
    Ok(Some(adds))
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow::array::{ArrayRef, BooleanArray, Date32Array, Float64Array, Int32Array};
    use arrow::array::{Int64Array, StringArray};
    use arrow::datatypes::DataType;

    use super::*;
    use crate::catalog::{Dictionary, Warehouse, WriteMode, YEAR_COLUMN};

    /// `rows` rows of `spec`, every one of `year`, with a value in every
    /// column.
    fn rows_of(spec: &DatasetSpec, year: i32, rows: usize) -> RecordBatch {
        let schema = spec.arrow_schema();
        let columns: Vec<ArrayRef> = schema
            .fields()
            .iter()
            .map(|field| -> ArrayRef {
                match field.data_type() {
                    DataType::Int32 if field.name() == YEAR_COLUMN => {
                        Arc::new(Int32Array::from(vec![year; rows]))
                    }
                    DataType::Int32 => Arc::new(Int32Array::from(vec![1; rows])),
                    DataType::Int64 => Arc::new(Int64Array::from(vec![1; rows])),
                    DataType::Float64 => Arc::new(Float64Array::from(vec![1.0; rows])),
                    DataType::Boolean => Arc::new(BooleanArray::from(vec![true; rows])),
                    DataType::Date32 => {
                        Arc::new(Date32Array::from(vec![(year - 1970) * 365; rows]))
                    }
                    _ => Arc::new(StringArray::from(vec!["x"; rows])),
                }
            })
            .collect();
        RecordBatch::try_new(schema, columns).unwrap()
    }

    #[tokio::test]
    async fn batches_of_one_year_each_are_written_by_year_and_others_are_not() {
        let dir = tempfile::tempdir().unwrap();
        let dictionary = Arc::new(Dictionary::load().unwrap());
        let warehouse = Warehouse::create(dir.path(), dictionary.clone())
            .await
            .unwrap();
        let spec = dictionary.require("substitutions").unwrap();
        let first = rows_of(spec, 2020, 2);
        warehouse
            .write("substitutions", vec![first], WriteMode::Replace)
            .await
            .unwrap();
        let table = warehouse.table("substitutions").await.unwrap().unwrap();

        let by_year = [
            rows_of(spec, 2021, 3),
            rows_of(spec, 2022, 2),
            rows_of(spec, 2021, 1),
        ];
        let adds = write_by_year(&table, spec, &by_year, writer_properties(spec))
            .await
            .unwrap()
            .expect("batches of one year each are written by year");
        let mut rows_by_year = std::collections::BTreeMap::new();
        for add in &adds {
            let year = add.partition_values[YEAR_COLUMN].clone().unwrap();
            assert!(
                add.path.starts_with(&format!("year={year}/")),
                "{}",
                add.path
            );
            let stats: serde_json::Value =
                serde_json::from_str(add.stats.as_deref().unwrap()).unwrap();
            *rows_by_year.entry(year).or_insert(0) += stats["numRecords"].as_u64().unwrap();
        }
        assert_eq!(
            rows_by_year.into_iter().collect::<Vec<_>>(),
            [("2021".to_string(), 4), ("2022".to_string(), 2)]
        );

        // A batch of two years goes to the general writer, which splits it.
        let mixed = arrow::compute::concat_batches(
            &spec.arrow_schema(),
            &[rows_of(spec, 2021, 1), rows_of(spec, 2022, 1)],
        )
        .unwrap();
        let refused = write_by_year(&table, spec, &[mixed], writer_properties(spec))
            .await
            .unwrap();
        assert!(refused.is_none());
    }
}
