//! `datasets`: the warehouse's tables with their versions and sizes, and
//! one dataset's dictionary entry.
//!
//! Owns printing them. It must not read tables other than through the
//! warehouse's status.

use std::io::Write;

use anyhow::Result;
use osservatorio::catalog::Dictionary;
use osservatorio::config::Config;

use super::open;

pub(super) async fn run_datasets(config: &Config) -> Result<()> {
    let warehouse = open(config).await?;
    let statuses = warehouse.status().await?;
    let mut out = std::io::stdout().lock();
    writeln!(
        out,
        "{:<18} {:>8} {:>12} {:>6} {:>14}",
        "dataset", "version", "rows", "files", "bytes"
    )?;
    for s in statuses {
        let version = s.version.map_or_else(|| "-".to_string(), |v| v.to_string());
        writeln!(
            out,
            "{:<18} {:>8} {:>12} {:>6} {:>14}",
            s.name, version, s.rows, s.files, s.bytes
        )?;
    }
    Ok(())
}

pub(super) fn describe_dataset(name: &str) -> Result<()> {
    let dictionary = Dictionary::load()?;
    let spec = dictionary.require(name)?;
    let mut out = std::io::stdout().lock();
    writeln!(
        out,
        "{} – {} / {}\n{}\n",
        spec.name, spec.label_it, spec.label_en, spec.description
    )?;
    for column in &spec.columns {
        let mut rule = String::new();
        if let Some(codes) = &column.codes {
            rule = format!("one of {}", codes.join(", "));
        } else if column.min.is_some() || column.max.is_some() {
            let bound = |b: Option<f64>| b.map_or_else(|| "…".to_string(), |v| v.to_string());
            rule = format!("{} to {}", bound(column.min), bound(column.max));
        } else if let Some(pattern) = &column.pattern {
            rule = format!("matches {pattern}");
        }
        writeln!(
            out,
            "{:<26} {:<8} {:<9} {}{}\n{:<26} {} / {}{}",
            column.name,
            format!("{:?}", column.column_type).to_lowercase(),
            if column.nullable {
                "nullable"
            } else {
                "required"
            },
            rule,
            if column.pseudonymous {
                " (pseudonym)"
            } else {
                ""
            },
            "",
            column.label_it,
            column.label_en,
            column
                .references
                .as_ref()
                .map_or_else(String::new, |r| format!(" → {r}")),
        )?;
    }
    Ok(())
}
