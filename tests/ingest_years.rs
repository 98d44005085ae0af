//! Rows kept apart by year from the file to the table: an export of several
//! years is one commit of files that each hold one year, and a key repeated
//! in two years is reported on its later line whatever the years' order.

use std::path::{Path, PathBuf};

use indicatif::ProgressBar;
use osservatorio::catalog::Warehouse;
use osservatorio::ingest::{ingest, IngestMode, IngestOptions, Outcome, Pseudonymizer, Rule};
use osservatorio::query::{QueryEngine, QueryLimits};

use crate::ingest::{scratch, version, KEY, WORKERS};

const HEADER: &str = "worker_id,registered_on,in_registry,istat_code,sex,birth_year,citizenship,\
citizenship_group,origin_area,job_type,italian_level,training_hours,certified,experience_years,\
live_in_available,hours_available,skills,status";

/// A valid export of `workers` with one row per (codice fiscale, date).
fn export(dir: &Path, name: &str, rows: &[(&str, &str)]) -> PathBuf {
    let mut text = format!("{HEADER}\n");
    for (tax_code, registered_on) in rows {
        text.push_str(&format!(
            "{tax_code},{registered_on},true,019036,F,1980,PE,NON_EU,south_america,carer,B1,\
             120,true,10,true,54,mobility,employed\n"
        ));
    }
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path
}

fn options(quarantine: bool) -> IngestOptions {
    IngestOptions {
        mode: IngestMode::Append,
        dry_run: false,
        quarantine,
        force: false,
        encoding: None,
    }
}

async fn load(
    warehouse: &Warehouse,
    file: PathBuf,
    quarantine: bool,
) -> osservatorio::ingest::IngestReport {
    ingest(
        warehouse,
        "workers",
        &[file],
        &options(quarantine),
        &Pseudonymizer::new(KEY).unwrap(),
        &ProgressBar::hidden(),
    )
    .await
    .unwrap()
}

/// `(year, registered_on)` of the rows of the four test workers, sorted.
async fn ingested(warehouse: &Warehouse) -> Vec<(i32, String)> {
    let pseudonyms = Pseudonymizer::new(KEY).unwrap();
    let list: Vec<String> = WORKERS
        .iter()
        .map(|cf| format!("'{}'", pseudonyms.pseudonym(cf)))
        .collect();
    let engine = QueryEngine::open(warehouse, QueryLimits::default())
        .await
        .unwrap();
    let sql = format!(
        "SELECT year, CAST(registered_on AS VARCHAR) AS day FROM workers \
         WHERE worker_id IN ({}) ORDER BY year, day",
        list.join(", ")
    );
    let result = engine.run(&sql).await.unwrap();
    let mut rows = Vec::new();
    for batch in &result.batches {
        let years = arrow::array::cast::AsArray::as_primitive::<arrow::datatypes::Int32Type>(
            batch.column(0).as_ref(),
        );
        let days =
            arrow::compute::cast(batch.column(1), &arrow::datatypes::DataType::Utf8).unwrap();
        let days = arrow::array::cast::AsArray::as_string::<i32>(days.as_ref());
        for row in 0..batch.num_rows() {
            rows.push((years.value(row), days.value(row).to_string()));
        }
    }
    rows
}

#[tokio::test]
async fn an_export_of_several_years_is_one_commit_of_files_of_one_year_each() {
    let (dir, warehouse) = scratch();
    let before = version(&warehouse, "workers").unwrap();
    let file = export(
        dir.path(),
        "several_years.csv",
        &[
            (WORKERS[0], "2019-05-01"),
            (WORKERS[1], "2024-02-02"),
            (WORKERS[2], "2021-07-07"),
            (WORKERS[3], "2019-12-12"),
        ],
    );
    let report = load(&warehouse, file, false).await;
    assert_eq!(
        report.outcome,
        Outcome::Committed {
            version: before + 1
        },
        "{:?}",
        report.problems
    );
    assert_eq!(
        ingested(&warehouse).await,
        [
            (2019, "2019-05-01".to_string()),
            (2019, "2019-12-12".to_string()),
            (2021, "2021-07-07".to_string()),
            (2024, "2024-02-02".to_string()),
        ]
    );

    // The commit adds files that each sit in, and hold, one year, with the
    // statistics readers use to skip them.
    let log = dir
        .path()
        .join("warehouse/workers/_delta_log")
        .join(format!("{:020}.json", before + 1));
    let mut rows_by_year = std::collections::BTreeMap::new();
    for line in std::fs::read_to_string(log).unwrap().lines() {
        let action: serde_json::Value = serde_json::from_str(line).unwrap();
        if let Some(commit) = action.get("commitInfo") {
            assert_eq!(commit["operation"], "WRITE");
            assert_eq!(commit["osservatorio.rows_committed"], 4);
        }
        let Some(add) = action.get("add") else {
            continue;
        };
        let year = add["partitionValues"]["year"].as_str().unwrap().to_string();
        assert!(
            add["path"]
                .as_str()
                .unwrap()
                .starts_with(&format!("year={year}/")),
            "{add}"
        );
        let stats: serde_json::Value =
            serde_json::from_str(add["stats"].as_str().unwrap()).unwrap();
        let day = stats["minValues"]["registered_on"].as_str().unwrap();
        assert!(day.starts_with(&year), "{year}: {stats}");
        *rows_by_year.entry(year).or_insert(0) += stats["numRecords"].as_u64().unwrap();
    }
    assert_eq!(
        rows_by_year.into_iter().collect::<Vec<_>>(),
        [
            ("2019".to_string(), 2),
            ("2021".to_string(), 1),
            ("2024".to_string(), 1)
        ]
    );
}

#[tokio::test]
async fn a_key_repeated_in_an_earlier_year_is_reported_on_its_later_line() {
    let (dir, warehouse) = scratch();
    let file = export(
        dir.path(),
        "repeated_keys.csv",
        &[
            (WORKERS[0], "2024-03-05"),
            (WORKERS[1], "2021-01-01"),
            (WORKERS[0], "2019-06-06"),
            (WORKERS[2], "2019-01-01"),
            (WORKERS[2], "2024-01-01"),
            // A third time, in a year between the other two.
            (WORKERS[0], "2021-07-07"),
        ],
    );
    let report = load(&warehouse, file, true).await;
    let repeats: Vec<(u64, &str)> = report
        .problems
        .iter()
        .map(|p| {
            assert_eq!(p.rule, Rule::DuplicateKey, "{p:?}");
            (p.line, p.message.as_str())
        })
        .collect();
    assert_eq!(
        repeats,
        [
            (4, "the same key as repeated_keys.csv:2"),
            (6, "the same key as repeated_keys.csv:5"),
            (7, "the same key as repeated_keys.csv:2"),
        ]
    );
    assert!(
        matches!(report.outcome, Outcome::Quarantined { .. }),
        "{report:?}"
    );
    // The earlier line of each key is the one kept.
    assert_eq!(
        ingested(&warehouse).await,
        [
            (2019, "2019-01-01".to_string()),
            (2021, "2021-01-01".to_string()),
            (2024, "2024-03-05".to_string()),
        ]
    );
}
