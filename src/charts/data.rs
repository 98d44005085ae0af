//! The numbers a chart shows, taken from an indicator result: categories
//! along the axis, series within them, and which cells are suppressed.
//!
//! Owns the choice of axes from the indicator's dimensions; it must not
//! draw.

use std::collections::HashMap;

use crate::indicators::{ChartKind, CodeLabels, IndicatorResult, Lang};

/// Code of a total in a dimension; totals are left out of charts, which
/// show their parts.
const TOTAL: &str = "_T";

/// One cell of the chart.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Value {
    Number(f64),
    /// Withheld by disclosure control: drawn as such, never as zero.
    Suppressed,
    /// No row for this category and series.
    Missing,
}

impl Value {
    pub fn number(self) -> Option<f64> {
        match self {
            Value::Number(v) => Some(v),
            _ => None,
        }
    }
}

#[derive(Debug, Clone)]
pub struct ChartData {
    pub title: String,
    pub unit: String,
    pub footnote: String,
    /// Labels along the category axis, in result order.
    pub categories: Vec<String>,
    /// Labels of the series (bars within a category, lines, pyramid sides).
    pub series: Vec<String>,
    values: HashMap<(usize, usize), Value>,
    /// 95% confidence intervals of survey estimates, drawn as error bars.
    intervals: HashMap<(usize, usize), (f64, f64)>,
}

impl ChartData {
    pub fn from_result(result: &IndicatorResult, labels: &CodeLabels, lang: Lang) -> Self {
        let spec = &result.spec;
        // The category axis is the time dimension of a line chart, otherwise
        // the first dimension; a second dimension, if any, gives the series.
        let category_dim = match (&spec.time_dimension, spec.chart) {
            (Some(time), ChartKind::Line) => Some(time.clone()),
            _ => spec.dimensions.first().cloned(),
        };
        let series_dim = spec
            .dimensions
            .iter()
            .find(|d| Some(*d) != category_dim.as_ref())
            .cloned();
        let measures: Vec<&String> = match (spec.chart, &series_dim) {
            (ChartKind::TargetVsActual, _) => spec.measures.iter().take(2).collect(),
            _ => spec.measures.iter().take(1).collect(),
        };
        let is_total = |row: usize| {
            spec.dimensions
                .iter()
                .any(|d| result.dimension(d, row) == Some(TOTAL))
        };
        let all_totals = (0..result.num_rows()).all(is_total);
        let mut categories: Vec<String> = Vec::new();
        let mut series: Vec<String> = Vec::new();
        let mut values = HashMap::new();
        let mut intervals = HashMap::new();
        let index_of =
            |list: &mut Vec<String>, label: String| match list.iter().position(|l| *l == label) {
                Some(i) => i,
                None => {
                    list.push(label);
                    list.len() - 1
                }
            };
        for row in 0..result.num_rows() {
            if is_total(row) && !all_totals {
                continue;
            }
            let category = match (&category_dim, spec.chart) {
                // Targets are set per cell, so every dimension names the bar group.
                (Some(_), ChartKind::TargetVsActual) => spec
                    .dimensions
                    .iter()
                    .map(|d| labels.label(d, result.dimension(d, row).unwrap_or_default(), lang))
                    .collect::<Vec<_>>()
                    .join(" · "),
                (Some(d), _) => labels
                    .label(d, result.dimension(d, row).unwrap_or_default(), lang)
                    .to_string(),
                (None, _) => spec.title(lang).to_string(),
            };
            let c = index_of(&mut categories, category);
            let suppressed = result.flags(row).contains('c');
            for measure in &measures {
                let series_label = match (&series_dim, spec.chart) {
                    (Some(d), chart) if chart != ChartKind::TargetVsActual => labels
                        .label(d, result.dimension(d, row).unwrap_or_default(), lang)
                        .to_string(),
                    _ => labels.label("measure", measure, lang).to_string(),
                };
                let s = index_of(&mut series, series_label);
                let value = match result.measure(measure, row) {
                    _ if suppressed && !spec.disclosure.public.contains(measure) => {
                        Value::Suppressed
                    }
                    Some(v) => Value::Number(v),
                    None => Value::Missing,
                };
                values.insert((c, s), value);
                if let (Value::Number(_), Some(low), Some(high)) = (
                    value,
                    result.measure("ci_low", row),
                    result.measure("ci_high", row),
                ) {
                    intervals.insert((c, s), (low, high));
                }
            }
        }
        if series.is_empty() {
            series.push(labels.label("measure", &spec.measures[0], lang).to_string());
        }
        let mut filters: Vec<String> = Vec::new();
        for (name, _) in &result.parameters {
            if let Some(value) = result.parameter(name) {
                filters.push(format!("{} {value}", labels.label("parameter", name, lang)));
            }
        }
        let title = if filters.is_empty() {
            spec.title(lang).to_string()
        } else {
            format!("{} – {}", spec.title(lang), filters.join(", "))
        };
        let footnote = match lang {
            Lang::It => format!(
                "Fonte: Osservatorio. c = dato riservato (meno di {} unità o soppressione secondaria).",
                result.suppression.threshold
            ),
            Lang::En => format!(
                "Source: Osservatorio. c = confidential (fewer than {} units, or secondary suppression).",
                result.suppression.threshold
            ),
        };
        Self {
            title,
            unit: labels.label("unit", &spec.unit, lang).to_string(),
            footnote,
            categories,
            series,
            values,
            intervals,
        }
    }

    pub fn value(&self, category: usize, series: usize) -> Value {
        self.values
            .get(&(category, series))
            .copied()
            .unwrap_or(Value::Missing)
    }

    pub fn max_value(&self) -> f64 {
        let values = self.values.values().filter_map(|v| v.number());
        let highs = self.intervals.values().map(|(_, high)| *high);
        values.chain(highs).fold(0.0, f64::max)
    }

    /// The confidence interval of a cell, if the indicator publishes one.
    pub fn interval(&self, category: usize, series: usize) -> Option<(f64, f64)> {
        self.intervals.get(&(category, series)).copied()
    }

    /// True when category labels need room under the axis.
    pub fn long_labels(&self) -> bool {
        self.categories.iter().any(|c| c.chars().count() > 10)
    }
}
