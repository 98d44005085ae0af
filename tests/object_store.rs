//! The warehouse in an S3-compatible store on loopback, driven through the
//! binary as an operator would: every command, concurrent ingests, and
//! store failures as one-line errors. Also the store and the one-at-a-time
//! turn the cluster tests share.

use std::path::Path;
use std::process::{Command, Output};

use osservatorio::cluster::LocalS3;

const ACCESS_KEY: &str = "observatory-test";

/// One of these tests at a time: each starts several servers, and a
/// Ballista job slowed by the others past its time limit proves nothing.
pub(crate) static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());
const SECRET_KEY: &str = "a-secret-that-must-never-be-printed";

/// A store on port 0 over a temporary directory, with one bucket.
async fn store(bucket: &str) -> (tempfile::TempDir, LocalS3) {
    let dir = tempfile::tempdir().unwrap();
    let store = LocalS3::start(
        dir.path(),
        "127.0.0.1:0".parse().unwrap(),
        ACCESS_KEY,
        SECRET_KEY,
    )
    .await
    .unwrap();
    store.create_bucket(bucket).unwrap();
    (dir, store)
}

/// The binary with the store's endpoint and key, and no other AWS setting.
fn osservatorio(endpoint: &str, secret: &str, args: &[&str]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_osservatorio"));
    for (key, _) in std::env::vars() {
        if key.starts_with("AWS_") || key.starts_with("OSSERVATORIO_") {
            command.env_remove(key);
        }
    }
    command
        .args(args)
        .env("AWS_ACCESS_KEY_ID", ACCESS_KEY)
        .env("AWS_SECRET_ACCESS_KEY", secret)
        .env("AWS_REGION", "us-east-1")
        .env("AWS_ENDPOINT_URL", endpoint)
        .env(
            "OSSERVATORIO_PSEUDONYM_KEY",
            "a-key-of-at-least-sixteen-bytes",
        );
    command
}

/// Runs a command on a thread of its own, so that the store, served by
/// this test's runtime, keeps answering meanwhile.
async fn output(mut command: Command) -> Output {
    tokio::task::spawn_blocking(move || command.output().expect("run osservatorio"))
        .await
        .unwrap()
}

pub(crate) fn text(output: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

/// Like [`succeed`], on the warehouse at `data`.
async fn succeed_on(endpoint: &str, data: &str, args: &[&str]) -> String {
    let mut all = vec!["--data-dir", data];
    all.extend_from_slice(args);
    succeed(endpoint, &all).await
}

async fn succeed(endpoint: &str, args: &[&str]) -> String {
    let result = output(osservatorio(endpoint, SECRET_KEY, args)).await;
    assert!(result.status.success(), "{args:?}: {}", text(&result));
    String::from_utf8_lossy(&result.stdout).into_owned()
}

fn fixture(name: &str) -> String {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/ingest")
        .join(name)
        .display()
        .to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_command_works_on_a_warehouse_in_an_s3_store() {
    let _turn = ONE_AT_A_TIME.lock().await;
    let (_dir, store) = store("obs").await;
    let endpoint = store.endpoint();
    let data = "s3://obs/regione/warehouse";
    let sql = |query: &'static str| ["sql", "--format", "csv", query];

    succeed_on(&endpoint, data, &["generate", "--scale", "province"]).await;
    let workers = succeed_on(&endpoint, data, &sql("SELECT count(*) AS n FROM workers")).await;
    let listing = succeed_on(&endpoint, data, &["datasets"]).await;
    assert!(listing.contains("contracts"), "{listing}");

    // Ingest, history and time travel.
    succeed_on(
        &endpoint,
        data,
        &["ingest", "workers", &fixture("workers_it.csv")],
    )
    .await;
    let history = succeed_on(&endpoint, data, &["history", "workers"]).await;
    assert!(history.contains("workers_it.csv"), "{history}");
    let after = succeed_on(&endpoint, data, &sql("SELECT count(*) AS n FROM workers")).await;
    assert_ne!(after, workers, "the ingest added rows");
    let before = succeed_on(
        &endpoint,
        data,
        &[
            "sql",
            "--format",
            "csv",
            "--as-of",
            "workers=0",
            "SELECT count(*) AS n FROM workers",
        ],
    )
    .await;
    assert_eq!(before, workers, "version 0 is the generated table");

    // An indicator, a chart and the report read the store too.
    let indicator = succeed_on(
        &endpoint,
        data,
        &["indicator", "contracts_started_by_year", "--format", "csv"],
    )
    .await;
    assert!(indicator.lines().count() > 2, "{indicator}");
    let out = tempfile::tempdir().unwrap();
    let chart = out.path().join("chart.svg");
    succeed_on(
        &endpoint,
        data,
        &[
            "chart",
            "contracts_started_by_year",
            "--out",
            chart.to_str().unwrap(),
        ],
    )
    .await;
    assert!(std::fs::read_to_string(&chart).unwrap().contains("<svg"));
    let report = out.path().join("report");
    succeed_on(
        &endpoint,
        data,
        &[
            "--timeout",
            "300s",
            "report",
            "--year",
            "2024",
            "--out",
            report.to_str().unwrap(),
        ],
    )
    .await;
    assert!(report.join("report.html").is_file());

    // Erase a person the ingest brought in.
    let person = succeed_on(
        &endpoint,
        data,
        &sql("SELECT worker_id FROM workers ORDER BY worker_id LIMIT 1"),
    )
    .await;
    let person = person.lines().nth(1).unwrap().trim().to_string();
    succeed_on(&endpoint, data, &["erase", "--person", &person]).await;
    let left = succeed_on(
        &endpoint,
        data,
        &[
            "sql",
            "--format",
            "csv",
            &format!("SELECT count(*) AS n FROM workers WHERE worker_id = '{person}'"),
        ],
    )
    .await;
    assert_eq!(left.lines().nth(1), Some("0"), "{left}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_ingests_into_one_s3_table_both_commit_once() {
    let _turn = ONE_AT_A_TIME.lock().await;
    let (_dir, store) = store("obs").await;
    let endpoint = store.endpoint();
    let data = "s3://obs/wh";
    succeed_on(&endpoint, data, &["generate", "--scale", "province"]).await;
    let count = |endpoint: String| async move {
        let csv = succeed_on(
            &endpoint,
            data,
            &["sql", "--format", "csv", "SELECT count(*) FROM households"],
        )
        .await;
        csv.lines().nth(1).unwrap().parse::<u64>().unwrap()
    };
    let base = count(endpoint.clone()).await;
    let first = output(osservatorio(
        &endpoint,
        SECRET_KEY,
        &[
            "--data-dir",
            data,
            "ingest",
            "households",
            &fixture("households_it.csv"),
        ],
    ));
    let second = output(osservatorio(
        &endpoint,
        SECRET_KEY,
        &[
            "--data-dir",
            data,
            "ingest",
            "--force",
            "households",
            &fixture("households_it.csv"),
        ],
    ));
    let (first, second) = tokio::join!(first, second);
    assert!(first.status.success(), "{}", text(&first));
    assert!(second.status.success(), "{}", text(&second));
    let history = succeed_on(&endpoint, data, &["history", "households", "--json"]).await;
    let commits: serde_json::Value = serde_json::from_str(&history).unwrap();
    let commits = commits.as_array().unwrap();
    let versions: std::collections::BTreeSet<u64> = commits
        .iter()
        .map(|c| c["version"].as_u64().unwrap())
        .collect();
    assert_eq!(versions.len(), commits.len(), "one commit per version");
    assert_eq!(
        versions,
        (0..=2).collect(),
        "generate, then one commit per ingest"
    );
    let rows_per_file = {
        let csv = std::fs::read_to_string(fixture("households_it.csv")).unwrap();
        csv.lines().skip(1).filter(|l| !l.trim().is_empty()).count() as u64
    };
    assert_eq!(count(endpoint).await, base + 2 * rows_per_file);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn store_failures_are_one_line_errors_naming_the_url() {
    let _turn = ONE_AT_A_TIME.lock().await;
    let (_dir, store) = store("obs").await;
    let endpoint = store.endpoint();
    let cases = [
        (
            endpoint.clone(),
            SECRET_KEY,
            "s3://nosuchbucket/wh",
            "the bucket does not exist",
        ),
        (
            endpoint.clone(),
            "a-wrong-secret",
            "s3://obs/wh",
            "refused the credentials",
        ),
        (
            "http://127.0.0.1:9".to_string(),
            SECRET_KEY,
            "s3://obs/wh",
            "cannot reach",
        ),
        (
            "http://store.example.org:9000".to_string(),
            SECRET_KEY,
            "s3://obs/wh",
            "only on loopback",
        ),
    ];
    for (endpoint, secret, url, expected) in cases {
        let result = output(osservatorio(
            &endpoint,
            secret,
            &["--data-dir", url, "sql", "SELECT 1"],
        ))
        .await;
        let stderr = String::from_utf8_lossy(&result.stderr).into_owned();
        assert!(!result.status.success(), "{url}: {stderr}");
        assert_eq!(stderr.trim_end().lines().count(), 1, "one line: {stderr}");
        assert!(
            stderr.contains(url) && stderr.contains(expected),
            "{stderr}"
        );
        assert!(!stderr.contains(secret), "the secret leaked: {stderr}");
    }
}
