//! Shared fixtures: a province-scale warehouse generated once per test
//! process, and helpers to run SQL against it.

use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

use arrow::array::{Int32Array, StringArray};
use arrow::record_batch::RecordBatch;
use indicatif::ProgressBar;
use osservatorio::catalog::{Dictionary, Warehouse};
use osservatorio::generate::{generate, GenerateOptions, Scale};
use osservatorio::query::{QueryEngine, QueryLimits};

pub const SEED: u64 = 7;

/// A province-scale warehouse, generated once and shared read-only by tests.
pub fn province_warehouse() -> &'static Path {
    static DIR: OnceLock<(tempfile::TempDir, PathBuf)> = OnceLock::new();
    &DIR.get_or_init(|| {
        let dir = tempfile::tempdir().expect("temp dir");
        let root = dir.path().join("warehouse");
        // Built on a thread of its own: tests call this from inside their
        // own runtime, which cannot block on another.
        let target = root.clone();
        std::thread::spawn(move || {
            runtime().block_on(async {
                let warehouse = Warehouse::create(&target, dictionary())
                    .await
                    .expect("create warehouse");
                let options = GenerateOptions {
                    scale: Scale::Province,
                    seed: SEED,
                };
                generate(&warehouse, options, &ProgressBar::hidden())
                    .await
                    .expect("generate province");
            })
        })
        .join()
        .expect("fixture thread");
        (dir, root)
    })
    .1
}

pub fn dictionary() -> Arc<Dictionary> {
    Arc::new(Dictionary::load().expect("dictionary loads"))
}

/// Runs `future` on a runtime of its own, on a thread of its own, so that
/// synchronous tests and helpers can await library calls.
pub fn block_on<T: Send + 'static>(
    future: impl std::future::Future<Output = T> + Send + 'static,
) -> T {
    std::thread::spawn(move || runtime().block_on(future))
        .join()
        .expect("helper thread")
}

/// A runtime of our own, so fixtures can be built from any test.
pub fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime")
}

pub async fn engine(root: &Path) -> QueryEngine {
    let warehouse = Warehouse::open(root, dictionary())
        .await
        .expect("open warehouse");
    QueryEngine::open(&warehouse, QueryLimits::default())
        .await
        .expect("query engine")
}

/// Runs `sql` on the shared province warehouse.
pub async fn query(sql: &str) -> Vec<RecordBatch> {
    let result = engine(province_warehouse())
        .await
        .run(sql)
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"));
    assert!(!result.truncated);
    result.batches
}

/// The single integer of a one-row, one-column result.
pub async fn scalar_i64(sql: &str) -> i64 {
    let batches = query(sql).await;
    let column = arrow::compute::cast(batches[0].column(0), &arrow::datatypes::DataType::Int64)
        .expect("cast");
    column
        .as_any()
        .downcast_ref::<arrow::array::Int64Array>()
        .expect("int64")
        .value(0)
}

/// The single float of a one-row, one-column result.
pub async fn scalar_f64(sql: &str) -> f64 {
    let batches = query(sql).await;
    let column = arrow::compute::cast(batches[0].column(0), &arrow::datatypes::DataType::Float64)
        .expect("cast");
    column
        .as_any()
        .downcast_ref::<arrow::array::Float64Array>()
        .expect("float64")
        .value(0)
}

/// A data file of a local Delta table, whether the log names it by URL or path.
pub fn local_file(uri: &str) -> PathBuf {
    match url::Url::parse(uri) {
        Ok(url) => url.to_file_path().expect("a local file URL"),
        Err(_) => PathBuf::from(uri),
    }
}

/// Reads the current Parquet files of a table of the shared warehouse
/// directly, without the query engine, keeping only `columns`.
pub async fn read_table(name: &str, columns: &[&str]) -> Vec<RecordBatch> {
    let warehouse = Warehouse::open(province_warehouse(), dictionary())
        .await
        .unwrap();
    let table = warehouse.table(name).await.unwrap().unwrap();
    let mut batches = Vec::new();
    for uri in table.get_file_uris().unwrap() {
        let file = std::fs::File::open(local_file(&uri)).unwrap();
        let builder =
            parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(file).unwrap();
        let mask = parquet::arrow::ProjectionMask::columns(
            builder.parquet_schema(),
            columns.iter().copied(),
        );
        for batch in builder.with_projection(mask).build().unwrap() {
            batches.push(batch.unwrap());
        }
    }
    batches
}

/// A column of `batch` as its concrete Arrow array type.
pub fn column<'a, T: 'static>(batch: &'a RecordBatch, name: &str) -> &'a T {
    batch
        .column_by_name(name)
        .unwrap_or_else(|| panic!("no column `{name}`"))
        .as_any()
        .downcast_ref::<T>()
        .unwrap_or_else(|| panic!("column `{name}` has another type"))
}

/// Copies a directory tree, e.g. the shared warehouse for a test that writes.
pub fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}

/// Rows of `desks` with the given ids, in the dictionary's schema.
pub fn desks(ids: &[&str]) -> RecordBatch {
    let schema = dictionary().require("desks").unwrap().arrow_schema();
    let n = ids.len();
    RecordBatch::try_new(
        schema,
        vec![
            Arc::new(StringArray::from(ids.to_vec())),
            Arc::new(StringArray::from(vec!["Sportello"; n])),
            Arc::new(StringArray::from(vec!["019036"; n])),
            Arc::new(StringArray::from(vec!["Cremona"; n])),
            Arc::new(StringArray::from(vec!["family_desk"; n])),
            Arc::new(StringArray::from(vec!["Comune di Cremona"; n])),
            Arc::new(Int32Array::from(vec![2012; n])),
        ],
    )
    .unwrap()
}
