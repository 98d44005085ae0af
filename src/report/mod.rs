//! The annual report: one self-contained HTML document (charts as inline
//! SVG, CSS embedded, print-ready for A4, a table of contents), a CSV of
//! every figure in it, and each chart as SVG and PNG.
//!
//! Owns the chapters, their tables, charts, year-on-year changes and key
//! findings, and writing the output directory whole or not at all. It must
//! not bypass disclosure control (every figure is an `IndicatorResult`),
//! and must not put anything in the output that varies between two runs on
//! the same table versions: no clock, no random order, no machine path.

mod numbers;

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use indicatif::ProgressBar;

use crate::catalog::TableVersions;
use crate::charts::{self, ChartError, ChartOptions, ImageFormat};
use crate::indicators::{
    CodeLabels, IndicatorCatalog, IndicatorError, IndicatorResult, Lang, ParameterValues, Theme,
    FLAG_COLUMN,
};
use crate::markup::escape;
use crate::query::QueryEngine;
use crate::survey::SurveyOptions;

pub use numbers::{finding, format_cell, format_in_unit, format_number};

/// Failures that stop a report.
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    #[error(transparent)]
    Indicator(#[from] IndicatorError),
    #[error(transparent)]
    Chart(#[from] ChartError),
    #[error("writing the report to {}: {source}", path.display())]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// What to report on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReportOptions {
    pub year: i32,
    pub lang: Lang,
    /// Territory parameters (`district`, `province`) given to every
    /// indicator that takes them.
    pub territory: ParameterValues,
}

/// The settings a report states in its methodology chapter.
#[derive(Debug, Clone, Copy)]
pub struct Policy {
    pub disclosure_threshold: i64,
    pub survey: SurveyOptions,
}

/// One chart, in both formats.
#[derive(Debug, Clone)]
pub struct Figure {
    pub id: String,
    pub svg: Vec<u8>,
    pub png: Vec<u8>,
}

/// A built report, not yet written.
#[derive(Debug, Clone)]
pub struct Report {
    pub html: String,
    /// Every figure of the report, one row per cell.
    pub csv: Vec<u8>,
    pub figures: Vec<Figure>,
    /// The version of every table read.
    pub versions: TableVersions,
}

/// How far back a survey chapter looks for the latest wave.
const SURVEY_LOOKBACK_YEARS: i32 = 4;

/// The chapters: the observatory's themes, then the methodology.
fn chapter_title(theme: Option<Theme>, lang: Lang) -> &'static str {
    match theme {
        Some(theme) => theme.label(lang),
        None => match lang {
            Lang::It => "Nota metodologica",
            Lang::En => "Methodology",
        },
    }
}

fn chapter_id(theme: Option<Theme>) -> String {
    format!("cap-{}", theme.map_or("methodology", Theme::code))
}

/// The headline of a result: the first measure on the all-totals row, the
/// only row, or, for counts with no total row and nothing suppressed, the
/// sum of the rows.
fn headline(result: &IndicatorResult) -> Option<f64> {
    let spec = &result.spec;
    let measure = spec.measures.first()?;
    if result.num_rows() == 0 {
        return None;
    }
    if spec.dimensions.is_empty() || result.num_rows() == 1 {
        return result.measure(measure, 0);
    }
    let total_row = (0..result.num_rows()).find(|&row| {
        spec.dimensions
            .iter()
            .all(|d| result.dimension(d, row) == Some(crate::disclosure::TOTAL))
    });
    if let Some(row) = total_row {
        return result.measure(measure, row);
    }
    let counts = [
        "persons",
        "contracts",
        "services",
        "households",
        "requests",
        "person_days",
    ];
    if !counts.contains(&spec.unit.as_str()) || spec.time_dimension.is_some() {
        return None;
    }
    let mut sum = 0.0;
    for row in 0..result.num_rows() {
        if spec
            .dimensions
            .iter()
            .any(|d| result.dimension(d, row) == Some(crate::disclosure::TOTAL))
        {
            continue;
        }
        sum += result.measure(measure, row)?;
    }
    Some(sum)
}

struct Words {
    title: &'static str,
    contents: &'static str,
    findings: &'static str,
    no_indicators: &'static str,
    flags: &'static str,
    source: &'static str,
    territory: &'static str,
    whole_area: &'static str,
}

fn words(lang: Lang) -> Words {
    match lang {
        Lang::It => Words {
            title: "Rapporto annuale dell'Osservatorio sul lavoro di cura domiciliare",
            contents: "Indice",
            findings: "In sintesi",
            no_indicators: "Nessun indicatore in questo capitolo.",
            flags: "Segni: c = dato riservato (soppresso), u = stima poco affidabile, p = dato provvisorio.",
            source: "Fonti",
            territory: "Territorio",
            whole_area: "intera area dell'osservatorio",
        },
        Lang::En => Words {
            title: "Annual report of the Observatory on home care work",
            contents: "Contents",
            findings: "Key findings",
            no_indicators: "No indicator in this chapter.",
            flags: "Flags: c = confidential (suppressed), u = low reliability, p = provisional.",
            source: "Sources",
            territory: "Territory",
            whole_area: "the observatory's whole area",
        },
    }
}

const STYLE: &str = "@page{size:A4;margin:18mm 16mm}\
body{font-family:'DejaVu Sans',sans-serif;font-size:10.5pt;line-height:1.4;color:#222;max-width:48rem;margin:0 auto;padding:1rem}\
h1{font-size:20pt}h2{font-size:15pt;border-bottom:2px solid #2a6f97}h3{font-size:12pt;margin-bottom:.2rem}\
nav ol{columns:2}section.chapter{break-before:page}article{margin:1rem 0 1.5rem}\
figure{margin:.5rem 0;break-inside:avoid}figure svg{max-width:100%;height:auto}\
table{border-collapse:collapse;font-size:9pt;break-inside:avoid;margin:.4rem 0}\
th,td{border:1px solid #bbb;padding:2px 6px}td.n{text-align:right}\
.findings{background:#f2f6f8;padding:.4rem .8rem;break-inside:avoid}.small{font-size:9pt;color:#555}\
@media print{a{color:inherit;text-decoration:none}}";

/// Inline SVG needs no namespace declarations, and leaving them out keeps
/// the document free of any URL.
fn inline_svg(svg: &[u8]) -> String {
    let text = String::from_utf8_lossy(svg);
    let text = text
        .replace(" xmlns=\"http://www.w3.org/2000/svg\"", "")
        .replace(" xmlns:xlink=\"http://www.w3.org/1999/xlink\"", "");
    match text.find("<svg") {
        Some(start) => text[start..].to_string(),
        None => text,
    }
}

fn result_table(result: &IndicatorResult, labels: &CodeLabels, lang: Lang) -> String {
    let spec = &result.spec;
    let mut html = String::from("<table><thead><tr>");
    for d in &spec.dimensions {
        let _ = write!(html, "<th>{}</th>", escape(d));
    }
    for m in &spec.measures {
        let _ = write!(html, "<th>{}</th>", escape(m));
    }
    let _ = write!(html, "<th>{FLAG_COLUMN}</th></tr></thead><tbody>");
    for row in 0..result.num_rows() {
        html.push_str("<tr>");
        for d in &spec.dimensions {
            let code = result.dimension(d, row).unwrap_or("");
            let _ = write!(html, "<td>{}</td>", escape(labels.label(d, code, lang)));
        }
        for m in &spec.measures {
            let cell = result
                .measure(m, row)
                .map_or_else(|| "–".to_string(), |v| format_cell(v, lang));
            let _ = write!(html, "<td class=\"n\">{cell}</td>");
        }
        let _ = write!(html, "<td>{}</td></tr>", escape(result.flags(row)));
    }
    html.push_str("</tbody></table>\n");
    html
}

fn csv_rows(
    result: &IndicatorResult,
    year: i32,
    writer: &mut csv::Writer<Vec<u8>>,
) -> csv::Result<()> {
    let spec = &result.spec;
    let parameters: Vec<String> = result
        .parameters
        .iter()
        .filter(|(_, v)| !v.is_null())
        .map(|(n, v)| format!("{n}={v}"))
        .collect();
    for row in 0..result.num_rows() {
        let coordinates: Vec<String> = spec
            .dimensions
            .iter()
            .map(|d| format!("{d}={}", result.dimension(d, row).unwrap_or("")))
            .collect();
        for m in &spec.measures {
            writer.write_record([
                spec.id.as_str(),
                &year.to_string(),
                &parameters.join(";"),
                &coordinates.join(";"),
                m.as_str(),
                &result
                    .measure(m, row)
                    .map_or_else(String::new, stable_digits),
                result.flags(row),
            ])?;
        }
    }
    Ok(())
}

/// A value to ten significant digits. Parallel aggregation may add floats in
/// a different order from run to run, which moves the last bits; rounding
/// keeps two runs on the same data byte-identical.
fn stable_digits(value: f64) -> String {
    format!("{value:.9e}")
        .parse::<f64>()
        .map_or_else(|_| value.to_string(), |v| v.to_string())
}

/// Builds the report from `engine`'s tables, which fix its versions.
pub async fn build(
    engine: &QueryEngine,
    catalog: &IndicatorCatalog,
    policy: Policy,
    options: &ReportOptions,
    progress: &ProgressBar,
) -> Result<Report, ReportError> {
    let lang = options.lang;
    let w = words(lang);
    let year = options.year;
    let indicators = catalog.indicators();
    progress.set_length(indicators.len() as u64);
    progress.set_message("report");
    let mut csv = csv::Writer::from_writer(Vec::new());
    csv.write_record([
        "indicator",
        "year",
        "parameters",
        "cell",
        "measure",
        "value",
        "flag",
    ])
    .expect("writing to memory");
    let mut figures = Vec::new();
    let mut chapters: Vec<(Option<Theme>, Vec<String>, String)> = Vec::new();
    for theme in Theme::ALL {
        let mut findings = Vec::new();
        let mut body = String::new();
        for indicator in indicators.iter().filter(|i| i.spec.theme == theme) {
            let spec = &indicator.spec;
            let mut values = ParameterValues::new();
            for (name, value) in &options.territory {
                if spec.parameter(name).is_some() {
                    values.insert(name.clone(), value.clone());
                }
            }
            let has_year = spec.parameter("year").is_some();
            if has_year {
                values.insert("year".into(), year.to_string());
            }
            let mut result = catalog.run(engine, &spec.id, &values).await?;
            let mut data_year = year;
            // Surveys run in waves: a year without one reports the latest
            // earlier wave, and says so.
            if spec.theme == Theme::Survey && has_year && result.num_rows() == 0 {
                for back in 1..=SURVEY_LOOKBACK_YEARS {
                    let mut earlier = values.clone();
                    earlier.insert("year".into(), (year - back).to_string());
                    let found = catalog.run(engine, &spec.id, &earlier).await?;
                    if found.num_rows() > 0 {
                        result = found;
                        data_year = year - back;
                        break;
                    }
                }
            }
            let previous = if has_year && spec.theme != Theme::Survey {
                let mut before = values.clone();
                before.insert("year".into(), (year - 1).to_string());
                Some(catalog.run(engine, &spec.id, &before).await?)
            } else {
                None
            };
            if let Some(value) = headline(&result) {
                findings.push(finding(
                    spec.title(lang),
                    &spec.unit,
                    data_year,
                    value,
                    previous.as_ref().and_then(headline),
                    lang,
                ));
            }
            let chart_options = ChartOptions {
                lang,
                ..ChartOptions::default()
            };
            let svg = charts::render(&result, catalog.labels(), chart_options, ImageFormat::Svg)?;
            let png = charts::render(&result, catalog.labels(), chart_options, ImageFormat::Png)?;
            csv_rows(&result, data_year, &mut csv).expect("writing to memory");
            let _ = write!(
                body,
                "<article id=\"ind-{id}\">\n<h3>{title}</h3>\n<p class=\"small\">{description}{wave}</p>\n<figure>{svg}<figcaption class=\"small\">{flags} {source}: {sources}.</figcaption></figure>\n{table}</article>\n",
                id = escape(&spec.id),
                title = escape(spec.title(lang)),
                description = escape(spec.description(lang)),
                wave = if data_year == year {
                    String::new()
                } else {
                    match lang {
                        Lang::It => format!(" Dati dell'ultima rilevazione: {data_year}."),
                        Lang::En => format!(" Data of the latest wave: {data_year}."),
                    }
                },
                svg = inline_svg(&svg),
                flags = escape(w.flags),
                source = w.source,
                sources = escape(&spec.sources.join(", ")),
                table = result_table(&result, catalog.labels(), lang),
            );
            figures.push(Figure {
                id: spec.id.clone(),
                svg,
                png,
            });
            progress.inc(1);
        }
        chapters.push((Some(theme), findings, body));
    }
    chapters.push((None, Vec::new(), methodology(engine, policy, options)));

    let lang_code = lang.code();
    let territory = if options.territory.is_empty() {
        w.whole_area.to_string()
    } else {
        options
            .territory
            .iter()
            .map(|(k, v)| format!("{k} {v}"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let mut html = String::with_capacity(1 << 21);
    let _ = write!(
        html,
        "<!DOCTYPE html>\n<html lang=\"{lang_code}\">\n<head>\n<meta charset=\"utf-8\" />\n<title>{title} {year}</title>\n<style>{STYLE}</style>\n</head>\n<body>\n<header><h1>{title} {year}</h1><p>{territory_word}: {territory}</p></header>\n<nav id=\"indice\"><h2>{contents}</h2><ol>",
        title = escape(w.title),
        territory_word = w.territory,
        territory = escape(&territory),
        contents = w.contents,
    );
    for (theme, _, _) in &chapters {
        let _ = write!(
            html,
            "<li><a href=\"#{}\">{}</a></li>",
            chapter_id(*theme),
            escape(chapter_title(*theme, lang))
        );
    }
    html.push_str("</ol></nav>\n");
    for (number, (theme, findings, body)) in chapters.iter().enumerate() {
        let _ = write!(
            html,
            "<section class=\"chapter\" id=\"{}\">\n<h2>{}. {}</h2>\n",
            chapter_id(*theme),
            number + 1,
            escape(chapter_title(*theme, lang))
        );
        if !findings.is_empty() {
            let _ = write!(
                html,
                "<div class=\"findings\"><h3>{}</h3><p>{}</p></div>\n",
                w.findings,
                escape(&findings.join(" "))
            );
        }
        if body.is_empty() {
            let _ = writeln!(html, "<p>{}</p>", w.no_indicators);
        } else {
            html.push_str(body);
        }
        html.push_str("</section>\n");
    }
    html.push_str("</body>\n</html>\n");
    progress.finish_and_clear();
    Ok(Report {
        html,
        csv: csv.into_inner().expect("writing to memory"),
        figures,
        versions: engine.versions().clone(),
    })
}

fn methodology(engine: &QueryEngine, policy: Policy, options: &ReportOptions) -> String {
    let lang = options.lang;
    let mut html = String::new();
    let versions = engine.versions();
    let as_of: Vec<String> = versions
        .iter()
        .filter_map(|(name, v)| v.map(|v| format!("--as-of {name}={v}")))
        .collect();
    let mut command = format!(
        "osservatorio report --year {} --lang {}",
        options.year,
        lang.code()
    );
    for (name, value) in &options.territory {
        let _ = write!(command, " --{name} {value}");
    }
    command.push(' ');
    command.push_str(&as_of.join(" "));
    let threshold = format_number(policy.disclosure_threshold as f64, 0, lang);
    let reliability = &policy.survey.reliability;
    let (disclosure, survey, data, rebuild) = match lang {
        Lang::It => (
            format!("Ogni tabella e ogni grafico hanno superato il controllo di riservatezza: una cella con meno di {threshold} unità è soppressa (c), e altre celle sono soppresse quando permetterebbero di ricavarla per differenza da totali di riga, di colonna o generale (soppressione secondaria). La soglia minima di legge (Sistan) è 3. I valori dell'anno in corso sono provvisori (p)."),
            format!("Le stime da indagine usano i pesi, gli strati e le unità primarie del disegno campionario; gli errori standard sono linearizzati come nel pacchetto R survey, e gli intervalli di confidenza sono al 95%. Una stima è segnata u se poggia su meno di {} rispondenti o se il coefficiente di variazione supera il {}%. Strati con una sola unità primaria: regola {:?}.", reliability.min_n, format_number(reliability.max_cv * 100.0, 0, lang), policy.survey.lonely_psu),
            "Versioni delle tabelle lette",
            "Il rapporto si ricostruisce identico, byte per byte, con",
        ),
        Lang::En => (
            format!("Every table and chart passed disclosure control: a cell with fewer than {threshold} units is suppressed (c), and further cells are suppressed when they would let it be recovered by difference from row, column or grand totals (secondary suppression). The legal floor (Sistan) is 3. Values of the current year are provisional (p)."),
            format!("Survey estimates use the design's weights, strata and primary sampling units; standard errors are linearised as in R's survey package, and confidence intervals are at 95%. An estimate is flagged u when it rests on fewer than {} respondents or its coefficient of variation exceeds {}%. Strata with a single primary unit: rule {:?}.", reliability.min_n, format_number(reliability.max_cv * 100.0, 0, lang), policy.survey.lonely_psu),
            "Versions of the tables read",
            "The report is rebuilt byte for byte with",
        ),
    };
    let _ = write!(
        html,
        "<p>{}</p>\n<p>{}</p>\n<h3>{}</h3>\n<table><thead><tr><th>table</th><th>version</th></tr></thead><tbody>",
        escape(&disclosure),
        escape(&survey),
        data
    );
    for (name, version) in versions {
        let shown = version.map_or_else(|| "–".to_string(), |v| v.to_string());
        let _ = write!(
            html,
            "<tr><td>{}</td><td class=\"n\">{shown}</td></tr>",
            escape(name)
        );
    }
    let _ = write!(
        html,
        "</tbody></table>\n<p>Osservatorio {}. {}:</p>\n<pre>{}</pre>\n",
        env!("CARGO_PKG_VERSION"),
        rebuild,
        escape(&command)
    );
    html
}

/// Writes `report.html`, `indicators.csv` and `figures/` into `dir`. The
/// files are written beside it first and moved into place at the end, so a
/// failure leaves any previous report as it was.
pub fn write(report: &Report, dir: &Path) -> Result<(), ReportError> {
    let error = |path: &Path| {
        let path = path.to_path_buf();
        move |source| ReportError::Write { path, source }
    };
    let name = dir
        .file_name()
        .map_or_else(|| "report".into(), |n| n.to_string_lossy().into_owned());
    let staging = dir.with_file_name(format!(".{name}.partial-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&staging);
    let figures = staging.join("figures");
    std::fs::create_dir_all(&figures).map_err(error(&figures))?;
    let written = (|| -> Result<(), ReportError> {
        let html = staging.join("report.html");
        std::fs::write(&html, &report.html).map_err(error(&html))?;
        let csv = staging.join("indicators.csv");
        std::fs::write(&csv, &report.csv).map_err(error(&csv))?;
        for figure in &report.figures {
            for (extension, bytes) in [("svg", &figure.svg), ("png", &figure.png)] {
                let path = figures.join(format!("{}.{extension}", figure.id));
                std::fs::write(&path, bytes).map_err(error(&path))?;
            }
        }
        Ok(())
    })();
    if let Err(e) = written {
        let _ = std::fs::remove_dir_all(&staging);
        return Err(e);
    }
    let previous = dir.with_file_name(format!(".{name}.previous-{}", std::process::id()));
    if dir.exists() {
        std::fs::rename(dir, &previous).map_err(error(dir))?;
    }
    std::fs::rename(&staging, dir).map_err(error(dir))?;
    let _ = std::fs::remove_dir_all(&previous);
    Ok(())
}
