//! The query engine and its gate: every piece of user-supplied SQL, from the
//! CLI, over HTTP or Flight SQL, is planned, checked and run here.
//!
//! Owns the DataFusion session over the warehouse, the read-only check, the
//! memory, time and row limits, how many queries are computed at once, and
//! the output encoders. It must not know about HTTP or any other transport.

mod cache;
mod join_filters;
mod join_modes;
mod join_sides;
mod output;
mod session;
mod stream;
mod turns;

use std::sync::Arc;
use std::time::Duration;

use arrow::datatypes::{DataType, SchemaRef};
use arrow::record_batch::RecordBatch;
use datafusion::datasource::TableType;
use datafusion::error::DataFusionError;
use datafusion::logical_expr::LogicalPlan;
use datafusion::prelude::{SQLOptions, SessionContext};
use datafusion::scalar::ScalarValue;
use tokio::time::Instant;

use crate::catalog::{CatalogError, TableVersions};

pub use cache::ResultCache;
pub use output::{write_batches, OutputError, OutputFormat, StreamEncoder, ROW_LIMIT_KEY};
pub use session::Engine;
use session::{cores, default_memory_pool, SharedResources};
pub use stream::CappedStream;

/// Limits applied to every user query.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QueryLimits {
    /// Size of the memory pool shared by the operators of every running query.
    pub memory_bytes: usize,
    /// Wall-clock limit for planning and running one query.
    pub timeout: Duration,
    /// Rows returned at most; the rest is cut and the result marked truncated.
    pub max_rows: usize,
    /// Queries computed at once; the others wait for a turn, within their
    /// time limit. Results replayed from the result cache do not wait.
    pub concurrent_queries: usize,
}

impl Default for QueryLimits {
    fn default() -> Self {
        Self {
            memory_bytes: default_memory_pool(),
            timeout: Duration::from_secs(60),
            max_rows: 1_000_000,
            concurrent_queries: cores(),
        }
    }
}

/// What a query returns and what it needs, known before it runs.
#[derive(Debug, Clone)]
pub struct QueryShape {
    pub schema: SchemaRef,
    /// Placeholder names without `$` (`1`, `year`), with the type the
    /// planner inferred when it could.
    pub parameters: Vec<(String, Option<DataType>)>,
}

/// A table or view that user SQL can read.
#[derive(Debug, Clone)]
pub struct TableEntry {
    pub catalog: String,
    pub schema: String,
    pub name: String,
    /// `TABLE`, `VIEW` or `LOCAL TEMPORARY`, as SQL clients name them.
    pub kind: &'static str,
    pub arrow_schema: SchemaRef,
}

/// Everything that can go wrong with a user query.
#[derive(Debug, thiserror::Error)]
pub enum QueryError {
    /// The statement would change something or is not a query.
    #[error("only read-only queries are allowed: {0}")]
    NotReadOnly(String),
    /// DataFusion rejected the SQL (syntax, unknown table or column, types).
    #[error("{0}")]
    Invalid(DataFusionError),
    /// The query needed more memory than the pool allows.
    #[error("the query needs more than the {limit_mib} MiB memory limit: {source}")]
    ResourcesExhausted {
        limit_mib: usize,
        #[source]
        source: DataFusionError,
    },
    /// The query ran past its time limit and was cancelled.
    #[error("the query was cancelled after the {0:?} time limit")]
    Timeout(Duration),
    /// Other queries held every turn for the whole time limit, so this one
    /// never started.
    #[error("the server computed {running} other queries for the whole {timeout:?} time limit; this one did not start, try again later")]
    Busy { running: usize, timeout: Duration },
    /// The query failed while running.
    #[error("{0}")]
    Execution(DataFusionError),
    /// The engine setting is malformed, or names an engine this build lacks.
    #[error("engine {0}")]
    BadEngine(String),
    /// The cluster could not be reached or refused the session.
    #[error("the cluster at {scheduler}: {reason}")]
    Cluster { scheduler: String, reason: String },
    /// The warehouse could not be opened or registered.
    #[error(transparent)]
    Catalog(#[from] CatalogError),
}

/// The result of a query: its batches, cut at the row cap.
#[derive(Debug, Clone)]
pub struct QueryResult {
    pub schema: SchemaRef,
    pub batches: Vec<RecordBatch>,
    /// True when rows beyond `max_rows` were dropped.
    pub truncated: bool,
}

impl QueryResult {
    pub fn num_rows(&self) -> usize {
        self.batches.iter().map(RecordBatch::num_rows).sum()
    }
}

/// A DataFusion session over the warehouse, behind the read-only gate.
#[derive(Clone)]
pub struct QueryEngine {
    ctx: SessionContext,
    limits: QueryLimits,
    shared: SharedResources,
    versions: TableVersions,
    /// Results of repeatable queries, for engines that live long enough
    /// to be asked the same query twice.
    results: Option<Arc<ResultCache>>,
    /// Partitions for a query computed alone (see `planning_state`); `None`
    /// when they are fixed, by the operator or by a cluster.
    partitions_alone: Option<usize>,
}

impl std::fmt::Debug for QueryEngine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("QueryEngine")
            .field("limits", &self.limits)
            .finish_non_exhaustive()
    }
}

impl QueryEngine {
    /// Sets how survey estimators treat lonely PSUs and flag unreliable
    /// estimates, for every later query of this engine.
    pub fn with_survey_options(self, options: crate::survey::SurveyOptions) -> Self {
        crate::survey::register(&self.ctx, options);
        self
    }

    /// The version of every table this session reads: queries see exactly
    /// these, whatever is committed later.
    pub fn versions(&self) -> &TableVersions {
        &self.versions
    }

    pub fn limits(&self) -> QueryLimits {
        self.limits
    }

    /// The session, for library code that registers its own functions.
    /// User SQL must go through [`QueryEngine::plan`] or [`QueryEngine::run`].
    pub fn context(&self) -> &SessionContext {
        &self.ctx
    }

    /// Plans `sql` and refuses anything but a read-only query. The check is
    /// made on the plan, not the text, so `COPY`, `INSERT`, DDL and `SET`
    /// are caught however they are spelled.
    pub async fn plan(&self, sql: &str) -> Result<LogicalPlan, QueryError> {
        let plan = self
            .ctx
            .state()
            .create_logical_plan(sql)
            .await
            .map_err(QueryError::Invalid)?;
        read_only_options()
            .verify_plan(&plan)
            .map_err(|e| QueryError::NotReadOnly(strip_context(&e)))?;
        Ok(plan)
    }

    /// Plans `sql` like [`QueryEngine::plan`] and binds `$name` placeholders
    /// to `params`. A placeholder left without a value is an error.
    pub async fn plan_with_params(
        &self,
        sql: &str,
        params: Vec<(String, ScalarValue)>,
    ) -> Result<LogicalPlan, QueryError> {
        let plan = self.plan(sql).await?;
        if params.is_empty() && plan.get_parameter_types().is_ok_and(|p| p.is_empty()) {
            return Ok(plan);
        }
        plan.with_param_values(params).map_err(QueryError::Invalid)
    }

    /// Plans `sql` through the gate without running it: the shape of its
    /// result once `params` are bound (none yet, for a statement being
    /// prepared) and the placeholders it takes.
    pub async fn describe(
        &self,
        sql: &str,
        params: Vec<(String, ScalarValue)>,
    ) -> Result<QueryShape, QueryError> {
        let plan = self.plan(sql).await?;
        let mut parameters: Vec<(String, Option<DataType>)> = plan
            .get_parameter_types()
            .map_err(QueryError::Invalid)?
            .into_iter()
            .map(|(name, kind)| (name.trim_start_matches('$').to_string(), kind))
            .collect();
        // `$1, $2, …` in position order, then named placeholders by name.
        parameters.sort_by(
            |(a, _), (b, _)| match (a.parse::<u32>(), b.parse::<u32>()) {
                (Ok(x), Ok(y)) => x.cmp(&y),
                (Ok(_), Err(_)) => std::cmp::Ordering::Less,
                (Err(_), Ok(_)) => std::cmp::Ordering::Greater,
                (Err(_), Err(_)) => a.cmp(b),
            },
        );
        let plan = if params.is_empty() {
            plan
        } else {
            plan.with_param_values(params)
                .map_err(QueryError::Invalid)?
        };
        Ok(QueryShape {
            schema: Arc::new(plan.schema().as_arrow().clone()),
            parameters,
        })
    }

    /// Every table and view user SQL can name, with its Arrow schema, as a
    /// SQL client's catalog browser lists them.
    pub async fn tables(&self) -> Result<Vec<TableEntry>, QueryError> {
        let mut entries = Vec::new();
        for catalog_name in self.ctx.catalog_names() {
            let Some(catalog) = self.ctx.catalog(&catalog_name) else {
                continue;
            };
            for schema_name in catalog.schema_names() {
                let Some(schema) = catalog.schema(&schema_name) else {
                    continue;
                };
                let mut names = schema.table_names();
                names.sort();
                for name in names {
                    let Some(table) = schema.table(&name).await.map_err(QueryError::Invalid)?
                    else {
                        continue;
                    };
                    entries.push(TableEntry {
                        catalog: catalog_name.clone(),
                        schema: schema_name.clone(),
                        name,
                        kind: match table.table_type() {
                            TableType::Base => "TABLE",
                            TableType::View => "VIEW",
                            TableType::Temporary => "LOCAL TEMPORARY",
                        },
                        arrow_schema: table.schema(),
                    });
                }
            }
        }
        Ok(entries)
    }

    /// Runs `sql` through the gate and collects at most `max_rows` rows.
    pub async fn run(&self, sql: &str) -> Result<QueryResult, QueryError> {
        let deadline = self.deadline();
        let plan = self.before(deadline, self.plan(sql)).await?;
        self.start(plan, deadline).await?.collect_all().await
    }

    /// Runs a plan made by [`QueryEngine::plan`], e.g. after binding its
    /// parameters, under the same checks and limits as [`QueryEngine::run`].
    pub async fn run_plan(&self, plan: LogicalPlan) -> Result<QueryResult, QueryError> {
        self.stream_plan(plan).await?.collect_all().await
    }

    /// Keeps the results of repeatable queries, up to `budget_bytes` of
    /// them, for the life of this engine (its table versions).
    pub fn with_result_cache(mut self, budget_bytes: usize) -> Self {
        self.results = (budget_bytes > 0).then(|| Arc::new(ResultCache::new(budget_bytes)));
        self
    }

    /// The kept results, when this engine keeps them.
    pub fn result_cache(&self) -> Option<&ResultCache> {
        self.results.as_deref()
    }

    /// Starts a checked plan and returns its batches as they come, under the
    /// row cap and the time limit, which counts from this call. A result
    /// kept from the same plan is replayed instead.
    pub async fn stream_plan(&self, plan: LogicalPlan) -> Result<CappedStream, QueryError> {
        read_only_options()
            .verify_plan(&plan)
            .map_err(|e| QueryError::NotReadOnly(strip_context(&e)))?;
        match &self.results {
            Some(cache) if cache::repeatable(&plan) => {
                if let Some(kept) = cache.get(&plan) {
                    return Ok(CappedStream::replay(&kept));
                }
                let key = plan.clone();
                let stream = self.start(plan, self.deadline()).await?;
                Ok(stream.recorded(cache.clone(), key))
            }
            _ => self.start(plan, self.deadline()).await,
        }
    }

    fn deadline(&self) -> Instant {
        Instant::now() + self.limits.timeout
    }

    async fn before<T>(
        &self,
        deadline: Instant,
        work: impl std::future::Future<Output = Result<T, QueryError>>,
    ) -> Result<T, QueryError> {
        match tokio::time::timeout_at(deadline, work).await {
            Ok(result) => result,
            // Dropping the future cancels whatever the query had started.
            Err(_) => Err(QueryError::Timeout(self.limits.timeout)),
        }
    }

    /// Waits until fewer than `concurrent_queries` queries are computed, at
    /// most until `deadline`. The turn is held until the query's stream ends
    /// or is dropped.
    async fn wait_for_turn(&self, deadline: Instant) -> Result<turns::Turn, QueryError> {
        let turns = self.shared.turns.clone();
        let _waiting = turns::Waiting::count(&self.shared.waiting);
        match tokio::time::timeout_at(deadline, turns.acquire_owned()).await {
            Ok(Ok(permit)) => Ok(turns::Turn::new(permit, self.limits.memory_bytes)),
            Ok(Err(_closed)) => unreachable!("the turns are never closed"),
            Err(_) => Err(QueryError::Busy {
                running: self.limits.concurrent_queries,
                timeout: self.limits.timeout,
            }),
        }
    }

    async fn start(
        &self,
        plan: LogicalPlan,
        deadline: Instant,
    ) -> Result<CappedStream, QueryError> {
        let memory_limit_mib = self.limits.memory_bytes >> 20;
        let planned_schema: SchemaRef = Arc::new(plan.schema().as_arrow().clone());
        let turn = self.wait_for_turn(deadline).await?;
        let stream = self
            .before(deadline, async {
                // The gate has refused every statement, so the plan is a
                // query and needs none of `execute_logical_plan`'s handling.
                let frame = datafusion::dataframe::DataFrame::new(self.planning_state(), plan);
                let task = join_filters::computing_join_filters(frame.task_ctx());
                let physical = frame
                    .create_physical_plan()
                    .await
                    .map_err(|e| classify(e, memory_limit_mib))?;
                datafusion::physical_plan::execute_stream(physical, Arc::new(task))
                    .map_err(|e| classify(e, memory_limit_mib))
            })
            .await?;
        Ok(CappedStream::new(
            turn,
            stream,
            planned_schema,
            deadline,
            self.limits.timeout,
            self.limits.max_rows,
            memory_limit_mib,
        ))
    }
}

fn classify(error: DataFusionError, limit_mib: usize) -> QueryError {
    if matches!(error.find_root(), DataFusionError::ResourcesExhausted(_)) {
        QueryError::ResourcesExhausted {
            limit_mib,
            source: error,
        }
    } else {
        QueryError::Execution(error)
    }
}

fn read_only_options() -> SQLOptions {
    SQLOptions::new()
        .with_allow_ddl(false)
        .with_allow_dml(false)
        .with_allow_statements(false)
}

fn strip_context(error: &DataFusionError) -> String {
    error.find_root().to_string()
}
