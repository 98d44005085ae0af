//! The one integration-test binary: each module exercises a part of the
//! platform against real Delta tables in a temporary directory.

mod support;

mod charts;
mod cli;
#[cfg(feature = "cluster")]
mod cluster;
mod dictionary;
mod flight;
mod generate;
mod indicators;
mod ingest;
mod ingest_cli;
mod ingest_years;
#[cfg(feature = "cluster")]
mod object_store;
mod query;
mod report;
mod server;
mod server_sql;
mod survey;
mod warehouse;
