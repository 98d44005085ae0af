//! `ingest`, `history` and `erase`: what changes the warehouse's records,
//! with the exit codes that tell an operator's script what happened.

use std::io::Write;
use std::path::PathBuf;

use anyhow::{bail, Result};
use osservatorio::catalog::{Dictionary, Warehouse};
use osservatorio::config::Config;
use osservatorio::ingest::{self, IngestOptions, Pseudonymizer};

use super::progress_bar;

/// Ends the process with this exit code, the outcome having been reported.
#[derive(Debug)]
pub struct Exit(pub u8);

impl std::fmt::Display for Exit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "exit code {}", self.0)
    }
}

impl std::error::Error for Exit {}

pub(super) async fn run_ingest(
    config: &Config,
    dataset: &str,
    files: &[PathBuf],
    options: &IngestOptions,
    json: bool,
) -> Result<()> {
    let key = config
        .pseudonym_key
        .as_ref()
        .ok_or(ingest::IngestError::MissingKey)?;
    let pseudonymizer =
        Pseudonymizer::new(key.expose().as_bytes()).ok_or(ingest::IngestError::ShortKey)?;
    // An existing warehouse only: its reference tables check the rows.
    let warehouse =
        Warehouse::open(&config.data_dir, std::sync::Arc::new(Dictionary::load()?)).await?;
    let bar = progress_bar("ingest");
    let report = ingest::ingest(&warehouse, dataset, files, options, &pseudonymizer, &bar).await?;
    bar.finish_and_clear();
    let mut out = std::io::stdout().lock();
    if json {
        serde_json::to_writer_pretty(&mut out, &report)?;
        writeln!(out)?;
    } else {
        report.write_text(&mut out)?;
    }
    out.flush()?;
    match report.outcome.exit_code() {
        0 => Ok(()),
        code => Err(Exit(code).into()),
    }
}

pub(super) async fn run_history(config: &Config, dataset: &str, json: bool) -> Result<()> {
    let warehouse =
        Warehouse::open(&config.data_dir, std::sync::Arc::new(Dictionary::load()?)).await?;
    let commits = warehouse.history(dataset).await?;
    let mut out = std::io::stdout().lock();
    if json {
        let rows: Vec<serde_json::Value> = commits
            .iter()
            .map(|c| {
                serde_json::json!({
                    "version": c.version,
                    "timestamp_ms": c.timestamp,
                    "operation": c.operation,
                    "metadata": c.metadata,
                })
            })
            .collect();
        serde_json::to_writer_pretty(&mut out, &rows)?;
        writeln!(out)?;
        return Ok(());
    }
    writeln!(
        out,
        "{:>7}  {:<20}  {:<9}  details",
        "version", "time (UTC)", "operation"
    )?;
    for commit in commits {
        let time = commit
            .timestamp
            .and_then(chrono::DateTime::from_timestamp_millis)
            .map_or_else(String::new, |t| t.format("%Y-%m-%d %H:%M:%S").to_string());
        let details = match commit.metadata.get("operation").and_then(|o| o.as_str()) {
            Some("ingest") => {
                let files: Vec<String> = commit.metadata["files"]
                    .as_array()
                    .map(|files| {
                        files
                            .iter()
                            .map(|f| {
                                format!(
                                    "{} sha256 {}…",
                                    f["name"].as_str().unwrap_or(""),
                                    &f["sha256"].as_str().unwrap_or("")
                                        [..12.min(f["sha256"].as_str().unwrap_or("").len())]
                                )
                            })
                            .collect()
                    })
                    .unwrap_or_default();
                format!(
                    "ingest ({}): {} rows committed, {} rejected; {}",
                    commit.metadata["mode"].as_str().unwrap_or(""),
                    commit.metadata["rows_committed"],
                    commit.metadata["rows_rejected"],
                    files.join(", ")
                )
            }
            Some("erase") => format!(
                "erase of {}: {} rows",
                commit.metadata["person"].as_str().unwrap_or(""),
                commit.metadata["rows_deleted"]
            ),
            _ => String::new(),
        };
        writeln!(
            out,
            "{:>7}  {:<20}  {:<9}  {details}",
            commit.version, time, commit.operation
        )?;
    }
    Ok(())
}

pub(super) async fn run_erase(config: &Config, person: &str) -> Result<()> {
    let warehouse =
        Warehouse::open(&config.data_dir, std::sync::Arc::new(Dictionary::load()?)).await?;
    let erased = ingest::erase(&warehouse, person).await?;
    if erased.is_empty() {
        bail!("no dataset has rows of {person}");
    }
    for e in erased {
        println!(
            "{}: {} rows removed (version {})",
            e.dataset, e.rows, e.version
        );
    }
    Ok(())
}
