//! Which hash joins build their table per partition instead of collecting
//! one side whole.
//!
//! DataFusion collects a join's side whole when it estimates that side
//! small, and builds that one table on one core while the others wait.
//! After a join its estimate can be off by orders of magnitude (see
//! `JoinSide::through_join`): `top_citizenships` collected the 2.5 million
//! workers of a workers–municipalities join, estimated at 7,896 rows, for
//! a semi-join with 3.5 million running contracts.
//!
//! Owns that choice, made before DataFusion's own join selection from what
//! each side reads. It must not change what a query returns: a join built
//! per partition gives the same rows.

use std::sync::Arc;

use datafusion::common::config::ConfigOptions;
use datafusion::common::tree_node::{Transformed, TransformedResult, TreeNode};
use datafusion::error::Result;
use datafusion::physical_optimizer::PhysicalOptimizerRule;
use datafusion::physical_plan::joins::{HashJoinExec, PartitionMode};
use datafusion::physical_plan::ExecutionPlan;

use super::join_sides::{rebuilt, JoinSide};

/// Sides reading more stored rows than this are built per partition when
/// the planner's estimate of one of them went through a join and nothing
/// filters it. A table of a million rows built on one core took about a
/// tenth of a second on the national scale.
pub const MIN_PARTITIONED_ROWS: usize = 1_000_000;

/// Sets hash joins left for DataFusion to decide (`PartitionMode::Auto`) to
/// be built per partition when both sides read more than
/// [`MIN_PARTITIONED_ROWS`] stored rows and the estimate of one of them,
/// unfiltered, came through a join.
///
/// A filtered side keeps DataFusion's choice: its estimate follows the
/// filter's selectivity, and collecting the few rows a filter keeps spares
/// the other side a repartition.
#[derive(Debug)]
pub struct PartitionedLargeJoins {
    min_rows: usize,
}

impl Default for PartitionedLargeJoins {
    fn default() -> Self {
        Self {
            min_rows: MIN_PARTITIONED_ROWS,
        }
    }
}

impl PhysicalOptimizerRule for PartitionedLargeJoins {
    fn optimize(
        &self,
        plan: Arc<dyn ExecutionPlan>,
        config: &ConfigOptions,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        if config.execution.target_partitions <= 1 || !config.optimizer.repartition_joins {
            return Ok(plan);
        }
        plan.transform_up(|node| {
            let Some(join) = node.downcast_ref::<HashJoinExec>() else {
                return Ok(Transformed::no(node));
            };
            if *join.partition_mode() != PartitionMode::Auto
                || join.null_aware
                || !misjudged_large_join(join, self.min_rows)?
            {
                return Ok(Transformed::no(node));
            }
            let partitioned = rebuilt(join, PartitionMode::Partitioned)?;
            Ok(Transformed::yes(partitioned))
        })
        .data()
    }

    fn name(&self) -> &str {
        "partitioned_large_joins"
    }

    fn schema_check(&self) -> bool {
        true
    }
}

fn misjudged_large_join(join: &HashJoinExec, min_rows: usize) -> Result<bool> {
    let left = JoinSide::of(join.left().as_ref())?;
    let right = JoinSide::of(join.right().as_ref())?;
    let large = |side: &JoinSide| side.stored_rows > min_rows;
    let misjudged = |side: &JoinSide| side.through_join && !side.filtered;
    Ok(large(&left) && large(&right) && (misjudged(&left) || misjudged(&right)))
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow::array::{Int64Array, StringArray};
    use arrow::datatypes::{DataType, Field, Schema};
    use arrow::record_batch::RecordBatch;
    use datafusion::assert_batches_eq;
    use datafusion::datasource::MemTable;
    use datafusion::execution::session_state::SessionStateBuilder;
    use datafusion::physical_plan::displayable;
    use datafusion::prelude::{SessionConfig, SessionContext};

    use super::PartitionedLargeJoins;

    fn table(keys: impl Iterator<Item = i64>) -> Arc<MemTable> {
        let keys: Int64Array = keys.collect();
        let names: StringArray = keys.iter().map(|k| k.map(|k| format!("n{k}"))).collect();
        let schema = Arc::new(Schema::new(vec![
            Field::new("k", DataType::Int64, true),
            Field::new("name", DataType::Utf8, true),
        ]));
        let batch = RecordBatch::try_new(schema.clone(), vec![Arc::new(keys), Arc::new(names)]);
        Arc::new(MemTable::try_new(schema, vec![vec![batch.unwrap()]]).unwrap())
    }

    /// A session on four partitions, with the rule taking sides of more
    /// than `min_rows` rows as large, or without it.
    fn session(min_rows: Option<usize>) -> SessionContext {
        let mut state = SessionStateBuilder::new()
            .with_config(SessionConfig::new().with_target_partitions(4))
            .with_default_features()
            .build();
        if let Some(min_rows) = min_rows {
            let mut rules = state.physical_optimizers().to_vec();
            let join_selection = rules
                .iter()
                .position(|rule| rule.name() == "join_selection")
                .unwrap();
            rules.insert(join_selection, Arc::new(PartitionedLargeJoins { min_rows }));
            state = SessionStateBuilder::new_from_existing(state)
                .with_physical_optimizer_rules(rules)
                .build();
        }
        let ctx = SessionContext::new_with_state(state);
        ctx.register_table("a", table((0..5000).map(|i| i % 100)))
            .unwrap();
        ctx.register_table("b", table(0..100)).unwrap();
        ctx.register_table("c", table((0..3000).map(|i| i % 50)))
            .unwrap();
        ctx
    }

    async fn plan_and_count(ctx: &SessionContext) -> (String, Vec<RecordBatch>) {
        let frame = ctx
            .sql(
                "SELECT count(*) AS n FROM (SELECT a.k FROM a JOIN b ON a.k = b.k) x \
                 WHERE x.k IN (SELECT k FROM c)",
            )
            .await
            .unwrap();
        let physical = frame.clone().create_physical_plan().await.unwrap();
        let shown = displayable(physical.as_ref()).indent(false).to_string();
        (shown, frame.collect().await.unwrap())
    }

    #[tokio::test]
    async fn a_large_side_estimated_through_a_join_is_built_per_partition() {
        let expected = ["+------+", "| n    |", "+------+", "| 2500 |", "+------+"];
        let (shown, counted) = plan_and_count(&session(Some(1000))).await;
        assert!(
            shown.contains("mode=Partitioned, join_type=RightSemi")
                || shown.contains("mode=Partitioned, join_type=LeftSemi"),
            "{shown}"
        );
        // The small join below it stays collected.
        assert!(
            shown.contains("mode=CollectLeft, join_type=Inner"),
            "{shown}"
        );
        assert_batches_eq!(expected, &counted);

        // Below the threshold DataFusion decides, and the answer is the same.
        let (shown, counted) = plan_and_count(&session(Some(10_000))).await;
        assert!(!shown.contains("mode=Partitioned"), "{shown}");
        assert_batches_eq!(expected, &counted);
        let (_, counted) = plan_and_count(&session(None)).await;
        assert_batches_eq!(expected, &counted);
    }
}
