//! The warehouse: one Delta Lake table per dataset under the data directory,
//! a local directory or an `s3://` prefix.
//!
//! Owns opening, writing (one atomic Delta commit per write), describing and
//! registering the tables. Nothing else in the crate writes under the data
//! directory. It must not interpret the rows it stores.

use std::sync::Arc;

use arrow::record_batch::RecordBatch;
use datafusion::prelude::SessionContext;
use deltalake::protocol::SaveMode;
use deltalake::{DeltaTable, DeltaTableBuilder, DeltaTableError};
use futures::TryStreamExt;
use object_store::path::Path as StorePath;
use object_store::{ObjectStore, ObjectStoreExt, PutPayload};
use url::Url;

use super::location::{register_s3_tables, store_error, Location};
use super::register::{delta_provider, files_provider, TableForm};
use super::writing::{
    check_batches, commit_properties, side_by_side, write_by_year, writer_properties,
};
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
#[derive(Clone)]
pub struct Warehouse {
    location: Location,
    /// The location as a URL ending in `/`; table `t` is at `t/` under it.
    url: Url,
    /// Rooted at the location, for what is not a table: the marker, and the
    /// log listings that tell versions without reading a log.
    store: Arc<dyn ObjectStore>,
    dictionary: Arc<Dictionary>,
}

impl std::fmt::Debug for Warehouse {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Warehouse")
            .field("location", &self.location.to_string())
            .finish_non_exhaustive()
    }
}

impl Warehouse {
    /// Opens an existing warehouse for reading.
    pub async fn open(
        location: impl Into<Location>,
        dictionary: Arc<Dictionary>,
    ) -> Result<Self, CatalogError> {
        let location = location.into();
        if let Location::Local(root) = &location {
            if !root.is_dir() {
                return Err(CatalogError::MissingDataDir {
                    path: location.to_string(),
                });
            }
        }
        let warehouse = Self::at(location, dictionary)?;
        if !warehouse.check_not_foreign().await? {
            return Err(CatalogError::MissingDataDir {
                path: warehouse.location.to_string(),
            });
        }
        Ok(warehouse)
    }

    /// Opens a warehouse for writing, creating the directory (or marking the
    /// prefix) if needed.
    pub async fn create(
        location: impl Into<Location>,
        dictionary: Arc<Dictionary>,
    ) -> Result<Self, CatalogError> {
        let location = location.into();
        if let Location::Local(root) = &location {
            std::fs::create_dir_all(root).map_err(|source| CatalogError::Io {
                path: root.display().to_string(),
                source,
            })?;
        }
        let warehouse = Self::at(location, dictionary)?;
        if !warehouse.check_not_foreign().await? {
            let marker = StorePath::from(WAREHOUSE_MARKER);
            let text = "# Osservatorio warehouse: one Delta table per dataset.\nformat = 1\n";
            warehouse
                .store
                .put(&marker, PutPayload::from_static(text.as_bytes()))
                .await
                .map_err(|e| warehouse.store_error(&e))?;
        }
        Ok(warehouse)
    }

    fn at(location: Location, dictionary: Arc<Dictionary>) -> Result<Self, CatalogError> {
        let location = match location {
            Location::Local(root) => Location::Local(std::path::absolute(&root).map_err(
                |source| CatalogError::Io {
                    path: root.display().to_string(),
                    source,
                },
            )?),
            remote => remote,
        };
        if matches!(location, Location::S3(_)) {
            register_s3_tables();
        }
        Ok(Self {
            url: location.url()?,
            store: location.store()?,
            location,
            dictionary,
        })
    }

    /// True if the marker is there; false if the location is empty; an
    /// error if it holds something else. This is also the first request to
    /// a remote store, so it is where a missing bucket or bad credentials
    /// show.
    async fn check_not_foreign(&self) -> Result<bool, CatalogError> {
        match self.store.head(&StorePath::from(WAREHOUSE_MARKER)).await {
            Ok(_) => return Ok(true),
            Err(object_store::Error::NotFound { .. }) => {}
            Err(e) => return Err(self.store_error(&e)),
        }
        let mut entries = self.store.list(None);
        if entries
            .try_next()
            .await
            .map_err(|e| self.store_error(&e))?
            .is_some()
        {
            return Err(CatalogError::ForeignDataDir {
                path: self.location.to_string(),
                marker: WAREHOUSE_MARKER,
            });
        }
        Ok(false)
    }

    fn store_error(&self, error: &object_store::Error) -> CatalogError {
        store_error(&self.location.to_string(), error)
    }

    /// Where the warehouse is, as given (an absolute path or an `s3://` URL).
    pub fn location(&self) -> &Location {
        &self.location
    }

    /// The URL of a dataset's table directory, ending in `/`.
    pub fn table_url(&self, name: &str) -> Result<Url, CatalogError> {
        self.url
            .join(&format!("{name}/"))
            .map_err(|e| CatalogError::BadLocation {
                location: self.location.to_string(),
                reason: e.to_string(),
            })
    }

    pub fn dictionary(&self) -> &Dictionary {
        &self.dictionary
    }

    /// True when no dataset has been written yet.
    pub async fn is_empty(&self) -> Result<bool, CatalogError> {
        Ok(self.versions().await?.values().all(Option::is_none))
    }

    /// The latest committed version of a table, from the names of the
    /// entries in its log, without reading them.
    async fn latest_version(&self, name: &str) -> Result<Option<u64>, CatalogError> {
        let log = StorePath::from(name).clone().join("_delta_log");
        let listing = match self.store.list_with_delimiter(Some(&log)).await {
            Ok(listing) => listing,
            Err(object_store::Error::NotFound { .. }) => return Ok(None),
            Err(e) => return Err(self.store_error(&e)),
        };
        Ok(listing
            .objects
            .iter()
            .filter_map(|object| {
                object
                    .location
                    .filename()?
                    .strip_suffix(".json")?
                    .parse::<u64>()
                    .ok()
            })
            .max())
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
        if self.latest_version(name).await?.is_none() {
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
        if let Location::Local(root) = &self.location {
            std::fs::create_dir_all(root.join(name)).map_err(|source| CatalogError::Io {
                path: root.join(name).display().to_string(),
                source,
            })?;
        }
        let delta_err = |source: DeltaTableError| CatalogError::Delta {
            dataset: name.to_string(),
            source,
        };
        let existing = self.table(name).await?;
        if let (Some(table), WriteMode::Append) = (&existing, &mode) {
            if let Some(adds) = write_by_year(table, spec, &batches, writer_properties(spec))
                .await
                .map_err(delta_err)?
            {
                // The rows are in their files: their memory is handed back
                // beside the commit rather than after it.
                std::thread::spawn(move || drop(batches));
                return commit_appended(table, spec, adds, metadata)
                    .await
                    .map_err(delta_err);
            }
        }
        let table = match existing {
            Some(table) => table,
            // A table not yet written: build the handle without reading a log
            // that does not exist; the first write creates it in the same commit.
            None => DeltaTableBuilder::from_url(self.table_url(name)?)
                .and_then(|builder| builder.build())
                .map_err(delta_err)?,
        };
        let mut builder = if batches.len() > 1 && !spec.partition_columns().is_empty() {
            // Several batches (ingest's per-core chunks) are given as one
            // input partition each: the writer then hashes rows to a stream
            // per partition and writes the years side by side, where one
            // input would write them one after another.
            table
                .write(Vec::new())
                .with_input_plan(side_by_side(name, batches)?)
        } else {
            table.write(batches)
        };
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
            .with_writer_properties(writer_properties(spec))
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
    pub async fn versions(&self) -> Result<TableVersions, CatalogError> {
        let names: Vec<&str> = self
            .dictionary
            .datasets()
            .iter()
            .map(|spec| spec.name.as_str())
            .collect();
        let latest =
            futures::future::try_join_all(names.iter().map(|name| self.latest_version(name)))
                .await?;
        Ok(names.into_iter().map(str::to_string).zip(latest).collect())
    }

    /// Registers every dataset under its name and returns the version of each
    /// table registered. A dataset never written is registered as an empty
    /// table with its dictionary schema, so queries name the same tables
    /// whatever has been loaded so far.
    pub async fn register_all(&self, ctx: &SessionContext) -> Result<TableVersions, CatalogError> {
        self.register_as_of(ctx, &std::collections::BTreeMap::new())
            .await
    }

    /// Like [`Warehouse::register_all`], for the datasets `names` only: a
    /// session that needs two tables does not read the logs of fifteen.
    pub async fn register_only(
        &self,
        ctx: &SessionContext,
        names: &[&str],
    ) -> Result<TableVersions, CatalogError> {
        let specs = names
            .iter()
            .map(|name| self.dictionary.require(name))
            .collect::<Result<Vec<_>, _>>()?;
        self.register_specs(ctx, &specs, &Default::default(), TableForm::Delta)
            .await
    }

    /// Like [`Warehouse::register_all`], with the tables of `as_of` at the
    /// version given instead of the latest.
    pub async fn register_as_of(
        &self,
        ctx: &SessionContext,
        as_of: &std::collections::BTreeMap<String, u64>,
    ) -> Result<TableVersions, CatalogError> {
        self.register(ctx, as_of, TableForm::Delta).await
    }

    /// Like [`Warehouse::register_as_of`], but each table is a plain
    /// Parquet listing of exactly the files of its snapshot, with the
    /// partition value of each file as a constant column. Such tables can
    /// be shipped to other processes (a Ballista cluster) inside a plan,
    /// which a Delta provider cannot, and they read the same rows.
    pub async fn register_files_as_of(
        &self,
        ctx: &SessionContext,
        as_of: &std::collections::BTreeMap<String, u64>,
    ) -> Result<TableVersions, CatalogError> {
        self.register(ctx, as_of, TableForm::SnapshotFiles).await
    }

    async fn register(
        &self,
        ctx: &SessionContext,
        as_of: &std::collections::BTreeMap<String, u64>,
        form: TableForm,
    ) -> Result<TableVersions, CatalogError> {
        for name in as_of.keys() {
            self.dictionary.require(name)?;
        }
        let specs: Vec<&DatasetSpec> = self.dictionary.datasets().iter().collect();
        self.register_specs(ctx, &specs, as_of, form).await
    }

    async fn register_specs(
        &self,
        ctx: &SessionContext,
        specs: &[&DatasetSpec],
        as_of: &std::collections::BTreeMap<String, u64>,
        form: TableForm,
    ) -> Result<TableVersions, CatalogError> {
        // The tables are opened side by side: each reads its log, and one
        // after another they took most of a session's opening.
        let opened = futures::future::try_join_all(specs.iter().map(|&spec| async move {
            let table = self.table_as_of(&spec.name, as_of).await?;
            let version = table.as_ref().and_then(DeltaTable::version);
            let provider = match form {
                TableForm::Delta => delta_provider(ctx, spec, table).await?,
                TableForm::SnapshotFiles => {
                    let table_url = self.table_url(&spec.name)?;
                    files_provider(spec, table, &table_url)?
                }
            };
            Ok::<_, CatalogError>((spec, version, provider))
        }))
        .await?;
        let mut versions = TableVersions::new();
        for (spec, version, provider) in opened {
            versions.insert(spec.name.clone(), version);
            ctx.register_table(spec.name.as_str(), provider)
                .map_err(|source| CatalogError::Register {
                    dataset: spec.name.clone(),
                    source,
                })?;
        }
        Ok(versions)
    }

    /// The dataset's table at the version `as_of` names for it, else at its
    /// latest; `None` if never written.
    async fn table_as_of(
        &self,
        name: &str,
        as_of: &std::collections::BTreeMap<String, u64>,
    ) -> Result<Option<DeltaTable>, CatalogError> {
        let Some(mut table) = self.table(name).await? else {
            return Ok(None);
        };
        if let Some(version) = as_of.get(name) {
            table
                .load_version(*version)
                .await
                .map_err(|source| CatalogError::Delta {
                    dataset: name.to_string(),
                    source,
                })?;
        }
        Ok(Some(table))
    }
}

/// Commits files written by [`write_by_year`] as one append to `table`.
async fn commit_appended(
    table: &DeltaTable,
    spec: &DatasetSpec,
    adds: Vec<deltalake::kernel::Add>,
    metadata: serde_json::Map<String, serde_json::Value>,
) -> Result<u64, DeltaTableError> {
    use deltalake::kernel::transaction::CommitBuilder;
    use deltalake::protocol::DeltaOperation;
    let operation = DeltaOperation::Write {
        mode: SaveMode::Append,
        partition_by: Some(spec.partition_columns()),
        predicate: None,
    };
    let committed = CommitBuilder::from(commit_properties(metadata))
        .with_actions(
            adds.into_iter()
                .map(deltalake::kernel::Action::Add)
                .collect(),
        )
        .build(Some(table.snapshot()?), table.log_store(), operation)
        .await?;
    Ok(committed.version())
}
