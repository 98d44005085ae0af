//! Indicator files: a TOML header in leading `-- ` comment lines, then one
//! SELECT. Parsing and checking the header; the SQL is planned elsewhere.
//!
//! Owns the file format of `queries/*.sql`. It must not run queries.

use std::path::{Path, PathBuf};

use serde::Deserialize;

use super::IndicatorError;

/// The observatory's themes, which group indicators in reports and pages.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Theme {
    Context,
    Workforce,
    Demand,
    Contracts,
    Desks,
    Support,
    Survey,
    Staff,
}

impl Theme {
    pub fn code(self) -> &'static str {
        match self {
            Theme::Context => "context",
            Theme::Workforce => "workforce",
            Theme::Demand => "demand",
            Theme::Contracts => "contracts",
            Theme::Desks => "desks",
            Theme::Support => "support",
            Theme::Survey => "survey",
            Theme::Staff => "staff",
        }
    }

    /// The theme's heading in pages and reports.
    pub fn label(self, lang: Lang) -> &'static str {
        let (it, en) = match self {
            Theme::Context => ("Contesto demografico", "Demographic context"),
            Theme::Workforce => ("Le assistenti familiari", "The care workforce"),
            Theme::Demand => ("Domanda e incontro", "Demand and matching"),
            Theme::Contracts => ("Contratti e regolarità", "Contracts and regularity"),
            Theme::Desks => ("Attività degli sportelli", "Desks' activity"),
            Theme::Support => ("Misure di sostegno", "Support measures"),
            Theme::Survey => ("Indagine campionaria", "Sample survey"),
            Theme::Staff => (
                "Obiettivi del progetto S.T.A.F.F.",
                "S.T.A.F.F. project targets",
            ),
        };
        match lang {
            Lang::It => it,
            Lang::En => en,
        }
    }

    /// Every theme, in the order pages and reports present them.
    pub const ALL: [Theme; 8] = [
        Theme::Context,
        Theme::Workforce,
        Theme::Demand,
        Theme::Contracts,
        Theme::Desks,
        Theme::Support,
        Theme::Survey,
        Theme::Staff,
    ];
}

/// How an indicator is drawn.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ChartKind {
    Bar,
    GroupedBar,
    StackedBar,
    Line,
    Pyramid,
    TargetVsActual,
}

/// The type of a parameter, which decides how its text is bound.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ParameterType {
    Int,
    Text,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ParameterSpec {
    pub name: String,
    #[serde(rename = "type")]
    pub parameter_type: ParameterType,
    /// Absent means NULL, which by convention means "all".
    #[serde(default)]
    pub default: Option<toml::Value>,
    #[serde(default)]
    pub description: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DisclosureSpec {
    /// Result column with the unweighted count of units behind each cell.
    pub count: String,
    /// Overrides the global threshold for this indicator.
    #[serde(default)]
    pub threshold: Option<i64>,
    /// Measures that are public figures (a project's targets, resident
    /// population) and stay published when their row's count is suppressed.
    #[serde(default)]
    pub public: Vec<String>,
    /// A boolean result column (e.g. a survey estimate's `unreliable`) that
    /// adds the flag `u` to its row.
    #[serde(default)]
    pub reliability: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TargetSpec {
    pub project: String,
    pub target_ids: Vec<String>,
}

/// The header of an indicator file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IndicatorSpec {
    pub id: String,
    pub theme: Theme,
    pub title_it: String,
    pub title_en: String,
    pub description_it: String,
    pub description_en: String,
    pub unit: String,
    pub dimensions: Vec<String>,
    pub measures: Vec<String>,
    pub chart: ChartKind,
    pub sources: Vec<String>,
    #[serde(default)]
    pub time_dimension: Option<String>,
    pub disclosure: DisclosureSpec,
    #[serde(default)]
    pub parameters: Vec<ParameterSpec>,
    #[serde(default)]
    pub targets: Option<TargetSpec>,
    /// Where the indicator was read from.
    #[serde(skip)]
    pub path: PathBuf,
    /// The SELECT, as written.
    #[serde(skip)]
    pub sql: String,
    /// 1-based line of the file where the SQL starts.
    #[serde(skip)]
    pub sql_line: usize,
}

impl IndicatorSpec {
    pub fn title(&self, lang: Lang) -> &str {
        match lang {
            Lang::It => &self.title_it,
            Lang::En => &self.title_en,
        }
    }

    pub fn description(&self, lang: Lang) -> &str {
        match lang {
            Lang::It => &self.description_it,
            Lang::En => &self.description_en,
        }
    }

    pub fn parameter(&self, name: &str) -> Option<&ParameterSpec> {
        self.parameters.iter().find(|p| p.name == name)
    }

    /// Parses one indicator file's text.
    pub fn parse(path: &Path, text: &str) -> Result<Self, IndicatorError> {
        let mut header = String::new();
        let mut header_lines = 0;
        for line in text.lines() {
            let trimmed = line.trim_start();
            if let Some(rest) = trimmed.strip_prefix("--") {
                header.push_str(rest.strip_prefix(' ').unwrap_or(rest));
                header.push('\n');
                header_lines += 1;
            } else {
                break;
            }
        }
        let sql: String = text
            .lines()
            .skip(header_lines)
            .collect::<Vec<_>>()
            .join("\n");
        let blank_lines = sql.lines().take_while(|l| l.trim().is_empty()).count();
        let sql_line = header_lines + blank_lines + 1;
        let error = |line: usize, message: String| IndicatorError::Parse {
            path: path.to_path_buf(),
            line,
            message,
        };
        if header.trim().is_empty() {
            return Err(error(
                1,
                "the file must start with a `-- ` comment header in TOML".into(),
            ));
        }
        let mut spec: IndicatorSpec = toml::from_str(&header).map_err(|e| {
            let line = e
                .span()
                .map_or(1, |span| header[..span.start].lines().count().max(1));
            error(line, e.message().to_string())
        })?;
        if sql.trim().is_empty() {
            return Err(error(
                sql_line,
                "the header is not followed by a SELECT".into(),
            ));
        }
        let expected_id = path
            .file_stem()
            .and_then(|s| s.to_str())
            .unwrap_or_default();
        if spec.id != expected_id {
            return Err(error(
                1,
                format!("id `{}` must equal the file name `{expected_id}`", spec.id),
            ));
        }
        if spec.measures.is_empty() {
            return Err(error(1, "declare at least one measure".into()));
        }
        let declared = |c: &String| spec.dimensions.contains(c) || spec.measures.contains(c);
        if !declared(&spec.disclosure.count) {
            return Err(error(
                1,
                format!(
                    "disclosure count `{}` is not a declared measure",
                    spec.disclosure.count
                ),
            ));
        }
        if let Some(measure) = spec
            .disclosure
            .public
            .iter()
            .find(|m| !spec.measures.contains(m))
        {
            return Err(error(
                1,
                format!("public measure `{measure}` is not a declared measure"),
            ));
        }
        if spec.disclosure.public.contains(&spec.disclosure.count) {
            return Err(error(1, "the disclosure count cannot be public".into()));
        }
        if let Some(time) = &spec.time_dimension {
            if !spec.dimensions.contains(time) {
                return Err(error(
                    1,
                    format!("time_dimension `{time}` is not a declared dimension"),
                ));
            }
        }
        for parameter in &spec.parameters {
            let ok = match (&parameter.default, parameter.parameter_type) {
                (None, _) => true,
                (Some(toml::Value::Integer(_)), ParameterType::Int) => true,
                (Some(toml::Value::String(_)), ParameterType::Text) => true,
                _ => false,
            };
            if !ok {
                return Err(error(
                    1,
                    format!(
                        "the default of parameter `{}` does not match its type",
                        parameter.name
                    ),
                ));
            }
        }
        spec.path = path.to_path_buf();
        spec.sql = sql.trim().trim_end_matches(';').to_string();
        spec.sql_line = sql_line;
        Ok(spec)
    }
}

/// Language of labels and titles.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum Lang {
    #[default]
    It,
    En,
}

impl Lang {
    /// The ISO 639-1 code, as HTML's `lang` and the `?lang=` parameter use.
    pub fn code(self) -> &'static str {
        match self {
            Lang::It => "it",
            Lang::En => "en",
        }
    }
}
