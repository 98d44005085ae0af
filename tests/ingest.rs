//! Ingest as an operator meets it: good exports in every format load the
//! same rows; each kind of bad file is reported at its line, column and rule
//! and leaves the warehouse as it was; pseudonyms are stable and keyed;
//! commits are atomic, recorded and not repeated; erasure works.

use std::path::PathBuf;

use indicatif::ProgressBar;
use osservatorio::catalog::Warehouse;
use osservatorio::ingest::{
    ingest, IngestError, IngestMode, IngestOptions, IngestReport, Outcome, Pseudonymizer, Rule,
};
use osservatorio::query::{QueryEngine, QueryLimits};

use crate::support::{block_on, copy_dir, dictionary, province_warehouse};

pub(crate) const KEY: &[u8] = b"test-key-0123456789abcdef";
pub(crate) const WORKERS: [&str; 4] = [
    "SNTMRA80A41Z129B",
    "KVLOLN75M52Z138Z",
    "RSSGPP90C15D150H",
    "DLCNNA85T60Z600M",
];

pub(crate) fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/ingest")
        .join(name)
}

fn options() -> IngestOptions {
    IngestOptions {
        mode: IngestMode::Append,
        dry_run: false,
        quarantine: false,
        force: false,
        encoding: None,
    }
}

fn pseudonymizer() -> Pseudonymizer {
    Pseudonymizer::new(KEY).unwrap()
}

/// A private copy of the shared province warehouse.
pub(crate) fn scratch() -> (tempfile::TempDir, Warehouse) {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("warehouse");
    copy_dir(province_warehouse(), &root);
    let warehouse = block_on(async move { Warehouse::open(&root, dictionary()).await.unwrap() });
    (dir, warehouse)
}

async fn load(
    warehouse: &Warehouse,
    dataset: &str,
    files: &[&str],
    options: &IngestOptions,
) -> Result<IngestReport, IngestError> {
    let paths: Vec<PathBuf> = files.iter().map(|f| fixture(f)).collect();
    ingest(
        warehouse,
        dataset,
        &paths,
        options,
        &pseudonymizer(),
        &ProgressBar::hidden(),
    )
    .await
}

async fn rows(warehouse: &Warehouse, sql: &str) -> Vec<String> {
    let engine = QueryEngine::open(warehouse, QueryLimits::default())
        .await
        .unwrap();
    let result = engine.run(sql).await.unwrap();
    arrow::util::pretty::pretty_format_batches(&result.batches)
        .unwrap()
        .to_string()
        .lines()
        .map(str::to_string)
        .collect()
}

pub(crate) fn version(warehouse: &Warehouse, dataset: &str) -> Option<u64> {
    let warehouse = warehouse.clone();
    block_on(async move { warehouse.versions().await.unwrap() })[dataset]
}

fn ingested_workers(pseudonyms: &Pseudonymizer) -> String {
    WORKERS
        .iter()
        .map(|cf| format!("'{}'", pseudonyms.pseudonym(cf)))
        .collect::<Vec<_>>()
        .join(", ")
}

#[tokio::test]
async fn every_format_loads_the_same_rows() {
    let query = format!(
        "SELECT * FROM workers WHERE worker_id IN ({}) ORDER BY worker_id",
        ingested_workers(&pseudonymizer())
    );
    let mut seen: Vec<Vec<String>> = Vec::new();
    for file in ["workers_it.csv", "workers_en.csv", "workers.xlsx"] {
        let (_dir, warehouse) = scratch();
        let before = version(&warehouse, "workers").unwrap();
        let report = load(&warehouse, "workers", &[file], &options())
            .await
            .unwrap();
        assert!(report.problems.is_empty(), "{file}: {:?}", report.problems);
        assert_eq!(
            report.outcome,
            Outcome::Committed {
                version: before + 1
            },
            "{file}"
        );
        assert_eq!(report.rows_valid, 4);
        let table = rows(&warehouse, &query).await;
        seen.push(table);
    }
    assert_eq!(seen[0], seen[1], "Italian CSV and English CSV");
    assert_eq!(seen[0], seen[2], "CSV and XLSX");
    let text = seen[0].join("\n");
    // Accents survive Windows-1252, quoted separators and line breaks survive.
    assert!(text.contains("più lingue"), "{text}");
    assert!(text.contains("cura dell'igiene, cucina"), "{text}");
    // The year partition comes from the registration date.
    assert!(
        text.contains("| 2023 |") || text.contains(" 2023 "),
        "{text}"
    );
    // No raw identifier reached the warehouse.
    for cf in WORKERS {
        assert!(!text.contains(cf));
    }
}

/// The expected report of one bad file: (line, column, rule).
async fn assert_rejected(dataset: &str, file: &str, expected: &[(u64, Option<&str>, Rule)]) {
    let (_dir, warehouse) = scratch();
    let before = warehouse.versions().await.unwrap();
    let report = load(&warehouse, dataset, &[file], &options())
        .await
        .unwrap();
    assert_eq!(report.outcome, Outcome::Rejected, "{file}");
    let found: Vec<(u64, Option<&str>, Rule)> = report
        .problems
        .iter()
        .map(|p| (p.line, p.column.as_deref(), p.rule))
        .collect();
    for wanted in expected {
        assert!(
            found.contains(wanted),
            "{file}: expected {wanted:?} in {found:?}"
        );
    }
    assert!(report.problems.iter().all(|p| p.file == file));
    assert_eq!(
        warehouse.versions().await.unwrap(),
        before,
        "{file}: the warehouse changed"
    );
}

#[tokio::test]
async fn each_bad_file_is_reported_at_its_line_and_column() {
    // (dataset, file, expected problems as (line, column, rule)).
    let corpus: [(&str, &str, &[(u64, Option<&str>, Rule)]); 10] = [
        (
            "workers",
            "bad_separator.csv",
            &[(3, None, Rule::FieldCount)],
        ),
        ("workers", "bad_quoting.csv", &[(3, None, Rule::FieldCount)]),
        (
            "workers",
            "bad_date.csv",
            &[(2, Some("registered_on"), Rule::Type)],
        ),
        (
            "workers",
            "unknown_municipality.csv",
            &[(3, Some("istat_code"), Rule::UnknownMunicipality)],
        ),
        (
            "workers",
            "bad_codice_fiscale.csv",
            &[(2, Some("worker_id"), Rule::CodiceFiscale)],
        ),
        (
            "workers",
            "duplicate_key.csv",
            &[(5, Some("worker_id"), Rule::DuplicateKey)],
        ),
        (
            "workers",
            "missing_column.csv",
            &[
                (1, Some("Sess"), Rule::UnknownColumn),
                (1, Some("sex"), Rule::MissingColumn),
            ],
        ),
        ("workers", "header_only.csv", &[(2, None, Rule::NoRows)]),
        (
            "contracts",
            "dangling_worker.csv",
            &[(2, Some("worker_id"), Rule::ForeignKey)],
        ),
        (
            "workers",
            "huge_field.csv",
            &[(3, None, Rule::FieldTooLong)],
        ),
    ];
    for (dataset, file, expected) in corpus {
        assert_rejected(dataset, file, expected).await;
    }
}

#[tokio::test]
async fn unusable_files_are_errors_that_name_file_and_line() {
    let (_dir, warehouse) = scratch();
    let before = warehouse.versions().await.unwrap();
    let encoding = load(&warehouse, "workers", &["bad_encoding.csv"], &options())
        .await
        .unwrap_err();
    assert!(
        matches!(encoding, IngestError::Encoding { line: 3, .. }),
        "{encoding}"
    );
    assert!(
        encoding.to_string().contains("bad_encoding.csv:3:"),
        "{encoding}"
    );
    let empty = load(&warehouse, "workers", &["empty.csv"], &options())
        .await
        .unwrap_err();
    assert!(matches!(empty, IngestError::Empty { .. }), "{empty}");
    assert!(empty.to_string().contains("empty.csv"));
    let reference = load(&warehouse, "territories", &["workers_en.csv"], &options())
        .await
        .unwrap_err();
    assert!(matches!(reference, IngestError::NotIngestible(_)));
    assert_eq!(warehouse.versions().await.unwrap(), before);
}

#[tokio::test]
async fn reports_mask_personal_values() {
    let (_dir, warehouse) = scratch();
    let report = load(
        &warehouse,
        "workers",
        &["bad_codice_fiscale.csv"],
        &options(),
    )
    .await
    .unwrap();
    let problem = report
        .problems
        .iter()
        .find(|p| p.rule == Rule::CodiceFiscale)
        .unwrap();
    let shown = problem.value.as_deref().unwrap();
    assert!(shown.starts_with("SN") && shown.contains("****"), "{shown}");
    let json = serde_json::to_string(&report).unwrap();
    let mut text = Vec::new();
    report.write_text(&mut text).unwrap();
    for cf in WORKERS {
        assert!(!json.contains(cf) && !String::from_utf8_lossy(&text).contains(cf));
    }
    assert!(
        !json.contains("SNTMRA80A41Z129"),
        "the wrong code is masked too"
    );
}

#[tokio::test]
async fn pseudonyms_link_files_and_datasets_and_erasure_removes_a_person() {
    let (_dir, warehouse) = scratch();
    // Contracts refer to workers and households by codice fiscale: before
    // those are ingested the references dangle.
    let early = load(&warehouse, "contracts", &["contracts_it.csv"], &options())
        .await
        .unwrap();
    assert_eq!(early.outcome, Outcome::Rejected);
    assert!(early.problems.iter().any(|p| p.line == 2
        && p.column.as_deref() == Some("worker_id")
        && p.rule == Rule::ForeignKey));
    load(&warehouse, "workers", &["workers_it.csv"], &options())
        .await
        .unwrap();
    load(&warehouse, "households", &["households_it.csv"], &options())
        .await
        .unwrap();
    let report = load(&warehouse, "contracts", &["contracts_it.csv"], &options())
        .await
        .unwrap();
    assert!(report.problems.is_empty(), "{:?}", report.problems);
    let pseudonym = pseudonymizer().pseudonym(WORKERS[0]);
    let contract = rows(
        &warehouse,
        &format!(
            "SELECT gross_pay_eur, live_in, year FROM contracts WHERE worker_id = '{pseudonym}'"
        ),
    )
    .await;
    assert!(
        contract[3].contains("1234.5")
            && contract[3].contains("true")
            && contract[3].contains("2024"),
        "{contract:#?}"
    );

    // A contract for a worker nobody ingested is a dangling reference.
    let dangling = load(
        &warehouse,
        "contracts",
        &["dangling_worker.csv"],
        &options(),
    )
    .await
    .unwrap();
    let problems: Vec<_> = dangling
        .problems
        .iter()
        .map(|p| (p.line, p.column.as_deref(), p.rule))
        .collect();
    assert_eq!(problems, vec![(2, Some("worker_id"), Rule::ForeignKey)]);
    assert!(
        dangling.problems[0]
            .value
            .as_deref()
            .unwrap()
            .starts_with('P'),
        "shown as a pseudonym"
    );

    // Another key gives other pseudonyms.
    let other = Pseudonymizer::new(b"another key of 16+ bytes").unwrap();
    assert_ne!(other.pseudonym(WORKERS[0]), pseudonym);

    let erased = osservatorio::ingest::erase(&warehouse, &pseudonym)
        .await
        .unwrap();
    let mut datasets: Vec<&str> = erased.iter().map(|e| e.dataset.as_str()).collect();
    datasets.sort();
    assert_eq!(datasets, vec!["contracts", "workers"]);
    let left = rows(
        &warehouse,
        &format!("SELECT count(*) AS n FROM workers WHERE worker_id = '{pseudonym}'"),
    )
    .await;
    assert!(left[3].contains(" 0 "), "{left:#?}");
    let history = warehouse.history("workers").await.unwrap();
    assert_eq!(history[0].metadata["operation"], "erase");
    assert_eq!(history[0].metadata["person"], pseudonym.as_str());
}

#[tokio::test]
async fn a_file_is_ingested_once_and_recorded_in_the_history() {
    let (_dir, warehouse) = scratch();
    let first = load(&warehouse, "workers", &["workers_en.csv"], &options())
        .await
        .unwrap();
    let Outcome::Committed { version } = first.outcome else {
        panic!("{first:?}")
    };
    let again = load(&warehouse, "workers", &["workers_en.csv"], &options())
        .await
        .unwrap_err();
    assert!(
        matches!(again, IngestError::AlreadyIngested { version: v, .. } if v == version),
        "{again}"
    );
    assert!(again.to_string().contains("--force"));
    // Forced, the same rows are duplicates of themselves.
    let forced = load(
        &warehouse,
        "workers",
        &["workers_en.csv"],
        &IngestOptions {
            force: true,
            ..options()
        },
    )
    .await
    .unwrap();
    assert_eq!(forced.outcome, Outcome::Rejected);
    assert!(forced.problems.iter().all(|p| p.rule == Rule::DuplicateKey));

    let history = warehouse.history("workers").await.unwrap();
    let commit = &history[0];
    assert_eq!(commit.version, version);
    assert_eq!(commit.metadata["operation"], "ingest");
    assert_eq!(commit.metadata["rows_committed"], 4);
    let file = &commit.metadata["files"][0];
    assert_eq!(file["name"], "workers_en.csv");
    assert_eq!(file["sha256"], first.files[0].sha256.as_str());
    assert_eq!(history.last().unwrap().version, 0);

    // Replacing a year swaps that year's rows only.
    let replaced = load(
        &warehouse,
        "workers",
        &["workers_it.csv"],
        &IngestOptions {
            mode: IngestMode::ReplaceYear,
            ..options()
        },
    )
    .await
    .unwrap();
    assert!(
        matches!(replaced.outcome, Outcome::Committed { .. }),
        "{:?}",
        replaced.problems
    );
    let years = rows(
        &warehouse,
        "SELECT count(*) AS n FROM workers WHERE year = 2022",
    )
    .await;
    assert!(!years[3].contains(" 0 "), "other years stay: {years:#?}");
}
