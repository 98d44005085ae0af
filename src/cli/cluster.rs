//! The `scheduler`, `executor`, `local-s3` and `cluster up` commands: the
//! cluster roles from this binary, and a whole cluster on loopback.
//!
//! Owns turning flags into role options, and starting and stopping the
//! processes of a local cluster. It must not configure Ballista itself:
//! that is [`osservatorio::cluster`].

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use anyhow::{bail, Context, Result};
use clap::Subcommand;
use osservatorio::cluster::{self, ExecutorOptions, LocalS3, SchedulerOptions};
use osservatorio::config::Config;

/// The bucket a local cluster keeps its warehouse in.
const BUCKET: &str = "observatory";

#[derive(Debug, Subcommand)]
pub enum ClusterAction {
    /// Start an S3-compatible store, a scheduler and N executors on
    /// loopback, load the province demo into the store, print how to use
    /// them, and stop them all on Ctrl-C.
    Up {
        #[arg(long, default_value_t = 2)]
        executors: usize,
        /// Where the store keeps its objects and executors their shuffle files.
        #[arg(long, default_value = "cluster")]
        dir: PathBuf,
        /// The scale of the demo loaded into the store.
        #[arg(long, default_value = "province")]
        scale: String,
        /// First port: the store takes it, the scheduler the next, then one
        /// per executor.
        #[arg(long, default_value_t = 9400)]
        base_port: u16,
    },
}

pub async fn run_scheduler(config: &Config, bind: &str, advertise: Option<String>) -> Result<()> {
    let bind: SocketAddr = bind
        .parse()
        .with_context(|| format!("--bind {bind}: expected HOST:PORT"))?;
    let scheduler = cluster::start_scheduler(SchedulerOptions {
        bind,
        advertised_host: advertise,
        executor_timeout: Duration::from_secs(30),
        survey: config.survey,
    })
    .await?;
    println!("scheduler listening on {}", scheduler.address);
    tokio::select! {
        served = scheduler.served() => served?,
        _ = tokio::signal::ctrl_c() => {}
    }
    Ok(())
}

pub async fn run_executor(
    config: &Config,
    scheduler: String,
    bind: &str,
    advertise: Option<String>,
    concurrent_tasks: usize,
    work_dir: Option<PathBuf>,
) -> Result<()> {
    let bind: SocketAddr = bind
        .parse()
        .with_context(|| format!("--bind {bind}: expected HOST:PORT"))?;
    let work_dir = work_dir.unwrap_or_else(|| {
        std::env::temp_dir().join(format!("osservatorio-executor-{}", std::process::id()))
    });
    eprintln!(
        "executor for scheduler {scheduler}, results on {bind}, memory limit {} MiB",
        config.limits.memory_bytes >> 20
    );
    cluster::run_executor(ExecutorOptions {
        scheduler,
        bind,
        advertised_host: advertise,
        concurrent_tasks,
        memory_bytes: config.limits.memory_bytes,
        work_dir,
        survey: config.survey,
    })
    .await?;
    Ok(())
}

pub async fn run_local_s3(root: &Path, listen: &str, buckets: &[String]) -> Result<()> {
    let bind: SocketAddr = listen
        .parse()
        .with_context(|| format!("--listen {listen}: expected HOST:PORT"))?;
    let (Ok(access_key), Ok(secret_key)) = (
        std::env::var("AWS_ACCESS_KEY_ID"),
        std::env::var("AWS_SECRET_ACCESS_KEY"),
    ) else {
        bail!("set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY: the store accepts only that key");
    };
    let store = LocalS3::start(root, bind, &access_key, &secret_key).await?;
    for bucket in buckets {
        store.create_bucket(bucket)?;
    }
    println!("S3 store listening on {}", store.endpoint());
    tokio::signal::ctrl_c().await?;
    Ok(())
}

/// The processes of a local cluster; killed when dropped.
struct Processes(Vec<(String, Child)>);

impl Drop for Processes {
    fn drop(&mut self) {
        for (_, child) in &mut self.0 {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

pub async fn cluster_up(
    config: &Config,
    executors: usize,
    dir: &Path,
    scale: &str,
    base_port: u16,
) -> Result<()> {
    let exe = std::env::current_exe().context("finding this program")?;
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let dir = std::path::absolute(dir)?;
    let store_address = SocketAddr::from(([127, 0, 0, 1], base_port));
    let scheduler_address = SocketAddr::from(([127, 0, 0, 1], base_port + 1));
    let secret = {
        use rand::RngCore;
        let mut bytes = [0u8; 16];
        rand::rng().fill_bytes(&mut bytes);
        hex::encode(bytes)
    };
    let environment = [
        ("AWS_ACCESS_KEY_ID", "osservatorio".to_string()),
        ("AWS_SECRET_ACCESS_KEY", secret),
        ("AWS_REGION", "us-east-1".to_string()),
        ("AWS_ENDPOINT_URL", format!("http://{store_address}")),
    ];
    let memory = format!("{}B", config.limits.memory_bytes);
    let spawn = |name: &str, args: &[&str]| -> Result<(String, Child)> {
        let log = std::fs::File::create(dir.join(format!("{name}.log")))?;
        let child = Command::new(&exe)
            .args(args)
            .envs(environment.iter().map(|(k, v)| (*k, v.as_str())))
            .stdout(log.try_clone()?)
            .stderr(log)
            .stdin(Stdio::null())
            .spawn()
            .with_context(|| format!("starting the {name}"))?;
        Ok((name.to_string(), child))
    };
    let mut processes = Processes(Vec::new());
    let store_root = dir.join("store");
    processes.0.push(spawn(
        "store",
        &[
            "local-s3",
            "--root",
            &store_root.display().to_string(),
            "--listen",
            &store_address.to_string(),
            "--bucket",
            BUCKET,
        ],
    )?);
    wait_for(store_address, "the store", &dir.join("store.log")).await?;
    processes.0.push(spawn(
        "scheduler",
        &["scheduler", "--bind", &scheduler_address.to_string()],
    )?);
    wait_for(
        scheduler_address,
        "the scheduler",
        &dir.join("scheduler.log"),
    )
    .await?;
    for i in 0..executors {
        let name = format!("executor-{}", i + 1);
        let bind = SocketAddr::from(([127, 0, 0, 1], base_port + 2 + i as u16));
        let work_dir = dir.join(&name);
        processes.0.push(spawn(
            &name,
            &[
                "executor",
                "--scheduler",
                &scheduler_address.to_string(),
                "--bind",
                &bind.to_string(),
                "--work-dir",
                &work_dir.display().to_string(),
                "--memory-limit",
                &memory,
            ],
        )?);
        wait_for(bind, &name, &dir.join(format!("{name}.log"))).await?;
    }
    let warehouse = format!("s3://{BUCKET}/warehouse");
    eprintln!("loading the {scale} demo into {warehouse} …");
    let status = Command::new(&exe)
        .args(["generate", "--scale", scale, "--data-dir", &warehouse])
        .envs(environment.iter().map(|(k, v)| (*k, v.as_str())))
        .status()
        .context("running generate")?;
    if !status.success() {
        bail!("loading the demo into {warehouse} failed");
    }
    println!("A local cluster is up (logs in {}):", dir.display());
    println!("  S3 store   http://{store_address}  bucket {BUCKET}");
    println!("  scheduler  ballista://{scheduler_address}");
    println!("  executors  {executors}");
    println!("In another shell:");
    for (key, value) in &environment {
        println!("  export {key}={value}");
    }
    println!("  export OSSERVATORIO_DATA_DIR={warehouse}");
    println!("  export OSSERVATORIO_ENGINE=ballista://{scheduler_address}");
    println!(
        "  osservatorio sql \"SELECT year, count(*) FROM contracts GROUP BY year ORDER BY year\""
    );
    println!("Press Ctrl-C to stop the cluster.");
    loop {
        tokio::select! {
            _ = tokio::signal::ctrl_c() => break,
            _ = tokio::time::sleep(Duration::from_secs(1)) => {
                for (name, child) in &mut processes.0 {
                    if let Some(status) = child.try_wait()? {
                        bail!("the {name} stopped ({status}); see {}", dir.join(format!("{name}.log")).display());
                    }
                }
            }
        }
    }
    eprintln!("stopping the cluster");
    Ok(())
}

/// Waits until `address` accepts connections.
async fn wait_for(address: SocketAddr, what: &str, log: &Path) -> Result<()> {
    for _ in 0..200 {
        if tokio::net::TcpStream::connect(address).await.is_ok() {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    bail!(
        "{what} did not start listening on {address}; see {}",
        log.display()
    )
}
