//! An indicator's result after disclosure control: dimensions as codes,
//! measures as numbers with suppressed cells set to null, and a flag column.
//!
//! Owns turning the query's raw batches into that shape and applying the
//! suppression rules of `disclosure`. Nothing else builds an
//! [`IndicatorResult`], so no published path can skip the rules.

use std::sync::Arc;

use arrow::array::{Array, ArrayRef, Float64Array, Int64Array, RecordBatch, StringArray};
use arrow::compute::cast;
use arrow::datatypes::{DataType, Field, Schema};
use datafusion::scalar::ScalarValue;

use super::{IndicatorError, IndicatorSpec};
use crate::disclosure::{protect as protect_table, Cell, CountTable, Flag, Rule, Suppression};
use crate::query::QueryResult;

/// Name of the column that carries each row's flags (`c`, `p`).
pub const FLAG_COLUMN: &str = "flag";
/// Code for a dimension value the query left empty (SDMX "not applicable").
const NOT_APPLICABLE: &str = "_Z";

/// How many cells disclosure control suppressed, and under which rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SuppressionSummary {
    pub threshold: i64,
    pub primary: usize,
    pub secondary: usize,
}

/// A published indicator table.
#[derive(Debug, Clone)]
pub struct IndicatorResult {
    pub spec: Arc<IndicatorSpec>,
    /// The parameter values the result was computed with.
    pub parameters: Vec<(String, ScalarValue)>,
    /// Dimensions (text), measures (float, null when suppressed), then flags.
    pub batch: RecordBatch,
    pub suppression: SuppressionSummary,
}

impl IndicatorResult {
    /// The dimension value of `row`.
    pub fn dimension(&self, name: &str, row: usize) -> Option<&str> {
        let column = self
            .batch
            .column_by_name(name)?
            .as_any()
            .downcast_ref::<StringArray>()?;
        Some(column.value(row))
    }

    /// The measure value of `row`; `None` when suppressed or missing.
    pub fn measure(&self, name: &str, row: usize) -> Option<f64> {
        let column = self
            .batch
            .column_by_name(name)?
            .as_any()
            .downcast_ref::<Float64Array>()?;
        column.is_valid(row).then(|| column.value(row))
    }

    /// The flags of `row`, e.g. `c` for a suppressed cell; empty if none.
    pub fn flags(&self, row: usize) -> &str {
        let column = self
            .batch
            .column_by_name(FLAG_COLUMN)
            .and_then(|c| c.as_any().downcast_ref::<StringArray>());
        match column {
            Some(c) if c.is_valid(row) => c.value(row),
            _ => "",
        }
    }

    pub fn num_rows(&self) -> usize {
        self.batch.num_rows()
    }

    /// The value of a bound parameter, as text; `None` when NULL.
    pub fn parameter(&self, name: &str) -> Option<String> {
        let (_, value) = self.parameters.iter().find(|(n, _)| n == name)?;
        (!value.is_null()).then(|| value.to_string())
    }
}

/// Shapes the raw result and applies disclosure control to it.
pub(super) fn protect(
    spec: Arc<IndicatorSpec>,
    parameters: Vec<(String, ScalarValue)>,
    raw: QueryResult,
    threshold: i64,
    current_year: i32,
) -> Result<IndicatorResult, IndicatorError> {
    let shape_error = |message: String| IndicatorError::Shape {
        indicator: spec.id.clone(),
        message,
    };
    if raw.truncated {
        return Err(shape_error(
            "the result exceeds the row limit; it cannot be published partially".into(),
        ));
    }
    let all = arrow::compute::concat_batches(&raw.schema, &raw.batches)
        .map_err(|e| shape_error(e.to_string()))?;
    let column = |name: &str, to: &DataType| -> Result<ArrayRef, IndicatorError> {
        let array = all
            .column_by_name(name)
            .ok_or_else(|| shape_error(format!("the result has no column `{name}`")))?;
        cast(array, to).map_err(|e| shape_error(format!("column `{name}`: {e}")))
    };
    let rows = all.num_rows();

    let mut dimension_values: Vec<Vec<String>> = Vec::with_capacity(spec.dimensions.len());
    for name in &spec.dimensions {
        let array = column(name, &DataType::Utf8)?;
        let text = array
            .as_any()
            .downcast_ref::<StringArray>()
            .expect("cast to utf8");
        dimension_values.push(
            (0..rows)
                .map(|i| {
                    if text.is_valid(i) {
                        text.value(i).to_string()
                    } else {
                        NOT_APPLICABLE.to_string()
                    }
                })
                .collect(),
        );
    }
    let counts = column(&spec.disclosure.count, &DataType::Int64)?;
    let counts = counts
        .as_any()
        .downcast_ref::<Int64Array>()
        .expect("cast to int64");
    let table = CountTable {
        dimensions: spec.dimensions.clone(),
        cells: (0..rows)
            .map(|i| Cell {
                coordinates: dimension_values.iter().map(|d| d[i].clone()).collect(),
                count: if counts.is_valid(i) {
                    counts.value(i)
                } else {
                    0
                },
            })
            .collect(),
    };
    let protection = protect_table(
        &table,
        &Rule {
            threshold,
            ..Rule::default()
        },
    )
    .map_err(|source| IndicatorError::Disclosure {
        indicator: spec.id.clone(),
        source,
    })?;
    let suppressed: Vec<bool> = protection
        .suppressed
        .iter()
        .map(|s| *s != Suppression::Published)
        .collect();

    let provisional = parameters
        .iter()
        .find(|(name, _)| name == "year")
        .and_then(|(_, value)| match value {
            ScalarValue::Int32(Some(year)) => Some(*year >= current_year),
            _ => None,
        })
        .unwrap_or(false);

    let mut fields = Vec::new();
    let mut columns: Vec<ArrayRef> = Vec::new();
    for (name, values) in spec.dimensions.iter().zip(&dimension_values) {
        fields.push(Field::new(name, DataType::Utf8, false));
        columns.push(Arc::new(StringArray::from_iter_values(values)));
    }
    for name in &spec.measures {
        let array = column(name, &DataType::Float64)?;
        let values = array
            .as_any()
            .downcast_ref::<Float64Array>()
            .expect("cast to float64");
        let public = spec.disclosure.public.contains(name);
        let published: Float64Array = (0..rows)
            .map(|i| ((public || !suppressed[i]) && values.is_valid(i)).then(|| values.value(i)))
            .collect();
        fields.push(Field::new(name, DataType::Float64, true));
        columns.push(Arc::new(published));
    }
    let unreliable: Vec<bool> = match &spec.disclosure.reliability {
        Some(name) => {
            let array = column(name, &DataType::Boolean)?;
            let values = array
                .as_any()
                .downcast_ref::<arrow::array::BooleanArray>()
                .expect("cast to boolean");
            (0..rows)
                .map(|i| values.is_valid(i) && values.value(i))
                .collect()
        }
        None => vec![false; rows],
    };
    let flags: StringArray = (0..rows)
        .map(|i| {
            let mut flags = String::new();
            if suppressed[i] {
                flags.push(Flag::Confidential.eurostat_code());
            } else if unreliable[i] {
                flags.push(Flag::LowReliability.eurostat_code());
            }
            if provisional {
                flags.push(Flag::Provisional.eurostat_code());
            }
            (!flags.is_empty()).then_some(flags)
        })
        .collect();
    fields.push(Field::new(FLAG_COLUMN, DataType::Utf8, true));
    columns.push(Arc::new(flags));
    let batch = RecordBatch::try_new(Arc::new(Schema::new(fields)), columns)
        .map_err(|e| shape_error(e.to_string()))?;
    let summary = SuppressionSummary {
        threshold,
        primary: protection
            .suppressed
            .iter()
            .filter(|s| **s == Suppression::Primary)
            .count(),
        secondary: protection
            .suppressed
            .iter()
            .filter(|s| **s == Suppression::Secondary)
            .count(),
    };
    Ok(IndicatorResult {
        spec,
        parameters,
        batch,
        suppression: summary,
    })
}
