//! Results of user queries kept for the life of one engine, that is of one
//! snapshot of the warehouse. The same checked plan over the same table
//! versions gives the same rows, so a query asked again (a notebook run
//! once more, a dashboard reloaded) is answered from memory.
//!
//! Owns which plans may be kept (only those whose every function is
//! immutable: never `now()`, `current_date` or `random()`), the size budget,
//! and the kept batches. It must not decide what a query may read: plans
//! reach it only after the gate has checked them, and a new snapshot starts
//! with an empty cache.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use arrow::datatypes::SchemaRef;
use arrow::record_batch::RecordBatch;
use datafusion::common::tree_node::{TreeNode, TreeNodeRecursion};
use datafusion::logical_expr::{Expr, LogicalPlan, Volatility};

/// A kept result is at most this share of the budget, so that one large
/// result cannot push out every other.
const LARGEST_SHARE: usize = 8;

/// Kept results, keyed by the checked logical plan (parameters bound).
#[derive(Debug)]
pub struct ResultCache {
    budget_bytes: usize,
    kept: Mutex<Kept>,
}

#[derive(Debug, Default)]
struct Kept {
    results: HashMap<LogicalPlan, Arc<KeptResult>>,
    bytes: usize,
}

/// One query's whole result as it was streamed.
#[derive(Debug)]
pub struct KeptResult {
    pub schema: SchemaRef,
    pub planned_schema: SchemaRef,
    pub batches: Vec<RecordBatch>,
    /// The row cap cut the result.
    pub truncated: bool,
}

impl ResultCache {
    /// A cache holding at most `budget_bytes` of Arrow buffers.
    pub fn new(budget_bytes: usize) -> Self {
        Self {
            budget_bytes,
            kept: Mutex::new(Kept::default()),
        }
    }

    /// The largest result worth recording.
    pub(super) fn largest_result(&self) -> usize {
        self.budget_bytes / LARGEST_SHARE
    }

    pub(super) fn get(&self, plan: &LogicalPlan) -> Option<Arc<KeptResult>> {
        self.kept
            .lock()
            .expect("result cache lock")
            .results
            .get(plan)
            .cloned()
    }

    pub(super) fn insert(&self, plan: LogicalPlan, result: KeptResult, bytes: usize) {
        if bytes > self.largest_result() {
            return;
        }
        let mut kept = self.kept.lock().expect("result cache lock");
        // Starting afresh when full keeps the bookkeeping trivial; results
        // are cheap to compute again compared with tracking recency.
        if kept.bytes + bytes > self.budget_bytes {
            *kept = Kept::default();
        }
        kept.bytes += bytes;
        kept.results.insert(plan, Arc::new(result));
    }

    /// Results kept now.
    pub fn len(&self) -> usize {
        self.kept.lock().expect("result cache lock").results.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// True when running `plan` again over the same tables gives the same rows:
/// every scalar function in it, subqueries included, is immutable.
pub(super) fn repeatable(plan: &LogicalPlan) -> bool {
    let mut repeatable = true;
    let _ = plan.apply_with_subqueries(|node| {
        node.apply_expressions(|expr| {
            expr.apply(|e| {
                if let Expr::ScalarFunction(call) = e {
                    if call.func.signature().volatility != Volatility::Immutable {
                        repeatable = false;
                        return Ok(TreeNodeRecursion::Stop);
                    }
                }
                Ok(TreeNodeRecursion::Continue)
            })
        })?;
        Ok(if repeatable {
            TreeNodeRecursion::Continue
        } else {
            TreeNodeRecursion::Stop
        })
    });
    repeatable
}
