//! The synthetic observatory: determinism, referential integrity, survey
//! weights, and calibration to the cited public figures.

use std::sync::Arc;

use arrow::record_batch::RecordBatch;
use datafusion::datasource::MemTable;
use datafusion::prelude::SessionContext;
use indicatif::ProgressBar;
use osservatorio::generate::calibration::*;
use osservatorio::generate::{build, GenerateOptions, Scale};

use crate::support::{query, scalar_f64, scalar_i64};

#[test]
fn the_same_seed_gives_the_same_rows() {
    let options = GenerateOptions {
        scale: Scale::Province,
        seed: 11,
    };
    let first = build(options, &ProgressBar::hidden()).unwrap();
    let second = build(options, &ProgressBar::hidden()).unwrap();
    assert_eq!(first.batches.len(), second.batches.len());
    for ((name, a), (_, b)) in first.batches.iter().zip(&second.batches) {
        assert_eq!(a, b, "{name} differs between two runs with the same seed");
    }
    let other = build(
        GenerateOptions {
            seed: 12,
            ..options
        },
        &ProgressBar::hidden(),
    )
    .unwrap();
    let contracts = |o: &osservatorio::generate::Observatory| {
        o.batches
            .iter()
            .find(|(n, _)| n == "contracts")
            .unwrap()
            .1
            .clone()
    };
    assert_ne!(
        contracts(&first),
        contracts(&other),
        "another seed gives other rows"
    );
}

/// Each query counts rows that break a rule; all must be zero.
const INTEGRITY_RULES: &[(&str, &str)] = &[
    ("contract without worker", "SELECT count(*) FROM contracts c LEFT JOIN workers w USING (worker_id) WHERE w.worker_id IS NULL"),
    ("contract without household", "SELECT count(*) FROM contracts c LEFT JOIN households h USING (household_id) WHERE h.household_id IS NULL"),
    ("contract in unknown municipality", "SELECT count(*) FROM contracts c LEFT JOIN territories t USING (istat_code) WHERE t.istat_code IS NULL"),
    ("contract ends before it starts", "SELECT count(*) FROM contracts WHERE end_date < start_date"),
    ("contract starts before its worker is recorded", "SELECT count(*) FROM contracts c JOIN workers w USING (worker_id) WHERE c.start_date < w.registered_on"),
    ("contract's request is unknown", "SELECT count(*) FROM contracts c LEFT JOIN family_requests r USING (request_id) WHERE c.request_id IS NOT NULL AND r.request_id IS NULL"),
    ("end reason without end", "SELECT count(*) FROM contracts WHERE (end_date IS NULL) <> (end_reason IS NULL)"),
    ("year is not the year of its date", "SELECT count(*) FROM contracts WHERE year <> date_part('year', start_date)"),
    ("request's matched worker is unknown", "SELECT count(*) FROM family_requests r LEFT JOIN workers w ON r.matched_worker_id = w.worker_id WHERE r.matched_worker_id IS NOT NULL AND w.worker_id IS NULL"),
    ("hired request without worker", "SELECT count(*) FROM family_requests WHERE (outcome = 'hired') <> (matched_worker_id IS NOT NULL)"),
    ("request closed before opened", "SELECT count(*) FROM family_requests WHERE closed_on < opened_on"),
    ("request at unknown desk", "SELECT count(*) FROM family_requests r LEFT JOIN desks d USING (desk_id) WHERE d.desk_id IS NULL"),
    ("contact at unknown desk", "SELECT count(*) FROM desk_contacts k LEFT JOIN desks d USING (desk_id) WHERE d.desk_id IS NULL"),
    ("contact with unknown household", "SELECT count(*) FROM desk_contacts k LEFT JOIN households h USING (household_id) WHERE k.household_id IS NOT NULL AND h.household_id IS NULL"),
    ("contact with unknown worker", "SELECT count(*) FROM desk_contacts k LEFT JOIN workers w USING (worker_id) WHERE k.worker_id IS NOT NULL AND w.worker_id IS NULL"),
    ("subsidy to a household not served", "SELECT count(*) FROM subsidies s WHERE s.household_id NOT IN (SELECT household_id FROM family_requests WHERE outcome = 'hired')"),
    ("subsidy for another household's contract", "SELECT count(*) FROM subsidies s JOIN contracts c USING (contract_id) WHERE s.household_id <> c.household_id OR s.granted_on < c.start_date"),
    ("substitution outside its contract", "SELECT count(*) FROM substitutions s JOIN contracts c USING (contract_id) WHERE s.start_date < c.start_date OR s.end_date > coalesce(c.end_date, DATE '2025-12-31') OR s.end_date < s.start_date"),
    ("substitute unknown", "SELECT count(*) FROM substitutions s LEFT JOIN workers w ON s.substitute_worker_id = w.worker_id WHERE w.worker_id IS NULL"),
    ("substitution of an unknown contract", "SELECT count(*) FROM substitutions s LEFT JOIN contracts c USING (contract_id) WHERE c.contract_id IS NULL"),
    ("household first seen after its first contract", "SELECT count(*) FROM households h JOIN contracts c USING (household_id) WHERE c.year < h.first_year"),
    ("course with more completers than enrolled", "SELECT count(*) FROM trainings WHERE completed > enrolled OR certified > completed"),
    ("worker at unknown desk", "SELECT count(*) FROM workers w LEFT JOIN desks d USING (desk_id) WHERE w.desk_id IS NOT NULL AND d.desk_id IS NULL"),
    ("survey PSU outside the territory", "SELECT count(*) FROM survey_workers s LEFT JOIN territories t ON s.psu = t.istat_code WHERE t.istat_code IS NULL"),
    ("survey PSU in two strata", "SELECT count(*) FROM (SELECT psu FROM survey_workers GROUP BY psu HAVING count(DISTINCT stratum) > 1)"),
];

#[tokio::test]
async fn generated_data_are_referentially_consistent() {
    for (rule, sql) in INTEGRITY_RULES {
        assert_eq!(scalar_i64(sql).await, 0, "{rule}");
    }
    assert!(
        scalar_i64("SELECT count(*) FROM subsidies").await > 0,
        "the rules above are not vacuous"
    );
    assert!(scalar_i64("SELECT count(*) FROM substitutions").await > 0);
}

#[tokio::test]
async fn survey_weights_sum_to_the_population_they_represent() {
    for wave in [2022, 2025] {
        let weights = scalar_f64(&format!(
            "SELECT sum(weight) FROM survey_workers WHERE wave = {wave}"
        ))
        .await;
        let workers = scalar_i64(&format!(
            "SELECT count(DISTINCT worker_id) FROM contracts WHERE year = {wave}"
        ))
        .await;
        assert!(
            (weights - workers as f64).abs() < 1e-6,
            "wave {wave}: weights {weights}, workers {workers}"
        );
        let weights = scalar_f64(&format!(
            "SELECT sum(weight) FROM survey_families WHERE wave = {wave}"
        ))
        .await;
        let employers = scalar_i64(&format!(
            "SELECT count(DISTINCT household_id) FROM contracts WHERE year <= {wave} AND coalesce(date_part('year', end_date), 9999) >= {wave}"
        ))
        .await;
        assert!(
            (weights - employers as f64).abs() < 1e-6,
            "wave {wave}: weights {weights}, households {employers}"
        );
    }
    let strata = query(
        "SELECT wave, count(DISTINCT stratum) AS strata, min(psus) >= 2 AS no_lonely_psu \
         FROM (SELECT wave, stratum, count(DISTINCT psu) AS psus FROM survey_workers GROUP BY 1, 2) \
         GROUP BY wave ORDER BY wave",
    )
    .await;
    datafusion::assert_batches_eq!(
        [
            "+------+--------+---------------+",
            "| wave | strata | no_lonely_psu |",
            "+------+--------+---------------+",
            "| 2022 | 3      | true          |",
            "| 2025 | 3      | true          |",
            "+------+--------+---------------+",
        ],
        &strata
    );
}

/// Marginals of the generated data next to the figures they are calibrated
/// to: (what, generated, target).
async fn marginals(ctx: &SessionContext) -> Vec<(&'static str, f64, f64)> {
    let share = |sql: &'static str| async move {
        let batches = ctx.sql(sql).await.unwrap().collect().await.unwrap();
        let column =
            arrow::compute::cast(batches[0].column(0), &arrow::datatypes::DataType::Float64)
                .unwrap();
        column
            .as_any()
            .downcast_ref::<arrow::array::Float64Array>()
            .unwrap()
            .value(0)
    };
    let live_in = SHARE_CARERS * LIVE_IN_CARERS + (1.0 - SHARE_CARERS) * LIVE_IN_HELPERS;
    let hours_40 = WEEKLY_HOURS_CLASSES.last().unwrap().2;
    let hours_25 = WEEKLY_HOURS_CLASSES.iter().find(|c| c.0 == 25).unwrap().2;
    let romania = FOREIGN_CITIZENSHIPS.iter().find(|c| c.0 == "RO").unwrap().1;
    let ukraine = FOREIGN_CITIZENSHIPS.iter().find(|c| c.0 == "UA").unwrap().1;
    let philippines = FOREIGN_CITIZENSHIPS.iter().find(|c| c.0 == "PH").unwrap().1;
    vec![
        ("women", share("SELECT avg(CASE WHEN sex = 'F' THEN 1.0 ELSE 0.0 END) FROM workers").await, SHARE_WOMEN),
        ("foreign", share("SELECT avg(CASE WHEN citizenship <> 'IT' THEN 1.0 ELSE 0.0 END) FROM workers").await, SHARE_FOREIGN),
        ("carers", share("SELECT avg(CASE WHEN job_type = 'carer' THEN 1.0 ELSE 0.0 END) FROM workers").await, SHARE_CARERS),
        ("Romanians among foreign", share("SELECT avg(CASE WHEN citizenship = 'RO' THEN 1.0 ELSE 0.0 END) FROM workers WHERE citizenship <> 'IT'").await, romania),
        ("Ukrainians among foreign", share("SELECT avg(CASE WHEN citizenship = 'UA' THEN 1.0 ELSE 0.0 END) FROM workers WHERE citizenship <> 'IT'").await, ukraine),
        ("Filipinos among foreign", share("SELECT avg(CASE WHEN citizenship = 'PH' THEN 1.0 ELSE 0.0 END) FROM workers WHERE citizenship <> 'IT'").await, philippines),
        ("aged 60+ in 2024", share("SELECT avg(CASE WHEN 2024 - birth_year >= 60 THEN 1.0 ELSE 0.0 END) FROM workers").await, 0.257),
        ("live-in contracts", share("SELECT avg(CASE WHEN live_in THEN 1.0 ELSE 0.0 END) FROM contracts").await, live_in),
        ("contracts of 40+ hours", share("SELECT avg(CASE WHEN weekly_hours >= 40 THEN 1.0 ELSE 0.0 END) FROM contracts").await, hours_40),
        ("contracts of 25-29 hours", share("SELECT avg(CASE WHEN weekly_hours BETWEEN 25 AND 29 THEN 1.0 ELSE 0.0 END) FROM contracts").await, hours_25),
    ]
}

fn assert_within_two_points(scale: &str, marginals: &[(&str, f64, f64)]) {
    for (what, generated, target) in marginals {
        assert!(
            (generated - target).abs() <= 0.02,
            "{scale}: {what} is {:.1}%, the calibration target is {:.1}%",
            generated * 100.0,
            target * 100.0
        );
    }
}

#[tokio::test]
async fn the_province_is_calibrated_to_the_public_figures() {
    let ctx = crate::support::engine(crate::support::province_warehouse()).await;
    assert_within_two_points("province", &marginals(ctx.context()).await);
    let workers_2024 =
        scalar_i64("SELECT count(DISTINCT worker_id) FROM contracts WHERE year = 2024").await
            as f64;
    let expected = 817_403.0 * CREMONA_WORKERS_2019 / 889_978.0;
    assert!(
        (workers_2024 / expected - 1.0).abs() < 0.05,
        "Cremona 2024: {workers_2024} workers, expected about {expected:.0}"
    );
}

#[tokio::test]
async fn the_region_is_calibrated_to_the_public_figures() {
    let observatory = build(
        GenerateOptions {
            scale: Scale::Region,
            seed: 3,
        },
        &ProgressBar::hidden(),
    )
    .unwrap();
    let ctx = SessionContext::new();
    for (name, batch) in observatory.batches {
        if name == "workers" || name == "contracts" {
            let table =
                MemTable::try_new(batch.schema(), vec![vec![batch as RecordBatch]]).unwrap();
            ctx.register_table(name.as_str(), Arc::new(table)).unwrap();
        }
    }
    assert_within_two_points("region", &marginals(&ctx).await);
    let workers_2024 = ctx
        .sql("SELECT count(DISTINCT worker_id) FROM contracts WHERE year = 2024")
        .await
        .unwrap()
        .collect()
        .await
        .unwrap();
    let n = workers_2024[0]
        .column(0)
        .as_any()
        .downcast_ref::<arrow::array::Int64Array>()
        .unwrap()
        .value(0) as f64;
    assert!(
        (n / LOMBARDY_WORKERS_2024 - 1.0).abs() < 0.05,
        "Lombardy 2024: {n} workers, INPS {LOMBARDY_WORKERS_2024}"
    );
}
