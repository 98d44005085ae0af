//! Encoders for indicator results: text table, CSV, JSON with metadata, and
//! SDMX-CSV 1.0.
//!
//! Owns the byte formats of published indicators. It must not run queries or
//! decide what is suppressed: it writes what disclosure control left.

use std::io::Write;

use arrow::array::{Array, Float64Array, StringArray};
use serde_json::{json, Map, Value};

use super::{IndicatorResult, Lang, FLAG_COLUMN};
use crate::disclosure::Flag;
use crate::query::{write_batches, OutputError, OutputFormat};

/// Agency that maintains the observatory's dataflows in SDMX-CSV.
pub const SDMX_AGENCY: &str = "OSSERVATORIO";

/// The formats an indicator can be written in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum IndicatorFormat {
    /// Aligned text table.
    Table,
    /// CSV with a header row and a `flag` column.
    Csv,
    /// JSON: metadata (titles, unit, parameters, disclosure rule) and rows.
    Json,
    /// SDMX-CSV 1.0: one row per observation, OBS_STATUS and CONF_STATUS.
    SdmxCsv,
}

pub fn write_indicator<W: Write + Send>(
    result: &IndicatorResult,
    format: IndicatorFormat,
    lang: Lang,
    mut out: W,
) -> Result<(), OutputError> {
    match format {
        IndicatorFormat::Table => write_batches(
            OutputFormat::Table,
            &result.batch.schema(),
            &[result.batch.clone()],
            out,
        ),
        IndicatorFormat::Csv => write_batches(
            OutputFormat::Csv,
            &result.batch.schema(),
            &[result.batch.clone()],
            out,
        ),
        IndicatorFormat::Json => {
            serde_json::to_writer_pretty(&mut out, &to_json(result, lang))
                .map_err(std::io::Error::from)?;
            writeln!(out)?;
            Ok(())
        }
        IndicatorFormat::SdmxCsv => write_sdmx_csv(result, out),
    }
}

/// The result with its metadata, as the API and notebooks read it.
pub fn to_json(result: &IndicatorResult, lang: Lang) -> Value {
    let spec = &result.spec;
    let parameters: Map<String, Value> = result
        .parameters
        .iter()
        .map(|(name, value)| {
            let value = if value.is_null() {
                Value::Null
            } else {
                Value::String(value.to_string())
            };
            (name.clone(), value)
        })
        .collect();
    let rows: Vec<Value> = (0..result.num_rows())
        .map(|row| {
            let mut object = Map::new();
            for dimension in &spec.dimensions {
                object.insert(dimension.clone(), json!(result.dimension(dimension, row)));
            }
            for measure in &spec.measures {
                object.insert(measure.clone(), json!(result.measure(measure, row)));
            }
            let flags = result.flags(row);
            object.insert(
                FLAG_COLUMN.to_string(),
                if flags.is_empty() {
                    Value::Null
                } else {
                    json!(flags)
                },
            );
            Value::Object(object)
        })
        .collect();
    json!({
        "id": spec.id,
        "title": spec.title(lang),
        "description": spec.description(lang),
        "theme": spec.theme.code(),
        "unit": spec.unit,
        "dimensions": spec.dimensions,
        "measures": spec.measures,
        "parameters": parameters,
        "disclosure": {
            "rule": "frequency threshold on unweighted counts, with secondary suppression against row, column and grand totals",
            "count": spec.disclosure.count,
            "threshold": result.suppression.threshold,
            "primary_suppressed": result.suppression.primary,
            "secondary_suppressed": result.suppression.secondary,
        },
        "rows": rows,
    })
}

/// SDMX-CSV 1.0: `DATAFLOW`, one column per dimension, `TIME_PERIOD`,
/// `MEASURE` when there are several, `OBS_VALUE`, then the attributes
/// `OBS_STATUS` (CL_OBS_STATUS) and `CONF_STATUS` (CL_CONF_STATUS).
fn write_sdmx_csv<W: Write>(result: &IndicatorResult, out: W) -> Result<(), OutputError> {
    let spec = &result.spec;
    let mut writer = csv::Writer::from_writer(out);
    let has_time = spec.time_dimension.is_some();
    let several = spec.measures.len() > 1;
    let mut header: Vec<String> = vec!["DATAFLOW".into()];
    for dimension in &spec.dimensions {
        if Some(dimension) != spec.time_dimension.as_ref() {
            header.push(dimension.to_uppercase());
        }
    }
    header.push("TIME_PERIOD".into());
    if several {
        header.push("MEASURE".into());
    }
    header.extend(["OBS_VALUE", "OBS_STATUS", "CONF_STATUS"].map(String::from));
    writer.write_record(&header).map_err(csv_error)?;
    let dataflow = format!("{SDMX_AGENCY}:{}(1.0)", spec.id.to_uppercase());
    let period = result.parameter("year").unwrap_or_default();
    let dimensions = dimension_columns(result);
    let flags = result
        .batch
        .column_by_name(FLAG_COLUMN)
        .and_then(|c| c.as_any().downcast_ref::<StringArray>().cloned());
    for row in 0..result.num_rows() {
        for measure in &spec.measures {
            let mut record: Vec<String> = vec![dataflow.clone()];
            let mut time = period.clone();
            for (name, values) in &dimensions {
                if Some(name) == spec.time_dimension.as_ref() {
                    time = values.value(row).to_string();
                } else {
                    record.push(values.value(row).to_string());
                }
            }
            record.push(if has_time || !period.is_empty() {
                time
            } else {
                String::new()
            });
            if several {
                record.push(measure.to_uppercase());
            }
            let value = result
                .batch
                .column_by_name(measure)
                .and_then(|c| c.as_any().downcast_ref::<Float64Array>().cloned());
            let value = value
                .filter(|v| v.is_valid(row))
                .map(|v| format_number(v.value(row)))
                .unwrap_or_default();
            let flag = flags
                .as_ref()
                .filter(|f| f.is_valid(row))
                .map(|f| f.value(row).to_string())
                .unwrap_or_default();
            let confidential = flag.contains(Flag::Confidential.eurostat_code());
            let status = if confidential {
                Flag::Confidential.sdmx_obs_status()
            } else if flag.contains(Flag::LowReliability.eurostat_code()) {
                Flag::LowReliability.sdmx_obs_status()
            } else if flag.contains(Flag::Provisional.eurostat_code()) {
                Flag::Provisional.sdmx_obs_status()
            } else {
                "A"
            };
            record.push(value);
            record.push(status.to_string());
            record.push(if confidential { "C" } else { "F" }.to_string());
            writer.write_record(&record).map_err(csv_error)?;
        }
    }
    writer.flush()?;
    Ok(())
}

fn dimension_columns(result: &IndicatorResult) -> Vec<(String, StringArray)> {
    result
        .spec
        .dimensions
        .iter()
        .filter_map(|name| {
            let column = result
                .batch
                .column_by_name(name)?
                .as_any()
                .downcast_ref::<StringArray>()?
                .clone();
            Some((name.clone(), column))
        })
        .collect()
}

/// Integers without a decimal point, other numbers with up to six decimals.
fn format_number(value: f64) -> String {
    if value.fract() == 0.0 && value.abs() < 1e15 {
        format!("{value:.0}")
    } else {
        let text = format!("{value:.6}");
        text.trim_end_matches('0').trim_end_matches('.').to_string()
    }
}

fn csv_error(error: csv::Error) -> OutputError {
    OutputError::Io(std::io::Error::other(error.to_string()))
}
