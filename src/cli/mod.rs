//! Command-line arguments, progress bars and exit codes.
//!
//! Owns the mapping from arguments to library calls and from results to the
//! terminal. It must not hold logic that a test of the library cannot reach.

#[cfg(feature = "cluster")]
mod cluster;
mod datasets;
mod records;
mod report_command;
mod serve;

use std::io::{IsTerminal, Read, Write};
use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use clap::{Parser, Subcommand};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use osservatorio::auth::Role;
use osservatorio::catalog::{Dictionary, Warehouse};
use osservatorio::charts::{self, ChartOptions, ImageFormat};
use osservatorio::config::{Config, Overrides};
use osservatorio::generate::{self, GenerateOptions, Scale};
use osservatorio::indicators::{
    write_indicator, IndicatorCatalog, IndicatorFormat, IndicatorResult, Lang, ParameterValues,
};
use osservatorio::ingest::{Encoding, IngestMode, IngestOptions};
use osservatorio::query::{write_batches, OutputFormat, QueryEngine};

/// Osservatorio: data platform of an observatory on domestic care work in Italy.
#[derive(Debug, Parser)]
#[command(name = "osservatorio", version, about)]
pub struct Cli {
    /// Warehouse: a directory (default ./data) or s3://bucket/prefix, with
    /// credentials and endpoint from the AWS_* variables.
    #[arg(long, global = true, env = "OSSERVATORIO_DATA_DIR")]
    data_dir: Option<String>,
    /// Where SQL runs: `local` (default) or `ballista://HOST:PORT`.
    #[arg(long, global = true, env = "OSSERVATORIO_ENGINE")]
    engine: Option<String>,
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
    /// Directory of the indicator files (default ./queries).
    #[arg(long, global = true, env = "OSSERVATORIO_QUERIES_DIR")]
    queries_dir: Option<PathBuf>,
    /// Disclosure threshold: cells with fewer units are suppressed (default 5, at least 3).
    #[arg(long, global = true, env = "OSSERVATORIO_DISCLOSURE_THRESHOLD")]
    disclosure_threshold: Option<i64>,
    /// Survey strata with one PSU: fail (default, as R), adjust, remove, certainty or average.
    #[arg(long, global = true, env = "OSSERVATORIO_LONELY_PSU")]
    lonely_psu: Option<String>,
    /// Survey estimates on fewer respondents are flagged `u` (default 30).
    #[arg(long, global = true, env = "OSSERVATORIO_RELIABILITY_MIN_N")]
    reliability_min_n: Option<usize>,
    /// Survey estimates with a larger coefficient of variation are flagged `u` (default 0.33).
    #[arg(long, global = true, env = "OSSERVATORIO_RELIABILITY_MAX_CV")]
    reliability_max_cv: Option<f64>,
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
    /// List the warehouse's tables with version, rows, files and bytes, or
    /// describe one dataset's columns.
    Datasets {
        /// A dataset to describe, column by column.
        name: Option<String>,
    },
    /// List the indicators.
    Indicators {
        #[arg(long, value_enum, default_value = "it")]
        lang: Lang,
    },
    /// Compute one indicator, after disclosure control.
    Indicator {
        id: String,
        #[command(flatten)]
        filters: Filters,
        #[arg(long, value_enum, default_value = "table")]
        format: IndicatorFormat,
        #[arg(long, value_enum, default_value = "it")]
        lang: Lang,
        /// Write to this file instead of standard output.
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Draw one indicator as SVG or PNG (chosen by the file's extension).
    Chart {
        id: String,
        #[command(flatten)]
        filters: Filters,
        /// The image to write: a .svg or .png file.
        #[arg(long)]
        out: PathBuf,
        #[arg(long, value_enum, default_value = "it")]
        lang: Lang,
        #[arg(long, default_value_t = 800)]
        width: u32,
        #[arg(long, default_value_t = 480)]
        height: u32,
    },
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
        /// Read a table at an earlier version, as DATASET=VERSION (repeatable;
        /// `osservatorio history DATASET` lists the versions).
        #[arg(long = "as-of", value_name = "DATASET=VERSION")]
        as_of: Vec<String>,
    },
    /// Load export files into a dataset: validated, pseudonymised, one
    /// atomic commit. Exit code 0 committed, 2 rejected (nothing committed),
    /// 3 committed with rows quarantined, 1 error.
    Ingest {
        dataset: String,
        #[arg(required = true)]
        files: Vec<PathBuf>,
        /// append (default), or replace-year: replace the years the files cover.
        #[arg(long, value_enum, default_value = "append")]
        mode: IngestMode,
        /// Check everything, commit nothing.
        #[arg(long)]
        dry_run: bool,
        /// Commit the valid rows; write the others, with reasons, beside the input.
        #[arg(long)]
        quarantine: bool,
        /// Ingest a file even if the same content was ingested before.
        #[arg(long)]
        force: bool,
        /// Text encoding of CSV files (default: detected).
        #[arg(long, value_enum)]
        encoding: Option<Encoding>,
        /// Print the report as JSON.
        #[arg(long)]
        json: bool,
        /// Key of the pseudonyms (at least 16 bytes); better in the environment.
        #[arg(long, env = "OSSERVATORIO_PSEUDONYM_KEY", hide_env_values = true)]
        pseudonym_key: Option<String>,
    },
    /// Write the annual report into a directory: report.html (self-contained,
    /// print-ready), indicators.csv (every figure) and figures/ (SVG, PNG).
    Report {
        #[arg(long)]
        year: i32,
        #[arg(long, value_enum, default_value = "it")]
        lang: Lang,
        /// Limit the report to a territory: a province's three-digit ISTAT
        /// code (019) or a social-care district's name (Crema).
        #[arg(long, conflicts_with_all = ["district", "province"])]
        territory: Option<String>,
        /// Limit the report to a social-care district, e.g. Crema.
        #[arg(long)]
        district: Option<String>,
        /// Limit the report to a province, by ISTAT code, e.g. 019.
        #[arg(long)]
        province: Option<String>,
        /// The directory to write; replaced whole when the report is ready.
        #[arg(long)]
        out: PathBuf,
        /// Read a table at an earlier version, as DATASET=VERSION (repeatable);
        /// the report's methodology lists the versions it read.
        #[arg(long = "as-of", value_name = "DATASET=VERSION")]
        as_of: Vec<String>,
    },
    /// List a dataset's commits: version, time, operation, source files.
    History {
        dataset: String,
        #[arg(long)]
        json: bool,
    },
    /// Remove every row of a person, by pseudonym, from every dataset.
    Erase {
        /// The person's pseudonym, as stored in the warehouse.
        #[arg(long)]
        person: String,
    },
    /// Serve the API and the committee page over HTTP.
    Serve {
        /// Address and port, e.g. 0.0.0.0:8080 (default 127.0.0.1:8080).
        /// Any address but loopback needs tokens in the config file.
        #[arg(long, env = "OSSERVATORIO_LISTEN")]
        listen: Option<String>,
        /// Address and port of Arrow Flight SQL, for ADBC, JDBC and
        /// Python clients (default 127.0.0.1:50051); same rule as --listen.
        #[arg(long, env = "OSSERVATORIO_FLIGHT_LISTEN")]
        flight_listen: Option<String>,
        /// Memory for the results of repeatable queries, answered again
        /// without computing while the tables are unchanged (default
        /// 128MiB; 0 keeps none).
        #[arg(long, env = "OSSERVATORIO_RESULT_CACHE")]
        result_cache: Option<String>,
    },
    /// Manage the API's bearer tokens.
    Token {
        #[command(subcommand)]
        action: TokenAction,
    },
    /// Run a Ballista scheduler: the cluster's entry point for
    /// `--engine ballista://HOST:PORT`.
    #[cfg(feature = "cluster")]
    Scheduler {
        /// Address and port to listen on.
        #[arg(long, default_value = "127.0.0.1:50050")]
        bind: String,
        /// Host name that executors and clients use, if not the bind address.
        #[arg(long)]
        advertise: Option<String>,
    },
    /// Run a Ballista executor that takes work from a scheduler. The memory
    /// limit (--memory-limit) is shared by its running tasks.
    #[cfg(feature = "cluster")]
    Executor {
        /// The scheduler, HOST:PORT.
        #[arg(long)]
        scheduler: String,
        /// Address and port that serve results to clients and executors.
        #[arg(long, default_value = "127.0.0.1:50060")]
        bind: String,
        /// Host name that others use, if not the bind address.
        #[arg(long)]
        advertise: Option<String>,
        /// Tasks at once (default: one per core).
        #[arg(long, default_value_t = 0)]
        concurrent_tasks: usize,
        /// Directory of shuffle and spill files (default: a temporary one).
        #[arg(long)]
        work_dir: Option<PathBuf>,
    },
    /// Serve a directory as an S3-compatible store on loopback, accepting
    /// only the key in AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY. For
    /// trying things and tests; not for production.
    #[cfg(feature = "cluster")]
    LocalS3 {
        #[arg(long)]
        root: PathBuf,
        #[arg(long, default_value = "127.0.0.1:9000")]
        listen: String,
        /// Buckets to create if missing (repeatable).
        #[arg(long = "bucket")]
        buckets: Vec<String>,
    },
    /// A whole cluster on this machine.
    #[cfg(feature = "cluster")]
    Cluster {
        #[command(subcommand)]
        action: cluster::ClusterAction,
    },
}

#[derive(Debug, Subcommand)]
enum TokenAction {
    /// Create a token, store its SHA-256 in the config file and print it once.
    Create {
        #[arg(long, value_enum)]
        role: Role,
        /// Who the token is for, e.g. a person or a notebook server.
        #[arg(long)]
        name: String,
    },
}

/// Parameters of an indicator.
#[derive(Debug, clap::Args)]
struct Filters {
    /// Reference year.
    #[arg(long)]
    year: Option<String>,
    /// Social-care district (ambito distrettuale), e.g. Crema.
    #[arg(long)]
    district: Option<String>,
    /// ISTAT province code, e.g. 019.
    #[arg(long)]
    province: Option<String>,
    /// Any other parameter, as NAME=VALUE.
    #[arg(long = "param", value_name = "NAME=VALUE")]
    params: Vec<String>,
}

impl Filters {
    fn values(&self) -> Result<ParameterValues> {
        let mut values = ParameterValues::new();
        for (name, value) in [
            ("year", &self.year),
            ("district", &self.district),
            ("province", &self.province),
        ] {
            if let Some(value) = value {
                values.insert(name.to_string(), value.clone());
            }
        }
        for pair in &self.params {
            let Some((name, value)) = pair.split_once('=') else {
                bail!("--param takes NAME=VALUE, not `{pair}`");
            };
            values.insert(name.trim().to_string(), value.to_string());
        }
        Ok(values)
    }
}

impl Cli {
    pub async fn run(self) -> Result<()> {
        let config = Config::resolve(Overrides {
            config_file: self.config,
            data_dir: self.data_dir,
            engine: self.engine,
            memory_limit: self.memory_limit,
            query_timeout: self.timeout,
            max_rows: self.max_rows,
            queries_dir: self.queries_dir,
            disclosure_threshold: self.disclosure_threshold,
            lonely_psu: self.lonely_psu,
            reliability_min_n: self.reliability_min_n,
            reliability_max_cv: self.reliability_max_cv,
            listen: match &self.command {
                Command::Serve { listen, .. } => listen.clone(),
                _ => None,
            },
            flight_listen: match &self.command {
                Command::Serve { flight_listen, .. } => flight_listen.clone(),
                _ => None,
            },
            result_cache: match &self.command {
                Command::Serve { result_cache, .. } => result_cache.clone(),
                _ => None,
            },
            pseudonym_key: match &self.command {
                Command::Ingest { pseudonym_key, .. } => pseudonym_key.clone(),
                _ => None,
            },
        })?;
        match self.command {
            Command::Generate { scale, seed } => run_generate(&config, &scale, seed).await,
            Command::Serve { .. } => run_serve(config).await,
            #[cfg(feature = "cluster")]
            Command::Scheduler { bind, advertise } => {
                cluster::run_scheduler(&config, &bind, advertise).await
            }
            #[cfg(feature = "cluster")]
            Command::Executor {
                scheduler,
                bind,
                advertise,
                concurrent_tasks,
                work_dir,
            } => {
                cluster::run_executor(
                    &config,
                    scheduler,
                    &bind,
                    advertise,
                    concurrent_tasks,
                    work_dir,
                )
                .await
            }
            #[cfg(feature = "cluster")]
            Command::LocalS3 {
                root,
                listen,
                buckets,
            } => cluster::run_local_s3(&root, &listen, &buckets).await,
            #[cfg(feature = "cluster")]
            Command::Cluster {
                action:
                    cluster::ClusterAction::Up {
                        executors,
                        dir,
                        scale,
                        base_port,
                    },
            } => cluster::cluster_up(&config, executors, &dir, &scale, base_port).await,
            Command::Token {
                action: TokenAction::Create { role, name },
            } => create_token(&config, role, &name),
            Command::Datasets { name: None } => datasets::run_datasets(&config).await,
            Command::Datasets { name: Some(name) } => datasets::describe_dataset(&name),
            Command::Sql {
                query,
                file,
                format,
                out,
                as_of,
            } => run_sql(&config, query, file, format, out, &as_of).await,
            Command::Ingest {
                dataset,
                files,
                mode,
                dry_run,
                quarantine,
                force,
                encoding,
                json,
                pseudonym_key: _,
            } => {
                let options = IngestOptions {
                    mode,
                    dry_run,
                    quarantine,
                    force,
                    encoding,
                };
                run_ingest(&config, &dataset, &files, &options, json).await
            }
            Command::Report {
                year,
                lang,
                territory,
                district,
                province,
                out,
                as_of,
            } => {
                let (district, province) = match territory {
                    Some(code) if code.len() == 3 && code.bytes().all(|b| b.is_ascii_digit()) => {
                        (None, Some(code))
                    }
                    Some(name) => (Some(name), None),
                    None => (district, province),
                };
                run_report(&config, year, lang, district, province, &out, &as_of).await
            }
            Command::History { dataset, json } => run_history(&config, &dataset, json).await,
            Command::Erase { person } => run_erase(&config, &person).await,
            Command::Indicators { lang } => list_indicators(&config, lang).await,
            Command::Indicator {
                id,
                filters,
                format,
                lang,
                out,
            } => {
                let (_, result) = compute(&config, &id, &filters).await?;
                write_output(out.as_deref(), |w| {
                    Ok(write_indicator(&result, format, lang, w)?)
                })
            }
            Command::Chart {
                id,
                filters,
                out,
                lang,
                width,
                height,
            } => {
                let format = ImageFormat::from_path(&out).ok_or_else(|| {
                    anyhow::anyhow!("--out must end in .svg or .png, not {}", out.display())
                })?;
                let (catalog, result) = compute(&config, &id, &filters).await?;
                let options = ChartOptions {
                    lang,
                    width,
                    height,
                };
                let image = charts::render(&result, catalog.labels(), options, format)?;
                write_output(Some(&out), |w| Ok(w.write_all(&image)?))
            }
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
    let warehouse =
        Warehouse::create(&config.data_dir, std::sync::Arc::new(Dictionary::load()?)).await?;
    let bar = progress_bar("generate");
    let started = std::time::Instant::now();
    let summary = generate::generate(&warehouse, GenerateOptions { scale, seed }, &bar).await?;
    bar.finish_and_clear();
    let rows: usize = summary.rows.iter().map(|(_, n)| n).sum();
    eprintln!(
        "generated the {} observatory (seed {seed}) in {}: {rows} rows in {} tables",
        scale.as_str(),
        warehouse.location(),
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
            warehouse.location(),
            generate::DEMO_SEED
        );
    }
    Ok(warehouse)
}

/// Opens the warehouse and the indicator catalog, checking every indicator.
async fn open_indicators(config: &Config) -> Result<(QueryEngine, IndicatorCatalog)> {
    let warehouse = open(config).await?;
    let engine = QueryEngine::open_on(
        &warehouse,
        config.limits,
        &config.engine,
        &Default::default(),
    )
    .await?
    .with_survey_options(config.survey);
    let catalog =
        IndicatorCatalog::load(&config.queries_dir, &engine, config.disclosure_threshold).await?;
    Ok((engine, catalog))
}

async fn compute(
    config: &Config,
    id: &str,
    filters: &Filters,
) -> Result<(IndicatorCatalog, IndicatorResult)> {
    let (engine, catalog) = open_indicators(config).await?;
    let result = catalog.run(&engine, id, &filters.values()?).await?;
    Ok((catalog, result))
}

async fn list_indicators(config: &Config, lang: Lang) -> Result<()> {
    let (_, catalog) = open_indicators(config).await?;
    let mut out = std::io::stdout().lock();
    for indicator in catalog.indicators() {
        let spec = &indicator.spec;
        let parameters: Vec<&str> = spec.parameters.iter().map(|p| p.name.as_str()).collect();
        writeln!(
            out,
            "{:<32} {:<10} {}  [{}]",
            spec.id,
            spec.theme.code(),
            spec.title(lang),
            parameters.join(", ")
        )?;
    }
    Ok(())
}

/// Writes to `path` through a temporary file renamed into place, so a failure
/// never leaves a half-written file; or to standard output.
fn write_output(
    path: Option<&std::path::Path>,
    write: impl FnOnce(&mut (dyn Write + Send)) -> Result<()>,
) -> Result<()> {
    match path {
        Some(path) => {
            let partial = path.with_extension("partial");
            let file = std::fs::File::create(&partial)
                .with_context(|| format!("creating {}", partial.display()))?;
            let mut writer = std::io::BufWriter::new(file);
            let written = write(&mut writer).and_then(|()| Ok(writer.flush()?));
            if let Err(error) = written {
                let _ = std::fs::remove_file(&partial);
                return Err(error);
            }
            std::fs::rename(&partial, path).with_context(|| format!("writing {}", path.display()))
        }
        None => {
            let mut stdout = std::io::BufWriter::new(std::io::stdout());
            write(&mut stdout)?;
            Ok(stdout.flush()?)
        }
    }
}

async fn run_sql(
    config: &Config,
    query: Option<String>,
    file: Option<PathBuf>,
    format: Option<OutputFormat>,
    out: Option<PathBuf>,
    as_of: &[String],
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
    let versions = parse_as_of(as_of)?;
    let warehouse = open(config).await?;
    let engine = QueryEngine::open_on(&warehouse, config.limits, &config.engine, &versions)
        .await?
        .with_survey_options(config.survey);
    let result = engine.run(&sql).await?;
    write_output(out.as_deref(), |w| {
        Ok(write_batches(format, &result.schema, &result.batches, w)?)
    })?;
    if result.truncated {
        eprintln!(
            "note: the result was cut at {} rows (--max-rows); narrow the query or raise the limit",
            config.limits.max_rows
        );
    }
    Ok(())
}

/// `DATASET=VERSION` pairs of `--as-of`.
fn parse_as_of(pairs: &[String]) -> Result<std::collections::BTreeMap<String, u64>> {
    let mut versions = std::collections::BTreeMap::new();
    for pair in pairs {
        let parsed = pair.split_once('=').and_then(|(name, version)| {
            Some((name.trim().to_string(), version.trim().parse::<u64>().ok()?))
        });
        let Some((name, version)) = parsed else {
            bail!("--as-of takes DATASET=VERSION, e.g. contracts=3, not `{pair}`");
        };
        versions.insert(name, version);
    }
    Ok(versions)
}

pub use records::Exit;
use records::{run_erase, run_history, run_ingest};
use report_command::run_report;
use serve::{create_token, run_serve};
