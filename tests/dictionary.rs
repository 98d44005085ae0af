//! The data dictionary, the reference tables, and the warehouse's schemas
//! and file format against them.

use arrow::array::{Float64Array, StringArray};
use arrow::datatypes::{DataType, Field, Schema};
use osservatorio::catalog::{load_reference_table, DatasetKind, Dictionary, Warehouse};

use crate::support::{column, dictionary, province_warehouse, scalar_i64};

const DESIGN_DATASETS: &[&str] = &[
    "territories",
    "projects",
    "project_targets",
    "desks",
    "workers",
    "family_requests",
    "desk_contacts",
    "contracts",
    "subsidies",
    "substitutions",
    "trainings",
    "survey_workers",
    "survey_families",
];

#[test]
fn every_dataset_of_the_data_model_is_documented() {
    let dictionary = dictionary();
    for name in DESIGN_DATASETS {
        let spec = dictionary.require(name).unwrap();
        assert!(
            !spec.description.is_empty() && !spec.label_it.is_empty() && !spec.label_en.is_empty()
        );
        for column in &spec.columns {
            assert!(
                !column.description.trim().is_empty(),
                "{name}.{} has no description",
                column.name
            );
        }
    }
    for name in ["survey_workers", "survey_families"] {
        let spec = dictionary.require(name).unwrap();
        assert_eq!(spec.kind, DatasetKind::Survey);
        let design = spec.design.as_ref().expect("survey design");
        assert_eq!(
            (
                design.weight.as_str(),
                design.stratum.as_str(),
                design.psu.as_str()
            ),
            ("weight", "stratum", "psu")
        );
    }
    for (dataset, column) in [
        ("workers", "worker_id"),
        ("contracts", "household_id"),
        ("survey_workers", "respondent_id"),
    ] {
        assert!(
            dictionary
                .require(dataset)
                .unwrap()
                .column(column)
                .unwrap()
                .pseudonymous,
            "{dataset}.{column}"
        );
    }
    assert!(
        !dictionary
            .require("contracts")
            .unwrap()
            .column("contract_id")
            .unwrap()
            .pseudonymous
    );
}

#[test]
fn a_broken_dictionary_file_is_named_in_the_error() {
    let bad = "name = \"broken\"\nkind = \"reference\"\nlabel_it = \"x\"\nlabel_en = \"x\"\ndescription = \"x\"\nprimary_key = [\"id\"]\ncolumns = []\n";
    let error =
        Dictionary::from_sources([("broken.toml".to_string(), bad.to_string())]).unwrap_err();
    assert_eq!(
        error.to_string(),
        "data dictionary broken.toml: primary key column `id` is not declared"
    );
    let typo = "name = \"other\"\n";
    let error =
        Dictionary::from_sources([("typo.toml".to_string(), typo.to_string())]).unwrap_err();
    assert!(
        error.to_string().starts_with("data dictionary typo.toml:"),
        "{error}"
    );
}

/// Text views and plain text are the same logical type; the engine may read
/// either.
fn logical(schema: &Schema) -> Vec<(String, DataType, bool)> {
    schema
        .fields()
        .iter()
        .map(|f: &std::sync::Arc<Field>| {
            let data_type = match f.data_type() {
                DataType::Utf8View | DataType::LargeUtf8 => DataType::Utf8,
                other => other.clone(),
            };
            (f.name().clone(), data_type, f.is_nullable())
        })
        .collect()
}

#[tokio::test]
async fn warehouse_schemas_match_the_dictionary() {
    let warehouse = Warehouse::open(province_warehouse(), dictionary())
        .await
        .unwrap();
    for spec in warehouse.dictionary().datasets() {
        let table = warehouse
            .table(&spec.name)
            .await
            .unwrap()
            .unwrap_or_else(|| panic!("{} written", spec.name));
        let provider = table.table_provider().await.unwrap();
        assert_eq!(
            logical(&provider.schema()),
            logical(&spec.arrow_schema()),
            "schema of {} drifted",
            spec.name
        );
        let metadata = table.snapshot().unwrap().metadata().clone();
        assert_eq!(
            metadata.partition_columns().to_vec(),
            spec.partition_columns(),
            "partitioning of {}",
            spec.name
        );
    }
}

/// Every file is zstd and has a year partition; statistics are kept where a
/// range can skip rows, and left out on pseudonyms (spread evenly by the
/// key's hash), on codes of a short list and on free text.
#[tokio::test]
async fn files_are_zstd_parquet_with_statistics_where_a_range_can_skip_rows() {
    let warehouse = Warehouse::open(province_warehouse(), dictionary())
        .await
        .unwrap();
    for (dataset, files, without_statistics) in [
        (
            "contracts",
            10,
            &[
                "worker_id",
                "household_id",
                "job_type",
                "ccnl_level",
                "pay_unit",
                "end_reason",
            ][..],
        ),
        (
            "workers",
            10,
            &[
                "worker_id",
                "skills",
                "sex",
                "citizenship_group",
                "origin_area",
                "job_type",
                "italian_level",
                "status",
            ][..],
        ),
    ] {
        let table = warehouse.table(dataset).await.unwrap().unwrap();
        let uris: Vec<String> = table.get_file_uris().unwrap().collect();
        assert_eq!(uris.len(), files, "{dataset}: one file per year");
        for uri in uris {
            let path = crate::support::local_file(&uri);
            assert!(
                path.to_string_lossy().contains("year="),
                "{path:?} is under its year partition"
            );
            let reader = parquet::file::serialized_reader::SerializedFileReader::new(
                std::fs::File::open(&path).unwrap(),
            )
            .unwrap();
            use parquet::file::reader::FileReader;
            let metadata = reader.metadata();
            for row_group in metadata.row_groups() {
                for column in row_group.columns() {
                    assert!(
                        matches!(column.compression(), parquet::basic::Compression::ZSTD(_)),
                        "{path:?}"
                    );
                    let name = column.column_path().string();
                    assert_eq!(
                        column.statistics().is_some(),
                        !without_statistics.contains(&name.as_str()),
                        "{path:?} {name}: statistics"
                    );
                }
            }
        }
    }
}

#[test]
fn reference_tables_hold_italy_and_the_projects() {
    let dictionary = dictionary();
    let territories = load_reference_table(dictionary.require("territories").unwrap()).unwrap();
    assert!(
        territories.num_rows() > 7_800,
        "every municipality of Italy"
    );
    let text = |name: &str| column::<StringArray>(&territories, name).clone();
    let (istat, name, district, province) = (
        text("istat_code"),
        text("municipality"),
        text("district"),
        text("province_code"),
    );
    let cremona: Vec<usize> = (0..territories.num_rows())
        .filter(|&i| province.value(i) == "019")
        .collect();
    assert!(
        (110..=116).contains(&cremona.len()),
        "Cremona has {} municipalities",
        cremona.len()
    );
    let mut districts: Vec<&str> = cremona.iter().map(|&i| district.value(i)).collect();
    districts.sort_unstable();
    districts.dedup();
    assert_eq!(districts, ["Casalmaggiore", "Crema", "Cremona"]);
    for (code, expected) in [
        ("019036", "Cremona"),
        ("097042", "Lecco"),
        ("015146", "Milano"),
    ] {
        let row = (0..territories.num_rows())
            .find(|&i| istat.value(i) == code)
            .unwrap();
        assert_eq!(name.value(row), expected);
    }

    let projects = load_reference_table(dictionary.require("projects").unwrap()).unwrap();
    let ids = column::<StringArray>(&projects, "project_id").clone();
    let budgets = column::<Float64Array>(&projects, "budget_eur").clone();
    let budget = |id: &str| {
        budgets.value(
            (0..projects.num_rows())
                .find(|&i| ids.value(i) == id)
                .unwrap(),
        )
    };
    assert_eq!(budget("staff"), 214_946.30);
    assert_eq!(budget("lecco_assistenti_familiari"), 127_513.50);
}

#[tokio::test]
async fn staff_targets_are_transcribed() {
    for (target, value) in [
        ("beneficiaries", 2500),
        ("hires", 280),
        ("households_served", 3500),
        ("substitutions", 75),
        ("subsidies", 150),
    ] {
        let sql = format!(
            "SELECT CAST(target_value AS BIGINT) FROM project_targets WHERE project_id = 'staff' AND target_id = '{target}' AND sex IS NULL AND citizenship_group IS NULL"
        );
        assert_eq!(scalar_i64(&sql).await, value, "{target}");
    }
    let split = scalar_i64(
        "SELECT CAST(sum(target_value) AS BIGINT) FROM project_targets WHERE project_id = 'staff' AND target_id = 'beneficiaries' AND sex IS NOT NULL AND citizenship_group IS NOT NULL",
    )
    .await;
    assert_eq!(split, 2500, "sex × citizenship cells add up to the total");
}
