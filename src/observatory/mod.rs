//! The running observatory behind every long-lived front end (the HTTP
//! server today): a snapshot of the warehouse with its query engine and
//! indicator catalog, renewed when a table version changes, and a cache of
//! rendered outputs keyed by what they were computed from.
//!
//! Owns which table versions a response reads, the entity tags that name
//! them, and dropping cached bytes when a version changes. It must not know
//! HTTP (no status codes, headers or routes) and must not bypass the query
//! gate or disclosure control: it only calls `query`, `indicators` and
//! `charts`.

mod page;

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use bytes::Bytes;
use datafusion::scalar::ScalarValue;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use crate::catalog::{CatalogError, TableVersions, Warehouse};
use crate::charts::{self, ChartError, ChartOptions, ImageFormat};
use crate::config::Config;
use crate::indicators::{
    write_indicator, IndicatorCatalog, IndicatorError, IndicatorFormat, Lang, ParameterValues,
};
use crate::query::{CappedStream, OutputError, QueryEngine, QueryError, QueryShape, TableEntry};
use crate::report::{self, Policy, ReportError, ReportOptions};
use crate::survey::SurveyOptions;

pub use page::PageSelection;

/// Rendered outputs kept at most; beyond this the cache starts afresh.
const CACHE_ENTRIES: usize = 2048;

/// Everything that can go wrong while serving the observatory.
#[derive(Debug, thiserror::Error)]
pub enum ObservatoryError {
    /// The warehouse could not be read or a dataset name is unknown.
    #[error(transparent)]
    Catalog(#[from] CatalogError),
    /// Opening the query engine, or a user query, failed.
    #[error(transparent)]
    Query(#[from] QueryError),
    /// The annual report could not be built.
    #[error(transparent)]
    Report(#[from] ReportError),
    /// An indicator is unknown, its parameters are wrong, or it failed.
    #[error(transparent)]
    Indicator(#[from] IndicatorError),
    /// A chart could not be drawn.
    #[error(transparent)]
    Chart(#[from] ChartError),
    /// A result could not be encoded.
    #[error(transparent)]
    Output(#[from] OutputError),
}

/// Bytes ready to send, with their media type and entity tag.
#[derive(Debug, Clone)]
pub struct Rendered {
    pub bytes: Bytes,
    pub media_type: &'static str,
    /// Quoted strong entity tag: the same tag means the same bytes.
    pub etag: String,
    /// True when the bytes came from the cache.
    pub cached: bool,
    /// Time spent computing them; zero when cached.
    pub compute_time: Duration,
}

/// The tables, engine and indicators that one set of responses reads.
pub struct Snapshot {
    pub engine: QueryEngine,
    pub catalog: IndicatorCatalog,
    /// Years and territories offered by the committee page's selectors.
    pub choices: page::Choices,
    loaded_at: Instant,
}

impl Snapshot {
    pub fn versions(&self) -> &TableVersions {
        self.engine.versions()
    }
}

/// Counters a front end may export.
#[derive(Debug, Default)]
pub struct Stats {
    pub cache_hits: AtomicU64,
    pub cache_misses: AtomicU64,
    pub reloads: AtomicU64,
}

/// The observatory as a service.
pub struct Observatory {
    warehouse: Warehouse,
    config: Config,
    current: RwLock<Arc<Snapshot>>,
    reload: tokio::sync::Mutex<()>,
    cache: Mutex<HashMap<String, Rendered>>,
    stats: Stats,
}

impl std::fmt::Debug for Observatory {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Observatory")
            .field("warehouse", &self.warehouse.location().to_string())
            .finish_non_exhaustive()
    }
}

impl Observatory {
    /// Opens the warehouse's current snapshot and checks every indicator.
    pub async fn open(warehouse: Warehouse, config: Config) -> Result<Self, ObservatoryError> {
        let snapshot = load_snapshot(&warehouse, &config, None).await?;
        Ok(Self {
            warehouse,
            config,
            current: RwLock::new(Arc::new(snapshot)),
            reload: tokio::sync::Mutex::new(()),
            cache: Mutex::new(HashMap::new()),
            stats: Stats::default(),
        })
    }

    pub fn config(&self) -> &Config {
        &self.config
    }

    pub fn warehouse(&self) -> &Warehouse {
        &self.warehouse
    }

    pub fn stats(&self) -> &Stats {
        &self.stats
    }

    /// The snapshot responses are computed from now.
    pub fn snapshot(&self) -> Arc<Snapshot> {
        self.current.read().expect("snapshot lock").clone()
    }

    /// Loads a new snapshot if any table has a new version, dropping the
    /// cache; returns true if it did. On failure the old snapshot stays.
    pub async fn refresh(&self) -> Result<bool, ObservatoryError> {
        let _one_at_a_time = self.reload.lock().await;
        let on_disk = self.warehouse.versions().await?;
        if &on_disk == self.snapshot().versions() {
            return Ok(false);
        }
        let previous = self.snapshot();
        let snapshot = load_snapshot(&self.warehouse, &self.config, Some(&previous.engine)).await?;
        tracing::info!(versions = ?snapshot.versions(), "new table versions: snapshot reloaded");
        *self.current.write().expect("snapshot lock") = Arc::new(snapshot);
        self.cache.lock().expect("cache lock").clear();
        self.stats.reloads.fetch_add(1, Ordering::Relaxed);
        Ok(true)
    }

    /// Checks for new table versions every `every` until the task is dropped.
    pub fn watch(self: &Arc<Self>, every: Duration) -> tokio::task::JoinHandle<()> {
        let observatory = Arc::downgrade(self);
        tokio::spawn(async move {
            let mut ticks = tokio::time::interval(every);
            ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                ticks.tick().await;
                let Some(observatory) = observatory.upgrade() else {
                    return;
                };
                if let Err(error) = observatory.refresh().await {
                    tracing::warn!(%error, "could not load the new table versions; still serving the previous ones");
                }
            }
        })
    }

    /// The indicator catalog with its metadata.
    pub fn indicator_list(&self, lang: Lang) -> Value {
        let snapshot = self.snapshot();
        let indicators: Vec<Value> = snapshot
            .catalog
            .indicators()
            .iter()
            .map(|indicator| {
                let spec = &indicator.spec;
                json!({
                    "id": spec.id,
                    "theme": spec.theme.code(),
                    "title": spec.title(lang),
                    "description": spec.description(lang),
                    "unit": spec.unit,
                    "dimensions": spec.dimensions,
                    "measures": spec.measures,
                    "chart": format!("{:?}", spec.chart).to_lowercase(),
                    "sources": spec.sources,
                    "tables": indicator.tables(),
                    "parameters": spec.parameters.iter().map(|p| json!({
                        "name": p.name,
                        "type": format!("{:?}", p.parameter_type).to_lowercase(),
                        "default": p.default.as_ref().map(|d| d.to_string().trim_matches('"').to_string()),
                        "description": p.description,
                    })).collect::<Vec<_>>(),
                    "targets": spec.targets.as_ref().map(|t| json!({"project": t.project, "target_ids": t.target_ids})),
                })
            })
            .collect();
        json!({ "versions": snapshot.versions(), "indicators": indicators })
    }

    /// One indicator after disclosure control, encoded in `format`.
    pub async fn indicator(
        &self,
        id: &str,
        values: &ParameterValues,
        format: IndicatorFormat,
        lang: Lang,
    ) -> Result<Rendered, ObservatoryError> {
        let snapshot = self.snapshot();
        let tag = self.tag(
            &snapshot,
            "indicator",
            id,
            values,
            &format!("{format:?}/{lang:?}"),
        )?;
        let media_type = match format {
            IndicatorFormat::Json => "application/json",
            IndicatorFormat::Csv => "text/csv; charset=utf-8",
            IndicatorFormat::SdmxCsv => {
                "application/vnd.sdmx.data+csv; version=1.0.0; charset=utf-8"
            }
            IndicatorFormat::Table => "text/plain; charset=utf-8",
        };
        self.cached(tag, media_type, async {
            let result = snapshot.catalog.run(&snapshot.engine, id, values).await?;
            let mut bytes = Vec::new();
            write_indicator(&result, format, lang, &mut bytes)?;
            Ok(bytes)
        })
        .await
    }

    /// One indicator drawn as SVG or PNG.
    pub async fn chart(
        &self,
        id: &str,
        values: &ParameterValues,
        format: ImageFormat,
        options: ChartOptions,
    ) -> Result<Rendered, ObservatoryError> {
        let snapshot = self.snapshot();
        let variant = format!("{format:?}/{options:?}");
        let tag = self.tag(&snapshot, "chart", id, values, &variant)?;
        let media_type = match format {
            ImageFormat::Svg => "image/svg+xml",
            ImageFormat::Png => "image/png",
        };
        self.cached(tag, media_type, async {
            let result = snapshot.catalog.run(&snapshot.engine, id, values).await?;
            Ok(charts::render(
                &result,
                snapshot.catalog.labels(),
                options,
                format,
            )?)
        })
        .await
    }

    /// The committee page: every indicator by theme, with its chart.
    pub async fn page(
        &self,
        lang: Lang,
        selection: &PageSelection,
    ) -> Result<Rendered, ObservatoryError> {
        let snapshot = self.snapshot();
        let key = format!("{lang:?}/{selection:?}");
        let tag = self.tag(&snapshot, "page", "", &ParameterValues::new(), &key)?;
        self.cached(tag, "text/html; charset=utf-8", async {
            Ok(page::render(self, &snapshot, lang, selection)
                .await
                .into_bytes())
        })
        .await
    }

    /// The annual report of `year` as one HTML document, for the whole area.
    pub async fn report(&self, year: i32, lang: Lang) -> Result<Rendered, ObservatoryError> {
        let snapshot = self.snapshot();
        let tag = self.tag(
            &snapshot,
            "report",
            "",
            &ParameterValues::new(),
            &format!("{year}/{lang:?}"),
        )?;
        self.cached(tag, "text/html; charset=utf-8", async {
            let options = ReportOptions {
                year,
                lang,
                territory: ParameterValues::new(),
            };
            let policy = Policy {
                disclosure_threshold: self.config.disclosure_threshold,
                survey: self.config.survey,
            };
            let report = report::build(
                &snapshot.engine,
                &snapshot.catalog,
                policy,
                &options,
                &indicatif::ProgressBar::hidden(),
            )
            .await?;
            Ok(report.html.into_bytes())
        })
        .await
    }

    /// The dictionary with each table's current version, rows, files and
    /// bytes; one dataset when `name` is given.
    pub async fn datasets(&self, name: Option<&str>) -> Result<Value, ObservatoryError> {
        if let Some(name) = name {
            self.warehouse.dictionary().require(name)?;
        }
        let statuses = self.warehouse.status().await?;
        let described: Vec<Value> = self
            .warehouse
            .dictionary()
            .datasets()
            .iter()
            .filter(|spec| name.is_none_or(|n| n == spec.name))
            .map(|spec| {
                let status = statuses.iter().find(|s| s.name == spec.name);
                let mut value = serde_json::to_value(spec).expect("a dataset spec serialises");
                value["version"] = json!(status.and_then(|s| s.version));
                value["rows"] = json!(status.map_or(0, |s| s.rows));
                value["files"] = json!(status.map_or(0, |s| s.files));
                value["bytes"] = json!(status.map_or(0, |s| s.bytes));
                value
            })
            .collect();
        Ok(match name {
            Some(_) => described.into_iter().next().expect("the dataset exists"),
            None => json!({ "datasets": described }),
        })
    }

    /// Starts a user query through the gate, with `$name` parameters bound.
    /// Rows come as they are computed, under the row cap and time limit.
    pub async fn sql(
        &self,
        sql: &str,
        params: Vec<(String, ScalarValue)>,
    ) -> Result<CappedStream, ObservatoryError> {
        let snapshot = self.snapshot();
        let plan = snapshot.engine.plan_with_params(sql, params).await?;
        Ok(snapshot.engine.stream_plan(plan).await?)
    }

    /// The result schema (with `params` bound) and the placeholders of a
    /// user query, through the gate, without running it.
    pub async fn describe_sql(
        &self,
        sql: &str,
        params: Vec<(String, ScalarValue)>,
    ) -> Result<QueryShape, ObservatoryError> {
        Ok(self.snapshot().engine.describe(sql, params).await?)
    }

    /// The tables and views user SQL can read, with their schemas.
    pub async fn tables(&self) -> Result<Vec<TableEntry>, ObservatoryError> {
        Ok(self.snapshot().engine.tables().await?)
    }

    /// The entity tag of an output: what it reads (the versions of the tables
    /// it reads, or of all tables), its parameters, the disclosure and survey
    /// policy, the program version and the output variant.
    fn tag(
        &self,
        snapshot: &Snapshot,
        kind: &str,
        id: &str,
        values: &ParameterValues,
        variant: &str,
    ) -> Result<String, ObservatoryError> {
        // Whole-area outputs (page, report) read every table; an indicator
        // reads the tables of its plan.
        let indicator = if id.is_empty() {
            None
        } else {
            Some(snapshot.catalog.get(id)?)
        };
        let read: Vec<(&String, &Option<u64>)> = snapshot
            .versions()
            .iter()
            .filter(|(name, _)| indicator.is_none_or(|i| i.tables().contains(name)))
            .collect();
        let SurveyOptions {
            lonely_psu,
            reliability,
        } = self.config.survey;
        let threshold = indicator
            .and_then(|i| i.spec.disclosure.threshold)
            .unwrap_or(self.config.disclosure_threshold);
        let mut hasher = Sha256::new();
        let mut feed = |part: String| {
            hasher.update(part.as_bytes());
            hasher.update([0]);
        };
        feed(env!("CARGO_PKG_VERSION").to_string());
        feed(snapshot.catalog.fingerprint().to_string());
        feed(format!("{kind}/{id}/{variant}"));
        feed(format!("{read:?}"));
        feed(format!("{values:?}"));
        feed(format!(
            "threshold={threshold}/{lonely_psu:?}/{}/{}",
            reliability.min_n, reliability.max_cv
        ));
        feed(format!("year={}", current_year()));
        let digest = hasher.finalize();
        Ok(format!("\"{}\"", hex::encode(&digest[..16])))
    }

    async fn cached(
        &self,
        etag: String,
        media_type: &'static str,
        compute: impl std::future::Future<Output = Result<Vec<u8>, ObservatoryError>>,
    ) -> Result<Rendered, ObservatoryError> {
        if let Some(hit) = self.cache.lock().expect("cache lock").get(&etag) {
            self.stats.cache_hits.fetch_add(1, Ordering::Relaxed);
            return Ok(Rendered {
                cached: true,
                compute_time: Duration::ZERO,
                ..hit.clone()
            });
        }
        self.stats.cache_misses.fetch_add(1, Ordering::Relaxed);
        let started = Instant::now();
        let bytes = Bytes::from(compute.await?);
        let rendered = Rendered {
            bytes,
            media_type,
            etag: etag.clone(),
            cached: false,
            compute_time: started.elapsed(),
        };
        let mut cache = self.cache.lock().expect("cache lock");
        if cache.len() >= CACHE_ENTRIES {
            cache.clear();
        }
        cache.insert(etag, rendered.clone());
        Ok(rendered)
    }
}

/// The provisional flag depends on whether a year is over, so tags change
/// with the calendar year too.
fn current_year() -> i32 {
    use chrono::Datelike;
    chrono::Local::now().year()
}

/// Opens the current snapshot. A renewed one shares the previous engine's
/// memory pool and turns, since queries on the old tables may still run.
async fn load_snapshot(
    warehouse: &Warehouse,
    config: &Config,
    previous: Option<&QueryEngine>,
) -> Result<Snapshot, ObservatoryError> {
    let latest = Default::default();
    let engine = match previous {
        Some(previous) => previous.reopen(warehouse, &config.engine, &latest).await?,
        None => QueryEngine::open_on(warehouse, config.limits, &config.engine, &latest).await?,
    }
    .with_survey_options(config.survey)
    .with_result_cache(config.result_cache_bytes);
    let catalog =
        IndicatorCatalog::load(&config.queries_dir, &engine, config.disclosure_threshold).await?;
    let choices = page::Choices::load(&engine).await?;
    Ok(Snapshot {
        engine,
        catalog,
        choices,
        loaded_at: Instant::now(),
    })
}

impl Snapshot {
    /// How long ago this snapshot was loaded.
    pub fn age(&self) -> Duration {
        self.loaded_at.elapsed()
    }
}
