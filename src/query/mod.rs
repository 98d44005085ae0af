//! The query engine and its gate: every piece of user-supplied SQL, from the
//! CLI, over HTTP or Flight SQL, is planned, checked and run here.
//!
//! Owns the DataFusion session over the warehouse, the read-only check, the
//! memory, time and row limits, how many queries are computed at once, and
//! the output encoders. It must not know about HTTP or any other transport.

mod cache;
mod join_filters;
mod output;
mod stream;
mod turns;

use std::sync::Arc;
use std::time::Duration;

use arrow::datatypes::{DataType, SchemaRef};
use arrow::record_batch::RecordBatch;
use datafusion::datasource::TableType;
use datafusion::error::DataFusionError;
use datafusion::execution::memory_pool::FairSpillPool;
use datafusion::execution::runtime_env::{RuntimeEnv, RuntimeEnvBuilder};
use datafusion::logical_expr::LogicalPlan;
use datafusion::prelude::{SQLOptions, SessionConfig, SessionContext};
use datafusion::scalar::ScalarValue;
use tokio::sync::Semaphore;
use tokio::time::Instant;

use crate::catalog::{CatalogError, TableVersions, Warehouse};

pub use cache::ResultCache;
pub use output::{write_batches, OutputError, OutputFormat, StreamEncoder, ROW_LIMIT_KEY};
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
            memory_bytes: 1 << 30,
            timeout: Duration::from_secs(60),
            max_rows: 1_000_000,
            concurrent_queries: cores(),
        }
    }
}

/// The cores this process may use, at least one.
fn cores() -> usize {
    std::thread::available_parallelism().map_or(1, usize::from)
}

const SKIP_PARTIAL_RATIO_VARIABLE: &str =
    "DATAFUSION_EXECUTION_SKIP_PARTIAL_AGGREGATION_PROBE_RATIO_THRESHOLD";

/// DataFusion's own variable for join filters pushed into scans: on, every
/// join gets one; unset, only the joins `join_filters` finds selective.
const JOIN_DYNAMIC_FILTER_VARIABLE: &str =
    "DATAFUSION_OPTIMIZER_ENABLE_JOIN_DYNAMIC_FILTER_PUSHDOWN";

/// Where user SQL runs: in this process, or on an Apache Ballista cluster.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Engine {
    #[default]
    Local,
    /// The scheduler's `host:port`.
    Ballista(String),
}

impl std::fmt::Display for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Engine::Local => f.write_str("local"),
            Engine::Ballista(scheduler) => write!(f, "ballista://{scheduler}"),
        }
    }
}

impl std::str::FromStr for Engine {
    type Err = QueryError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let bad = || {
            QueryError::BadEngine(format!(
                "`{text}`: the engine is `local` or `ballista://HOST:PORT`"
            ))
        };
        if text == "local" {
            return Ok(Engine::Local);
        }
        let address = text.strip_prefix("ballista://").ok_or_else(bad)?;
        let (host, port) = address.rsplit_once(':').ok_or_else(bad)?;
        if host.is_empty() || port.parse::<u16>().is_err() || address.contains('/') {
            return Err(bad());
        }
        Ok(Engine::Ballista(address.to_string()))
    }
}

#[cfg(feature = "cluster")]
const REPARTITION_AGGREGATIONS_VARIABLE: &str = "DATAFUSION_OPTIMIZER_REPARTITION_AGGREGATIONS";

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

/// What the sessions of one process share, so that a session renewed for
/// new table versions does not double the memory or the queries at once.
#[derive(Clone)]
struct SharedResources {
    runtime: Arc<RuntimeEnv>,
    turns: Arc<Semaphore>,
}

impl SharedResources {
    fn new(limits: &QueryLimits) -> Result<Self, QueryError> {
        // Operators that can spill get an even share of the pool. A pool
        // taken as needed made a lone indicator up to a tenth faster (no
        // aggregation spilled), but let one heavy query hold the whole pool,
        // and the server's peak memory went past half as much again as the
        // pool (benches/RESULTS.md).
        let runtime = RuntimeEnvBuilder::new()
            .with_memory_pool(Arc::new(FairSpillPool::new(limits.memory_bytes)))
            .build_arc()
            .map_err(QueryError::Execution)?;
        Ok(Self {
            runtime,
            turns: Arc::new(Semaphore::new(limits.concurrent_queries.max(1))),
        })
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
}

impl std::fmt::Debug for QueryEngine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("QueryEngine")
            .field("limits", &self.limits)
            .finish_non_exhaustive()
    }
}

impl QueryEngine {
    /// A session with every dataset of `warehouse` registered under its name.
    pub async fn open(warehouse: &Warehouse, limits: QueryLimits) -> Result<Self, QueryError> {
        let mut engine = Self::empty(limits)?;
        engine.versions = warehouse.register_all(&engine.ctx).await?;
        Ok(engine)
    }

    /// Like [`QueryEngine::open`], with the tables named in `as_of` at the
    /// version given (`osservatorio sql --as-of contracts=3`).
    pub async fn open_as_of(
        warehouse: &Warehouse,
        limits: QueryLimits,
        as_of: &std::collections::BTreeMap<String, u64>,
    ) -> Result<Self, QueryError> {
        Self::open_on(warehouse, limits, &Engine::Local, as_of).await
    }

    /// A session on `engine` over `warehouse`, with the tables named in
    /// `as_of` at the version given. On a cluster the tables are listings
    /// of each snapshot's files, so results name the same versions as here.
    pub async fn open_on(
        warehouse: &Warehouse,
        limits: QueryLimits,
        engine: &Engine,
        as_of: &std::collections::BTreeMap<String, u64>,
    ) -> Result<Self, QueryError> {
        let shared = SharedResources::new(&limits)?;
        Self::open_sharing(warehouse, limits, shared, engine, as_of).await
    }

    /// A new session like [`QueryEngine::open_on`] that shares this one's
    /// limits, memory pool and turns: queries still running here and those
    /// started there count against the same memory and the same number of
    /// queries at once, as when a server renews its tables.
    pub async fn reopen(
        &self,
        warehouse: &Warehouse,
        engine: &Engine,
        as_of: &std::collections::BTreeMap<String, u64>,
    ) -> Result<Self, QueryError> {
        Self::open_sharing(warehouse, self.limits, self.shared.clone(), engine, as_of).await
    }

    async fn open_sharing(
        warehouse: &Warehouse,
        limits: QueryLimits,
        shared: SharedResources,
        engine: &Engine,
        as_of: &std::collections::BTreeMap<String, u64>,
    ) -> Result<Self, QueryError> {
        match engine {
            Engine::Local => {
                let mut engine = Self::sharing(limits, shared)?;
                engine.versions = warehouse.register_as_of(&engine.ctx, as_of).await?;
                Ok(engine)
            }
            Engine::Ballista(scheduler) => {
                let mut engine = Self::remote(limits, shared, scheduler).await?;
                engine.versions = warehouse.register_files_as_of(&engine.ctx, as_of).await?;
                Ok(engine)
            }
        }
    }

    #[cfg(feature = "cluster")]
    async fn remote(
        limits: QueryLimits,
        shared: SharedResources,
        scheduler: &str,
    ) -> Result<Self, QueryError> {
        let mut config = session_config()?;
        // With aggregations repartitioned by key, Ballista 55 answered a
        // global aggregate under UNION ALL once per shuffle partition
        // (duplicate `_T` totals) and never finished the survey estimators'
        // grouped aggregation. Finishing each aggregate in one partition
        // gives every indicator exactly the local result; operators may
        // turn it back on with the variable.
        if std::env::var_os(REPARTITION_AGGREGATIONS_VARIABLE).is_none() {
            config.options_mut().optimizer.repartition_aggregations = false;
        }
        let ctx = crate::cluster::remote_context(scheduler, config)
            .await
            .map_err(|e| QueryError::Cluster {
                scheduler: scheduler.to_string(),
                reason: e.to_string(),
            })?;
        crate::survey::register(&ctx, crate::survey::SurveyOptions::default());
        Ok(Self {
            ctx,
            limits,
            shared,
            versions: TableVersions::new(),
            results: None,
        })
    }

    #[cfg(not(feature = "cluster"))]
    async fn remote(
        _limits: QueryLimits,
        _shared: SharedResources,
        scheduler: &str,
    ) -> Result<Self, QueryError> {
        Err(QueryError::BadEngine(format!(
            "ballista://{scheduler}: this build has no cluster support; build with `--features cluster`"
        )))
    }

    /// A session with no tables, with the same limits; used by tests of the gate.
    pub fn empty(limits: QueryLimits) -> Result<Self, QueryError> {
        Self::sharing(limits, SharedResources::new(&limits)?)
    }

    fn sharing(limits: QueryLimits, shared: SharedResources) -> Result<Self, QueryError> {
        let state = datafusion::execution::session_state::SessionStateBuilder::new()
            .with_config(session_config()?)
            .with_runtime_env(shared.runtime.clone())
            .with_default_features()
            .with_physical_optimizer_rule(Arc::new(join_filters::SelectiveJoinFilters))
            .build();
        let ctx = SessionContext::new_with_state(state);
        crate::survey::register(&ctx, crate::survey::SurveyOptions::default());
        Ok(Self {
            ctx,
            limits,
            shared,
            versions: TableVersions::new(),
            results: None,
        })
    }

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
                let frame = self
                    .ctx
                    .execute_logical_plan(plan)
                    .await
                    .map_err(QueryError::Invalid)?;
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

/// The session settings of every engine, local or on a cluster.
pub(crate) fn session_config() -> Result<SessionConfig, QueryError> {
    // Operators may tune the engine with DataFusion's own environment
    // variables (DATAFUSION_EXECUTION_TARGET_PARTITIONS=4, …); user SQL
    // cannot, since the gate refuses SET.
    let mut config = SessionConfig::from_env().map_err(QueryError::Execution)?;
    // Grouping by person identifiers barely shrinks rows in a partial
    // aggregation; skipping it sooner than DataFusion's default (0.8)
    // saved about a fifth of the national indicator suite (see
    // benches/RESULTS.md).
    if std::env::var_os(SKIP_PARTIAL_RATIO_VARIABLE).is_none() {
        config
            .options_mut()
            .execution
            .skip_partial_aggregation_probe_ratio_threshold = 0.5;
    }
    // Joins get a filter pushed into their probe side's scan only where
    // `join_filters` finds it selective: most indicators join on person
    // identifiers that nearly all match, where the filter drops nothing
    // and hashes every row a second time.
    if std::env::var_os(JOIN_DYNAMIC_FILTER_VARIABLE).is_none() {
        config
            .options_mut()
            .optimizer
            .enable_join_dynamic_filter_pushdown = false;
    }
    let config = config
        .with_information_schema(true)
        .with_default_catalog_and_schema("osservatorio", "public");
    Ok(config)
}
