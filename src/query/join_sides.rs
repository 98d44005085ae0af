//! What one side of a join reads, told from its plan: the stored rows of
//! its scans, whether it keeps only some of them, and whether a join lies
//! beneath it.
//!
//! Owns reading that off a physical plan, for the rules that choose how a
//! join runs, and making a join afresh from its parts for them. It must not
//! decide how a join runs.

use datafusion::common::stats::Precision;
use datafusion::datasource::physical_plan::FileScanConfig;
use datafusion::datasource::source::DataSourceExec;
use datafusion::error::Result;
use datafusion::physical_expr::expressions::DynamicFilterPhysicalExpr;
use datafusion::physical_expr::split_conjunction;
use datafusion::physical_plan::filter::FilterExec;
use std::sync::Arc;

use datafusion::physical_plan::joins::{HashJoinExec, HashJoinExecBuilder, PartitionMode};
use datafusion::physical_plan::statistics::{StatisticsArgs, StatisticsContext};
use datafusion::physical_plan::ExecutionPlan;

/// What a join's side reads.
#[derive(Debug, Default)]
pub(super) struct JoinSide {
    /// Rows of the files its scans read, before any predicate; a scan
    /// with no row count counts as too many.
    pub(super) stored_rows: usize,
    /// Whether a filter or a scan's predicate keeps only some rows.
    pub(super) filtered: bool,
    /// Whether some scan keeps only some rows of its table: filtered, or
    /// reading a partitioned table.
    pub(super) restricted: bool,
    /// Whether the side's rows come out of a hash join, after which the
    /// planner's row estimate is unreliable: without distinct counts it
    /// takes every key as unique and estimates a join of millions of
    /// workers to the 7,896 municipalities at 7,896 rows.
    pub(super) through_join: bool,
}

impl JoinSide {
    /// A restricted read of at most `max_rows` stored rows.
    pub(super) fn is_selective(&self, max_rows: usize) -> bool {
        self.restricted && self.stored_rows <= max_rows
    }

    pub(super) fn of(plan: &dyn ExecutionPlan) -> Result<Self> {
        let mut side = Self::default();
        side.add(plan)?;
        Ok(side)
    }

    fn add(&mut self, plan: &dyn ExecutionPlan) -> Result<()> {
        if plan.downcast_ref::<FilterExec>().is_some() {
            self.filtered = true;
        }
        if plan.downcast_ref::<HashJoinExec>().is_some() {
            self.through_join = true;
        }
        if let Some(scan) = plan.downcast_ref::<DataSourceExec>() {
            let rows = StatisticsContext::new()
                .compute(plan, &StatisticsArgs::new())?
                .num_rows;
            let rows = match rows {
                Precision::Exact(rows) | Precision::Inexact(rows) => rows,
                Precision::Absent => usize::MAX,
            };
            self.stored_rows = self.stored_rows.saturating_add(rows);
            if let Some(files) = scan.data_source().downcast_ref::<FileScanConfig>() {
                let predicate = files.file_source().filter();
                let has_static_predicate = predicate.is_some_and(|predicate| {
                    split_conjunction(&predicate)
                        .iter()
                        .any(|part| part.downcast_ref::<DynamicFilterPhysicalExpr>().is_none())
                });
                // The provider prunes partitions before planning the scan,
                // so a read of some partitions shows only in its paths.
                let partitioned = files.file_groups.iter().flat_map(|g| g.iter()).any(|file| {
                    file.object_meta
                        .location
                        .parts()
                        .any(|part| part.as_ref().contains('='))
                });
                self.filtered |= has_static_predicate;
                self.restricted |= partitioned;
            }
        }
        self.restricted |= self.filtered;
        for child in plan.children() {
            self.add(child.as_ref())?;
        }
        Ok(())
    }
}

/// `join` made afresh from its parts, built in `mode`. A join made afresh
/// pushes no filter into its probe side; a scan that had one keeps its
/// placeholder, which passes every row.
pub(super) fn rebuilt(join: &HashJoinExec, mode: PartitionMode) -> Result<Arc<dyn ExecutionPlan>> {
    HashJoinExecBuilder::new(
        Arc::clone(join.left()),
        Arc::clone(join.right()),
        join.on().to_vec(),
        *join.join_type(),
    )
    .with_filter(join.filter().cloned())
    .with_projection_ref(join.projection.clone())
    .with_partition_mode(mode)
    .with_null_equality(join.null_equality())
    .with_null_aware(join.null_aware)
    .with_fetch(join.fetch())
    .build_exec()
}
