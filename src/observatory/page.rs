//! The committee page: one server-rendered HTML document with every
//! indicator grouped by theme, its chart inline, year and territory
//! selectors as plain GET forms, and a link to its CSV.
//!
//! Owns the page's markup and the choices its selectors offer. It must work
//! with scripts off and load nothing from anywhere: no scripts, no external
//! style sheets, fonts or images; charts are inline SVG.

use std::collections::BTreeMap;
use std::fmt::Write;

use arrow::array::{Array, AsArray};
use arrow::compute::cast;
use arrow::datatypes::DataType;

use super::{Observatory, ObservatoryError, Snapshot};
use crate::charts::{ChartOptions, ImageFormat};
use crate::indicators::{Lang, ParameterValues, Theme};
use crate::markup::escape;
use crate::query::QueryEngine;

/// The parameters chosen on the page, per indicator: the query string's
/// `ID.PARAM=VALUE` pairs. An empty value means the indicator's default.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct PageSelection {
    by_indicator: BTreeMap<String, ParameterValues>,
}

impl PageSelection {
    /// Reads `ID.PARAM=VALUE` pairs; other keys and empty values are ignored.
    pub fn from_pairs<'a>(pairs: impl IntoIterator<Item = (&'a str, &'a str)>) -> Self {
        let mut by_indicator: BTreeMap<String, ParameterValues> = BTreeMap::new();
        for (key, value) in pairs {
            let Some((id, parameter)) = key.split_once('.') else {
                continue;
            };
            if value.trim().is_empty() {
                continue;
            }
            by_indicator
                .entry(id.to_string())
                .or_default()
                .insert(parameter.to_string(), value.trim().to_string());
        }
        Self { by_indicator }
    }

    fn values(&self, id: &str) -> ParameterValues {
        self.by_indicator.get(id).cloned().unwrap_or_default()
    }
}

/// What the selectors offer: the years with data, and the provinces and
/// districts where households are recorded.
#[derive(Debug, Clone, Default)]
pub struct Choices {
    pub years: Vec<i32>,
    /// (ISTAT code, name).
    pub provinces: Vec<(String, String)>,
    pub districts: Vec<String>,
}

impl Choices {
    pub(super) async fn load(engine: &QueryEngine) -> Result<Self, ObservatoryError> {
        let dated = engine
            .run(
                "SELECT DISTINCT table_name FROM information_schema.columns \
                 WHERE column_name = 'year' AND table_schema = 'public' ORDER BY table_name",
            )
            .await?;
        let tables = strings(&dated.batches, 0);
        let mut years = Vec::new();
        if !tables.is_empty() {
            let union = tables
                .iter()
                .map(|t| format!("SELECT DISTINCT CAST(year AS INT) AS year FROM \"{t}\""))
                .collect::<Vec<_>>()
                .join(" UNION ");
            let result = engine
                .run(&format!(
                    "SELECT DISTINCT year FROM ({union}) WHERE year IS NOT NULL ORDER BY year"
                ))
                .await?;
            years = strings(&result.batches, 0)
                .iter()
                .filter_map(|y| y.parse().ok())
                .collect();
        }
        let places = engine
            .run(
                "SELECT DISTINCT t.province_code, t.province, t.district \
                 FROM territories t JOIN households h ON h.istat_code = t.istat_code \
                 ORDER BY t.province, t.district",
            )
            .await?;
        let codes = strings(&places.batches, 0);
        let names = strings(&places.batches, 1);
        let districts_column = strings(&places.batches, 2);
        let mut provinces: Vec<(String, String)> = codes.into_iter().zip(names).collect();
        provinces.dedup();
        let mut districts = districts_column;
        districts.sort();
        districts.dedup();
        Ok(Self {
            years,
            provinces,
            districts,
        })
    }
}

fn strings(batches: &[arrow::record_batch::RecordBatch], column: usize) -> Vec<String> {
    let mut out = Vec::new();
    for batch in batches {
        let values = cast(batch.column(column), &DataType::Utf8).expect("any column casts to text");
        let values = values.as_string::<i32>();
        out.extend(
            (0..values.len())
                .filter(|&i| values.is_valid(i))
                .map(|i| values.value(i).to_string()),
        );
    }
    out
}

/// Percent-encodes a query-string component.
fn encode(text: &str) -> String {
    url::form_urlencoded::byte_serialize(text.as_bytes()).collect()
}

const STYLE: &str = "body{font-family:system-ui,sans-serif;margin:0 auto;max-width:60rem;padding:1rem;color:#222}\
h1{font-size:1.6rem}h2{border-bottom:2px solid #2a6f97;padding-top:1rem}h3{font-size:1.1rem;margin-bottom:.3rem}\
article{margin:1.5rem 0;padding-bottom:1rem;border-bottom:1px solid #ddd}\
form{display:flex;gap:.8rem;flex-wrap:wrap;align-items:end;margin:.5rem 0}label{font-size:.85rem}\
figure{margin:0}figure svg{max-width:100%;height:auto}.error{color:#a00}.small{font-size:.85rem;color:#555}\
nav a{margin-right:1rem}";

struct Words {
    title: &'static str,
    intro: &'static str,
    update: &'static str,
    year: &'static str,
    province: &'static str,
    district: &'static str,
    default: &'static str,
    all: &'static str,
    csv: &'static str,
    unavailable: &'static str,
    other_language: &'static str,
    versions: &'static str,
    contents: &'static str,
}

fn words(lang: Lang) -> Words {
    match lang {
        Lang::It => Words {
            title: "Osservatorio sul lavoro di cura domiciliare",
            intro: "Indicatori per il comitato scientifico. Le celle con meno unità della soglia di riservatezza sono soppresse (c); i valori provvisori sono segnati (p), le stime poco affidabili (u).",
            update: "Aggiorna",
            year: "Anno",
            province: "Provincia",
            district: "Ambito distrettuale",
            default: "predefinito",
            all: "tutti",
            csv: "Scarica i dati (CSV)",
            unavailable: "Indicatore non disponibile",
            other_language: "English",
            versions: "Versioni delle tabelle",
            contents: "Temi",
        },
        Lang::En => Words {
            title: "Observatory on home care work",
            intro: "Indicators for the scientific committee. Cells with fewer units than the confidentiality threshold are suppressed (c); provisional values are marked (p), unreliable estimates (u).",
            update: "Update",
            year: "Year",
            province: "Province",
            district: "Social-care district",
            default: "default",
            all: "all",
            csv: "Download the data (CSV)",
            unavailable: "Indicator not available",
            other_language: "Italiano",
            versions: "Table versions",
            contents: "Themes",
        },
    }
}

/// Renders the page for `selection`. An indicator that fails is shown with
/// its error in place, so one bad indicator does not take the page down.
pub(super) async fn render(
    observatory: &Observatory,
    snapshot: &Snapshot,
    lang: Lang,
    selection: &PageSelection,
) -> String {
    let w = words(lang);
    let lang_code = lang.code();
    let other_lang = match lang {
        Lang::It => "en",
        Lang::En => "it",
    };
    let mut html = String::with_capacity(1 << 20);
    let _ = write!(
        html,
        "<!DOCTYPE html>\n<html lang=\"{lang_code}\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <title>{title}</title>\n<style>{STYLE}</style>\n</head>\n<body>\n\
         <header><h1>{title}</h1><p>{intro}</p>\n<nav><a href=\"?lang={other_lang}\" hreflang=\"{other_lang}\">{other}</a></nav>\n",
        title = escape(w.title),
        intro = escape(w.intro),
        other = w.other_language,
    );
    let indicators = snapshot.catalog.indicators();
    let themes: Vec<Theme> = Theme::ALL
        .into_iter()
        .filter(|t| indicators.iter().any(|i| i.spec.theme == *t))
        .collect();
    let _ = write!(html, "<nav aria-label=\"{}\"><ul>", escape(w.contents));
    for theme in &themes {
        let _ = write!(
            html,
            "<li><a href=\"#theme-{}\">{}</a></li>",
            theme.code(),
            escape(theme.label(lang))
        );
    }
    html.push_str("</ul></nav>\n</header>\n<main>\n");
    // Every chart at once: the engine runs them side by side.
    let options = ChartOptions {
        lang,
        ..ChartOptions::default()
    };
    let charts = futures::future::join_all(indicators.iter().map(|indicator| {
        let values = selection.values(&indicator.spec.id);
        async move {
            observatory
                .chart(&indicator.spec.id, &values, ImageFormat::Svg, options)
                .await
        }
    }))
    .await;
    for theme in &themes {
        let _ = writeln!(
            html,
            "<section id=\"theme-{}\">\n<h2>{}</h2>",
            theme.code(),
            escape(theme.label(lang))
        );
        for (indicator, chart) in indicators
            .iter()
            .zip(&charts)
            .filter(|(i, _)| i.spec.theme == *theme)
        {
            let spec = &indicator.spec;
            let values = selection.values(&spec.id);
            let _ = write!(
                html,
                "<article id=\"{id}\">\n<h3>{title}</h3>\n<p class=\"small\">{description}</p>\n",
                id = escape(&spec.id),
                title = escape(spec.title(lang)),
                description = escape(spec.description(lang)),
            );
            let _ = write!(
                html,
                "<form method=\"get\" action=\"#{}\">",
                escape(&spec.id)
            );
            let _ = write!(
                html,
                "<input type=\"hidden\" name=\"lang\" value=\"{lang_code}\">"
            );
            for (other_id, other_values) in &selection.by_indicator {
                if other_id == &spec.id {
                    continue;
                }
                for (name, value) in other_values {
                    let _ = write!(
                        html,
                        "<input type=\"hidden\" name=\"{}.{}\" value=\"{}\">",
                        escape(other_id),
                        escape(name),
                        escape(value)
                    );
                }
            }
            for parameter in &spec.parameters {
                let (label, options): (&str, Vec<(String, String)>) = match parameter.name.as_str()
                {
                    "year" => (
                        w.year,
                        snapshot
                            .choices
                            .years
                            .iter()
                            .map(|y| (y.to_string(), y.to_string()))
                            .collect(),
                    ),
                    "province" => (w.province, snapshot.choices.provinces.clone()),
                    "district" => (
                        w.district,
                        snapshot
                            .choices
                            .districts
                            .iter()
                            .map(|d| (d.clone(), d.clone()))
                            .collect(),
                    ),
                    _ => continue,
                };
                let field = format!("{}.{}", spec.id, parameter.name);
                let chosen = values.get(&parameter.name);
                let first = match &parameter.default {
                    Some(default) => {
                        format!("{} ({})", w.default, default.to_string().trim_matches('"'))
                    }
                    None => w.all.to_string(),
                };
                let _ = write!(
                    html,
                    "<label>{label}<br><select name=\"{field}\"><option value=\"\">{first}</option>",
                    label = escape(label),
                    field = escape(&field),
                    first = escape(&first),
                );
                for (value, text) in options {
                    let selected = if chosen == Some(&value) {
                        " selected"
                    } else {
                        ""
                    };
                    let _ = write!(
                        html,
                        "<option value=\"{}\"{selected}>{}</option>",
                        escape(&value),
                        escape(&text)
                    );
                }
                html.push_str("</select></label>");
            }
            let _ = writeln!(
                html,
                "<button type=\"submit\">{}</button></form>",
                escape(w.update)
            );
            match chart {
                Ok(chart) => {
                    html.push_str("<figure>");
                    html.push_str(&String::from_utf8_lossy(&chart.bytes));
                    html.push_str("</figure>\n");
                }
                Err(error) => {
                    tracing::warn!(indicator = %spec.id, %error, "indicator failed on the committee page");
                    let _ = writeln!(
                        html,
                        "<p class=\"error\">{}: {}</p>",
                        escape(w.unavailable),
                        escape(&error.to_string())
                    );
                }
            }
            let mut csv_link = format!(
                "/api/indicators/{}?format=csv&amp;lang={lang_code}",
                encode(&spec.id)
            );
            for (name, value) in &values {
                let _ = write!(csv_link, "&amp;{}={}", encode(name), encode(value));
            }
            let _ = writeln!(
                html,
                "<p><a href=\"{csv_link}\" download>{}</a></p>\n</article>",
                escape(w.csv)
            );
        }
        html.push_str("</section>\n");
    }
    let _ = write!(
        html,
        "</main>\n<footer class=\"small\"><p>{}: ",
        escape(w.versions)
    );
    let versions: Vec<String> = snapshot
        .versions()
        .iter()
        .map(|(name, version)| match version {
            Some(v) => format!("{name} v{v}"),
            None => format!("{name} –"),
        })
        .collect();
    html.push_str(&escape(&versions.join(", ")));
    html.push_str("</p></footer>\n</body>\n</html>\n");
    html
}
