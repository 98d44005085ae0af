//! The SQL gate: refusals, limits, the row cap, a join checked against the
//! Parquet files, and the output encoders.

use std::collections::HashMap;
use std::time::Duration;

use arrow::array::{Array, Int32Array, Int64Array, StringArray};
use arrow::record_batch::RecordBatch;
use futures::StreamExt;
use osservatorio::catalog::Warehouse;
use osservatorio::query::{
    write_batches, Engine, OutputFormat, QueryEngine, QueryError, QueryLimits,
};

use crate::support::{column, dictionary, engine, province_warehouse, read_table};

#[tokio::test]
async fn the_gate_refuses_anything_but_reading() {
    let engine = engine(province_warehouse()).await;
    let scratch = tempfile::tempdir().unwrap();
    let copy_target = scratch.path().join("leak.csv");
    let refused = [
        "CREATE EXTERNAL TABLE secrets (line VARCHAR) STORED AS CSV LOCATION '/etc/passwd'"
            .to_string(),
        format!(
            "COPY (SELECT * FROM workers) TO '{}' STORED AS CSV",
            copy_target.display()
        ),
        format!("COPY workers TO '{}'", copy_target.display()),
        "INSERT INTO desks VALUES ('D99999', 'x', '019036', 'Cremona', 'family_desk', 'x', 2020)"
            .to_string(),
        "DROP TABLE workers".to_string(),
        "SET datafusion.execution.batch_size = 1".to_string(),
        "CREATE TABLE copy AS SELECT * FROM workers".to_string(),
        "CREATE VIEW v AS SELECT 1".to_string(),
        "DELETE FROM workers".to_string(),
        "EXPLAIN COPY workers TO '/tmp/x.csv'".to_string(),
    ];
    for sql in &refused {
        match engine.run(sql).await {
            Err(QueryError::NotReadOnly(_)) => {}
            other => panic!("`{sql}` was not refused: {other:?}"),
        }
    }
    assert!(!copy_target.exists(), "COPY wrote a file");
    let still_there = engine.run("SELECT count(*) FROM workers").await.unwrap();
    assert_eq!(
        still_there.num_rows(),
        1,
        "the tables are intact after the refusals"
    );
    assert!(matches!(
        engine.run("SELECT 1; DROP TABLE workers").await,
        Err(QueryError::Invalid(_))
    ));
}

#[tokio::test]
async fn the_memory_limit_fails_an_oversized_query_cleanly() {
    let limits = QueryLimits {
        memory_bytes: 2 << 20,
        ..QueryLimits::default()
    };
    let engine = QueryEngine::empty(limits).unwrap();
    let sql = "SELECT count(*) FROM generate_series(1, 3000000) a JOIN generate_series(1, 3000000) b ON a.value = b.value";
    match engine.run(sql).await {
        Err(QueryError::ResourcesExhausted { limit_mib, .. }) => assert_eq!(limit_mib, 2),
        other => panic!("expected resources exhausted, got {other:?}"),
    }
    let fine = engine
        .run("SELECT count(*) AS n FROM generate_series(1, 1000)")
        .await
        .unwrap();
    assert_eq!(
        fine.num_rows(),
        1,
        "the session still works after the failure"
    );
}

#[tokio::test]
async fn the_timeout_cancels_a_long_query() {
    let limits = QueryLimits {
        timeout: Duration::from_millis(300),
        ..QueryLimits::default()
    };
    let engine = QueryEngine::empty(limits).unwrap();
    let sql = "SELECT count(*) FROM generate_series(1, 100000000000) WHERE value % 7 = 3";
    match engine.run(sql).await {
        Err(QueryError::Timeout(limit)) => assert_eq!(limit, Duration::from_millis(300)),
        other => panic!("expected a timeout, got {other:?}"),
    }
}

#[tokio::test]
async fn a_query_waits_for_its_turn_and_takes_it_when_the_running_one_ends() {
    let warehouse = Warehouse::open(province_warehouse(), dictionary())
        .await
        .unwrap();
    let limit = Duration::from_secs(1);
    let limits = QueryLimits {
        concurrent_queries: 1,
        timeout: limit,
        max_rows: 3,
        ..QueryLimits::default()
    };
    let engine = QueryEngine::open(&warehouse, limits).await.unwrap();
    let contracts = || engine.plan("SELECT * FROM contracts");

    let mut running = engine
        .stream_plan(contracts().await.unwrap())
        .await
        .unwrap();
    match engine.run("SELECT count(*) FROM workers").await {
        Err(QueryError::Busy { running, timeout }) => assert_eq!((running, timeout), (1, limit)),
        other => panic!("expected the second query to find no turn, got {other:?}"),
    }
    // The first query's own time limit has passed by now: it ends with a
    // timeout and hands its turn on.
    assert!(matches!(
        running.next().await,
        Some(Err(QueryError::Timeout(_)))
    ));
    assert_eq!(engine.run("SELECT 1").await.unwrap().num_rows(), 1);

    // Cut at the row cap, a query ends and hands its turn on even though
    // its stream is still held.
    let mut capped = engine
        .stream_plan(contracts().await.unwrap())
        .await
        .unwrap();
    assert_eq!(capped.next().await.unwrap().unwrap().num_rows(), 3);
    assert!(capped.truncated());
    let second = engine.run("SELECT count(*) FROM workers").await.unwrap();
    assert_eq!(second.num_rows(), 1);

    // A session renewed for new table versions shares the turns, and a
    // dropped stream hands its turn on.
    let renewed = engine
        .reopen(&warehouse, &Engine::Local, &Default::default())
        .await
        .unwrap();
    let held = engine
        .stream_plan(contracts().await.unwrap())
        .await
        .unwrap();
    assert!(matches!(
        renewed.run("SELECT 1").await,
        Err(QueryError::Busy { .. })
    ));
    drop(held);
    assert_eq!(renewed.run("SELECT 1").await.unwrap().num_rows(), 1);
    drop(capped);
}

#[tokio::test]
async fn the_row_cap_cuts_and_marks_the_result() {
    let warehouse = Warehouse::open(province_warehouse(), dictionary())
        .await
        .unwrap();
    let limits = QueryLimits {
        max_rows: 5,
        ..QueryLimits::default()
    };
    let engine = QueryEngine::open(&warehouse, limits).await.unwrap();
    let result = engine.run("SELECT * FROM contracts").await.unwrap();
    assert_eq!(result.num_rows(), 5);
    assert!(result.truncated);
    let small = engine.run("SELECT * FROM desks LIMIT 3").await.unwrap();
    assert!(!small.truncated);
}

fn text<'a>(batch: &'a RecordBatch, name: &str) -> &'a StringArray {
    column::<StringArray>(batch, name)
}

#[tokio::test]
async fn a_join_matches_numbers_computed_from_the_files() {
    let sql = "SELECT w.citizenship_group, count(*) AS contracts, sum(c.weekly_hours) AS hours \
               FROM contracts c JOIN workers w USING (worker_id) \
               WHERE c.start_date >= DATE '2020-01-01' AND c.start_date < DATE '2021-01-01' \
               GROUP BY w.citizenship_group ORDER BY w.citizenship_group";
    let result = engine(province_warehouse()).await.run(sql).await.unwrap();

    let mut group_of: HashMap<String, String> = HashMap::new();
    for batch in read_table("workers", &["worker_id", "citizenship_group"]).await {
        let (ids, groups) = (text(&batch, "worker_id"), text(&batch, "citizenship_group"));
        for i in 0..batch.num_rows() {
            group_of.insert(ids.value(i).to_string(), groups.value(i).to_string());
        }
    }
    let (from, to) = (18_262, 18_628); // 2020-01-01 and 2021-01-01 as days since 1970
    let mut expected: HashMap<String, (i64, i64)> = HashMap::new();
    for batch in read_table("contracts", &["worker_id", "start_date", "weekly_hours"]).await {
        let ids = text(&batch, "worker_id");
        let starts = column::<arrow::array::Date32Array>(&batch, "start_date");
        let hours = column::<Int32Array>(&batch, "weekly_hours");
        for i in 0..batch.num_rows() {
            if (from..to).contains(&starts.value(i)) {
                let entry = expected.entry(group_of[ids.value(i)].clone()).or_default();
                entry.0 += 1;
                entry.1 += i64::from(hours.value(i));
            }
        }
    }
    let mut got: HashMap<String, (i64, i64)> = HashMap::new();
    for batch in &result.batches {
        let groups = batch
            .column(0)
            .as_any()
            .downcast_ref::<StringArray>()
            .map(|a| {
                (0..a.len())
                    .map(|i| a.value(i).to_string())
                    .collect::<Vec<_>>()
            })
            .or_else(|| {
                batch
                    .column(0)
                    .as_any()
                    .downcast_ref::<arrow::array::StringViewArray>()
                    .map(|a| (0..a.len()).map(|i| a.value(i).to_string()).collect())
            })
            .unwrap();
        let counts = batch
            .column(1)
            .as_any()
            .downcast_ref::<Int64Array>()
            .unwrap();
        let hours = batch
            .column(2)
            .as_any()
            .downcast_ref::<Int64Array>()
            .unwrap();
        for (i, group) in groups.into_iter().enumerate() {
            got.insert(group, (counts.value(i), hours.value(i)));
        }
    }
    assert_eq!(
        got.len(),
        3,
        "Italian, EU and non-EU workers all have contracts in 2020"
    );
    assert_eq!(got, expected);
}

#[tokio::test]
async fn results_encode_in_every_format() {
    let engine = engine(province_warehouse()).await;
    let result = engine
        .run("SELECT desk_id, opened_year FROM desks ORDER BY desk_id LIMIT 2")
        .await
        .unwrap();
    let encode = |format| {
        let mut bytes = Vec::new();
        write_batches(format, &result.schema, &result.batches, &mut bytes).unwrap();
        bytes
    };
    let csv = String::from_utf8(encode(OutputFormat::Csv)).unwrap();
    assert_eq!(csv, "desk_id,opened_year\nD00001,2012\nD00002,2000\n");
    let json: serde_json::Value = serde_json::from_slice(&encode(OutputFormat::Json)).unwrap();
    assert_eq!(
        json,
        serde_json::json!([{"desk_id": "D00001", "opened_year": 2012}, {"desk_id": "D00002", "opened_year": 2000}])
    );
    let parquet = bytes::Bytes::from(encode(OutputFormat::Parquet));
    let back: Vec<RecordBatch> =
        parquet::arrow::arrow_reader::ParquetRecordBatchReader::try_new(parquet, 1024)
            .unwrap()
            .map(Result::unwrap)
            .collect();
    assert_eq!(back.iter().map(RecordBatch::num_rows).sum::<usize>(), 2);
    let arrow_bytes = encode(OutputFormat::Arrow);
    let reader =
        arrow::ipc::reader::StreamReader::try_new(std::io::Cursor::new(arrow_bytes), None).unwrap();
    let back: Vec<RecordBatch> = reader.map(Result::unwrap).collect();
    assert_eq!(back, result.batches);
    let table = String::from_utf8(encode(OutputFormat::Table)).unwrap();
    assert!(table.contains("| D00001  | 2012        |"), "{table}");
    let empty = engine
        .run("SELECT desk_id FROM desks WHERE false")
        .await
        .unwrap();
    let mut bytes = Vec::new();
    write_batches(
        OutputFormat::Json,
        &empty.schema,
        &empty.batches,
        &mut bytes,
    )
    .unwrap();
    assert_eq!(String::from_utf8(bytes).unwrap().trim(), "[]");
}

/// The plan text of `EXPLAIN ANALYZE sql`, run through the gate.
async fn analyzed_plan(sql: &str) -> String {
    let batches = crate::support::query(&format!("EXPLAIN ANALYZE {sql}")).await;
    arrow::util::pretty::pretty_format_batches(&batches)
        .expect("format")
        .to_string()
}

/// A join that builds on one year's substitutions filters the contracts it
/// probes in their scan; a join on the whole `territories` table, which
/// every contract's code matches, gets no filter at all. Both count what the
/// same question without a join counts.
#[tokio::test]
async fn only_a_selective_join_filters_the_scan_it_probes() {
    let selective = "SELECT count(*) AS n FROM substitutions s \
         JOIN contracts c ON c.contract_id = s.contract_id WHERE s.year = 2024";
    let plan = analyzed_plan(selective).await;
    assert!(
        plan.contains("DynamicFilter [ contract_id@"),
        "the contracts scan is filtered by the substitutions' contracts:\n{plan}"
    );
    assert!(
        !plan.contains("DynamicFilter [ empty ]"),
        "the filter was computed:\n{plan}"
    );
    let substitutions =
        crate::support::scalar_i64("SELECT count(*) FROM substitutions WHERE year = 2024").await;
    assert!(substitutions > 0, "the fixture has substitutions in 2024");
    assert_eq!(crate::support::scalar_i64(selective).await, substitutions);

    let unselective =
        "SELECT count(*) AS n FROM contracts c JOIN territories t ON t.istat_code = c.istat_code";
    let plan = analyzed_plan(unselective).await;
    assert!(
        !plan.contains("DynamicFilter"),
        "no filter where every row matches:\n{plan}"
    );
    assert_eq!(
        crate::support::scalar_i64(unselective).await,
        crate::support::scalar_i64("SELECT count(*) FROM contracts").await
    );
}
