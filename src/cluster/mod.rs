//! Queries on an Apache Ballista cluster: the client session that sends
//! plans to a scheduler, and the scheduler and executor roles, run from our
//! own binary so that a cluster needs nothing else installed.
//!
//! Owns the Ballista wiring: which functions the scheduler and executors
//! know (the survey estimators, by name), how they reach the warehouse's
//! object store, the executors' memory limit, and the loopback S3 store
//! ([`store`]). It must not check SQL: every query reaches a cluster through
//! the gate in [`crate::query`], which plans and refuses it locally first.

pub mod store;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use ballista::prelude::SessionContextExt;
use ballista_core::config::TaskSchedulingPolicy;
use ballista_core::extension::SessionConfigExt;
use ballista_core::registry::BallistaFunctionRegistry;
use ballista_executor::executor_process::{start_executor_process, ExecutorProcessConfig};
use ballista_scheduler::cluster::BallistaCluster;
use ballista_scheduler::config::SchedulerConfig;
use ballista_scheduler::scheduler_process::{create_scheduler, start_grpc_service_with_listener};
use datafusion::execution::object_store::{DefaultObjectStoreRegistry, ObjectStoreRegistry};
use datafusion::execution::runtime_env::{RuntimeEnv, RuntimeEnvBuilder};
use datafusion::execution::session_state::{SessionState, SessionStateBuilder};
use datafusion::prelude::{SessionConfig, SessionContext};
use datafusion_proto::protobuf::{LogicalPlanNode, PhysicalPlanNode};
use object_store::ObjectStore;
use url::Url;

pub use store::LocalS3;

use crate::survey::SurveyOptions;

/// Everything that can go wrong starting or reaching a cluster role.
#[derive(Debug, thiserror::Error)]
pub enum ClusterError {
    /// Ballista refused to start a role or to create a session.
    #[error("{role}: {reason}")]
    Ballista { role: &'static str, reason: String },
    /// A socket or directory could not be used.
    #[error("{what}: {source}")]
    Io {
        what: String,
        #[source]
        source: std::io::Error,
    },
    /// The loopback S3 store could not start.
    #[error("the local S3 store: {reason}")]
    Store { reason: String },
}

fn ballista_error(role: &'static str) -> impl Fn(String) -> ClusterError {
    move |reason| ClusterError::Ballista { role, reason }
}

/// A client session whose queries run on the scheduler at `host:port`.
/// The scheduler is not contacted until the first query.
pub async fn remote_context(
    scheduler: &str,
    config: SessionConfig,
) -> Result<SessionContext, ClusterError> {
    let state = SessionStateBuilder::new()
        .with_default_features()
        .with_config(config)
        .build();
    SessionContext::remote_with_state(&format!("df://{scheduler}"), state)
        .await
        .map_err(|e| ballista_error("client")(e.to_string()))
}

/// Object stores by URL, resolving any `s3://bucket` with the warehouse's
/// own settings, so that the scheduler (which lists files while planning)
/// and the executors (which read them) reach the same store as the client.
#[derive(Debug, Default)]
struct WarehouseStores {
    registered: DefaultObjectStoreRegistry,
}

impl ObjectStoreRegistry for WarehouseStores {
    fn register_store(
        &self,
        url: &Url,
        store: Arc<dyn ObjectStore>,
    ) -> Option<Arc<dyn ObjectStore>> {
        self.registered.register_store(url, store)
    }

    fn deregister_store(&self, url: &Url) -> datafusion::error::Result<Arc<dyn ObjectStore>> {
        self.registered.deregister_store(url)
    }

    fn get_store(&self, url: &Url) -> datafusion::error::Result<Arc<dyn ObjectStore>> {
        if matches!(url.scheme(), "s3" | "s3a") {
            return crate::catalog::s3_store(url)
                .map_err(|e| datafusion::error::DataFusionError::External(Box::new(e)));
        }
        self.registered.get_store(url)
    }
}

fn runtime_env(work_dir: Option<&std::path::Path>) -> datafusion::error::Result<Arc<RuntimeEnv>> {
    let mut builder =
        RuntimeEnvBuilder::new().with_object_store_registry(Arc::new(WarehouseStores::default()));
    if let Some(dir) = work_dir {
        builder = builder.with_temp_file_path(dir);
    }
    builder.build_arc()
}

/// Every function a client session knows (DataFusion's defaults, nested
/// ones such as `string_to_array` included) plus our estimators: executors
/// find a plan's functions by name.
fn function_registry(options: SurveyOptions) -> BallistaFunctionRegistry {
    let ctx =
        SessionContext::new_with_state(SessionStateBuilder::new().with_default_features().build());
    crate::survey::register(&ctx, options);
    BallistaFunctionRegistry::from(&ctx.state())
}

/// The scheduler's session for each submitted plan: Ballista's defaults,
/// our estimators (the plan names them; the scheduler plans them) and the
/// warehouse's stores.
fn scheduler_session(
    options: SurveyOptions,
) -> impl Fn(SessionConfig) -> datafusion::common::Result<SessionState> + Send + Sync {
    move |config| {
        let state = ballista_core::utils::default_session_builder(config)?;
        let state = SessionStateBuilder::new_from_existing(state)
            .with_runtime_env(runtime_env(None)?)
            .build();
        let ctx = SessionContext::new_with_state(state);
        crate::survey::register(&ctx, options);
        Ok(ctx.state())
    }
}

/// How a scheduler runs.
#[derive(Debug, Clone)]
pub struct SchedulerOptions {
    /// Where to listen; port 0 picks a free one.
    pub bind: SocketAddr,
    /// How executors and clients reach it, if not `bind`'s address.
    pub advertised_host: Option<String>,
    /// How long an executor may stay silent before its tasks are rerun
    /// elsewhere.
    pub executor_timeout: Duration,
    pub survey: SurveyOptions,
}

/// A scheduler serving in this process, on threads of its own (planning
/// deep plans needs more stack than a default worker thread has in a debug
/// build). It stops when dropped.
pub struct Scheduler {
    pub address: SocketAddr,
    runtime: Option<tokio::runtime::Runtime>,
    server: Option<tokio::task::JoinHandle<Result<(), ClusterError>>>,
}

impl std::fmt::Debug for Scheduler {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Scheduler")
            .field("address", &self.address)
            .finish_non_exhaustive()
    }
}

impl Scheduler {
    /// Waits until the scheduler stops serving, which only an error does.
    pub async fn served(mut self) -> Result<(), ClusterError> {
        match self.server.take() {
            Some(server) => server
                .await
                .map_err(|e| ballista_error("scheduler")(e.to_string()))?,
            None => Ok(()),
        }
    }
}

impl Drop for Scheduler {
    fn drop(&mut self) {
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}

fn role_runtime(name: &str) -> Result<tokio::runtime::Runtime, ClusterError> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name(name)
        // Plans of the indicators are deep; debug builds need room.
        .thread_stack_size(16 << 20)
        .enable_all()
        .build()
        .map_err(|source| ClusterError::Io {
            what: format!("starting the {name} runtime"),
            source,
        })
}

/// Binds and starts a scheduler; it serves until dropped.
pub async fn start_scheduler(options: SchedulerOptions) -> Result<Scheduler, ClusterError> {
    let runtime = role_runtime("scheduler")?;
    let (address, server) = runtime
        .spawn(async move {
            let (address, listener, scheduler) = create_scheduler_server(options).await?;
            let server = tokio::spawn(async move {
                start_grpc_service_with_listener(listener, scheduler)
                    .await
                    .map_err(|e| ballista_error("scheduler")(e.to_string()))
            });
            Ok::<_, ClusterError>((address, server))
        })
        .await
        .map_err(|e| ballista_error("scheduler")(e.to_string()))??;
    Ok(Scheduler {
        address,
        runtime: Some(runtime),
        server: Some(server),
    })
}

async fn create_scheduler_server(
    options: SchedulerOptions,
) -> Result<
    (
        SocketAddr,
        tokio::net::TcpListener,
        ballista_scheduler::scheduler_server::SchedulerServer<LogicalPlanNode, PhysicalPlanNode>,
    ),
    ClusterError,
> {
    let listener = tokio::net::TcpListener::bind(options.bind)
        .await
        .map_err(|source| ClusterError::Io {
            what: format!("binding the scheduler to {}", options.bind),
            source,
        })?;
    let address = listener.local_addr().map_err(|source| ClusterError::Io {
        what: "reading the scheduler's address".into(),
        source,
    })?;
    let host = options
        .advertised_host
        .clone()
        .unwrap_or_else(|| address.ip().to_string());
    let mut config = SchedulerConfig::default()
        .with_hostname(&host)
        .with_port(address.port())
        .with_scheduler_policy(TaskSchedulingPolicy::PullStaged)
        .with_override_session_builder(Arc::new(scheduler_session(options.survey)))
        .with_override_config_producer(Arc::new(SessionConfig::new_with_ballista));
    config.bind_host = address.ip().to_string();
    // A busy executor polls at least every 5 seconds; leave it room.
    config.executor_timeout_seconds = options.executor_timeout.as_secs().max(10);
    config.expire_dead_executor_interval_seconds = 1;
    config.no_executors_grace_period_seconds = config.executor_timeout_seconds * 2;
    let config = Arc::new(config);
    let cluster = BallistaCluster::new_from_config(&config)
        .await
        .map_err(|e| ballista_error("scheduler")(e.to_string()))?;
    let scheduler = create_scheduler::<LogicalPlanNode, PhysicalPlanNode>(cluster, config)
        .await
        .map_err(|e| ballista_error("scheduler")(e.to_string()))?;
    Ok((address, listener, scheduler))
}

/// How an executor runs.
#[derive(Debug, Clone)]
pub struct ExecutorOptions {
    /// The scheduler's `host:port`.
    pub scheduler: String,
    /// Where to serve results to other executors and clients; port 0 picks
    /// a free one.
    pub bind: SocketAddr,
    /// How others reach it, if not `bind`'s address.
    pub advertised_host: Option<String>,
    /// Tasks at once (0: one per core).
    pub concurrent_tasks: usize,
    /// Memory shared by the executor's running tasks; each task gets its
    /// share of this pool and spills or fails beyond it.
    pub memory_bytes: usize,
    /// Where shuffle files and spills go.
    pub work_dir: std::path::PathBuf,
    pub survey: SurveyOptions,
}

/// Runs an executor until it is stopped (Ctrl-C, SIGTERM, or the scheduler).
pub async fn run_executor(options: ExecutorOptions) -> Result<(), ClusterError> {
    let config = executor_config(&options)?;
    start_executor_process(Arc::new(config))
        .await
        .map_err(|e| ballista_error("executor")(e.to_string()))
}

/// An executor on a runtime of its own, so that a test (or a local
/// cluster) can stop it abruptly, as a crash would.
pub struct ExecutorHandle {
    runtime: Option<tokio::runtime::Runtime>,
    pub address: SocketAddr,
}

impl std::fmt::Debug for ExecutorHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ExecutorHandle")
            .field("address", &self.address)
            .finish_non_exhaustive()
    }
}

impl ExecutorHandle {
    /// Starts an executor in this process, on threads of its own.
    pub fn start(options: ExecutorOptions) -> Result<Self, ClusterError> {
        let config = executor_config(&options)?;
        let address = SocketAddr::new(options.bind.ip(), config.port);
        let runtime = role_runtime("executor")?;
        runtime.spawn(async move {
            if let Err(error) = start_executor_process(Arc::new(config)).await {
                tracing::error!(%error, "executor stopped");
            }
        });
        Ok(Self {
            runtime: Some(runtime),
            address,
        })
    }

    /// Stops the executor at once, dropping its running tasks, as if its
    /// machine had gone away.
    pub fn kill(mut self) {
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}

impl Drop for ExecutorHandle {
    fn drop(&mut self) {
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}

fn executor_config(options: &ExecutorOptions) -> Result<ExecutorProcessConfig, ClusterError> {
    let (scheduler_host, scheduler_port) = options
        .scheduler
        .rsplit_once(':')
        .and_then(|(host, port)| Some((host.to_string(), port.parse::<u16>().ok()?)))
        .ok_or_else(|| {
            ballista_error("executor")(format!(
                "`{}`: the scheduler is HOST:PORT",
                options.scheduler
            ))
        })?;
    // Ballista advertises the port it is given, so port 0 is resolved
    // here: bound, read, released, then bound again by the executor.
    let port = if options.bind.port() == 0 {
        std::net::TcpListener::bind(options.bind)
            .and_then(|listener| listener.local_addr())
            .map_err(|source| ClusterError::Io {
                what: format!("finding a free port on {}", options.bind.ip()),
                source,
            })?
            .port()
    } else {
        options.bind.port()
    };
    std::fs::create_dir_all(&options.work_dir).map_err(|source| ClusterError::Io {
        what: format!("creating {}", options.work_dir.display()),
        source,
    })?;
    let work_dir = options.work_dir.clone();
    let vcores = if options.concurrent_tasks == 0 {
        std::thread::available_parallelism().map_or(2, usize::from)
    } else {
        options.concurrent_tasks
    };
    Ok(ExecutorProcessConfig {
        bind_host: options.bind.ip().to_string(),
        external_host: Some(
            options
                .advertised_host
                .clone()
                .unwrap_or_else(|| options.bind.ip().to_string()),
        ),
        port,
        scheduler_host,
        scheduler_port,
        scheduler_connect_timeout_seconds: 30,
        vcores,
        task_scheduling_policy: TaskSchedulingPolicy::PullStaged,
        work_dir: Some(work_dir.display().to_string()),
        memory_pool_size: Some(options.memory_bytes as u64),
        override_function_registry: Some(Arc::new(function_registry(options.survey))),
        override_runtime_producer: Some(Arc::new(move |_config: &SessionConfig| {
            runtime_env(Some(&work_dir))
        })),
        override_config_producer: Some(Arc::new(SessionConfig::new_with_ballista)),
        ..Default::default()
    })
}
