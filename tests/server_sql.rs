//! SQL over HTTP: hostile statements refused, parameters bound, the row cap
//! marked in every format, the time limit, and results streamed from a real
//! server on port 0 that decode to the same rows as the CLI.

use axum::http::{header, Method, Request, StatusCode};
use bytes::Bytes;
use osservatorio::auth::{AggregateAccess, Role};
use osservatorio::server;

use osservatorio::catalog::{Warehouse, WriteMode};

use crate::server::{app, app_with, call, config, sql};
use crate::support::{copy_dir, desks, dictionary, province_warehouse};
use arrow::record_batch::RecordBatch;

#[tokio::test]
async fn hostile_sql_is_refused() {
    let app = app(AggregateAccess::Public).await;
    for statement in [
        "DROP TABLE workers",
        "CREATE TABLE x AS SELECT * FROM workers",
        "INSERT INTO workers SELECT * FROM workers",
        "DELETE FROM workers",
        "COPY workers TO '/tmp/stolen.csv'",
        "SET datafusion.execution.batch_size = 1",
        "CREATE EXTERNAL TABLE e STORED AS CSV LOCATION '/etc/passwd'",
        "SELECT 1; DROP TABLE workers",
    ] {
        let reply = sql(&app, statement, &[]).await;
        assert_eq!(
            reply.status,
            StatusCode::BAD_REQUEST,
            "{statement}: {}",
            reply.text()
        );
        let slug = reply.json()["error"].as_str().unwrap().to_string();
        assert!(
            slug == "not_read_only" || slug == "invalid_sql",
            "{statement}: {slug}"
        );
    }
    let as_json = sql(
        &app,
        r#"{"sql": "DROP TABLE workers"}"#,
        &[(header::CONTENT_TYPE, "application/json")],
    )
    .await;
    assert_eq!(as_json.json()["error"], "not_read_only");
    assert!(!std::path::Path::new("/tmp/stolen.csv").exists());
    // The tables are intact.
    let count = sql(&app, "SELECT count(*) AS n FROM workers", &[]).await;
    assert!(count.json()["rows"][0]["n"].as_i64().unwrap() > 0);
}

#[tokio::test]
async fn sql_takes_parameters_and_marks_truncation() {
    let root = province_warehouse();
    let app = app_with(
        root,
        AggregateAccess::Public,
        config(root, |o| o.max_rows = Some(100)),
    )
    .await;
    let bound = sql(
        &app,
        r#"{"sql": "SELECT count(*) AS n FROM contracts WHERE year = $year", "params": {"year": 2024}}"#,
        &[(header::CONTENT_TYPE, "application/json")],
    )
    .await;
    assert_eq!(bound.status, StatusCode::OK, "{}", bound.text());
    assert!(bound.json()["rows"][0]["n"].as_i64().unwrap() > 0);
    let missing = sql(
        &app,
        r#"{"sql": "SELECT $year AS y"}"#,
        &[(header::CONTENT_TYPE, "application/json")],
    )
    .await;
    assert_eq!(missing.status, StatusCode::BAD_REQUEST);

    let cut = sql(&app, "SELECT worker_id FROM workers", &[]).await;
    let body = cut.json();
    assert_eq!(body["truncated"], true);
    assert_eq!(body["rows"].as_array().unwrap().len(), 100);
    assert_eq!(
        cut.header(header::HeaderName::from_static("x-row-limit")),
        "100"
    );
    let whole = sql(&app, "SELECT worker_id FROM workers LIMIT 100", &[]).await;
    assert_eq!(whole.json()["truncated"], false);

    let csv = sql(
        &app,
        "SELECT worker_id FROM workers",
        &[(header::ACCEPT, "text/csv")],
    )
    .await;
    let text = csv.text();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines[0], "worker_id");
    assert_eq!(lines.len(), 102);
    assert!(lines[101].starts_with("# truncated"), "{}", lines[101]);

    let parquet = call(
        &app.router,
        Method::POST,
        "/api/sql?format=parquet",
        &[(
            header::AUTHORIZATION,
            &format!("Bearer {}", app.token(Role::Researcher)),
        )],
        "SELECT worker_id FROM workers",
    )
    .await;
    let reader = parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(
        parquet.body.clone(),
    )
    .unwrap();
    let metadata = reader
        .metadata()
        .file_metadata()
        .key_value_metadata()
        .unwrap()
        .clone();
    assert!(metadata
        .iter()
        .any(|kv| kv.key == "osservatorio:truncated" && kv.value.as_deref() == Some("true")));
    let rows: usize = reader.build().unwrap().map(|b| b.unwrap().num_rows()).sum();
    assert_eq!(rows, 100);
}

#[tokio::test]
async fn a_slow_query_times_out_with_504() {
    let root = province_warehouse();
    let app = app_with(
        root,
        AggregateAccess::Public,
        config(root, |o| o.query_timeout = Some("300ms".into())),
    )
    .await;
    let reply = sql(
        &app,
        "SELECT sum(a.birth_year * b.birth_year) FROM workers a CROSS JOIN workers b",
        &[],
    )
    .await;
    assert_eq!(
        reply.status,
        StatusCode::GATEWAY_TIMEOUT,
        "{}",
        reply.text()
    );
    assert_eq!(reply.json()["error"], "timeout");
}

/// A real server on port 0: responses stream over TCP and decode to the
/// same rows as the CLI writes.
#[tokio::test]
async fn a_real_server_streams_arrow_and_parquet() {
    let app = app(AggregateAccess::Public).await;
    let listener = server::bind("127.0.0.1:0".parse().unwrap()).await.unwrap();
    let address = listener.local_addr().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let serving = tokio::spawn(server::serve(listener, app.state.clone(), async {
        let _ = stopped.await;
    }));
    let query = "SELECT worker_id, sex, birth_year FROM workers ORDER BY worker_id";
    let token = app.token(Role::Researcher).to_string();

    let arrow_bytes = post(
        address,
        &token,
        "application/vnd.apache.arrow.stream",
        query,
    )
    .await;
    let reader =
        arrow::ipc::reader::StreamReader::try_new(std::io::Cursor::new(arrow_bytes), None).unwrap();
    assert_eq!(
        reader
            .schema()
            .metadata()
            .get("osservatorio:row_limit")
            .map(String::as_str),
        Some("1000000")
    );
    let from_http: Vec<RecordBatch> = reader.map(|b| b.unwrap()).collect();

    let parquet_bytes = post(address, &token, "application/vnd.apache.parquet", query).await;
    let from_parquet: Vec<RecordBatch> =
        parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(parquet_bytes)
            .unwrap()
            .build()
            .unwrap()
            .map(|b| b.unwrap())
            .collect();

    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("cli.arrow");
    let cli = std::process::Command::new(env!("CARGO_BIN_EXE_osservatorio"))
        .args(["sql", query, "--format", "arrow", "--out"])
        .arg(&out)
        .arg("--data-dir")
        .arg(province_warehouse())
        .env_remove("OSSERVATORIO_CONFIG")
        .output()
        .unwrap();
    assert!(
        cli.status.success(),
        "{}",
        String::from_utf8_lossy(&cli.stderr)
    );
    let from_cli: Vec<RecordBatch> =
        arrow::ipc::reader::StreamReader::try_new(std::fs::File::open(&out).unwrap(), None)
            .unwrap()
            .map(|b| b.unwrap())
            .collect();

    let rows = |batches: &[RecordBatch]| -> Vec<String> {
        let text = arrow::util::pretty::pretty_format_batches(batches)
            .unwrap()
            .to_string();
        text.lines().map(str::to_string).collect()
    };
    let expected = rows(&from_cli);
    assert!(expected.len() > 1000);
    assert_eq!(rows(&from_http), expected);
    assert_eq!(rows(&from_parquet), expected);

    let _ = stop.send(());
    serving.await.unwrap().unwrap();
}

async fn post(address: std::net::SocketAddr, token: &str, accept: &str, sql: &str) -> Bytes {
    use http_body_util::BodyExt;
    let stream = tokio::net::TcpStream::connect(address).await.unwrap();
    let (mut sender, connection) =
        hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream))
            .await
            .unwrap();
    tokio::spawn(connection);
    let request = Request::post("/api/sql")
        .header(header::HOST, address.to_string())
        .header(header::AUTHORIZATION, format!("Bearer {token}"))
        .header(header::ACCEPT, accept)
        .body(http_body_util::Full::new(Bytes::from(sql.to_string())))
        .unwrap();
    let response = sender.send_request(request).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    // Streamed, not buffered whole: no length is known in advance.
    assert!(response.headers().get(header::CONTENT_LENGTH).is_none());
    response.into_body().collect().await.unwrap().to_bytes()
}

#[tokio::test]
async fn repeated_queries_are_answered_from_memory_until_a_table_changes() {
    let dir = tempfile::tempdir().unwrap();
    copy_dir(province_warehouse(), dir.path());
    let app = app_with(
        dir.path(),
        AggregateAccess::Public,
        config(dir.path(), |_| {}),
    )
    .await;
    let kept = || {
        app.observatory
            .snapshot()
            .engine
            .result_cache()
            .expect("serve keeps results by default")
            .len()
    };
    let rows = |reply: &crate::server::Reply| reply.json()["rows"].clone();
    let by_desk = |id: &str| {
        format!(
            r#"{{"sql": "SELECT count(*) AS n FROM desks WHERE desk_id <> $id", "params": {{"id": "{id}"}}}}"#
        )
    };
    let json = [(header::CONTENT_TYPE, "application/json")];

    let first = sql(&app, &by_desk("none"), &json).await;
    assert_eq!(first.status, StatusCode::OK, "{}", first.text());
    assert_eq!(kept(), 1);
    let again = sql(&app, &by_desk("none"), &json).await;
    assert_eq!(rows(&again), rows(&first));
    assert_eq!(kept(), 1, "the same plan is kept once");
    // Other parameter values are another plan.
    sql(&app, &by_desk("D00001"), &json).await;
    assert_eq!(kept(), 2);
    // Results that may differ from one run to the next are never kept.
    for volatile in [
        "SELECT random() AS r",
        "SELECT now() AS t",
        "SELECT current_date AS d",
    ] {
        assert_eq!(sql(&app, volatile, &[]).await.status, StatusCode::OK);
    }
    assert_eq!(kept(), 2);
    // Nor are failures.
    assert_eq!(
        sql(&app, "SELECT 1 / 0 AS boom", &[]).await.status,
        StatusCode::BAD_REQUEST
    );
    assert_eq!(kept(), 2);

    // A new version of the table: a new snapshot, nothing kept, new rows.
    let before = rows(&first)[0]["n"].as_i64().unwrap();
    let warehouse = Warehouse::open(dir.path(), dictionary()).await.unwrap();
    warehouse
        .write("desks", vec![desks(&["D99999"])], WriteMode::Append)
        .await
        .unwrap();
    assert!(app.observatory.refresh().await.unwrap());
    assert_eq!(kept(), 0);
    let after = sql(&app, &by_desk("none"), &json).await;
    assert_eq!(rows(&after)[0]["n"].as_i64().unwrap(), before + 1);
}

#[tokio::test]
async fn a_zero_result_cache_keeps_nothing() {
    let root = province_warehouse();
    let app = app_with(
        root,
        AggregateAccess::Public,
        config(root, |o| o.result_cache = Some("0".into())),
    )
    .await;
    assert_eq!(
        sql(&app, "SELECT 1 AS one", &[]).await.status,
        StatusCode::OK
    );
    assert!(app.observatory.snapshot().engine.result_cache().is_none());
}
