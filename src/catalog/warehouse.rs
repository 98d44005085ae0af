//! The warehouse: one Delta Lake table per dataset under the data directory.
//!
//! Owns opening, writing (one atomic Delta commit per write), describing and
//! registering the tables. Nothing else in the crate writes files under the
//! data directory. It must not interpret the rows it stores.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow::record_batch::RecordBatch;
use datafusion::datasource::MemTable;
use datafusion::prelude::SessionContext;
use deltalake::parquet::basic::{Compression, ZstdLevel};
use deltalake::parquet::file::properties::{EnabledStatistics, WriterProperties};
use deltalake::protocol::SaveMode;
use deltalake::{DeltaTable, DeltaTableBuilder, DeltaTableError};
use url::Url;

use super::{CatalogError, DatasetSpec, Dictionary};

/// File that marks a directory as an Osservatorio warehouse, so that a
/// mistyped `--data-dir` never turns someone's home directory into one.
pub const WAREHOUSE_MARKER: &str = "osservatorio-warehouse.toml";

/// How a write combines with what the table already holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WriteMode {
    /// The batches become the whole table.
    Replace,
    /// The batches are added to the table.
    Append,
    /// The batches replace the rows of these years (the `year` partition);
    /// other years stay as they are.
    ReplaceYears(Vec<i32>),
}

/// One commit of a table, as `osservatorio history` shows it.
#[derive(Debug, Clone, PartialEq)]
pub struct Commit {
    pub version: u64,
    /// Milliseconds since the epoch.
    pub timestamp: Option<i64>,
    /// The Delta operation: WRITE, DELETE, ...
    pub operation: String,
    /// What Osservatorio recorded with the commit (source file, hash, rows).
    pub metadata: serde_json::Map<String, serde_json::Value>,
}

/// Prefix of the keys Osservatorio adds to a commit's metadata.
pub const COMMIT_METADATA_PREFIX: &str = "osservatorio.";

/// The Delta version of each dataset, by name; `None` for a table never written.
pub type TableVersions = std::collections::BTreeMap<String, Option<u64>>;

/// What `osservatorio datasets` shows for one table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableStatus {
    pub name: String,
    /// Current Delta version, `None` if the table has never been written.
    pub version: Option<u64>,
    pub rows: u64,
    pub files: u64,
    pub bytes: u64,
}

/// The data directory and the dictionary that describes its tables.
#[derive(Debug, Clone)]
pub struct Warehouse {
    root: PathBuf,
    dictionary: Arc<Dictionary>,
}

impl Warehouse {
    /// Opens an existing warehouse for reading.
    pub fn open(root: &Path, dictionary: Arc<Dictionary>) -> Result<Self, CatalogError> {
        if !root.is_dir() {
            return Err(CatalogError::MissingDataDir {
                path: root.display().to_string(),
            });
        }
        let warehouse = Self::at(root, dictionary)?;
        warehouse.check_not_foreign()?;
        Ok(warehouse)
    }

    /// Opens a warehouse for writing, creating the directory if needed.
    pub fn create(root: &Path, dictionary: Arc<Dictionary>) -> Result<Self, CatalogError> {
        std::fs::create_dir_all(root).map_err(|source| CatalogError::Io {
            path: root.display().to_string(),
            source,
        })?;
        let warehouse = Self::at(root, dictionary)?;
        warehouse.check_not_foreign()?;
        let marker = warehouse.root.join(WAREHOUSE_MARKER);
        if !marker.exists() {
            std::fs::write(
                &marker,
                "# Osservatorio warehouse: one Delta table per dataset.\nformat = 1\n",
            )
            .map_err(|source| CatalogError::Io {
                path: marker.display().to_string(),
                source,
            })?;
        }
        Ok(warehouse)
    }

    fn at(root: &Path, dictionary: Arc<Dictionary>) -> Result<Self, CatalogError> {
        let root = std::path::absolute(root).map_err(|source| CatalogError::Io {
            path: root.display().to_string(),
            source,
        })?;
        Ok(Self { root, dictionary })
    }

    fn check_not_foreign(&self) -> Result<(), CatalogError> {
        if self.root.join(WAREHOUSE_MARKER).exists() {
            return Ok(());
        }
        let mut entries = std::fs::read_dir(&self.root).map_err(|source| CatalogError::Io {
            path: self.root.display().to_string(),
            source,
        })?;
        if entries.next().is_some() {
            return Err(CatalogError::ForeignDataDir {
                path: self.root.display().to_string(),
                marker: WAREHOUSE_MARKER,
            });
        }
        Ok(())
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    pub fn dictionary(&self) -> &Dictionary {
        &self.dictionary
    }

    /// True when no dataset has been written yet.
    pub async fn is_empty(&self) -> Result<bool, CatalogError> {
        // A committed table has at least one JSON entry in its log; reading
        // the logs themselves is not needed to know that.
        let committed = |name: &str| {
            std::fs::read_dir(self.root.join(name).join("_delta_log")).is_ok_and(|entries| {
                entries.flatten().any(|e| {
                    let name = e.file_name();
                    let name = name.to_string_lossy();
                    name.ends_with(".json") && name.starts_with(|c: char| c.is_ascii_digit())
                })
            })
        };
        Ok(!self
            .dictionary
            .datasets()
            .iter()
            .any(|spec| committed(&spec.name)))
    }

    fn table_url(&self, name: &str) -> Result<Url, CatalogError> {
        let dir = self.root.join(name);
        Url::from_directory_path(&dir).map_err(|()| CatalogError::Io {
            path: dir.display().to_string(),
            source: std::io::Error::other("not an absolute path"),
        })
    }

    async fn load(&self, name: &str) -> Result<DeltaTable, CatalogError> {
        let url = self.table_url(name)?;
        DeltaTable::try_from_url(url)
            .await
            .map_err(|source| CatalogError::Delta {
                dataset: name.to_string(),
                source,
            })
    }

    /// The dataset's Delta table at its latest version, `None` if never written.
    pub async fn table(&self, name: &str) -> Result<Option<DeltaTable>, CatalogError> {
        self.dictionary.require(name)?;
        if !self.root.join(name).join("_delta_log").is_dir() {
            return Ok(None);
        }
        let table = self.load(name).await?;
        Ok(table.version().is_some().then_some(table))
    }

    /// Writes `batches` to the dataset's table as one Delta commit and returns
    /// the new version. The batches must have exactly the dictionary's schema;
    /// on any error the table stays at its previous version.
    pub async fn write(
        &self,
        name: &str,
        batches: Vec<RecordBatch>,
        mode: WriteMode,
    ) -> Result<u64, CatalogError> {
        self.write_recorded(name, batches, mode, serde_json::Map::new())
            .await
    }

    /// Like [`Warehouse::write`], recording `metadata` in the commit under
    /// keys prefixed `osservatorio.`, for the history.
    pub async fn write_recorded(
        &self,
        name: &str,
        batches: Vec<RecordBatch>,
        mode: WriteMode,
        metadata: serde_json::Map<String, serde_json::Value>,
    ) -> Result<u64, CatalogError> {
        let spec = self.dictionary.require(name)?;
        check_batches(spec, &batches)?;
        let batches = if batches.is_empty() {
            // An empty write still commits: replacing a table with no rows is
            // a legitimate version, and the writer needs one batch to plan.
            vec![RecordBatch::new_empty(spec.arrow_schema())]
        } else {
            batches
        };
        std::fs::create_dir_all(self.root.join(name)).map_err(|source| CatalogError::Io {
            path: self.root.join(name).display().to_string(),
            source,
        })?;
        let delta_err = |source: DeltaTableError| CatalogError::Delta {
            dataset: name.to_string(),
            source,
        };
        let table = match self.table(name).await? {
            Some(table) => table,
            // A table not yet written: build the handle without reading a log
            // that does not exist; the first write creates it in the same commit.
            None => DeltaTableBuilder::from_url(self.table_url(name)?)
                .and_then(|builder| builder.build())
                .map_err(delta_err)?,
        };
        let mut builder = table.write(batches);
        builder = match &mode {
            WriteMode::Replace => builder.with_save_mode(SaveMode::Overwrite),
            WriteMode::Append => builder.with_save_mode(SaveMode::Append),
            WriteMode::ReplaceYears(years) => {
                use datafusion::prelude::{col, lit};
                let years: Vec<_> = years.iter().map(|y| lit(*y)).collect();
                builder
                    .with_save_mode(SaveMode::Overwrite)
                    .with_replace_where(col(super::YEAR_COLUMN).in_list(years, false))
            }
        };
        let written = builder
            .with_commit_properties(commit_properties(metadata))
            .with_partition_columns(spec.partition_columns())
            .with_writer_properties(writer_properties())
            .with_table_name(&spec.name)
            .with_description(&spec.description)
            .await
            .map_err(delta_err)?;
        Ok(written.version().unwrap_or_default())
    }

    /// Deletes the rows matching `predicate` in one commit that records
    /// `metadata`; returns the new version, or `None` if the table has never
    /// been written.
    pub async fn delete_recorded(
        &self,
        name: &str,
        predicate: datafusion::prelude::Expr,
        metadata: serde_json::Map<String, serde_json::Value>,
    ) -> Result<Option<(u64, usize)>, CatalogError> {
        let Some(table) = self.table(name).await? else {
            return Ok(None);
        };
        let (table, metrics) = table
            .delete()
            .with_predicate(predicate)
            .with_commit_properties(commit_properties(metadata))
            .await
            .map_err(|source| CatalogError::Delta {
                dataset: name.to_string(),
                source,
            })?;
        Ok(Some((
            table.version().unwrap_or_default(),
            metrics.num_deleted_rows.unwrap_or_default(),
        )))
    }

    /// Every commit of a table, newest first.
    pub async fn history(&self, name: &str) -> Result<Vec<Commit>, CatalogError> {
        use futures::TryStreamExt;
        let Some(table) = self.table(name).await? else {
            return Ok(Vec::new());
        };
        let latest = table.version().unwrap_or_default();
        let infos: Vec<_> =
            table
                .history(None)
                .try_collect()
                .await
                .map_err(|source| CatalogError::Delta {
                    dataset: name.to_string(),
                    source,
                })?;
        // The log yields newest first; versions count down from the latest.
        Ok(infos
            .into_iter()
            .enumerate()
            .map(|(i, info)| Commit {
                version: latest.saturating_sub(i as u64),
                timestamp: info.timestamp,
                operation: info.operation.clone().unwrap_or_default(),
                metadata: info
                    .info
                    .iter()
                    .filter_map(|(k, v)| {
                        k.strip_prefix(COMMIT_METADATA_PREFIX)
                            .map(|k| (k.to_string(), v.clone()))
                    })
                    .collect(),
            })
            .collect())
    }

    /// Version, rows, files and bytes of every dataset, in dictionary order.
    pub async fn status(&self) -> Result<Vec<TableStatus>, CatalogError> {
        let mut out = Vec::new();
        for spec in self.dictionary.datasets() {
            let mut status = TableStatus {
                name: spec.name.clone(),
                version: None,
                rows: 0,
                files: 0,
                bytes: 0,
            };
            if let Some(table) = self.table(&spec.name).await? {
                status.version = table.version();
                let snapshot = table.snapshot().map_err(|source| CatalogError::Delta {
                    dataset: spec.name.clone(),
                    source,
                })?;
                for file in snapshot.log_data().iter() {
                    status.files += 1;
                    status.bytes += file.size().max(0) as u64;
                    status.rows += file.num_records().unwrap_or_default() as u64;
                }
            }
            out.push(status);
        }
        Ok(out)
    }

    /// The current version of every dataset, `None` if never written, read
    /// from the names in each Delta log without parsing it, so it is cheap
    /// enough to poll.
    pub fn versions(&self) -> Result<TableVersions, CatalogError> {
        let mut versions = TableVersions::new();
        for spec in self.dictionary.datasets() {
            let log = self.root.join(&spec.name).join("_delta_log");
            let latest = match std::fs::read_dir(&log) {
                Ok(entries) => entries
                    .flatten()
                    .filter_map(|e| {
                        let name = e.file_name();
                        name.to_str()?.strip_suffix(".json")?.parse::<u64>().ok()
                    })
                    .max(),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
                Err(source) => {
                    return Err(CatalogError::Io {
                        path: log.display().to_string(),
                        source,
                    })
                }
            };
            versions.insert(spec.name.clone(), latest);
        }
        Ok(versions)
    }

    /// Registers every dataset under its name and returns the version of each
    /// table registered. A dataset never written is registered as an empty
    /// table with its dictionary schema, so queries name the same tables
    /// whatever has been loaded so far.
    pub async fn register_all(&self, ctx: &SessionContext) -> Result<TableVersions, CatalogError> {
        self.register_as_of(ctx, &std::collections::BTreeMap::new())
            .await
    }

    /// Like [`Warehouse::register_all`], with the tables of `as_of` at the
    /// version given instead of the latest.
    pub async fn register_as_of(
        &self,
        ctx: &SessionContext,
        as_of: &std::collections::BTreeMap<String, u64>,
    ) -> Result<TableVersions, CatalogError> {
        for name in as_of.keys() {
            self.dictionary.require(name)?;
        }
        let mut versions = TableVersions::new();
        for spec in self.dictionary.datasets() {
            let register_err = |source| CatalogError::Register {
                dataset: spec.name.clone(),
                source,
            };
            let provider: Arc<dyn datafusion::catalog::TableProvider> =
                match self.table(&spec.name).await? {
                    Some(mut table) => {
                        if let Some(version) = as_of.get(&spec.name) {
                            table.load_version(*version).await.map_err(|source| {
                                CatalogError::Delta {
                                    dataset: spec.name.clone(),
                                    source,
                                }
                            })?;
                        }
                        versions.insert(spec.name.clone(), table.version());
                        table
                            .update_datafusion_session(&ctx.state())
                            .map_err(|source| CatalogError::Delta {
                                dataset: spec.name.clone(),
                                source,
                            })?;
                        table.table_provider().await.map_err(register_err)?
                    }
                    None => {
                        versions.insert(spec.name.clone(), None);
                        Arc::new(
                            MemTable::try_new(spec.arrow_schema(), vec![vec![]])
                                .map_err(register_err)?,
                        )
                    }
                };
            ctx.register_table(spec.name.as_str(), provider)
                .map_err(register_err)?;
        }
        Ok(versions)
    }
}

fn commit_properties(
    metadata: serde_json::Map<String, serde_json::Value>,
) -> deltalake::kernel::transaction::CommitProperties {
    deltalake::kernel::transaction::CommitProperties::default().with_metadata(
        metadata
            .into_iter()
            .map(|(k, v)| (format!("{COMMIT_METADATA_PREFIX}{k}"), v)),
    )
}

/// Parquet settings for every file the warehouse writes: zstd, and page-level
/// statistics so the query engine can skip row groups and pages.
fn writer_properties() -> WriterProperties {
    WriterProperties::builder()
        .set_compression(Compression::ZSTD(
            ZstdLevel::try_new(3).expect("valid zstd level"),
        ))
        .set_statistics_enabled(EnabledStatistics::Page)
        .set_max_row_group_row_count(Some(512 * 1024))
        .build()
}

fn check_batches(spec: &DatasetSpec, batches: &[RecordBatch]) -> Result<(), CatalogError> {
    let expected = spec.arrow_schema();
    for batch in batches {
        let found = batch.schema();
        if found.fields() != expected.fields() {
            let describe = |s: &arrow::datatypes::Schema| {
                s.fields()
                    .iter()
                    .map(|f| {
                        format!(
                            "{}:{}{}",
                            f.name(),
                            f.data_type(),
                            if f.is_nullable() { "?" } else { "" }
                        )
                    })
                    .collect::<Vec<_>>()
                    .join(", ")
            };
            return Err(CatalogError::SchemaMismatch {
                dataset: spec.name.clone(),
                reason: format!(
                    "batch schema [{}] differs from the dictionary's [{}]",
                    describe(&found),
                    describe(&expected)
                ),
            });
        }
    }
    Ok(())
}
