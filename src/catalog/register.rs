//! How the warehouse's tables are registered with a DataFusion session:
//! as deltalake's providers, or as Parquet listings of exactly the files of
//! each snapshot, which a plan can carry to a cluster.
//!
//! Owns building one table provider from one table at one version. It must
//! not open tables or choose versions: the warehouse does that.

use std::sync::Arc;

use datafusion::datasource::MemTable;
use datafusion::prelude::SessionContext;
use deltalake::DeltaTable;
use url::Url;

use super::{CatalogError, DatasetSpec};

/// How a session sees the warehouse's tables.
#[derive(Debug, Clone, Copy)]
pub(super) enum TableForm {
    /// deltalake's own providers: file skipping from the log's statistics.
    Delta,
    /// Parquet listings of each snapshot's files, which a plan can carry
    /// to another process.
    SnapshotFiles,
}

/// The table's Delta provider, or an empty table with the dictionary's
/// schema for a dataset never written.
pub(super) async fn delta_provider(
    ctx: &SessionContext,
    spec: &DatasetSpec,
    table: Option<DeltaTable>,
) -> Result<Arc<dyn datafusion::catalog::TableProvider>, CatalogError> {
    let register_err = |source| CatalogError::Register {
        dataset: spec.name.clone(),
        source,
    };
    let Some(table) = table else {
        return Ok(Arc::new(
            MemTable::try_new(spec.arrow_schema(), vec![vec![]]).map_err(register_err)?,
        ));
    };
    table
        .update_datafusion_session(&ctx.state())
        .map_err(|source| CatalogError::Delta {
            dataset: spec.name.clone(),
            source,
        })?;
    // The provider takes its Parquet settings from the session, as every
    // other scan does. Without one, deltalake evaluates each filter while
    // decoding (pushdown), whatever the session says: on the national
    // suite, with filters that keep a third of the rows scattered across
    // every page, decoding the other columns through that row selection
    // took 5–10% longer than filtering whole batches (benches/RESULTS.md,
    // 2026-12-05). Operators can still turn pushdown on with DataFusion's
    // DATAFUSION_EXECUTION_PARQUET_PUSHDOWN_FILTERS.
    table
        .table_provider()
        .with_session(Arc::new(ctx.state()))
        .await
        .map_err(register_err)
}

/// A view over the files of the table's snapshot: one Parquet listing per
/// partition value, the value added as a constant column, all united.
pub(super) fn files_provider(
    spec: &DatasetSpec,
    table: Option<DeltaTable>,
    table_url: &Url,
) -> Result<Arc<dyn datafusion::catalog::TableProvider>, CatalogError> {
    use datafusion::datasource::empty::EmptyTable;
    use datafusion::datasource::file_format::parquet::ParquetFormat;
    use datafusion::datasource::listing::{
        ListingOptions, ListingTable, ListingTableConfig, ListingTableUrl,
    };
    use datafusion::datasource::{provider_as_source, ViewTable};
    use datafusion::logical_expr::{LogicalPlan, LogicalPlanBuilder, Union};
    use datafusion::prelude::{col, lit, Expr};
    use datafusion::scalar::ScalarValue;

    let register_err = |source| CatalogError::Register {
        dataset: spec.name.clone(),
        source,
    };
    let schema = spec.arrow_schema();
    let partition = spec.partition_columns().into_iter().next();
    // Files grouped by their partition value (one group, `None`, for an
    // unpartitioned table).
    let mut groups: std::collections::BTreeMap<Option<String>, Vec<ListingTableUrl>> =
        Default::default();
    if let Some(table) = &table {
        let snapshot = table.snapshot().map_err(|source| CatalogError::Delta {
            dataset: spec.name.clone(),
            source,
        })?;
        for file in snapshot.log_data().iter() {
            let value = partition
                .as_ref()
                .and_then(|column| file.partition_values_map().remove(column).flatten());
            let url = table_url
                .join(file.object_store_path().as_ref())
                .map_err(|e| CatalogError::BadLocation {
                    location: table_url.to_string(),
                    reason: e.to_string(),
                })?;
            groups
                .entry(value)
                .or_default()
                .push(ListingTableUrl::parse(url.as_str()).map_err(register_err)?);
        }
    }
    let file_schema = Arc::new(arrow::datatypes::Schema::new(
        schema
            .fields()
            .iter()
            .filter(|f| Some(f.name()) != partition.as_ref())
            .cloned()
            .collect::<Vec<_>>(),
    ));
    let mut branches = Vec::new();
    for (value, files) in groups {
        let listing = ListingTable::try_new(
            ListingTableConfig::new_with_multi_paths(files)
                .with_listing_options(ListingOptions::new(Arc::new(ParquetFormat::default())))
                .with_schema(file_schema.clone()),
        )
        .map_err(register_err)?;
        let columns: Vec<Expr> = schema
            .fields()
            .iter()
            .map(|field| {
                if Some(field.name()) != partition.as_ref() {
                    return Ok(col(format!("\"{}\"", field.name())));
                }
                let typed = match &value {
                    Some(text) => ScalarValue::Utf8(Some(text.clone()))
                        .cast_to(field.data_type())
                        .map_err(register_err)?,
                    None => ScalarValue::try_from(field.data_type()).map_err(register_err)?,
                };
                Ok(lit(typed).alias(field.name()))
            })
            .collect::<Result<_, CatalogError>>()?;
        branches.push(
            LogicalPlanBuilder::scan(
                spec.name.as_str(),
                provider_as_source(Arc::new(listing)),
                None,
            )
            .and_then(|scan| scan.project(columns))
            .and_then(LogicalPlanBuilder::build)
            .map_err(register_err)?,
        );
    }
    Ok(match branches.len() {
        0 => Arc::new(EmptyTable::new(schema)),
        1 => Arc::new(ViewTable::new(branches.remove(0), None)),
        // One flat union: a nested one would be as deep as the years, and
        // every planning step recurses through it.
        _ => Arc::new(ViewTable::new(
            LogicalPlan::Union(
                Union::try_new_with_loose_types(branches.into_iter().map(Arc::new).collect())
                    .map_err(register_err)?,
            ),
            None,
        )),
    })
}
