//! Command-line arguments, progress bars and exit codes.
//!
//! Owns the mapping from arguments to library calls and from results to the
//! terminal. It must not hold logic that a test of the library cannot reach.

use std::io::{IsTerminal, Read, Write};
use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use clap::{Parser, Subcommand};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use osservatorio::catalog::{Dictionary, Warehouse};
use osservatorio::config::{Config, Overrides};
use osservatorio::generate::{self, GenerateOptions, Scale};
use osservatorio::query::{write_batches, OutputFormat, QueryEngine};

/// Osservatorio: data platform of an observatory on domestic care work in Italy.
#[derive(Debug, Parser)]
#[command(name = "osservatorio", version, about)]
pub struct Cli {
    /// Warehouse directory (default ./data).
    #[arg(long, global = true, env = "OSSERVATORIO_DATA_DIR")]
    data_dir: Option<PathBuf>,
    /// TOML config file with data_dir, memory_limit, query_timeout, max_rows.
    #[arg(long, global = true, env = "OSSERVATORIO_CONFIG")]
    config: Option<PathBuf>,
    /// Memory pool for a query, e.g. 512MiB or 2GiB (default 1GiB).
    #[arg(long, global = true, env = "OSSERVATORIO_MEMORY_LIMIT")]
    memory_limit: Option<String>,
    /// Time limit for a query, e.g. 30s or 2m (default 60s).
    #[arg(long, global = true, env = "OSSERVATORIO_QUERY_TIMEOUT")]
    timeout: Option<String>,
    /// Rows returned at most by a query (default 1000000).
    #[arg(long, global = true, env = "OSSERVATORIO_MAX_ROWS")]
    max_rows: Option<usize>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Write the synthetic observatory into the warehouse, replacing every table.
    Generate {
        /// province (Cremona), region (Lombardy) or national (Italy).
        #[arg(long, default_value = "province")]
        scale: String,
        /// Seed of the random streams: the same seed gives the same rows.
        #[arg(long, default_value_t = generate::DEMO_SEED)]
        seed: u64,
    },
    /// List the warehouse's tables with version, rows, files and bytes.
    Datasets,
    /// Run one read-only SQL query.
    Sql {
        /// The query; omit it to use --file or standard input.
        query: Option<String>,
        /// Read the query from this file.
        #[arg(long, conflicts_with = "query")]
        file: Option<PathBuf>,
        /// Output format (default: table on a terminal, csv otherwise).
        #[arg(long, value_enum)]
        format: Option<OutputFormat>,
        /// Write the result to this file instead of standard output.
        #[arg(long)]
        out: Option<PathBuf>,
    },
}

impl Cli {
    pub async fn run(self) -> Result<()> {
        let config = Config::resolve(Overrides {
            config_file: self.config,
            data_dir: self.data_dir,
            memory_limit: self.memory_limit,
            query_timeout: self.timeout,
            max_rows: self.max_rows,
        })?;
        match self.command {
            Command::Generate { scale, seed } => run_generate(&config, &scale, seed).await,
            Command::Datasets => run_datasets(&config).await,
            Command::Sql {
                query,
                file,
                format,
                out,
            } => run_sql(&config, query, file, format, out).await,
        }
    }
}

fn progress_bar(what: &str) -> ProgressBar {
    let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr());
    bar.set_style(
        ProgressStyle::with_template("{spinner} {prefix} [{elapsed}] {wide_msg} {pos}/{len}")
            .expect("valid progress template"),
    );
    bar.set_prefix(what.to_string());
    bar.enable_steady_tick(std::time::Duration::from_millis(120));
    bar
}

async fn run_generate(config: &Config, scale: &str, seed: u64) -> Result<()> {
    let scale: Scale = scale.parse()?;
    let warehouse = Warehouse::create(&config.data_dir, std::sync::Arc::new(Dictionary::load()?))?;
    let bar = progress_bar("generate");
    let started = std::time::Instant::now();
    let summary = generate::generate(&warehouse, GenerateOptions { scale, seed }, &bar).await?;
    bar.finish_and_clear();
    let rows: usize = summary.rows.iter().map(|(_, n)| n).sum();
    eprintln!(
        "generated the {} observatory (seed {seed}) in {}: {rows} rows in {} tables",
        scale.as_str(),
        warehouse.root().display(),
        summary.rows.len()
    );
    tracing::info!(
        elapsed_ms = started.elapsed().as_millis() as u64,
        "generation finished"
    );
    Ok(())
}

async fn open(config: &Config) -> Result<Warehouse> {
    let bar = progress_bar("demo");
    let (warehouse, generated) =
        generate::open_or_bootstrap(&config.data_dir, config.data_dir_is_default, &bar).await?;
    bar.finish_and_clear();
    if generated {
        eprintln!(
            "note: the warehouse in {} was empty, so it now holds the province-scale demo (Cremona, seed {}); run `osservatorio generate` to choose another",
            warehouse.root().display(),
            generate::DEMO_SEED
        );
    }
    Ok(warehouse)
}

async fn run_datasets(config: &Config) -> Result<()> {
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

async fn run_sql(
    config: &Config,
    query: Option<String>,
    file: Option<PathBuf>,
    format: Option<OutputFormat>,
    out: Option<PathBuf>,
) -> Result<()> {
    let sql = match (query, file) {
        (Some(sql), _) => sql,
        (None, Some(path)) => {
            std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?
        }
        (None, None) => {
            if std::io::stdin().is_terminal() {
                bail!("no query given; pass it as an argument, with --file, or on standard input");
            }
            let mut sql = String::new();
            std::io::stdin()
                .read_to_string(&mut sql)
                .context("reading the query from standard input")?;
            sql
        }
    };
    let stdout_is_terminal = std::io::stdout().is_terminal();
    let format = format.unwrap_or(if out.is_none() && stdout_is_terminal {
        OutputFormat::Table
    } else {
        OutputFormat::Csv
    });
    if format.is_binary() && out.is_none() && stdout_is_terminal {
        bail!("{format:?} output is binary; write it to a file with --out or redirect standard output");
    }
    let warehouse = open(config).await?;
    let engine = QueryEngine::open(&warehouse, config.limits).await?;
    let result = engine.run(&sql).await?;
    match out {
        Some(path) => {
            // Written beside the target and renamed, so a failed encode never
            // leaves a half-written file under the requested name.
            let partial = path.with_extension("partial");
            let file = std::fs::File::create(&partial)
                .with_context(|| format!("creating {}", partial.display()))?;
            write_batches(
                format,
                &result.schema,
                &result.batches,
                std::io::BufWriter::new(file),
            )?;
            std::fs::rename(&partial, &path)
                .with_context(|| format!("writing {}", path.display()))?;
        }
        None => write_batches(
            format,
            &result.schema,
            &result.batches,
            std::io::BufWriter::new(std::io::stdout()),
        )?,
    }
    if result.truncated {
        eprintln!(
            "note: the result was cut at {} rows (--max-rows); narrow the query or raise the limit",
            config.limits.max_rows
        );
    }
    Ok(())
}
