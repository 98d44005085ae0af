//! The warehouse: atomic versioned writes, time travel, failed and
//! interrupted writes, and refusing directories that are not ours.

use std::sync::Arc;

use arrow::array::StringArray;
use arrow::datatypes::{DataType, Field, Schema};
use arrow::record_batch::RecordBatch;
use osservatorio::catalog::{load_reference_table, CatalogError, Warehouse, WriteMode};
use osservatorio::query::{QueryEngine, QueryLimits};

use crate::support::{desks, dictionary};

async fn count(warehouse: &Warehouse, table: &str) -> i64 {
    let engine = QueryEngine::open(warehouse, QueryLimits::default())
        .await
        .unwrap();
    count_in(&engine, table).await
}

async fn count_in(engine: &QueryEngine, table: &str) -> i64 {
    let result = engine
        .run(&format!("SELECT count(*) FROM {table}"))
        .await
        .unwrap();
    result.batches[0]
        .column(0)
        .as_any()
        .downcast_ref::<arrow::array::Int64Array>()
        .unwrap()
        .value(0)
}

#[tokio::test]
async fn each_write_is_a_new_version_and_old_versions_stay_readable() {
    let dir = tempfile::tempdir().unwrap();
    let warehouse = Warehouse::create(dir.path(), dictionary()).await.unwrap();
    assert!(warehouse.is_empty().await.unwrap());
    assert_eq!(
        warehouse
            .write(
                "desks",
                vec![desks(&["D00001", "D00002"])],
                WriteMode::Replace
            )
            .await
            .unwrap(),
        0
    );
    assert_eq!(
        warehouse
            .write("desks", vec![desks(&["D00003"])], WriteMode::Append)
            .await
            .unwrap(),
        1
    );
    assert_eq!(count(&warehouse, "desks").await, 3);
    assert_eq!(
        warehouse
            .write("desks", vec![desks(&["D00009"])], WriteMode::Replace)
            .await
            .unwrap(),
        2
    );
    assert_eq!(count(&warehouse, "desks").await, 1);
    let status = warehouse.status().await.unwrap();
    let desks_status = status.iter().find(|s| s.name == "desks").unwrap();
    assert_eq!((desks_status.version, desks_status.rows), (Some(2), 1));
    assert!(desks_status.bytes > 0 && desks_status.files == 1);
    let never_written = status.iter().find(|s| s.name == "contracts").unwrap();
    assert_eq!((never_written.version, never_written.rows), (None, 0));

    let mut table = warehouse.table("desks").await.unwrap().unwrap();
    table.load_version(1).await.unwrap();
    let files: Vec<String> = table.get_file_uris().unwrap().collect();
    assert_eq!(files.len(), 2, "version 1 still has its two files");
}

/// A new warehouse in `dir` whose `desks` holds two rows, as version 0.
async fn with_two_desks(dir: &std::path::Path) -> Warehouse {
    let warehouse = Warehouse::create(dir, dictionary()).await.unwrap();
    warehouse
        .write(
            "desks",
            vec![desks(&["D00001", "D00002"])],
            WriteMode::Replace,
        )
        .await
        .unwrap();
    warehouse
}

#[tokio::test]
async fn a_session_opened_for_some_tables_has_those_and_no_others() {
    let dir = tempfile::tempdir().unwrap();
    let warehouse = with_two_desks(dir.path()).await;
    let engine =
        QueryEngine::open_only(&warehouse, QueryLimits::default(), &["desks", "contracts"])
            .await
            .unwrap();
    assert_eq!(count_in(&engine, "desks").await, 2);
    assert_eq!(
        count_in(&engine, "contracts").await,
        0,
        "registered though never written"
    );
    let unknown = engine
        .run("SELECT count(*) FROM workers")
        .await
        .unwrap_err();
    assert!(unknown.to_string().contains("workers"), "{unknown}");
    assert!(
        QueryEngine::open_only(&warehouse, QueryLimits::default(), &["no_such_dataset"])
            .await
            .is_err()
    );
}

#[tokio::test]
async fn a_failed_write_leaves_the_previous_version_intact() {
    let dir = tempfile::tempdir().unwrap();
    let warehouse = with_two_desks(dir.path()).await;

    let wrong = RecordBatch::try_new(
        Arc::new(Schema::new(vec![Field::new(
            "desk_id",
            DataType::Utf8,
            false,
        )])),
        vec![Arc::new(StringArray::from(vec!["D00003"]))],
    )
    .unwrap();
    let error = warehouse
        .write("desks", vec![desks(&["D00004"]), wrong], WriteMode::Replace)
        .await
        .unwrap_err();
    assert!(
        matches!(error, CatalogError::SchemaMismatch { .. }),
        "{error}"
    );
    assert!(
        error
            .to_string()
            .starts_with("cannot write `desks`: batch schema"),
        "{error}"
    );

    let table = warehouse.table("desks").await.unwrap().unwrap();
    assert_eq!(table.version(), Some(0));
    assert_eq!(count(&warehouse, "desks").await, 2);
}

#[tokio::test]
async fn an_interrupted_write_is_invisible() {
    let dir = tempfile::tempdir().unwrap();
    let warehouse = Warehouse::create(dir.path(), dictionary()).await.unwrap();
    let territories = load_reference_table(dictionary().require("territories").unwrap()).unwrap();
    warehouse
        .write("territories", vec![territories.clone()], WriteMode::Replace)
        .await
        .unwrap();

    // What a writer killed before its commit leaves behind: data files that no
    // log entry names, and a temporary commit file that was never renamed.
    let table_dir = dir.path().join("territories");
    let data_file = std::fs::read_dir(&table_dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.extension().is_some_and(|e| e == "parquet"))
        .unwrap();
    std::fs::copy(
        &data_file,
        table_dir.join("part-00000-orphan-c000.zstd.parquet"),
    )
    .unwrap();
    std::fs::write(
        table_dir.join("_delta_log").join("_commit_6f1c.json.tmp"),
        b"{\"add\":{\"path\":\"part-00000-or",
    )
    .unwrap();

    let table = warehouse.table("territories").await.unwrap().unwrap();
    assert_eq!(table.version(), Some(0));
    assert_eq!(
        count(&warehouse, "territories").await,
        territories.num_rows() as i64
    );
    assert_eq!(
        warehouse
            .write("territories", vec![territories], WriteMode::Replace)
            .await
            .unwrap(),
        1,
        "the next write still commits"
    );
}

#[tokio::test]
async fn a_foreign_or_missing_directory_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("thesis.docx"), b"not ours").unwrap();
    let error = Warehouse::create(dir.path(), dictionary())
        .await
        .unwrap_err();
    assert!(
        matches!(error, CatalogError::ForeignDataDir { .. }),
        "{error}"
    );
    assert!(Warehouse::open(dir.path(), dictionary()).await.is_err());
    assert_eq!(
        std::fs::read_dir(dir.path()).unwrap().count(),
        1,
        "nothing was written into it"
    );

    let missing = dir.path().join("nowhere");
    let error = Warehouse::open(&missing, dictionary()).await.unwrap_err();
    assert!(
        matches!(error, CatalogError::MissingDataDir { .. }),
        "{error}"
    );
    assert!(!missing.exists());
}

/// A one-column key is unique in every row: its values are written plain,
/// with no dictionary built only to be dropped; other text columns keep
/// theirs.
#[tokio::test]
async fn a_key_column_is_written_without_a_dictionary() {
    use parquet::basic::Encoding;
    let dir = tempfile::tempdir().unwrap();
    let warehouse = Warehouse::create(dir.path(), dictionary()).await.unwrap();
    warehouse
        .write(
            "desks",
            vec![desks(&["D00001", "D00002", "D00003"])],
            WriteMode::Replace,
        )
        .await
        .unwrap();
    let table = warehouse.table("desks").await.unwrap().unwrap();
    let uri = table.get_file_uris().unwrap().next().expect("one file");
    let file = std::fs::File::open(crate::support::local_file(&uri)).unwrap();
    let reader = parquet::file::reader::SerializedFileReader::new(file).unwrap();
    let row_group = parquet::file::reader::FileReader::metadata(&reader).row_group(0);
    let encodings = |column: &str| -> Vec<Encoding> {
        let chunk = row_group
            .columns()
            .iter()
            .find(|c| c.column_path().string() == column)
            .unwrap_or_else(|| panic!("no column {column}"));
        chunk.encodings().collect()
    };
    let dictionary_encoded = |e: &Vec<Encoding>| {
        e.contains(&Encoding::RLE_DICTIONARY) || e.contains(&Encoding::PLAIN_DICTIONARY)
    };
    assert!(
        !dictionary_encoded(&encodings("desk_id")),
        "{:?}",
        encodings("desk_id")
    );
    assert!(
        dictionary_encoded(&encodings("desk_kind")),
        "{:?}",
        encodings("desk_kind")
    );
}

/// The rows a filtered scan of `contracts` dropped while decoding (Parquet
/// filter pushdown), in a session with DataFusion's `pushdown` setting.
async fn rows_pruned_while_decoding(pushdown: bool) -> u64 {
    let warehouse = Warehouse::open(crate::support::province_warehouse(), dictionary())
        .await
        .unwrap();
    let config = datafusion::prelude::SessionConfig::new()
        .set_bool("datafusion.execution.parquet.pushdown_filters", pushdown);
    let ctx = datafusion::prelude::SessionContext::new_with_config(config);
    warehouse.register_all(&ctx).await.unwrap();
    let batches = ctx
        .sql("EXPLAIN ANALYZE SELECT count(*) FROM contracts WHERE weekly_hours > 30")
        .await
        .unwrap()
        .collect()
        .await
        .unwrap();
    let plan = arrow::util::pretty::pretty_format_batches(&batches)
        .unwrap()
        .to_string();
    let metric = regex::Regex::new(r"pushdown_rows_pruned=([0-9.]+) ?(K|M)?").unwrap();
    metric
        .captures_iter(&plan)
        .map(|found| {
            let number: f64 = found[1].parse().unwrap();
            let scale = match found.get(2).map(|unit| unit.as_str()) {
                Some("K") => 1e3,
                Some("M") => 1e6,
                _ => 1.0,
            };
            (number * scale) as u64
        })
        .sum()
}

#[tokio::test]
async fn delta_scans_filter_while_decoding_only_when_the_session_says_so() {
    assert_eq!(rows_pruned_while_decoding(false).await, 0);
    assert!(rows_pruned_while_decoding(true).await > 0);
}
