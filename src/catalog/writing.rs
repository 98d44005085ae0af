//! What a write to the warehouse is made of, apart from the table it goes
//! to: the check of the batches against the dictionary, the writer's input
//! plan, the Parquet settings and the commit's recorded metadata.
//!
//! Owns how files are written. It must not decide what is written or when:
//! that is `Warehouse::write_recorded`.

use std::sync::Arc;

use arrow::record_batch::RecordBatch;
use deltalake::parquet::basic::{Compression, ZstdLevel};
use deltalake::parquet::file::properties::{EnabledStatistics, WriterProperties};
use deltalake::parquet::schema::types::ColumnPath;

use super::warehouse::COMMIT_METADATA_PREFIX;
use super::{CatalogError, DatasetSpec};

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
/// statistics so the query engine can skip row groups and pages. A key of
/// one column is unique in every row, so a dictionary of its values would
/// only be built to be dropped: it is written plain.
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
    properties.build()
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
