//! How a query session is opened: in this process or on an Apache Ballista
//! cluster, with the settings every session gets, and what the sessions of
//! one process share (the memory pool and the turns of queries at once).
//!
//! Owns building sessions and registering the warehouse's tables in them.
//! It must not plan or run queries: that is the engine's gate in `query`.

use std::sync::Arc;

use datafusion::execution::memory_pool::FairSpillPool;
use datafusion::execution::runtime_env::{RuntimeEnv, RuntimeEnvBuilder};
use datafusion::execution::session_state::SessionState;
use datafusion::physical_optimizer::optimizer::PhysicalOptimizer;
use datafusion::physical_optimizer::PhysicalOptimizerRule;
use datafusion::prelude::{SessionConfig, SessionContext};
use tokio::sync::Semaphore;

use super::{join_filters, join_modes, QueryEngine, QueryError, QueryLimits};
use crate::catalog::{TableVersions, Warehouse};

/// The cores this process may use, at least one.
pub(super) fn cores() -> usize {
    std::thread::available_parallelism().map_or(1, usize::from)
}

/// The default memory pool: a quarter of the memory this process may use
/// (the machine's, or its control group's limit if lower), at least
/// 256 MiB. With a fixed 1 GiB the heaviest indicators spilled to disk
/// on a machine with 24 GiB; DuckDB, the tool researchers would use
/// instead, takes 80% by default (benches/RESULTS.md).
pub(super) fn default_memory_pool() -> usize {
    const FLOOR: usize = 256 << 20;
    usable_memory().map_or(1 << 30, |bytes| (bytes / 4).max(FLOOR))
}

#[cfg(unix)]
fn usable_memory() -> Option<usize> {
    // SAFETY: sysconf only reads system settings.
    let (pages, page_size) = unsafe {
        (
            libc::sysconf(libc::_SC_PHYS_PAGES),
            libc::sysconf(libc::_SC_PAGESIZE),
        )
    };
    let physical = usize::try_from(pages)
        .ok()?
        .checked_mul(usize::try_from(page_size).ok()?)?;
    // A container's limit, where the process has one (cgroup v2, then v1);
    // "max" or an absurdly large v1 value means none.
    let limited = [
        "/sys/fs/cgroup/memory.max",
        "/sys/fs/cgroup/memory/memory.limit_in_bytes",
    ]
    .iter()
    .find_map(|path| {
        std::fs::read_to_string(path)
            .ok()?
            .trim()
            .parse::<usize>()
            .ok()
    });
    Some(limited.map_or(physical, |limit| limit.min(physical)))
}

#[cfg(not(unix))]
fn usable_memory() -> Option<usize> {
    None
}

/// Partitions per core of a query computed alone. On two cores, two per
/// core took the heavy indicators about a fifth less time than one; three
/// took the national suite a further 1–7% less, in runs paired with two
/// (benches/RESULTS.md, 2026-12-05), as the shares of the scans' row groups
/// even out; four was no better than three.
const PARTITIONS_PER_CORE_ALONE: usize = 3;

/// DataFusion's own variable for the partitions of a plan; when an operator
/// sets it, every query gets exactly that many.
const TARGET_PARTITIONS_VARIABLE: &str = "DATAFUSION_EXECUTION_TARGET_PARTITIONS";

const SKIP_PARTIAL_RATIO_VARIABLE: &str =
    "DATAFUSION_EXECUTION_SKIP_PARTIAL_AGGREGATION_PROBE_RATIO_THRESHOLD";

/// DataFusion's own variable for join filters pushed into scans: on, every
/// join gets one; unset, only the joins `join_filters` finds selective.
const JOIN_DYNAMIC_FILTER_VARIABLE: &str =
    "DATAFUSION_OPTIMIZER_ENABLE_JOIN_DYNAMIC_FILTER_PUSHDOWN";

/// DataFusion's own variables for the settings `session_config` changes
/// from DataFusion's defaults; an operator who sets one gets that value.
const PAGE_INDEX_VARIABLE: &str = "DATAFUSION_EXECUTION_PARQUET_ENABLE_PAGE_INDEX";
const BATCH_SIZE_VARIABLE: &str = "DATAFUSION_EXECUTION_BATCH_SIZE";

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

/// What the sessions of one process share, so that a session renewed for
/// new table versions does not double the memory or the queries at once.
#[derive(Clone)]
pub(super) struct SharedResources {
    runtime: Arc<RuntimeEnv>,
    pub(super) turns: Arc<Semaphore>,
    /// Queries waiting for a turn.
    pub(super) waiting: Arc<std::sync::atomic::AtomicUsize>,
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
        let total = limits.concurrent_queries.max(1);
        let turns = Arc::new(Semaphore::new(total));
        super::turns::watch_resident_memory(Arc::downgrade(&turns), total, limits.memory_bytes);
        Ok(Self {
            runtime,
            turns,
            waiting: Arc::default(),
        })
    }
}

impl QueryEngine {
    /// The session state a query is planned with, once it has its turn. A
    /// query computed alone, with none waiting, is planned with
    /// [`PARTITIONS_PER_CORE_ALONE`] partitions per core, so that a
    /// partition that finishes early no longer leaves its core idle while
    /// another works through a larger share. With other queries running or
    /// about to, the cores are busy anyway, and each partition holds
    /// batches outside the memory pool, so the plan keeps one per core.
    pub(super) fn planning_state(&self) -> SessionState {
        let mut state = self.ctx.state();
        if let Some(wide) = self.partitions_alone {
            let running =
                self.limits.concurrent_queries.max(1) - self.shared.turns.available_permits();
            let waiting = self
                .shared
                .waiting
                .load(std::sync::atomic::Ordering::Relaxed);
            if running <= 1 && waiting == 0 {
                state.config_mut().options_mut().execution.target_partitions = wide;
            }
        }
        state
    }

    /// A session with every dataset of `warehouse` registered under its name.
    pub async fn open(warehouse: &Warehouse, limits: QueryLimits) -> Result<Self, QueryError> {
        let mut engine = Self::empty(limits)?;
        engine.versions = warehouse.register_all(&engine.ctx).await?;
        Ok(engine)
    }

    /// A session with only the datasets `tables` of `warehouse` registered,
    /// for work that knows which it reads (ingest's checks).
    pub async fn open_only(
        warehouse: &Warehouse,
        limits: QueryLimits,
        tables: &[&str],
    ) -> Result<Self, QueryError> {
        let mut engine = Self::empty(limits)?;
        engine.versions = warehouse.register_only(&engine.ctx, tables).await?;
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
            // The cluster plans its own stages.
            partitions_alone: None,
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
            .with_physical_optimizer_rules(physical_optimizer_rules())
            .build();
        let partitions_alone = std::env::var_os(TARGET_PARTITIONS_VARIABLE)
            .is_none()
            .then(|| PARTITIONS_PER_CORE_ALONE * state.config().target_partitions());
        let ctx = SessionContext::new_with_state(state);
        crate::survey::register(&ctx, crate::survey::SurveyOptions::default());
        Ok(Self {
            ctx,
            limits,
            shared,
            versions: TableVersions::new(),
            results: None,
            partitions_alone,
        })
    }
}

/// DataFusion's rules, with `join_modes` just before its join selection and
/// `join_filters` last, once every filter is in place.
fn physical_optimizer_rules() -> Vec<Arc<dyn PhysicalOptimizerRule + Send + Sync>> {
    let mut rules = PhysicalOptimizer::new().rules;
    let join_selection = rules
        .iter()
        .position(|rule| rule.name() == "join_selection")
        .unwrap_or(0);
    rules.insert(
        join_selection,
        Arc::new(join_modes::PartitionedLargeJoins::default()),
    );
    rules.push(Arc::new(join_filters::SelectiveJoinFilters));
    rules
}

/// The session settings of every engine, local or on a cluster.
fn session_config() -> Result<SessionConfig, QueryError> {
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
    // Measured on the national suite against DuckDB, paired, whole suite
    // against whole suite (benches/RESULTS.md, 2026-11-25): 0.84–0.88× →
    // 0.79–0.82×.
    // - Page indexes: the files are not sorted within a year, so the pages
    //   of a date or territory span nearly every value; the scans of the
    //   heavy indicators kept 530 of 532 pages and spent 7% of their time
    //   applying that row selection to every column they read.
    // - Batches of 16384 rows: half the per-batch work of the operators.
    let options = config.options_mut();
    if std::env::var_os(PAGE_INDEX_VARIABLE).is_none() {
        options.execution.parquet.enable_page_index = false;
    }
    if std::env::var_os(BATCH_SIZE_VARIABLE).is_none() {
        options.execution.batch_size = datafusion::config::ConfigNonZeroUsize::try_new(16384)
            .map_err(QueryError::Execution)?;
    }
    let config = config
        .with_information_schema(true)
        .with_default_catalog_and_schema("osservatorio", "public");
    Ok(config)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_query_computed_alone_is_planned_with_more_partitions() {
        let limits = QueryLimits {
            concurrent_queries: 3,
            ..QueryLimits::default()
        };
        let engine = QueryEngine::empty(limits).unwrap();
        let usual = engine.ctx.state().config().target_partitions();
        let planned = |engine: &QueryEngine| engine.planning_state().config().target_partitions();
        let fixed_by_operator = std::env::var_os(TARGET_PARTITIONS_VARIABLE).is_some();
        let alone = if fixed_by_operator {
            usual
        } else {
            PARTITIONS_PER_CORE_ALONE * usual
        };

        let own_turn = engine.shared.turns.clone().try_acquire_owned().unwrap();
        assert_eq!(planned(&engine), alone);
        let other_query = engine.shared.turns.clone().try_acquire_owned().unwrap();
        assert_eq!(planned(&engine), usual);
        drop(other_query);
        assert_eq!(planned(&engine), alone);
        engine
            .shared
            .waiting
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        assert_eq!(planned(&engine), usual, "a query waits for a turn");
        engine
            .shared
            .waiting
            .fetch_sub(1, std::sync::atomic::Ordering::Relaxed);
        drop(own_turn);
        // The session's own setting is untouched by either plan.
        assert_eq!(engine.ctx.state().config().target_partitions(), usual);
    }

    #[test]
    fn scans_skip_page_indexes_and_read_large_batches_unless_an_operator_says_otherwise() {
        let config = session_config().unwrap();
        let options = config.options();
        let set_by_operator = |variable: &str| std::env::var_os(variable).is_some();
        if !set_by_operator(PAGE_INDEX_VARIABLE) {
            assert!(!options.execution.parquet.enable_page_index);
        }
        if !set_by_operator(BATCH_SIZE_VARIABLE) {
            assert_eq!(options.execution.batch_size.get(), 16384);
        }
    }

    #[test]
    fn the_join_rules_run_where_they_must() {
        let engine = QueryEngine::empty(QueryLimits::default()).unwrap();
        let state = engine.ctx.state();
        let names: Vec<_> = state
            .physical_optimizers()
            .iter()
            .map(|r| r.name())
            .collect();
        let at = |name: &str| names.iter().position(|n| *n == name).unwrap();
        assert_eq!(at("partitioned_large_joins") + 1, at("join_selection"));
        assert_eq!(at("selective_join_filters"), names.len() - 1);
    }

    #[test]
    fn the_default_pool_is_a_quarter_of_the_memory_and_never_tiny() {
        let pool = default_memory_pool();
        assert!(pool >= 256 << 20, "{pool}");
        if let Some(usable) = usable_memory() {
            assert!(pool <= usable.max(256 << 20), "{pool} of {usable}");
            assert_eq!(pool, (usable / 4).max(256 << 20));
        }
    }
}
