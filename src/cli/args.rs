//! The command line's arguments: the global options, the subcommands and
//! their flags, as clap reads them.
//!
//! Owns what may be typed and its help text. It must not act on the
//! arguments: the dispatch in `cli` does.

use std::path::PathBuf;

use anyhow::{bail, Result};
use clap::{Parser, Subcommand};

use osservatorio::auth::Role;
use osservatorio::generate;
use osservatorio::indicators::{IndicatorFormat, Lang, ParameterValues};
use osservatorio::ingest::{Encoding, IngestMode};
use osservatorio::query::OutputFormat;

#[cfg(feature = "cluster")]
use super::cluster;

/// Osservatorio: data platform of an observatory on domestic care work in Italy.
#[derive(Debug, Parser)]
#[command(name = "osservatorio", version, about)]
pub struct Cli {
    /// Warehouse: a directory (default ./data) or s3://bucket/prefix, with
    /// credentials and endpoint from the AWS_* variables.
    #[arg(long, global = true, env = "OSSERVATORIO_DATA_DIR")]
    pub(super) data_dir: Option<String>,
    /// Where SQL runs: `local` (default) or `ballista://HOST:PORT`.
    #[arg(long, global = true, env = "OSSERVATORIO_ENGINE")]
    pub(super) engine: Option<String>,
    /// TOML config file with data_dir, memory_limit, query_timeout, max_rows, concurrent_queries.
    #[arg(long, global = true, env = "OSSERVATORIO_CONFIG")]
    pub(super) config: Option<PathBuf>,
    /// Memory pool shared by the running queries, e.g. 512MiB or 2GiB (default a
    /// quarter of the machine's memory, at least 256MiB).
    #[arg(long, global = true, env = "OSSERVATORIO_MEMORY_LIMIT")]
    pub(super) memory_limit: Option<String>,
    /// Time limit for a query, e.g. 30s or 2m (default 60s).
    #[arg(long, global = true, env = "OSSERVATORIO_QUERY_TIMEOUT")]
    pub(super) timeout: Option<String>,
    /// Rows returned at most by a query (default 1000000).
    #[arg(long, global = true, env = "OSSERVATORIO_MAX_ROWS")]
    pub(super) max_rows: Option<usize>,
    /// Queries computed at once; more wait their turn (default: one per core).
    #[arg(long, global = true, env = "OSSERVATORIO_CONCURRENT_QUERIES")]
    pub(super) concurrent_queries: Option<usize>,
    /// Directory of the indicator files (default ./queries).
    #[arg(long, global = true, env = "OSSERVATORIO_QUERIES_DIR")]
    pub(super) queries_dir: Option<PathBuf>,
    /// Disclosure threshold: cells with fewer units are suppressed (default 5, at least 3).
    #[arg(long, global = true, env = "OSSERVATORIO_DISCLOSURE_THRESHOLD")]
    pub(super) disclosure_threshold: Option<i64>,
    /// Survey strata with one PSU: fail (default, as R), adjust, remove, certainty or average.
    #[arg(long, global = true, env = "OSSERVATORIO_LONELY_PSU")]
    pub(super) lonely_psu: Option<String>,
    /// Survey estimates on fewer respondents are flagged `u` (default 30).
    #[arg(long, global = true, env = "OSSERVATORIO_RELIABILITY_MIN_N")]
    pub(super) reliability_min_n: Option<usize>,
    /// Survey estimates with a larger coefficient of variation are flagged `u` (default 0.33).
    #[arg(long, global = true, env = "OSSERVATORIO_RELIABILITY_MAX_CV")]
    pub(super) reliability_max_cv: Option<f64>,
    #[command(subcommand)]
    pub(super) command: Command,
}

#[derive(Debug, Subcommand)]
pub(super) enum Command {
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
pub(super) enum TokenAction {
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
pub(super) struct Filters {
    /// Reference year.
    #[arg(long)]
    pub(super) year: Option<String>,
    /// Social-care district (ambito distrettuale), e.g. Crema.
    #[arg(long)]
    pub(super) district: Option<String>,
    /// ISTAT province code, e.g. 019.
    #[arg(long)]
    pub(super) province: Option<String>,
    /// Any other parameter, as NAME=VALUE.
    #[arg(long = "param", value_name = "NAME=VALUE")]
    pub(super) params: Vec<String>,
}

impl Filters {
    pub(super) fn values(&self) -> Result<ParameterValues> {
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
