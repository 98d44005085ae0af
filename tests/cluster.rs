//! Beyond one machine: queries on a Ballista scheduler with executors
//! started in this process, and `cluster up` as an operator runs it.

use std::net::SocketAddr;
use std::process::Command;
use std::time::Duration;

use arrow::record_batch::RecordBatch;
use osservatorio::catalog::Warehouse;
use osservatorio::cluster::{
    start_scheduler, ExecutorHandle, ExecutorOptions, Scheduler, SchedulerOptions,
};
use osservatorio::disclosure::DisclosureError;
use osservatorio::indicators::{IndicatorCatalog, IndicatorError};
use osservatorio::query::{Engine, QueryEngine, QueryError, QueryLimits};
use osservatorio::survey::SurveyOptions;

use crate::indicators::{params, queries_dir};
use crate::object_store::{text, ONE_AT_A_TIME};
use crate::support::{dictionary, province_warehouse};

/// A scheduler and executors in this process, each on port 0.
struct Cluster {
    scheduler: Scheduler,
    executors: Vec<ExecutorHandle>,
    _work: tempfile::TempDir,
}

impl Cluster {
    async fn start(executors: usize) -> Self {
        let scheduler = start_scheduler(SchedulerOptions {
            bind: "127.0.0.1:0".parse().unwrap(),
            advertised_host: None,
            executor_timeout: Duration::from_secs(10),
            survey: SurveyOptions::default(),
        })
        .await
        .unwrap();
        let work = tempfile::tempdir().unwrap();
        let executors = (0..executors)
            .map(|i| {
                ExecutorHandle::start(ExecutorOptions {
                    scheduler: scheduler.address.to_string(),
                    bind: "127.0.0.1:0".parse::<SocketAddr>().unwrap(),
                    advertised_host: None,
                    concurrent_tasks: 2,
                    memory_bytes: 512 << 20,
                    work_dir: work.path().join(format!("executor-{i}")),
                    survey: SurveyOptions::default(),
                })
                .unwrap()
            })
            .collect();
        Self {
            scheduler,
            executors,
            _work: work,
        }
    }

    fn engine(&self) -> Engine {
        Engine::Ballista(self.scheduler.address.to_string())
    }

    /// The shared province warehouse, locally and on this cluster.
    async fn engines(&self, limits: QueryLimits) -> (QueryEngine, QueryEngine) {
        let warehouse = Warehouse::open(province_warehouse(), dictionary())
            .await
            .unwrap();
        let local = QueryEngine::open(&warehouse, limits).await.unwrap();
        let remote = QueryEngine::open_on(&warehouse, limits, &self.engine(), &Default::default())
            .await
            .unwrap();
        (local, remote)
    }
}

/// Rows as text, sorted, with numbers compared to nine significant digits:
/// sums may add in another order on another engine.
fn rows(batch: &RecordBatch) -> Vec<Vec<String>> {
    let options = arrow::util::display::FormatOptions::default().with_null("∅");
    let formatters: Vec<_> = batch
        .columns()
        .iter()
        .map(|c| arrow::util::display::ArrayFormatter::try_new(c.as_ref(), &options).unwrap())
        .collect();
    let mut rows: Vec<Vec<String>> = (0..batch.num_rows())
        .map(|row| {
            formatters
                .iter()
                .map(|f| {
                    let cell = f.value(row).to_string();
                    match cell.parse::<f64>() {
                        Ok(number) if cell.contains('.') || cell.contains('e') => {
                            format!("{number:.9e}")
                        }
                        _ => cell,
                    }
                })
                .collect()
        })
        .collect();
    rows.sort();
    rows
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_indicator_gives_the_same_result_on_the_cluster() {
    let _turn = ONE_AT_A_TIME.lock().await;
    let cluster = Cluster::start(2).await;
    let limits = QueryLimits {
        timeout: Duration::from_secs(90),
        ..QueryLimits::default()
    };
    let (local, remote) = cluster.engines(limits).await;
    assert_eq!(local.versions(), remote.versions());
    let catalog = IndicatorCatalog::load(&queries_dir(), &local, 5)
        .await
        .unwrap();
    // Indicators are planned once, on the engine that runs them.
    let remote_catalog = IndicatorCatalog::load(&queries_dir(), &remote, 5)
        .await
        .unwrap();
    let files = std::fs::read_dir(queries_dir())
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .unwrap()
                .path()
                .extension()
                .is_some_and(|x| x == "sql")
        })
        .count();
    assert_eq!(catalog.indicators().len(), files, "one indicator per file");
    for indicator in catalog.indicators() {
        let id = &indicator.spec.id;
        let here = catalog.run(&local, id, &params(&[])).await.unwrap();
        assert!(here.num_rows() > 0, "{id}");
        let there = remote_catalog.run(&remote, id, &params(&[])).await;
        match there {
            Ok(there) => assert_eq!(rows(&here.batch), rows(&there.batch), "{id}"),
            // A Ballista 55 job that never finishes (README, "Beyond one
            // machine"): seen with this indicator only, now and then, when
            // the machine is loaded. It must fail by the time limit, never
            // with other rows.
            Err(IndicatorError::Query {
                source: QueryError::Timeout(_),
                ..
            }) if KNOWN_TO_STALL_ON_BALLISTA_55.contains(&id.as_str()) => {}
            // Ballista 55 handing a task out twice (README, "Beyond one
            // machine"): the repeated rows reach disclosure control, which
            // refuses a table with two cells at the same coordinates, so
            // nothing is published. Seen with this indicator only.
            Err(IndicatorError::Disclosure {
                source: DisclosureError::DuplicateCoordinates { .. },
                ..
            }) if KNOWN_TO_DUPLICATE_ON_BALLISTA_55.contains(&id.as_str()) => {}
            Err(error) => panic!("{id} on the cluster: {error}"),
        }
    }
}

/// Indicators whose cluster job sometimes never finishes with Ballista 55.
const KNOWN_TO_STALL_ON_BALLISTA_55: &[&str] = &["weekly_hours"];

/// Indicators whose cluster result sometimes repeats rows with Ballista 55.
const KNOWN_TO_DUPLICATE_ON_BALLISTA_55: &[&str] = &["staff_operators_trained"];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_gate_holds_on_the_cluster() {
    let _turn = ONE_AT_A_TIME.lock().await;
    let cluster = Cluster::start(1).await;
    let limits = QueryLimits {
        max_rows: 10,
        timeout: Duration::from_secs(3),
        ..QueryLimits::default()
    };
    let (_, remote) = cluster.engines(limits).await;
    for hostile in [
        "DROP TABLE workers",
        "CREATE TABLE x AS SELECT * FROM workers",
        "INSERT INTO workers SELECT * FROM workers",
        "COPY (SELECT * FROM workers) TO '/tmp/osservatorio-leak.csv'",
        "SET datafusion.execution.batch_size = 1",
        "CREATE EXTERNAL TABLE y STORED AS CSV LOCATION '/etc/passwd'",
    ] {
        let error = remote.run(hostile).await.unwrap_err();
        assert!(
            matches!(error, QueryError::NotReadOnly(_)),
            "{hostile}: {error:?}"
        );
    }
    let capped = remote.run("SELECT * FROM contracts").await.unwrap();
    assert!(capped.truncated);
    assert_eq!(capped.num_rows(), 10);
    let slow =
        "SELECT sum(length(a.worker_id || b.worker_id)) FROM contracts a CROSS JOIN contracts b";
    let error = remote.run(slow).await.unwrap_err();
    assert!(matches!(error, QueryError::Timeout(_)), "{error:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_query_survives_or_fails_cleanly_when_an_executor_dies() {
    let _turn = ONE_AT_A_TIME.lock().await;
    let mut cluster = Cluster::start(2).await;
    let limits = QueryLimits {
        timeout: Duration::from_secs(120),
        ..QueryLimits::default()
    };
    let (local, remote) = cluster.engines(limits).await;
    let heavy = "SELECT count(*) AS n FROM (SELECT a.worker_id FROM contracts a JOIN contracts b ON a.household_id = b.household_id CROSS JOIN (SELECT 1 FROM contracts LIMIT 20) c) t";
    let expected = local.run(heavy).await.unwrap();
    let running = {
        let remote = remote.clone();
        tokio::spawn(async move { remote.run(heavy).await })
    };
    tokio::time::sleep(Duration::from_millis(1500)).await;
    cluster.executors.remove(0).kill();
    match running.await.unwrap() {
        Ok(result) => assert_eq!(rows(&result.batches[0]), rows(&expected.batches[0])),
        Err(error) => {
            let message = error.to_string();
            assert!(
                !message.trim().is_empty() && message.len() < 2000,
                "{message}"
            );
        }
    }
    let next = remote.run("SELECT count(*) FROM workers").await.unwrap();
    assert_eq!(next.num_rows(), 1);
}

/// Stops `cluster up` as Ctrl-C would, so that it stops its processes.
struct Interrupt(std::process::Child);

impl Drop for Interrupt {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .args(["-INT", &self.0.id().to_string()])
            .status();
        let _ = self.0.wait();
    }
}

/// `cluster up` starts a store, a scheduler and two executors as processes
/// of this binary and loads the demo; the exports it prints are all that
/// `sql` and `serve` need to work on the cluster and the store.
#[test]
fn a_local_cluster_comes_up_and_serves_every_front_end() {
    let _turn = ONE_AT_A_TIME.blocking_lock();
    use std::io::{BufRead, BufReader, Read, Write};
    let dir = tempfile::tempdir().unwrap();
    let base_port = 10_000 + (std::process::id() % 20_000) as u16;
    let mut command = Command::new(env!("CARGO_BIN_EXE_osservatorio"));
    for (key, _) in std::env::vars() {
        if key.starts_with("AWS_") || key.starts_with("OSSERVATORIO_") {
            command.env_remove(key);
        }
    }
    let log = std::fs::File::create(dir.path().join("up.log")).unwrap();
    let mut up = Interrupt(
        command
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .args(["cluster", "up", "--executors", "2", "--base-port"])
            .arg(base_port.to_string())
            .arg("--dir")
            .arg(dir.path().join("cluster"))
            .stdout(std::process::Stdio::piped())
            .stderr(log)
            .spawn()
            .unwrap(),
    );
    let mut exports = Vec::new();
    for line in BufReader::new(up.0.stdout.take().unwrap()).lines() {
        let line = line.unwrap();
        if let Some((key, value)) = line
            .trim()
            .strip_prefix("export ")
            .and_then(|l| l.split_once('='))
        {
            exports.push((key.to_string(), value.to_string()));
        }
        if line.starts_with("Press Ctrl-C") {
            break;
        }
    }
    let log = || std::fs::read_to_string(dir.path().join("up.log")).unwrap_or_default();
    assert!(
        exports
            .iter()
            .any(|(k, v)| k == "OSSERVATORIO_ENGINE" && v.starts_with("ballista://")),
        "exports {exports:?}, log {}",
        log()
    );
    let run = |args: &[&str]| {
        let mut command = Command::new(env!("CARGO_BIN_EXE_osservatorio"));
        command
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .env_remove("OSSERVATORIO_CONFIG")
            .envs(exports.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .args(args);
        command
    };
    let count = "SELECT count(*) AS n FROM contracts WHERE year = 2024";
    let on_cluster = run(&["sql", "--format", "csv", count]).output().unwrap();
    assert!(on_cluster.status.success(), "{}", text(&on_cluster));
    let locally = run(&["--engine", "local", "sql", "--format", "csv", count])
        .output()
        .unwrap();
    assert_eq!(on_cluster.stdout, locally.stdout);
    let n: u64 = String::from_utf8_lossy(&on_cluster.stdout)
        .lines()
        .nth(1)
        .unwrap()
        .parse()
        .unwrap();
    assert!(n > 0);

    let mut serve = run(&[
        "serve",
        "--listen",
        "127.0.0.1:0",
        "--flight-listen",
        "127.0.0.1:0",
    ])
    .stderr(std::process::Stdio::piped())
    .spawn()
    .unwrap();
    let (mut address, mut token) = (None, None);
    let mut log_lines = BufReader::new(serve.stderr.take().unwrap()).lines();
    for line in log_lines.by_ref() {
        let line = line.unwrap();
        if let Some(url) = line.strip_prefix("serving the observatory at http://") {
            address = Some(url.trim_end_matches('/').to_string());
        }
        if let Some(found) = line.trim().strip_prefix("osv_") {
            token = Some(format!("osv_{found}"));
            break;
        }
    }
    let (address, token) = (
        address.expect("serve prints its URL"),
        token.expect("and a token"),
    );
    // The rest of the server's log is read to the end, so that a write to
    // stderr never meets a closed pipe, and shown if the request fails.
    let later_log = std::thread::spawn(move || {
        log_lines
            .map_while(Result::ok)
            .collect::<Vec<_>>()
            .join("\n")
    });
    let mut stream = std::net::TcpStream::connect(&address).unwrap();
    // One write, so the request reaches the server whole.
    let request = format!(
        "POST /api/sql HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {token}\r\nAccept: text/csv\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{count}",
        count.len()
    );
    stream.write_all(request.as_bytes()).unwrap();
    let mut reply = String::new();
    let read = stream.read_to_string(&mut reply);
    let _ = Command::new("kill")
        .args(["-TERM", &serve.id().to_string()])
        .status();
    let _ = serve.wait();
    let log = later_log.join().unwrap_or_default();
    assert!(read.is_ok(), "{read:?}; the server's log:\n{log}");
    assert!(
        reply.starts_with("HTTP/1.1 200"),
        "{reply}\nthe server's log:\n{log}"
    );
    assert!(reply.contains(&n.to_string()), "{reply}");
}
