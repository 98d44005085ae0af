//! The catalog: the data dictionary, the warehouse of Delta tables, and their
//! registration in a DataFusion `SessionContext`.
//!
//! Owns every write to the warehouse: generators and ingest hand it Arrow
//! batches and it commits them, one Delta commit per write. It must not
//! compute indicators or know about HTTP.

mod dictionary;
mod location;
mod reference;
mod register;
mod warehouse;
mod writing;

pub use dictionary::{
    reference_csv, ColumnSpec, ColumnType, DatasetKind, DatasetSpec, Dictionary, IdentifierKind,
    SurveyDesign, YEAR_COLUMN,
};
pub use location::{register_s3_tables, s3_store, Location, ALLOW_HTTP_VARIABLE};
pub use reference::load_reference_table;
pub use warehouse::{
    Commit, TableStatus, TableVersions, Warehouse, WriteMode, COMMIT_METADATA_PREFIX,
    WAREHOUSE_MARKER,
};

/// Everything that can go wrong in the catalog.
#[derive(Debug, thiserror::Error)]
pub enum CatalogError {
    /// A dictionary file is malformed or inconsistent.
    #[error("data dictionary {file}: {reason}")]
    Dictionary { file: String, reason: String },
    /// A name that is not a dataset of the dictionary.
    #[error("unknown dataset `{name}`; the datasets are: {known}")]
    UnknownDataset { name: String, known: String },
    /// A committed reference CSV does not fit its dictionary entry.
    #[error("reference table {file}: {reason}")]
    Reference { file: String, reason: String },
    /// The data directory exists but is not an Osservatorio warehouse.
    #[error("{path} is not an Osservatorio warehouse (it has other files and no {marker}); choose an empty or new directory with --data-dir")]
    ForeignDataDir { path: String, marker: &'static str },
    /// The data directory does not exist and may not be created implicitly.
    #[error("data directory {path} does not exist; create it with `osservatorio generate --data-dir {path}`")]
    MissingDataDir { path: String },
    /// Batches handed to the writer do not match the dictionary.
    #[error("cannot write `{dataset}`: {reason}")]
    SchemaMismatch { dataset: String, reason: String },
    /// The Delta log or its files could not be read or written.
    #[error("Delta table `{dataset}`: {source}")]
    Delta {
        dataset: String,
        #[source]
        source: deltalake::DeltaTableError,
    },
    /// Registering a table with DataFusion failed.
    #[error("registering `{dataset}` with the query engine: {source}")]
    Register {
        dataset: String,
        #[source]
        source: datafusion::error::DataFusionError,
    },
    /// The data directory value is not a path or a usable `s3://` URL.
    #[error("{location}: {reason}")]
    BadLocation { location: String, reason: String },
    /// The object store behind the data directory refused or could not be
    /// reached; `reason` is one line and never quotes a secret.
    #[error("{location}: {reason}")]
    Store { location: String, reason: String },
    /// A filesystem error outside the Delta log.
    #[error("{path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
}
