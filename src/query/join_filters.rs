//! Which hash joins keep the filter DataFusion derives from their build
//! side and pushes into the probe side's scan.
//!
//! The filter pays when the build side is small: the STAFF indicators join
//! a year's few thousand substitutions or subsidies to the ten million
//! contracts or households, and the scan drops nearly every row before the
//! join. It costs when the build side is large: the "active workers"
//! indicators join millions of person identifiers that nearly all match, so
//! the filter drops nothing and hashes every probe row a second time. Both
//! kinds were measured on the national scale (see benches/RESULTS.md).
//!
//! Owns that choice, made once per plan from what each build side reads:
//! how many stored rows, and whether it keeps only some of them. It must
//! not change what a query returns: a join without the filter gives the
//! same rows.

use std::sync::Arc;

use datafusion::common::config::ConfigOptions;
use datafusion::common::tree_node::{Transformed, TransformedResult, TreeNode};
use datafusion::error::Result;
use datafusion::execution::TaskContext;
use datafusion::physical_optimizer::filter_pushdown::FilterPushdown;
use datafusion::physical_optimizer::PhysicalOptimizerRule;
use datafusion::physical_plan::joins::HashJoinExec;
use datafusion::physical_plan::ExecutionPlan;

use super::join_sides::{rebuilt, JoinSide};

/// A build side that reads more stored rows than this gives its join no
/// filter, however few rows it is estimated to keep.
///
/// The selective joins of the indicators build on tens of thousands of
/// rows; the unselective ones on millions.
pub const MAX_FILTERING_BUILD_ROWS: usize = 1_000_000;

/// Keeps the pushed-down filter of a hash join only when its build side is
/// a restricted read of at most [`MAX_FILTERING_BUILD_ROWS`] stored rows:
/// some of its scans keep only some rows (a predicate, a filter, or some
/// partitions of a partitioned table).
///
/// The partitions a scan leaves out show nowhere in its plan, so a scan of
/// a partitioned table counts as restricted even when it reads every
/// partition. Such a table of at most a million rows keeps its filter: a
/// small cost on the probe side when every row matches.
///
/// Stored rows, not the planner's estimate of the join's input, decide:
/// without distinct counts the estimate after a join can be off by orders
/// of magnitude. An unrestricted read, such as the whole `territories`
/// table joined on the code every row carries, matches every probe row.
#[derive(Debug, Default)]
pub struct SelectiveJoinFilters;

impl PhysicalOptimizerRule for SelectiveJoinFilters {
    fn optimize(
        &self,
        plan: Arc<dyn ExecutionPlan>,
        config: &ConfigOptions,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        if !config.optimizer.enable_dynamic_filter_pushdown {
            return Ok(plan);
        }
        // Join filters on for the session (the operator's choice) give
        // every join one, as DataFusion does. Off, a plan with a selective
        // join has the pushdown run again with them on, and then loses
        // those of its unselective joins; a plan without one stays as
        // planned, with no placeholder filter in any scan.
        if config.optimizer.enable_join_dynamic_filter_pushdown
            || !has_selective_join(plan.as_ref())?
        {
            return Ok(plan);
        }
        let mut with_join_filters = config.clone();
        with_join_filters
            .optimizer
            .enable_join_dynamic_filter_pushdown = true;
        let plan = FilterPushdown::new_post_optimization().optimize(plan, &with_join_filters)?;
        plan.transform_up(|node| {
            let Some(join) = node.downcast_ref::<HashJoinExec>() else {
                return Ok(Transformed::no(node));
            };
            if join.dynamic_expressions_produced().is_empty()
                || JoinSide::of(join.left().as_ref())?.is_selective(MAX_FILTERING_BUILD_ROWS)
            {
                return Ok(Transformed::no(node));
            }
            let unfiltered = rebuilt(join, *join.partition_mode())?;
            Ok(Transformed::yes(unfiltered))
        })
        .data()
    }

    fn name(&self) -> &str {
        "selective_join_filters"
    }

    fn schema_check(&self) -> bool {
        true
    }
}

/// Whether some hash join of `plan` that could filter its probe side has a
/// selective build side.
fn has_selective_join(plan: &dyn ExecutionPlan) -> Result<bool> {
    if let Some(join) = plan.downcast_ref::<HashJoinExec>() {
        let (_, probe_preserved) = join.join_type().on_lr_is_preserved();
        if probe_preserved
            && JoinSide::of(join.left().as_ref())?.is_selective(MAX_FILTERING_BUILD_ROWS)
        {
            return Ok(true);
        }
    }
    for child in plan.children() {
        if has_selective_join(child.as_ref())? {
            return Ok(true);
        }
    }
    Ok(false)
}

/// The context a plan runs in: a join computes the filter it was given at
/// planning only if the running session has join filters on, and the
/// engine's sessions plan with them off.
pub fn computing_join_filters(task: TaskContext) -> TaskContext {
    let mut config = task.session_config().clone();
    config
        .options_mut()
        .optimizer
        .enable_join_dynamic_filter_pushdown = true;
    task.with_session_config(config)
}
