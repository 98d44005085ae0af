//! One validated [`Config`], resolved once at start-up from flags, the
//! environment and an optional TOML file, in that order of precedence.
//!
//! Owns parsing and validation of settings. It must not be re-read later or
//! kept in a global: the binary builds it and passes it down.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use crate::auth::{Access, AggregateAccess, AuthError, TokenRecord};
use crate::catalog::{CatalogError, Location};
use crate::query::{Engine, QueryError, QueryLimits};
use crate::survey::{LonelyPsu, Reliability, SurveyOptions};

/// The data directory used when none is given.
pub const DEFAULT_DATA_DIR: &str = "data";
/// The config file read from the working directory when none is named.
pub const DEFAULT_CONFIG_FILE: &str = "osservatorio.toml";
/// Where `serve` listens by default: loopback only.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:8080";
/// Where `serve` answers Arrow Flight SQL by default: loopback only.
pub const DEFAULT_FLIGHT_LISTEN: &str = "127.0.0.1:50051";
/// The indicators directory used when none is given.
pub const DEFAULT_QUERIES_DIR: &str = "queries";
/// Memory for the results `serve` keeps of repeatable queries.
pub const DEFAULT_RESULT_CACHE_BYTES: usize = 128 << 20;
/// Default disclosure threshold: cells with fewer units are suppressed.
pub const DEFAULT_DISCLOSURE_THRESHOLD: i64 = 5;
/// No configuration may go below the legal floor.
pub use crate::disclosure::LEGAL_MIN_THRESHOLD as MINIMUM_DISCLOSURE_THRESHOLD;

/// Settings that come from flags or the environment; `None` defers to the
/// config file, then to the defaults.
#[derive(Debug, Clone, Default)]
pub struct Overrides {
    pub config_file: Option<PathBuf>,
    pub data_dir: Option<String>,
    pub memory_limit: Option<String>,
    pub query_timeout: Option<String>,
    pub max_rows: Option<usize>,
    pub concurrent_queries: Option<usize>,
    pub result_cache: Option<String>,
    pub queries_dir: Option<PathBuf>,
    pub disclosure_threshold: Option<i64>,
    pub lonely_psu: Option<String>,
    pub reliability_min_n: Option<usize>,
    pub reliability_max_cv: Option<f64>,
    pub listen: Option<String>,
    pub flight_listen: Option<String>,
    pub pseudonym_key: Option<String>,
    pub engine: Option<String>,
}

/// The config file's keys, all optional.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct ConfigFile {
    data_dir: Option<String>,
    engine: Option<String>,
    memory_limit: Option<String>,
    query_timeout: Option<String>,
    max_rows: Option<usize>,
    concurrent_queries: Option<usize>,
    result_cache: Option<String>,
    queries_dir: Option<PathBuf>,
    disclosure_threshold: Option<i64>,
    lonely_psu: Option<String>,
    reliability_min_n: Option<usize>,
    reliability_max_cv: Option<f64>,
    listen: Option<String>,
    flight_listen: Option<String>,
    /// `public` (default) or `committee`: who may see aggregate outputs.
    aggregates: Option<AggregateAccess>,
    #[serde(default)]
    tokens: Vec<TokenRecord>,
    pseudonym_key: Option<String>,
}

/// Problems with settings.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("config file {path}: {source}")]
    Read {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("config file {path}: {message}")]
    Parse { path: String, message: String },
    #[error("memory limit `{0}` is not a size; write e.g. 512MiB, 2GiB or a number of bytes")]
    BadSize(String),
    #[error("result cache `{0}` is not a size; write e.g. 64MiB, or 0 to keep no results")]
    BadResultCache(String),
    #[error("query timeout `{0}` is not a duration; write e.g. 500ms, 30s or 2m")]
    BadDuration(String),
    #[error("{0} must be greater than zero")]
    Zero(&'static str),
    #[error("lonely PSU option `{0}` is not one of fail, adjust, remove, certainty, average")]
    BadLonelyPsu(String),
    #[error("the reliability CV limit {0} must be a positive fraction, e.g. 0.33")]
    BadCv(f64),
    #[error(
        "the disclosure threshold {0} is below the legal floor of {MINIMUM_DISCLOSURE_THRESHOLD}"
    )]
    ThresholdTooLow(i64),
    #[error("listen address `{0}` is not an IP address and port, e.g. 127.0.0.1:8080")]
    BadListen(String),
    #[error("config file {path}: {source}")]
    Token {
        path: String,
        #[source]
        source: AuthError,
    },
    #[error("data directory {0}")]
    DataDir(CatalogError),
    #[error("{0}")]
    Engine(QueryError),
    #[error("config file {path}: a token named `{name}` already exists")]
    DuplicateToken { path: String, name: String },
}

/// The resolved configuration.
#[derive(Debug, Clone)]
pub struct Config {
    /// A local directory or `s3://bucket/prefix`.
    pub data_dir: Location,
    /// True when no flag, variable or file chose the data directory; only then
    /// may a read command fill an empty warehouse with the demo.
    pub data_dir_is_default: bool,
    pub limits: QueryLimits,
    /// Memory for the results of repeatable queries kept by `serve` for
    /// the current table versions; 0 keeps none.
    pub result_cache_bytes: usize,
    /// Where user SQL, indicators, charts and the report run.
    pub engine: Engine,
    /// Where the indicator files are read from.
    pub queries_dir: PathBuf,
    /// Cells with fewer units than this are suppressed, unless an indicator
    /// sets its own threshold.
    pub disclosure_threshold: i64,
    /// Lonely-PSU rule and reliability thresholds of survey estimates.
    pub survey: SurveyOptions,
    /// Where `serve` listens for HTTP.
    pub listen: SocketAddr,
    /// Where `serve` listens for Arrow Flight SQL.
    pub flight_listen: SocketAddr,
    /// Configured tokens and who may see aggregates.
    pub access: Access,
    /// The config file read, if any.
    pub config_file: Option<PathBuf>,
    /// Key of the pseudonyms that ingest gives to personal identifiers.
    pub pseudonym_key: Option<Secret>,
}

/// A value that must never be printed, e.g. in a debug dump of the config.
#[derive(Clone)]
pub struct Secret(String);

impl Secret {
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("<secret>")
    }
}

impl Config {
    pub fn resolve(overrides: Overrides) -> Result<Self, ConfigError> {
        // A config file in the working directory is read without being named,
        // so that `token create` and `serve` agree on it by default.
        let config_file = overrides.config_file.clone().or_else(|| {
            let local = PathBuf::from(DEFAULT_CONFIG_FILE);
            local.is_file().then_some(local)
        });
        let file = match &config_file {
            Some(path) => read_file(path)?,
            None => ConfigFile::default(),
        };
        let listen = socket_address(overrides.listen.or(file.listen), DEFAULT_LISTEN)?;
        let flight_listen = socket_address(
            overrides.flight_listen.or(file.flight_listen),
            DEFAULT_FLIGHT_LISTEN,
        )?;
        let access =
            Access::new(file.tokens, file.aggregates.unwrap_or_default()).map_err(|source| {
                ConfigError::Token {
                    path: config_file
                        .as_ref()
                        .map_or_else(String::new, |p| p.display().to_string()),
                    source,
                }
            })?;
        let defaults = QueryLimits::default();
        let data_dir = overrides.data_dir.or(file.data_dir);
        let data_dir_is_default = data_dir.is_none();
        let data_dir: Location = data_dir
            .as_deref()
            .unwrap_or(DEFAULT_DATA_DIR)
            .parse()
            .map_err(ConfigError::DataDir)?;
        let memory_bytes = match overrides.memory_limit.or(file.memory_limit) {
            Some(text) => parse_size(&text)?,
            None => defaults.memory_bytes,
        };
        let timeout = match overrides.query_timeout.or(file.query_timeout) {
            Some(text) => parse_duration(&text)?,
            None => defaults.timeout,
        };
        let max_rows = overrides
            .max_rows
            .or(file.max_rows)
            .unwrap_or(defaults.max_rows);
        let result_cache_bytes = match overrides.result_cache.or(file.result_cache) {
            Some(text) => parse_size(&text).map_err(|_| ConfigError::BadResultCache(text))?,
            None => DEFAULT_RESULT_CACHE_BYTES,
        };
        if memory_bytes == 0 {
            return Err(ConfigError::Zero("the memory limit"));
        }
        if timeout.is_zero() {
            return Err(ConfigError::Zero("the query timeout"));
        }
        if max_rows == 0 {
            return Err(ConfigError::Zero("the row limit"));
        }
        let concurrent_queries = overrides
            .concurrent_queries
            .or(file.concurrent_queries)
            .unwrap_or(defaults.concurrent_queries);
        if concurrent_queries == 0 {
            return Err(ConfigError::Zero("the number of queries at once"));
        }
        let disclosure_threshold = overrides
            .disclosure_threshold
            .or(file.disclosure_threshold)
            .unwrap_or(DEFAULT_DISCLOSURE_THRESHOLD);
        if disclosure_threshold < MINIMUM_DISCLOSURE_THRESHOLD {
            return Err(ConfigError::ThresholdTooLow(disclosure_threshold));
        }
        let lonely_psu = match overrides.lonely_psu.or(file.lonely_psu).as_deref() {
            None | Some("fail") => LonelyPsu::Fail,
            Some("adjust") => LonelyPsu::Adjust,
            Some("remove") => LonelyPsu::Remove,
            Some("certainty") => LonelyPsu::Certainty,
            Some("average") => LonelyPsu::Average,
            Some(other) => return Err(ConfigError::BadLonelyPsu(other.to_string())),
        };
        let defaults = Reliability::default();
        let max_cv = overrides
            .reliability_max_cv
            .or(file.reliability_max_cv)
            .unwrap_or(defaults.max_cv);
        if !(max_cv > 0.0 && max_cv.is_finite()) {
            return Err(ConfigError::BadCv(max_cv));
        }
        let reliability = Reliability {
            min_n: overrides
                .reliability_min_n
                .or(file.reliability_min_n)
                .unwrap_or(defaults.min_n),
            max_cv,
        };
        let pseudonym_key = overrides
            .pseudonym_key
            .or(file.pseudonym_key)
            .filter(|k| !k.is_empty())
            .map(Secret);
        Ok(Config {
            pseudonym_key,
            listen,
            flight_listen,
            access,
            config_file,
            survey: SurveyOptions {
                lonely_psu,
                reliability,
            },
            data_dir,
            data_dir_is_default,
            engine: overrides
                .engine
                .or(file.engine)
                .as_deref()
                .unwrap_or("local")
                .parse()
                .map_err(ConfigError::Engine)?,
            limits: QueryLimits {
                memory_bytes,
                timeout,
                max_rows,
                concurrent_queries,
            },
            result_cache_bytes,
            queries_dir: overrides
                .queries_dir
                .or(file.queries_dir)
                .unwrap_or_else(|| PathBuf::from(DEFAULT_QUERIES_DIR)),
            disclosure_threshold,
        })
    }
}

/// Appends a token record to the config file, creating the file if needed,
/// through a temporary file renamed into place.
pub fn add_token(path: &Path, record: &TokenRecord) -> Result<(), ConfigError> {
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
        Err(source) => {
            return Err(ConfigError::Read {
                path: path.display().to_string(),
                source,
            })
        }
    };
    let existing: ConfigFile = toml::from_str(&text).map_err(|e| ConfigError::Parse {
        path: path.display().to_string(),
        message: e.message().to_string(),
    })?;
    if existing.tokens.iter().any(|t| t.name == record.name) {
        return Err(ConfigError::DuplicateToken {
            path: path.display().to_string(),
            name: record.name.clone(),
        });
    }
    let entry = toml::to_string(record).expect("a token record serialises");
    let mut updated = text;
    if !updated.is_empty() && !updated.ends_with('\n') {
        updated.push('\n');
    }
    updated.push_str("\n[[tokens]]\n");
    updated.push_str(&entry);
    let io_error = |source| ConfigError::Read {
        path: path.display().to_string(),
        source,
    };
    let partial = path.with_extension("toml.partial");
    std::fs::write(&partial, updated).map_err(io_error)?;
    std::fs::rename(&partial, path).map_err(io_error)
}

fn read_file(path: &Path) -> Result<ConfigFile, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
        path: path.display().to_string(),
        source,
    })?;
    toml::from_str(&text).map_err(|e| ConfigError::Parse {
        path: path.display().to_string(),
        message: e.message().to_string(),
    })
}

/// A listen address as given, or the default.
fn socket_address(given: Option<String>, default: &str) -> Result<SocketAddr, ConfigError> {
    let text = given.unwrap_or_else(|| default.to_string());
    text.parse().map_err(|_| ConfigError::BadListen(text))
}

/// Parses sizes such as `512MiB`, `2GiB`, `1G`, `64k` or a plain byte count.
pub fn parse_size(text: &str) -> Result<usize, ConfigError> {
    let bad = || ConfigError::BadSize(text.to_string());
    let trimmed = text.trim();
    let split = trimmed
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(trimmed.len());
    let (number, unit) = trimmed.split_at(split);
    let number: usize = number.parse().map_err(|_| bad())?;
    let multiplier: usize = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kb" | "kib" => 1 << 10,
        "m" | "mb" | "mib" => 1 << 20,
        "g" | "gb" | "gib" => 1 << 30,
        _ => return Err(bad()),
    };
    number.checked_mul(multiplier).ok_or_else(bad)
}

/// Parses durations such as `500ms`, `30s`, `2m` or a plain number of seconds.
pub fn parse_duration(text: &str) -> Result<Duration, ConfigError> {
    let bad = || ConfigError::BadDuration(text.to_string());
    let trimmed = text.trim();
    let split = trimmed
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(trimmed.len());
    let (number, unit) = trimmed.split_at(split);
    let number: u64 = number.parse().map_err(|_| bad())?;
    match unit.trim() {
        "ms" => Ok(Duration::from_millis(number)),
        "" | "s" => Ok(Duration::from_secs(number)),
        "m" | "min" => Ok(Duration::from_secs(number * 60)),
        _ => Err(bad()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_and_durations_parse() {
        assert_eq!(parse_size("512MiB").unwrap(), 512 << 20);
        assert_eq!(parse_size("2g").unwrap(), 2 << 30);
        assert_eq!(parse_size("1000").unwrap(), 1000);
        assert!(parse_size("lots").is_err());
        assert_eq!(parse_duration("500ms").unwrap(), Duration::from_millis(500));
        assert_eq!(parse_duration("2m").unwrap(), Duration::from_secs(120));
        assert!(parse_duration("soon").is_err());
    }

    #[test]
    fn flags_override_the_file() {
        let dir = std::env::temp_dir().join(format!("osservatorio-config-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("osservatorio.toml");
        std::fs::write(
            &file,
            "data_dir = \"/srv/wh\"\nmax_rows = 10\nquery_timeout = \"5s\"\n",
        )
        .unwrap();
        let config = Config::resolve(Overrides {
            config_file: Some(file),
            max_rows: Some(20),
            ..Overrides::default()
        })
        .unwrap();
        assert_eq!(config.data_dir, Location::Local(PathBuf::from("/srv/wh")));
        assert!(!config.data_dir_is_default);
        assert_eq!(config.limits.max_rows, 20);
        assert_eq!(config.limits.timeout, Duration::from_secs(5));
        std::fs::remove_dir_all(dir).unwrap();
    }
}
