//! The survey estimators as DataFusion aggregate functions.
//!
//! `svy_mean(y, weight, stratum, psu [, in_domain])`, `svy_total(...)`,
//! `svy_prop(flag, weight, stratum, psu [, in_domain])` and
//! `svy_ratio(y, x, weight, stratum, psu [, in_domain])` each return a struct
//! `{estimate, se, ci_low, ci_high, degf, n, cv, unreliable}` (plus
//! `logit_low`, `logit_high` for proportions). A domain is given by the last
//! argument, not by `GROUP BY`, because a domain's standard error needs the
//! whole design: every stratum and PSU, also those with no member in it.
//! Owns the SQL surface; the arithmetic is in `estimators`.

use std::hash::{Hash, Hasher};
use std::sync::Arc;

use arrow::array::{Array, ArrayRef, BinaryArray, BooleanArray, Float64Array, StringArray};
use arrow::compute::cast;
use arrow::datatypes::{DataType, Field, FieldRef, Fields};
use datafusion::common::scalar::ScalarStructBuilder;
use datafusion::error::{DataFusionError, Result};
use datafusion::logical_expr::function::{AccumulatorArgs, StateFieldsArgs};
use datafusion::logical_expr::{
    Accumulator, AggregateUDF, AggregateUDFImpl, Signature, TypeSignature, Volatility,
};
use datafusion::prelude::SessionContext;
use datafusion::scalar::ScalarValue;

use super::estimators::{Design, DesignRow, Estimate, LonelyPsu, Reliability};

/// How estimates treat lonely PSUs and when they are flagged unreliable.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct SurveyOptions {
    pub lonely_psu: LonelyPsu,
    pub reliability: Reliability,
}

/// Registers the four estimators in `ctx`, replacing earlier ones.
pub fn register(ctx: &SessionContext, options: SurveyOptions) {
    for function in functions(options) {
        ctx.register_udaf(function);
    }
}

/// The estimators as functions, for sessions built elsewhere (the
/// scheduler and executors of a cluster look them up by name).
pub fn functions(options: SurveyOptions) -> Vec<AggregateUDF> {
    [Kind::Mean, Kind::Total, Kind::Proportion, Kind::Ratio]
        .into_iter()
        .map(|kind| AggregateUDF::from(SurveyEstimator::new(kind, options)))
        .collect()
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Kind {
    Mean,
    Total,
    Proportion,
    Ratio,
}

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::Mean => "svy_mean",
            Kind::Total => "svy_total",
            Kind::Proportion => "svy_prop",
            Kind::Ratio => "svy_ratio",
        }
    }

    /// Arguments before `weight, stratum, psu`.
    fn values(self) -> usize {
        if self == Kind::Ratio {
            2
        } else {
            1
        }
    }
}

#[derive(Debug)]
struct SurveyEstimator {
    kind: Kind,
    options: SurveyOptions,
    signature: Signature,
}

impl PartialEq for SurveyEstimator {
    fn eq(&self, other: &Self) -> bool {
        self.kind == other.kind && self.options == other.options
    }
}

impl Eq for SurveyEstimator {}

impl Hash for SurveyEstimator {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.kind.hash(state);
        self.options.reliability.min_n.hash(state);
        self.options.reliability.max_cv.to_bits().hash(state);
        (self.options.lonely_psu as u8).hash(state);
    }
}

impl SurveyEstimator {
    fn new(kind: Kind, options: SurveyOptions) -> Self {
        let arity = kind.values() + 3;
        let signature = Signature::one_of(
            vec![TypeSignature::Any(arity), TypeSignature::Any(arity + 1)],
            Volatility::Immutable,
        );
        Self {
            kind,
            options,
            signature,
        }
    }

    fn output_fields(&self) -> Fields {
        let mut fields = vec![
            Field::new("estimate", DataType::Float64, true),
            Field::new("se", DataType::Float64, true),
            Field::new("ci_low", DataType::Float64, true),
            Field::new("ci_high", DataType::Float64, true),
            Field::new("degf", DataType::Int64, true),
            Field::new("n", DataType::Int64, true),
            Field::new("cv", DataType::Float64, true),
            Field::new("unreliable", DataType::Boolean, true),
        ];
        if self.kind == Kind::Proportion {
            fields.push(Field::new("logit_low", DataType::Float64, true));
            fields.push(Field::new("logit_high", DataType::Float64, true));
        }
        Fields::from(fields)
    }
}

impl AggregateUDFImpl for SurveyEstimator {
    fn name(&self) -> &str {
        self.kind.name()
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _arg_types: &[DataType]) -> Result<DataType> {
        Ok(DataType::Struct(self.output_fields()))
    }

    fn accumulator(&self, _args: AccumulatorArgs) -> Result<Box<dyn Accumulator>> {
        Ok(Box::new(SampleAccumulator {
            kind: self.kind,
            options: self.options,
            rows: Vec::new(),
        }))
    }

    fn state_fields(&self, args: StateFieldsArgs) -> Result<Vec<FieldRef>> {
        Ok(vec![Arc::new(Field::new(
            format!("{}_rows", args.name),
            DataType::Binary,
            true,
        ))])
    }
}

/// One sampled row as the estimator needs it.
#[derive(Debug, Clone)]
struct SampleRow {
    stratum: String,
    psu: String,
    weight: f64,
    y: Option<f64>,
    x: Option<f64>,
    in_domain: bool,
}

/// Keeps every row of the group: a design-based variance needs them all.
#[derive(Debug)]
struct SampleAccumulator {
    kind: Kind,
    options: SurveyOptions,
    rows: Vec<SampleRow>,
}

fn numbers(array: &ArrayRef) -> Result<Float64Array> {
    let as_float = if array.data_type() == &DataType::Boolean {
        cast(&cast(array, &DataType::Int8)?, &DataType::Float64)?
    } else {
        cast(array, &DataType::Float64)?
    };
    Ok(as_float
        .as_any()
        .downcast_ref::<Float64Array>()
        .expect("cast to float64")
        .clone())
}

fn texts(array: &ArrayRef) -> Result<StringArray> {
    let text = cast(array, &DataType::Utf8)?;
    Ok(text
        .as_any()
        .downcast_ref::<StringArray>()
        .expect("cast to utf8")
        .clone())
}

impl SampleAccumulator {
    fn estimate(&self) -> std::result::Result<Estimate, super::SurveyError> {
        let design_rows: Vec<DesignRow> = self
            .rows
            .iter()
            .map(|r| DesignRow {
                stratum: r.stratum.clone(),
                psu: r.psu.clone(),
                weight: r.weight,
            })
            .collect();
        let design = Design::new(&design_rows, self.options.lonely_psu)?;
        let domain: Vec<bool> = self.rows.iter().map(|r| r.in_domain).collect();
        let y: Vec<Option<f64>> = self.rows.iter().map(|r| r.y).collect();
        match self.kind {
            Kind::Mean => design.mean(&y, Some(&domain)),
            Kind::Total => design.total(&y, Some(&domain)),
            Kind::Proportion => {
                let flags: Vec<Option<bool>> = y.iter().map(|v| v.map(|v| v != 0.0)).collect();
                design.proportion(&flags, Some(&domain))
            }
            Kind::Ratio => {
                let x: Vec<Option<f64>> = self.rows.iter().map(|r| r.x).collect();
                design.ratio(&y, &x, Some(&domain))
            }
        }
    }

    fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.rows.len() * 48);
        for r in &self.rows {
            for text in [&r.stratum, &r.psu] {
                out.extend_from_slice(&(text.len() as u32).to_le_bytes());
                out.extend_from_slice(text.as_bytes());
            }
            for value in [r.weight, r.y.unwrap_or(0.0), r.x.unwrap_or(0.0)] {
                out.extend_from_slice(&value.to_le_bytes());
            }
            out.push(
                u8::from(r.y.is_some()) | u8::from(r.x.is_some()) << 1 | u8::from(r.in_domain) << 2,
            );
        }
        out
    }

    fn decode(&mut self, mut bytes: &[u8]) -> Result<()> {
        let corrupt = || DataFusionError::Internal("corrupt survey estimator state".into());
        fn take<'a>(bytes: &mut &'a [u8], n: usize) -> Option<&'a [u8]> {
            let (head, tail) = (bytes.get(..n)?, bytes.get(n..)?);
            *bytes = tail;
            Some(head)
        }
        while !bytes.is_empty() {
            let mut text = || -> Option<String> {
                let len = u32::from_le_bytes(take(&mut bytes, 4)?.try_into().ok()?) as usize;
                String::from_utf8(take(&mut bytes, len)?.to_vec()).ok()
            };
            let (stratum, psu) = (text().ok_or_else(corrupt)?, text().ok_or_else(corrupt)?);
            let mut number = || -> Option<f64> {
                Some(f64::from_le_bytes(take(&mut bytes, 8)?.try_into().ok()?))
            };
            let (weight, y, x) = (
                number().ok_or_else(corrupt)?,
                number().ok_or_else(corrupt)?,
                number().ok_or_else(corrupt)?,
            );
            let flags = take(&mut bytes, 1).ok_or_else(corrupt)?[0];
            self.rows.push(SampleRow {
                stratum,
                psu,
                weight,
                y: (flags & 1 != 0).then_some(y),
                x: (flags & 2 != 0).then_some(x),
                in_domain: flags & 4 != 0,
            });
        }
        Ok(())
    }
}

impl Accumulator for SampleAccumulator {
    fn update_batch(&mut self, values: &[ArrayRef]) -> Result<()> {
        let k = self.kind.values();
        let y = numbers(&values[0])?;
        let x = if k == 2 {
            Some(numbers(&values[1])?)
        } else {
            None
        };
        let weight = numbers(&values[k])?;
        let (stratum, psu) = (texts(&values[k + 1])?, texts(&values[k + 2])?);
        let domain = match values.get(k + 3) {
            Some(array) => Some(
                cast(array, &DataType::Boolean)?
                    .as_any()
                    .downcast_ref::<BooleanArray>()
                    .expect("cast to boolean")
                    .clone(),
            ),
            None => None,
        };
        for i in 0..y.len() {
            if weight.is_null(i) || stratum.is_null(i) || psu.is_null(i) {
                return Err(DataFusionError::Execution(format!(
                    "{}: a row has no weight, stratum or PSU; the design must be complete",
                    self.kind.name()
                )));
            }
            self.rows.push(SampleRow {
                stratum: stratum.value(i).to_string(),
                psu: psu.value(i).to_string(),
                weight: weight.value(i),
                y: y.is_valid(i).then(|| y.value(i)),
                x: x.as_ref().and_then(|x| x.is_valid(i).then(|| x.value(i))),
                in_domain: domain.as_ref().is_none_or(|d| d.is_valid(i) && d.value(i)),
            });
        }
        Ok(())
    }

    fn evaluate(&mut self) -> Result<ScalarValue> {
        let fields = Fields::from(
            SurveyEstimator::new(self.kind, self.options)
                .output_fields()
                .iter()
                .cloned()
                .collect::<Vec<_>>(),
        );
        if self.rows.is_empty() {
            return Ok(ScalarStructBuilder::new_null(fields));
        }
        let estimate = self
            .estimate()
            .map_err(|e| DataFusionError::Execution(format!("{}: {e}", self.kind.name())))?;
        let unreliable = self.options.reliability.is_low(&estimate);
        let mut builder = ScalarStructBuilder::new();
        let values = [
            ScalarValue::Float64(Some(estimate.estimate)),
            ScalarValue::Float64(Some(estimate.se)),
            ScalarValue::Float64(Some(estimate.ci_low)),
            ScalarValue::Float64(Some(estimate.ci_high)),
            ScalarValue::Int64(Some(estimate.degf as i64)),
            ScalarValue::Int64(Some(estimate.n as i64)),
            ScalarValue::Float64(estimate.cv.is_finite().then_some(estimate.cv)),
            ScalarValue::Boolean(Some(unreliable)),
            ScalarValue::Float64(estimate.logit_ci.map(|c| c.0)),
            ScalarValue::Float64(estimate.logit_ci.map(|c| c.1)),
        ];
        for (field, value) in fields.iter().zip(values) {
            builder = builder.with_scalar(field.clone(), value);
        }
        builder.build()
    }

    fn size(&self) -> usize {
        std::mem::size_of_val(self)
            + self.rows.capacity() * std::mem::size_of::<SampleRow>()
            + self
                .rows
                .iter()
                .map(|r| r.stratum.len() + r.psu.len())
                .sum::<usize>()
    }

    fn state(&mut self) -> Result<Vec<ScalarValue>> {
        Ok(vec![ScalarValue::Binary(Some(self.encode()))])
    }

    fn merge_batch(&mut self, states: &[ArrayRef]) -> Result<()> {
        let binary = cast(&states[0], &DataType::Binary)?;
        let binary = binary
            .as_any()
            .downcast_ref::<BinaryArray>()
            .expect("cast to binary");
        for i in 0..binary.len() {
            if binary.is_valid(i) {
                self.decode(binary.value(i))?;
            }
        }
        Ok(())
    }
}
