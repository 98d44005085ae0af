//! The synthetic observatory: every dataset, generated deterministically from
//! a seed at the scale of a province, a region or Italy, calibrated to the
//! public figures in [`calibration`].
//!
//! Owns the rows' content. It must not write files itself: it hands complete
//! batches to the catalog's writer, one commit per dataset.

pub mod calibration;
mod people;
mod random;
mod services;
mod survey;
mod world;

use std::str::FromStr;
use std::sync::LazyLock;

use arrow::array::ArrayRef;
use arrow::record_batch::RecordBatch;
use futures::{StreamExt, TryStreamExt};
use indicatif::ProgressBar;

use crate::catalog::{
    load_reference_table, CatalogError, DatasetKind, Dictionary, Warehouse, WriteMode,
};

/// How much of Italy the synthetic observatory covers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Scale {
    /// The province of Cremona and its three districts: a few thousand workers.
    Province,
    /// Lombardy: about 160,000 workers a year.
    Region,
    /// Italy: about 850,000 workers a year and over 10 million contracts.
    National,
}

impl Scale {
    pub fn as_str(self) -> &'static str {
        match self {
            Scale::Province => "province",
            Scale::Region => "region",
            Scale::National => "national",
        }
    }
}

impl FromStr for Scale {
    type Err = GenerateError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "province" => Ok(Scale::Province),
            "region" => Ok(Scale::Region),
            "national" => Ok(Scale::National),
            other => Err(GenerateError::UnknownScale(other.to_string())),
        }
    }
}

/// What to generate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GenerateOptions {
    pub scale: Scale,
    pub seed: u64,
}

/// Everything that can go wrong while generating.
#[derive(Debug, thiserror::Error)]
pub enum GenerateError {
    #[error("unknown scale `{0}`; use province, region or national")]
    UnknownScale(String),
    #[error("the territories table has no municipality for the {0} scale")]
    NoTerritory(&'static str),
    #[error("building the `{dataset}` batch: {source}")]
    Arrow {
        dataset: &'static str,
        #[source]
        source: arrow::error::ArrowError,
    },
    #[error(transparent)]
    Catalog(#[from] CatalogError),
}

/// Rows written per dataset, in the order they were written.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GenerateSummary {
    pub rows: Vec<(String, usize)>,
}

/// Every dataset of the synthetic observatory, as batches ready to write.
#[derive(Debug, Default)]
pub struct Observatory {
    pub batches: Vec<(String, RecordBatch)>,
}

/// Builds every dataset in memory. Deterministic: the same options give the
/// same rows.
pub fn build(
    options: GenerateOptions,
    progress: &ProgressBar,
) -> Result<Observatory, GenerateError> {
    let dictionary = dictionary();
    let mut out = Observatory::default();
    for spec in dictionary.datasets() {
        if spec.kind == DatasetKind::Reference && spec.source_csv.is_some() {
            out.batches
                .push((spec.name.clone(), load_reference_table(spec)?));
        }
    }
    let territories = &out
        .batches
        .iter()
        .find(|(n, _)| n == "territories")
        .expect("territories is a reference table")
        .1;
    let world = world::World::new(territories, options)?;
    progress.set_message("desks");
    out.batches.push(("desks".into(), world.desks_batch()?));
    progress.set_message("workers and contracts");
    let population = people::Population::simulate(&world, options.seed);
    let services = services::Services::simulate(&world, &population, options.seed);
    progress.set_message("building tables");
    // Each table reads the simulation and draws from its own random stream,
    // so they are built side by side without changing a single value.
    let seed = options.seed;
    let (world, population, services) = (&world, &population, &services);
    let built = std::thread::scope(|scope| {
        let contracts = scope.spawn(move || population.contracts_batch(world, services));
        let workers = scope.spawn(move || population.workers_batch(world, seed));
        let rest = (|| -> Result<Vec<(String, RecordBatch)>, GenerateError> {
            let mut tables = vec![(
                "households".to_string(),
                population.households_batch(world, services)?,
            )];
            for (name, batch) in services.batches(world, population)? {
                tables.push((name.to_string(), batch));
            }
            tables.push((
                "survey_workers".into(),
                survey::workers_batch(world, population, seed)?,
            ));
            tables.push((
                "survey_families".into(),
                survey::families_batch(world, population, seed)?,
            ));
            Ok(tables)
        })();
        let join = |handle: std::thread::ScopedJoinHandle<'_, _>| {
            handle.join().expect("table builder thread")
        };
        Ok::<_, GenerateError>((join(workers)?, join(contracts)?, rest?))
    })?;
    let (workers, contracts, rest) = built;
    out.batches.push(("workers".into(), workers));
    out.batches.push(("contracts".into(), contracts));
    out.batches.extend(rest);
    Ok(out)
}

/// Generates every dataset and replaces the warehouse's tables with them,
/// one Delta commit per table.
pub async fn generate(
    warehouse: &Warehouse,
    options: GenerateOptions,
    progress: &ProgressBar,
) -> Result<GenerateSummary, GenerateError> {
    let observatory = build(options, progress)?;
    progress.set_length(observatory.batches.len() as u64);
    progress.set_message("writing");
    // Tables are independent commits, so they are written side by side to
    // use every core; each write is still atomic on its own.
    let writes = observatory
        .batches
        .into_iter()
        .map(|(name, batch)| async move {
            let rows = batch.num_rows();
            warehouse
                .write(&name, vec![batch], WriteMode::Replace)
                .await?;
            progress.inc(1);
            Ok::<_, GenerateError>((name, rows))
        });
    let rows = futures::stream::iter(writes)
        .buffered(4)
        .try_collect()
        .await?;
    Ok(GenerateSummary { rows })
}

/// The embedded dictionary, parsed once; its validity is checked by the
/// catalog's tests, so a failure here is a build defect.
fn dictionary() -> &'static Dictionary {
    static DICTIONARY: LazyLock<Dictionary> =
        LazyLock::new(|| Dictionary::load().expect("the embedded data dictionary is valid"));
    &DICTIONARY
}

/// A batch of `dataset` with the dictionary's schema.
fn batch(dataset: &'static str, columns: Vec<ArrayRef>) -> Result<RecordBatch, GenerateError> {
    let schema = dictionary().require(dataset)?.arrow_schema();
    RecordBatch::try_new(schema, columns).map_err(|source| GenerateError::Arrow { dataset, source })
}

/// Seed of the embedded demo warehouse.
pub const DEMO_SEED: u64 = 1;

/// Opens the warehouse for reading. When the data directory is the default
/// one and holds no table yet, first fills it with the province-scale demo
/// and returns `true`, so a fresh clone works with no set-up.
pub async fn open_or_bootstrap(
    data_dir: &crate::catalog::Location,
    data_dir_is_default: bool,
    progress: &ProgressBar,
) -> Result<(Warehouse, bool), GenerateError> {
    let dictionary = std::sync::Arc::new(dictionary().clone());
    if data_dir_is_default {
        let warehouse = Warehouse::create(data_dir, dictionary).await?;
        if warehouse.is_empty().await? {
            let options = GenerateOptions {
                scale: Scale::Province,
                seed: DEMO_SEED,
            };
            generate(&warehouse, options, progress).await?;
            return Ok((warehouse, true));
        }
        return Ok((warehouse, false));
    }
    Ok((Warehouse::open(data_dir, dictionary).await?, false))
}
