//! `report`: the annual report from the command line.

use anyhow::Result;
use osservatorio::config::Config;
use osservatorio::indicators::{IndicatorCatalog, Lang, ParameterValues};
use osservatorio::query::QueryEngine;
use osservatorio::report;

use super::{open, parse_as_of, progress_bar};

pub(super) async fn run_report(
    config: &Config,
    year: i32,
    lang: Lang,
    district: Option<String>,
    province: Option<String>,
    out: &std::path::Path,
    as_of: &[String],
) -> Result<()> {
    let versions = parse_as_of(as_of)?;
    let warehouse = open(config).await?;
    let engine = QueryEngine::open_on(&warehouse, config.limits, &config.engine, &versions)
        .await?
        .with_survey_options(config.survey);
    let catalog =
        IndicatorCatalog::load(&config.queries_dir, &engine, config.disclosure_threshold).await?;
    let mut territory = ParameterValues::new();
    if let Some(d) = district {
        territory.insert("district".into(), d);
    }
    if let Some(p) = province {
        territory.insert("province".into(), p);
    }
    let options = report::ReportOptions {
        year,
        lang,
        territory,
    };
    let policy = report::Policy {
        disclosure_threshold: config.disclosure_threshold,
        survey: config.survey,
    };
    let bar = progress_bar("report");
    let built = report::build(&engine, &catalog, policy, &options, &bar).await?;
    bar.finish_and_clear();
    report::write(&built, out)?;
    eprintln!(
        "wrote the {year} report to {}: report.html, indicators.csv and {} figures",
        out.display(),
        built.figures.len()
    );
    Ok(())
}
