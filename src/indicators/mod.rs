//! Indicators: the SQL files of the queries directory, their parameters, and
//! running them into typed, disclosure-controlled results.
//!
//! Owns loading `queries/*.sql` (read at run time, so a new indicator needs
//! no rebuild), checking every file at start-up, binding parameters as
//! DataFusion parameters, and applying disclosure control to every result
//! before it leaves the library. It must not know HTTP or read files other
//! than the queries directory.

mod labels;
mod output;
mod result;
mod spec;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use datafusion::logical_expr::LogicalPlan;
use datafusion::scalar::ScalarValue;
use sha2::{Digest, Sha256};

use crate::query::{QueryEngine, QueryError};

pub use labels::CodeLabels;
pub use output::{to_json, write_indicator, IndicatorFormat};
pub use result::{IndicatorResult, SuppressionSummary, FLAG_COLUMN};
pub use spec::{
    ChartKind, DisclosureSpec, IndicatorSpec, Lang, ParameterSpec, ParameterType, TargetSpec, Theme,
};

/// Name of the optional file of code labels in the queries directory.
pub const LABELS_FILE: &str = "codes.toml";

/// Everything that can go wrong with indicators.
#[derive(Debug, thiserror::Error)]
pub enum IndicatorError {
    /// The queries directory cannot be read.
    #[error("queries directory {path}: {source}")]
    Directory {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// An indicator file's header is malformed.
    #[error("{}:{line}: {message}", path.display())]
    Parse {
        path: PathBuf,
        line: usize,
        message: String,
    },
    /// An indicator's SQL does not plan against the catalog.
    #[error("{}:{line}: {message}", path.display())]
    Plan {
        path: PathBuf,
        line: usize,
        message: String,
    },
    /// Two files declare the same id.
    #[error("indicator `{id}` is defined twice: {} and {}", first.display(), second.display())]
    Duplicate {
        id: String,
        first: PathBuf,
        second: PathBuf,
    },
    /// No indicator has this id.
    #[error("unknown indicator `{id}`; the indicators are: {known}")]
    Unknown { id: String, known: String },
    /// A parameter value is not accepted.
    #[error("indicator `{indicator}`: {message}")]
    Parameter { indicator: String, message: String },
    /// The result does not have the columns its header declares.
    #[error("indicator `{indicator}`: {message}")]
    Shape { indicator: String, message: String },
    /// Running the query failed.
    #[error("indicator `{indicator}`: {source}")]
    Query {
        indicator: String,
        #[source]
        source: QueryError,
    },
    /// Disclosure control could not be applied.
    #[error("indicator `{indicator}`: disclosure control: {source}")]
    Disclosure {
        indicator: String,
        #[source]
        source: crate::disclosure::DisclosureError,
    },
}

/// One loaded and checked indicator.
#[derive(Debug, Clone)]
pub struct Indicator {
    pub spec: Arc<IndicatorSpec>,
    plan: LogicalPlan,
    tables: Vec<String>,
}

impl Indicator {
    /// The warehouse tables the query reads, from its plan, sorted.
    pub fn tables(&self) -> &[String] {
        &self.tables
    }
}

/// Parameter values as the user gives them: text, typed by the indicator.
pub type ParameterValues = BTreeMap<String, String>;

/// Every indicator of the queries directory, parsed and planned.
#[derive(Debug, Clone)]
pub struct IndicatorCatalog {
    indicators: Vec<Indicator>,
    labels: CodeLabels,
    default_threshold: i64,
    fingerprint: String,
}

impl IndicatorCatalog {
    /// Reads and plans every `*.sql` file of `dir` against the engine's
    /// tables. The first broken file stops the load with its path and line.
    pub async fn load(
        dir: &Path,
        engine: &QueryEngine,
        default_threshold: i64,
    ) -> Result<Self, IndicatorError> {
        let read_error = |source| IndicatorError::Directory {
            path: dir.to_path_buf(),
            source,
        };
        let mut paths: Vec<PathBuf> = std::fs::read_dir(dir)
            .map_err(read_error)?
            .filter_map(|entry| entry.ok().map(|e| e.path()))
            .filter(|path| path.extension().is_some_and(|e| e == "sql"))
            .collect();
        paths.sort();
        let mut indicators: Vec<Indicator> = Vec::with_capacity(paths.len());
        let mut sources = Sha256::new();
        for path in paths {
            let text =
                std::fs::read_to_string(&path).map_err(|source| IndicatorError::Directory {
                    path: path.clone(),
                    source,
                })?;
            sources.update(path.file_name().map_or(&b""[..], |n| n.as_encoded_bytes()));
            sources.update(text.as_bytes());
            let spec = IndicatorSpec::parse(&path, &text)?;
            if let Some(other) = indicators.iter().find(|i| i.spec.id == spec.id) {
                return Err(IndicatorError::Duplicate {
                    id: spec.id,
                    first: other.spec.path.clone(),
                    second: path,
                });
            }
            let plan = plan_indicator(&spec, engine).await?;
            indicators.push(Indicator {
                spec: Arc::new(spec),
                tables: tables_read(&plan),
                plan,
            });
        }
        let labels_path = dir.join(LABELS_FILE);
        let labels = CodeLabels::load(&labels_path)?;
        sources.update(std::fs::read(&labels_path).unwrap_or_default());
        Ok(Self {
            indicators,
            labels,
            default_threshold,
            fingerprint: hex::encode(sources.finalize()),
        })
    }

    pub fn indicators(&self) -> &[Indicator] {
        &self.indicators
    }

    /// A hash of every indicator file and the labels: outputs cached under
    /// one fingerprint are stale under another.
    pub fn fingerprint(&self) -> &str {
        &self.fingerprint
    }

    pub fn labels(&self) -> &CodeLabels {
        &self.labels
    }

    pub fn get(&self, id: &str) -> Result<&Indicator, IndicatorError> {
        self.indicators
            .iter()
            .find(|i| i.spec.id == id)
            .ok_or_else(|| IndicatorError::Unknown {
                id: id.to_string(),
                known: self
                    .indicators
                    .iter()
                    .map(|i| i.spec.id.as_str())
                    .collect::<Vec<_>>()
                    .join(", "),
            })
    }

    /// Runs one indicator with `values` bound to its parameters and returns
    /// the result after disclosure control.
    pub async fn run(
        &self,
        engine: &QueryEngine,
        id: &str,
        values: &ParameterValues,
    ) -> Result<IndicatorResult, IndicatorError> {
        let indicator = self.get(id)?;
        let spec = &indicator.spec;
        let bound = bind_parameters(spec, values)?;
        let params: Vec<(String, ScalarValue)> =
            bound.iter().map(|(n, v)| (n.clone(), v.clone())).collect();
        let query_error = |source| IndicatorError::Query {
            indicator: spec.id.clone(),
            source,
        };
        let plan = indicator
            .plan
            .clone()
            .with_param_values(params)
            .map_err(|e| query_error(QueryError::Invalid(e)))?;
        let raw = engine.run_plan(plan).await.map_err(query_error)?;
        let threshold = spec.disclosure.threshold.unwrap_or(self.default_threshold);
        result::protect(spec.clone(), bound, raw, threshold, current_year())
    }
}

fn tables_read(plan: &LogicalPlan) -> Vec<String> {
    use datafusion::common::tree_node::TreeNodeRecursion;
    let mut tables = std::collections::BTreeSet::new();
    plan.apply_with_subqueries(|node| {
        if let LogicalPlan::TableScan(scan) = node {
            tables.insert(scan.table_name.table().to_string());
        }
        Ok(TreeNodeRecursion::Continue)
    })
    .expect("visiting a plan without a fallible step");
    tables.into_iter().collect()
}

fn current_year() -> i32 {
    use chrono::Datelike;
    chrono::Local::now().year()
}

/// Plans the indicator's SQL through the read-only gate and checks that the
/// result has the declared columns and that every placeholder is declared.
async fn plan_indicator(
    spec: &IndicatorSpec,
    engine: &QueryEngine,
) -> Result<LogicalPlan, IndicatorError> {
    let plan = engine
        .plan(&spec.sql)
        .await
        .map_err(|e| plan_error(spec, &e))?;
    let shape_error = |message: String| IndicatorError::Plan {
        path: spec.path.clone(),
        line: spec.sql_line,
        message,
    };
    let schema = plan.schema();
    for column in spec
        .dimensions
        .iter()
        .chain(&spec.measures)
        .chain(&spec.disclosure.reliability)
    {
        if schema.field_with_unqualified_name(column).is_err() {
            return Err(shape_error(format!(
                "the SELECT returns no column `{column}` declared in the header"
            )));
        }
    }
    let used = plan
        .get_parameter_types()
        .map_err(|e| shape_error(e.to_string()))?;
    for name in used.keys() {
        let name = name.trim_start_matches('$');
        if spec.parameter(name).is_none() {
            return Err(shape_error(format!(
                "the SQL uses `${name}`, which the header does not declare"
            )));
        }
    }
    Ok(plan)
}

/// Maps a planning error to the file line it refers to: DataFusion reports
/// lines relative to the SQL text, which starts after the header.
fn plan_error(spec: &IndicatorSpec, error: &QueryError) -> IndicatorError {
    let message = error.to_string();
    let relative = regex::Regex::new(r"Line: (\d+)")
        .expect("valid regex")
        .captures(&message)
        .and_then(|c| c[1].parse::<usize>().ok())
        .unwrap_or(1);
    IndicatorError::Plan {
        path: spec.path.clone(),
        line: spec.sql_line + relative - 1,
        message,
    }
}

/// Types the user's text values by the header and fills in defaults. Values
/// for parameters the indicator does not have are refused, so a filter is
/// never silently ignored.
fn bind_parameters(
    spec: &IndicatorSpec,
    values: &ParameterValues,
) -> Result<Vec<(String, ScalarValue)>, IndicatorError> {
    let error = |message: String| IndicatorError::Parameter {
        indicator: spec.id.clone(),
        message,
    };
    for name in values.keys() {
        if spec.parameter(name).is_none() {
            let accepted: Vec<&str> = spec.parameters.iter().map(|p| p.name.as_str()).collect();
            return Err(error(format!(
                "it has no parameter `{name}`; it accepts: {}",
                if accepted.is_empty() {
                    "none".to_string()
                } else {
                    accepted.join(", ")
                }
            )));
        }
    }
    spec.parameters
        .iter()
        .map(|p| {
            let value = match (values.get(&p.name), p.parameter_type) {
                (Some(text), ParameterType::Int) => {
                    ScalarValue::Int32(Some(text.trim().parse().map_err(|_| {
                        error(format!("`{}` must be a whole number, not `{text}`", p.name))
                    })?))
                }
                (Some(text), ParameterType::Text) => ScalarValue::Utf8(Some(text.clone())),
                (None, ParameterType::Int) => ScalarValue::Int32(
                    p.default
                        .as_ref()
                        .and_then(|d| d.as_integer())
                        .map(|v| v as i32),
                ),
                (None, ParameterType::Text) => ScalarValue::Utf8(
                    p.default
                        .as_ref()
                        .and_then(|d| d.as_str())
                        .map(str::to_string),
                ),
            };
            Ok((p.name.clone(), value))
        })
        .collect()
}
