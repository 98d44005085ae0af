//! The annual report: every chapter, self-contained and well-formed, the same
//! bytes twice and again from the recorded versions, numbers equal to the
//! API's, Italian number formatting.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use indicatif::ProgressBar;
use osservatorio::catalog::{Warehouse, WriteMode};
use osservatorio::config::{Config, Overrides};
use osservatorio::indicators::{IndicatorCatalog, IndicatorFormat, Lang, ParameterValues};
use osservatorio::observatory::Observatory;
use osservatorio::query::{QueryEngine, QueryLimits};
use osservatorio::report::{self, Policy, Report, ReportOptions};

use crate::support::{copy_dir, dictionary, province_warehouse};

const YEAR: i32 = 2024;

fn queries() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("queries")
}

fn policy() -> Policy {
    Policy {
        disclosure_threshold: 5,
        survey: Default::default(),
    }
}

async fn build(root: &Path, lang: Lang, as_of: &BTreeMap<String, u64>) -> Report {
    let warehouse = Warehouse::open(root, dictionary()).await.unwrap();
    let engine = QueryEngine::open_as_of(&warehouse, QueryLimits::default(), as_of)
        .await
        .unwrap();
    let catalog = IndicatorCatalog::load(&queries(), &engine, 5)
        .await
        .unwrap();
    let options = ReportOptions {
        year: YEAR,
        lang,
        territory: ParameterValues::new(),
    };
    report::build(
        &engine,
        &catalog,
        policy(),
        &options,
        &ProgressBar::hidden(),
    )
    .await
    .unwrap()
}

#[tokio::test]
async fn the_report_has_every_chapter_and_nothing_external() {
    let report = build(province_warehouse(), Lang::It, &BTreeMap::new()).await;
    let html = &report.html;
    for chapter in [
        "context",
        "workforce",
        "demand",
        "contracts",
        "desks",
        "support",
        "survey",
        "staff",
        "methodology",
    ] {
        assert!(
            html.contains(&format!("<section class=\"chapter\" id=\"cap-{chapter}\">")),
            "{chapter}"
        );
        assert!(
            html.contains(&format!("<a href=\"#cap-{chapter}\">")),
            "{chapter} in the contents"
        );
    }
    assert_eq!(report.figures.len(), html.matches("<figure><svg").count());
    assert!(report.figures.iter().all(|f| f.png.starts_with(b"\x89PNG")));
    assert!(html.contains("@page{size:A4"));
    // No URL but in-document anchors.
    assert!(!html.contains("http"), "a URL is in the report");
    for pattern in ["src=", "url(", "@import", "<link", "<script"] {
        assert!(!html.contains(pattern), "{pattern}");
    }
    for href in html.split("href=\"").skip(1) {
        assert!(
            href.starts_with('#'),
            "href=\"{}",
            &href[..20.min(href.len())]
        );
    }
    // Well-formed: every element closes, as an XML parser checks.
    let mut reader = quick_xml::Reader::from_str(html);
    loop {
        match reader.read_event() {
            Ok(quick_xml::events::Event::Eof) => break,
            Ok(_) => {}
            Err(e) => panic!(
                "the HTML does not parse at {}: {e}",
                reader.buffer_position()
            ),
        }
    }
    // The methodology names every table version and the program version.
    assert!(html.contains("--as-of contracts=0"));
    assert!(html.contains(&format!("Osservatorio {}", env!("CARGO_PKG_VERSION"))));
}

#[tokio::test]
async fn findings_use_italian_number_formatting() {
    let italian = build(province_warehouse(), Lang::It, &BTreeMap::new())
        .await
        .html;
    let english = build(province_warehouse(), Lang::En, &BTreeMap::new())
        .await
        .html;
    let sentence = regex::Regex::new(r"\d{1,3}(\.\d{3})+ nel 2024|\d+,\d% nel 2024").unwrap();
    assert!(sentence.is_match(&italian), "no Italian-formatted finding");
    assert!(italian.contains("rispetto al 2023"));
    assert!(english.contains("<html lang=\"en\">") && english.contains(" on 2023"));
    assert!(regex::Regex::new(r"\d,\d{3} in 2024|\d+\.\d% in 2024")
        .unwrap()
        .is_match(&english));
}

#[tokio::test]
async fn the_report_is_reproducible_byte_for_byte() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("warehouse");
    copy_dir(province_warehouse(), &root);
    let first = build(&root, Lang::It, &BTreeMap::new()).await;
    let second = build(&root, Lang::It, &BTreeMap::new()).await;
    assert_eq!(first.html, second.html);
    assert_eq!(first.csv, second.csv);
    let out_a = dir.path().join("a");
    let out_b = dir.path().join("b");
    report::write(&first, &out_a).unwrap();
    report::write(&second, &out_b).unwrap();
    report::write(&second, &out_b).unwrap();
    for file in [
        "report.html",
        "indicators.csv",
        "figures/staff_hires.svg",
        "figures/staff_hires.png",
    ] {
        assert_eq!(
            std::fs::read(out_a.join(file)).unwrap(),
            std::fs::read(out_b.join(file)).unwrap(),
            "{file}"
        );
    }
    // A new version of a table: the report moves on, and the recorded
    // versions rebuild the first one exactly.
    let warehouse = Warehouse::open(&root, dictionary()).await.unwrap();
    warehouse
        .write("subsidies", vec![], WriteMode::Append)
        .await
        .unwrap();
    let newer = build(&root, Lang::It, &BTreeMap::new()).await;
    assert_ne!(newer.html, first.html);
    let recorded: BTreeMap<String, u64> = first
        .versions
        .iter()
        .filter_map(|(name, v)| v.map(|v| (name.clone(), v)))
        .collect();
    let rebuilt = build(&root, Lang::It, &recorded).await;
    assert_eq!(rebuilt.html, first.html);
    assert_eq!(rebuilt.csv, first.csv);
}

#[tokio::test]
async fn report_numbers_equal_the_indicator_api() {
    let report = build(province_warehouse(), Lang::It, &BTreeMap::new()).await;
    let config = Config::resolve(Overrides {
        data_dir: Some(province_warehouse().display().to_string()),
        queries_dir: Some(queries()),
        ..Overrides::default()
    })
    .unwrap();
    let warehouse = Warehouse::open(province_warehouse(), dictionary())
        .await
        .unwrap();
    let observatory = Observatory::open(warehouse, config).await.unwrap();
    let mut csv = csv::Reader::from_reader(report.csv.as_slice());
    let rows: Vec<csv::StringRecord> = csv.records().map(|r| r.unwrap()).collect();
    for id in [
        "staff_hires",
        "declared_share",
        "survey_anxiety",
        "age_pyramid",
    ] {
        // Survey chapters report the latest wave, named in the CSV.
        let year = rows
            .iter()
            .find(|r| &r[0] == id)
            .map(|r| r[1].to_string())
            .unwrap();
        let values = ParameterValues::from([("year".to_string(), year)]);
        let api = observatory
            .indicator(id, &values, IndicatorFormat::Json, Lang::It)
            .await
            .unwrap();
        let api: serde_json::Value = serde_json::from_slice(&api.bytes).unwrap();
        let measures: Vec<String> = api["measures"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m.as_str().unwrap().to_string())
            .collect();
        let mut expected = Vec::new();
        for row in api["rows"].as_array().unwrap() {
            for m in &measures {
                expected.push(row[m].as_f64());
            }
        }
        let found: Vec<Option<f64>> = rows
            .iter()
            .filter(|r| &r[0] == id)
            .map(|r| r[5].parse::<f64>().ok())
            .collect();
        assert!(!found.is_empty(), "{id} is in the report");
        // Equal to ten significant digits, the precision the CSV keeps.
        assert_eq!(found.len(), expected.len(), "{id}");
        for (report_value, api_value) in found.iter().zip(&expected) {
            match (report_value, api_value) {
                (Some(a), Some(b)) => {
                    assert!((a - b).abs() <= 1e-9 * b.abs().max(1.0), "{id}: {a} vs {b}")
                }
                (a, b) => assert_eq!(a, b, "{id}: suppressed cells match"),
            }
        }
    }
}
