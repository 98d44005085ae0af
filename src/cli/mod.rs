//! Command-line arguments, progress bars and exit codes.
//!
//! Owns the mapping from arguments to library calls and from results to the
//! terminal. It must not hold logic that a test of the library cannot reach.

mod args;
#[cfg(feature = "cluster")]
mod cluster;
mod datasets;
mod records;
mod report_command;
mod serve;

use std::io::{IsTerminal, Read, Write};
use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use osservatorio::catalog::{Dictionary, Warehouse};
use osservatorio::charts::{self, ChartOptions, ImageFormat};
use osservatorio::config::{Config, Overrides};
use osservatorio::generate::{self, GenerateOptions, Scale};
use osservatorio::indicators::{write_indicator, IndicatorCatalog, IndicatorResult, Lang};
use osservatorio::ingest::IngestOptions;
use osservatorio::query::{write_batches, OutputFormat, QueryEngine};

pub use args::Cli;
use args::{Command, Filters, TokenAction};

impl Cli {
    pub async fn run(self) -> Result<()> {
        let config = Config::resolve(Overrides {
            config_file: self.config,
            data_dir: self.data_dir,
            engine: self.engine,
            memory_limit: self.memory_limit,
            query_timeout: self.timeout,
            max_rows: self.max_rows,
            concurrent_queries: self.concurrent_queries,
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
