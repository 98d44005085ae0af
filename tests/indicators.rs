//! Indicators: every file of `queries/` loads, plans and runs; known answers
//! computed from the raw Parquet files; disclosure on real results; broken
//! files named with their line; SDMX-CSV.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::{Path, PathBuf};

use arrow::array::{Array, Date32Array, Float64Array, Int32Array, StringArray};
use arrow::record_batch::RecordBatch;
use osservatorio::disclosure::{recoverable_cells, Cell, CountTable};
use osservatorio::indicators::{
    write_indicator, IndicatorCatalog, IndicatorError, IndicatorFormat, IndicatorResult, Lang,
    ParameterValues, Theme,
};

use crate::support::{column, engine, province_warehouse, read_table};

pub fn queries_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("queries")
}

pub async fn catalog() -> (osservatorio::query::QueryEngine, IndicatorCatalog) {
    let engine = engine(province_warehouse()).await;
    let catalog = IndicatorCatalog::load(&queries_dir(), &engine, 5)
        .await
        .expect("every indicator loads");
    (engine, catalog)
}

pub fn params(pairs: &[(&str, &str)]) -> ParameterValues {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

#[tokio::test]
async fn every_indicator_plans_and_runs_on_generated_data() {
    let (engine, catalog) = catalog().await;
    assert!(
        catalog.indicators().len() >= 20,
        "the catalogue covers the seeds"
    );
    let ids: HashSet<&str> = catalog
        .indicators()
        .iter()
        .map(|i| i.spec.id.as_str())
        .collect();
    for required in [
        "staff_beneficiaries",
        "staff_hires",
        "staff_households_served",
        "staff_substitutions",
        "staff_subsidies",
        "staff_assistance_person_days",
        "staff_operators_trained",
        "registry_enrolments",
        "matching_rate",
        "contract_retention",
        "declared_share",
        "pay_vs_minimum",
        "weekly_hours",
        "age_pyramid",
        "top_citizenships",
        "assistants_per_1000_80plus",
        "unmet_demand",
        "desk_activity",
    ] {
        assert!(ids.contains(required), "missing indicator {required}");
    }
    for indicator in catalog.indicators() {
        let spec = &indicator.spec;
        let mut runs = vec![params(&[])];
        if spec.parameter("district").is_some() {
            runs.push(params(&[("district", "Crema")]));
        }
        if spec.parameter("year").is_some() {
            // Surveys have waves in 2022 and 2025 only.
            let other_year = if spec.theme == Theme::Survey {
                "2022"
            } else {
                "2019"
            };
            runs.push(params(&[("year", other_year)]));
        }
        for values in runs {
            let result = catalog
                .run(&engine, &spec.id, &values)
                .await
                .unwrap_or_else(|e| panic!("{}: {e}", spec.id));
            assert!(
                result.num_rows() > 0,
                "{} returns rows for {values:?}",
                spec.id
            );
            assert_eq!(
                result.batch.num_columns(),
                spec.dimensions.len() + spec.measures.len() + 1
            );
        }
    }
}

/// Every published table resists an exact linear attack on its suppressed
/// cells, and no published count is under the threshold.
#[tokio::test]
async fn published_results_do_not_reveal_suppressed_cells() {
    let (engine, catalog) = catalog().await;
    let mut suppressed_somewhere = 0;
    for indicator in catalog.indicators() {
        let spec = &indicator.spec;
        let result = catalog.run(&engine, &spec.id, &params(&[])).await.unwrap();
        let table = count_table(&result);
        let hidden: Vec<bool> = (0..result.num_rows())
            .map(|row| result.flags(row).contains('c'))
            .collect();
        for (row, cell) in table.cells.iter().enumerate() {
            if !hidden[row] {
                assert!(
                    cell.count == 0 || cell.count >= 5,
                    "{}: a count of {} is published",
                    spec.id,
                    cell.count
                );
            } else {
                suppressed_somewhere += 1;
                for measure in spec
                    .measures
                    .iter()
                    .filter(|m| !spec.disclosure.public.contains(m))
                {
                    assert_eq!(
                        result.measure(measure, row),
                        None,
                        "{}: suppressed {measure} is null, never zero",
                        spec.id
                    );
                }
            }
        }
        assert!(
            recoverable_cells(&table, &hidden).is_empty(),
            "{}: a suppressed cell can be recomputed",
            spec.id
        );
        assert_eq!(result.suppression.threshold, 5);
    }
    assert!(
        suppressed_somewhere > 0,
        "the province demo has small cells, so the check above is not vacuous"
    );
}

/// The published table as an attacker sees it, with the true counts (which
/// the attack needs only for the cells it may use: the published ones).
fn count_table(result: &IndicatorResult) -> CountTable {
    let spec = &result.spec;
    CountTable {
        dimensions: spec.dimensions.clone(),
        cells: (0..result.num_rows())
            .map(|row| Cell {
                coordinates: spec
                    .dimensions
                    .iter()
                    .map(|d| result.dimension(d, row).unwrap().to_string())
                    .collect(),
                count: result
                    .measure(&spec.disclosure.count, row)
                    .map_or(0, |v| v as i64),
            })
            .collect(),
    }
}

fn cell(result: &IndicatorResult, coordinates: &[(&str, &str)], measure: &str) -> Option<f64> {
    (0..result.num_rows())
        .find(|&row| {
            coordinates
                .iter()
                .all(|(d, v)| result.dimension(d, row) == Some(*v))
        })
        .and_then(|row| result.measure(measure, row))
}

fn strings<'a>(batch: &'a RecordBatch, name: &str) -> &'a StringArray {
    column::<StringArray>(batch, name)
}

fn dates<'a>(batch: &'a RecordBatch, name: &str) -> &'a Date32Array {
    column::<Date32Array>(batch, name)
}

fn year_of(days: i32) -> i32 {
    use chrono::Datelike;
    (chrono::NaiveDate::from_ymd_opt(1970, 1, 1).unwrap() + chrono::Duration::days(i64::from(days)))
        .year()
}

#[tokio::test]
async fn known_answers_from_the_raw_rows() {
    let (engine, catalog) = catalog().await;
    let year = 2023;
    let run = |id: &'static str| {
        let catalog = &catalog;
        let engine = &engine;
        async move {
            catalog
                .run(engine, id, &params(&[("year", "2023")]))
                .await
                .unwrap()
        }
    };

    // Substitutions started in the year.
    let substitutions = read_table("substitutions", &["start_date"]).await;
    let expected = substitutions
        .iter()
        .map(|b| {
            (0..b.num_rows())
                .filter(|&i| year_of(dates(b, "start_date").value(i)) == year)
                .count()
        })
        .sum::<usize>();
    let result = run("staff_substitutions").await;
    assert!(expected >= 5, "enough substitutions to publish");
    assert_eq!(result.measure("actual", 0), Some(expected as f64));
    assert_eq!(result.measure("target", 0), Some(75.0));

    // Subsidies granted in the year: how many and how much.
    let subsidies = read_table("subsidies", &["granted_on", "amount_eur"]).await;
    let (mut count, mut amount) = (0usize, 0.0f64);
    for b in &subsidies {
        let amounts = column::<Float64Array>(b, "amount_eur");
        for i in 0..b.num_rows() {
            if year_of(dates(b, "granted_on").value(i)) == year {
                count += 1;
                amount += amounts.value(i);
            }
        }
    }
    let result = run("staff_subsidies").await;
    assert_eq!(result.measure("actual", 0), Some(count as f64));
    assert!((result.measure("amount_eur", 0).unwrap() - amount).abs() < 1e-6);

    // Households with a family contact at a desk in the year.
    let contacts = read_table("desk_contacts", &["contact_date", "household_id"]).await;
    let mut households = HashSet::new();
    for b in &contacts {
        let ids = strings(b, "household_id");
        for i in 0..b.num_rows() {
            if ids.is_valid(i) && year_of(dates(b, "contact_date").value(i)) == year {
                households.insert(ids.value(i).to_string());
            }
        }
    }
    let result = run("staff_households_served").await;
    assert_eq!(result.measure("actual", 0), Some(households.len() as f64));

    // Contracts started in the year: declared share by type of work, and
    // the weekly-hours classes.
    let contracts = read_table(
        "contracts",
        &["start_date", "job_type", "declared", "weekly_hours"],
    )
    .await;
    let mut by_type: BTreeMap<String, (usize, usize)> = BTreeMap::new();
    let mut classes: HashMap<&str, usize> = HashMap::new();
    for b in &contracts {
        let types = strings(b, "job_type");
        let declared = column::<arrow::array::BooleanArray>(b, "declared");
        let hours = column::<Int32Array>(b, "weekly_hours");
        for i in 0..b.num_rows() {
            if year_of(dates(b, "start_date").value(i)) != year {
                continue;
            }
            let entry = by_type.entry(types.value(i).to_string()).or_default();
            entry.0 += 1;
            entry.1 += usize::from(declared.value(i));
            let class = match hours.value(i) {
                h if h < 10 => "<10",
                h if h < 25 => "10-24",
                h if h < 30 => "25-29",
                h if h < 40 => "30-39",
                _ => "40+",
            };
            *classes.entry(class).or_default() += 1;
        }
    }
    let result = run("declared_share").await;
    for (job_type, (contracts, declared)) in &by_type {
        assert_eq!(
            cell(&result, &[("job_type", job_type)], "contracts"),
            Some(*contracts as f64)
        );
        let share = cell(&result, &[("job_type", job_type)], "share_declared").unwrap();
        assert!(
            (share - *declared as f64 / *contracts as f64).abs() < 1e-3,
            "{job_type}: {share}"
        );
    }
    let result = run("weekly_hours").await;
    assert_eq!(
        cell(&result, &[("hours_class", "<10")], "contracts"),
        Some(classes["<10"] as f64)
    );
    assert_eq!(
        cell(&result, &[("hours_class", "25-29")], "contracts"),
        Some(classes["25-29"] as f64)
    );
    assert_eq!(
        cell(&result, &[("hours_class", "40+")], "contracts"),
        Some(classes["40+"] as f64)
    );
    let total: usize = classes.values().sum();
    assert_eq!(
        cell(&result, &[("hours_class", "_T")], "contracts"),
        Some(total as f64)
    );
}

#[tokio::test]
async fn filters_are_bound_as_parameters() {
    let (engine, catalog) = catalog().await;
    let all = catalog
        .run(&engine, "declared_share", &params(&[("year", "2022")]))
        .await
        .unwrap();
    let crema = catalog
        .run(
            &engine,
            "declared_share",
            &params(&[("year", "2022"), ("district", "Crema")]),
        )
        .await
        .unwrap();
    let total = |r: &IndicatorResult| cell(r, &[("job_type", "_T")], "contracts").unwrap();
    assert!(total(&crema) < total(&all) && total(&crema) > 0.0);
    let injection = catalog
        .run(
            &engine,
            "declared_share",
            &params(&[("year", "2022"), ("district", "Crema' OR '1'='1")]),
        )
        .await
        .unwrap();
    assert_eq!(
        cell(&injection, &[("job_type", "_T")], "contracts").unwrap_or(0.0),
        0.0,
        "a value is never SQL"
    );

    let error = catalog
        .run(&engine, "declared_share", &params(&[("year", "last")]))
        .await
        .unwrap_err();
    assert_eq!(
        error.to_string(),
        "indicator `declared_share`: `year` must be a whole number, not `last`"
    );
    let error = catalog
        .run(&engine, "context_elderly", &params(&[("year", "2024")]))
        .await
        .unwrap_err();
    assert!(
        error.to_string().contains("has no parameter `year`"),
        "{error}"
    );
    let error = catalog
        .run(&engine, "nosuch", &params(&[]))
        .await
        .unwrap_err();
    assert!(matches!(error, IndicatorError::Unknown { .. }));
}

#[tokio::test]
async fn a_broken_indicator_file_is_named_with_its_line() {
    let engine = engine(province_warehouse()).await;
    let dir = tempfile::tempdir().unwrap();
    let header = "-- id = \"broken\"\n-- theme = \"contracts\"\n-- title_it = \"x\"\n-- title_en = \"x\"\n-- description_it = \"x\"\n-- description_en = \"x\"\n-- unit = \"contracts\"\n-- dimensions = [\"job_type\"]\n-- measures = [\"n\"]\n-- chart = \"bar\"\n-- sources = [\"contracts\"]\n-- [disclosure]\n-- count = \"n\"\n";
    let path = dir.path().join("broken.sql");
    std::fs::write(&path, format!("{header}SELECT job_type,\n       count(*) AS n\nFROM contracts\nWHERE no_such_column = 1\nGROUP BY job_type\n")).unwrap();
    let error = IndicatorCatalog::load(dir.path(), &engine, 5)
        .await
        .unwrap_err()
        .to_string();
    assert!(
        error.starts_with(&format!("{}:", path.display())),
        "{error}"
    );
    assert!(error.contains("no_such_column"), "{error}");

    std::fs::write(&path, format!("{header}SELECT job_type, count(*) AS n FROM contracts GROUP BY job_type HAVING n > $threshold\n")).unwrap();
    let error = IndicatorCatalog::load(dir.path(), &engine, 5)
        .await
        .unwrap_err()
        .to_string();
    assert_eq!(
        error,
        format!(
            "{}:14: the SQL uses `$threshold`, which the header does not declare",
            path.display()
        )
    );

    std::fs::write(
        &path,
        header.replace("-- chart = \"bar\"\n", "-- chart = \"pie\"\n") + "SELECT 1 AS n\n",
    )
    .unwrap();
    let error = IndicatorCatalog::load(dir.path(), &engine, 5)
        .await
        .unwrap_err()
        .to_string();
    assert!(
        error.starts_with(&format!("{}:10:", path.display())),
        "{error}"
    );

    std::fs::write(&path, format!("{header}SELECT job_type FROM contracts\n")).unwrap();
    let error = IndicatorCatalog::load(dir.path(), &engine, 5)
        .await
        .unwrap_err()
        .to_string();
    assert!(error.contains("no column `n`"), "{error}");
}

#[tokio::test]
async fn sdmx_csv_carries_flags_and_dimensions() {
    let (engine, catalog) = catalog().await;
    let result = catalog
        .run(&engine, "workers_by_job_type", &params(&[("year", "2023")]))
        .await
        .unwrap();
    let mut bytes = Vec::new();
    write_indicator(&result, IndicatorFormat::SdmxCsv, Lang::It, &mut bytes).unwrap();
    let text = String::from_utf8(bytes).unwrap();
    let mut lines = text.lines();
    assert_eq!(
        lines.next().unwrap(),
        "DATAFLOW,JOB_TYPE,SEX,TIME_PERIOD,OBS_VALUE,OBS_STATUS,CONF_STATUS"
    );
    let first = lines.next().unwrap();
    assert!(
        first.starts_with("OSSERVATORIO:WORKERS_BY_JOB_TYPE(1.0),carer,F,2023,"),
        "{first}"
    );
    assert!(first.ends_with(",A,F"), "{first}");

    let suppressed = catalog
        .run(&engine, "desk_activity", &params(&[("year", "2023")]))
        .await
        .unwrap();
    let mut bytes = Vec::new();
    write_indicator(&suppressed, IndicatorFormat::SdmxCsv, Lang::It, &mut bytes).unwrap();
    let text = String::from_utf8(bytes).unwrap();
    assert!(
        text.lines()
            .next()
            .unwrap()
            .starts_with("DATAFLOW,SERVICE,TIME_PERIOD,MEASURE,OBS_VALUE"),
        "{text}"
    );
    assert!(
        text.lines().any(|l| l.ends_with(",,Q,C")),
        "a suppressed observation has no value and status Q"
    );

    let mut bytes = Vec::new();
    write_indicator(&result, IndicatorFormat::Json, Lang::En, &mut bytes).unwrap();
    let json: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
    assert_eq!(json["disclosure"]["threshold"], 5);
    assert_eq!(json["title"], "Domestic workers by type of work and sex");
}

#[tokio::test]
async fn a_year_not_over_is_flagged_provisional() {
    use chrono::Datelike;
    let (engine, catalog) = catalog().await;
    let this_year = chrono::Local::now().year().to_string();
    let current = catalog
        .run(
            &engine,
            "contracts_started_by_year",
            &params(&[("year", &this_year)]),
        )
        .await
        .unwrap();
    assert!(current.num_rows() > 0);
    for row in 0..current.num_rows() {
        assert!(
            current.flags(row).contains('p'),
            "row {row} of a year not over is provisional"
        );
    }
    let past = catalog
        .run(
            &engine,
            "contracts_started_by_year",
            &params(&[("year", "2023")]),
        )
        .await
        .unwrap();
    assert!((0..past.num_rows()).all(|row| !past.flags(row).contains('p')));
}
