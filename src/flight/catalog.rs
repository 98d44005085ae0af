//! The catalog calls of Flight SQL: catalogs, schemas, tables with their
//! Arrow schemas, table types and the server's SqlInfo, built from the
//! engine's list of tables.
//!
//! Owns turning that list into the protocol's fixed result shapes. It must
//! not read the warehouse or run SQL.

use std::collections::BTreeSet;

use arrow::array::RecordBatch;
use arrow::datatypes::Schema;
use arrow_flight::sql::metadata::{SqlInfoData, SqlInfoDataBuilder};
use arrow_flight::sql::{
    CommandGetCatalogs, CommandGetDbSchemas, CommandGetTableTypes, CommandGetTables,
    ProstMessageExt, SqlInfo,
};
use arrow_flight::{FlightDescriptor, FlightEndpoint, FlightInfo, Ticket};
use prost::Message;
use tonic::{Response, Status};

use crate::query::TableEntry;

fn internal(error: impl std::fmt::Display) -> Status {
    Status::internal(error.to_string())
}

pub(super) fn catalogs(
    query: CommandGetCatalogs,
    tables: Vec<TableEntry>,
) -> Result<RecordBatch, Status> {
    let mut builder = query.into_builder();
    let mut seen = BTreeSet::new();
    for table in tables {
        if seen.insert(table.catalog.clone()) {
            builder.append(table.catalog);
        }
    }
    builder.build().map_err(internal)
}

pub(super) fn schemas(
    query: CommandGetDbSchemas,
    tables: Vec<TableEntry>,
) -> Result<RecordBatch, Status> {
    let mut builder = query.into_builder();
    let mut seen = BTreeSet::new();
    for table in tables {
        if seen.insert((table.catalog.clone(), table.schema.clone())) {
            builder.append(table.catalog, table.schema);
        }
    }
    builder.build().map_err(internal)
}

/// The builder applies the request's catalog, schema, name and type filters.
pub(super) fn tables(
    query: CommandGetTables,
    tables: Vec<TableEntry>,
) -> Result<RecordBatch, Status> {
    let mut builder = query.into_builder();
    for table in tables {
        builder
            .append(
                &table.catalog,
                &table.schema,
                &table.name,
                table.kind,
                &table.arrow_schema,
            )
            .map_err(internal)?;
    }
    builder.build().map_err(internal)
}

pub(super) fn table_types(query: CommandGetTableTypes) -> Result<RecordBatch, Status> {
    let mut builder = query.into_builder();
    for kind in ["TABLE", "VIEW"] {
        builder.append(kind);
    }
    builder.build().map_err(internal)
}

/// What GetSqlInfo answers: a read-only SQL server without transactions.
pub(super) fn server_info() -> SqlInfoData {
    let mut builder = SqlInfoDataBuilder::new();
    builder.append(SqlInfo::FlightSqlServerName, "osservatorio");
    builder.append(SqlInfo::FlightSqlServerVersion, env!("CARGO_PKG_VERSION"));
    builder.append(SqlInfo::FlightSqlServerArrowVersion, "59");
    builder.append(SqlInfo::FlightSqlServerReadOnly, true);
    builder.append(SqlInfo::FlightSqlServerSql, true);
    builder.append(SqlInfo::FlightSqlServerSubstrait, false);
    builder.append(SqlInfo::FlightSqlServerTransaction, 0_i32);
    builder.append(SqlInfo::SqlIdentifierQuoteChar, "\"");
    builder.append(SqlInfo::SqlDdlCatalog, false);
    builder.append(SqlInfo::SqlDdlSchema, false);
    builder.append(SqlInfo::SqlDdlTable, false);
    builder
        .build()
        .expect("the server's SqlInfo is well formed")
}

/// The FlightInfo of a catalog call: its fixed schema and a ticket that is
/// the command itself, which carries no SQL.
pub(super) fn info(
    command: impl ProstMessageExt,
    schema: &Schema,
    descriptor: FlightDescriptor,
) -> Result<Response<FlightInfo>, Status> {
    let endpoint = FlightEndpoint::new().with_ticket(Ticket::new(command.as_any().encode_to_vec()));
    let info = FlightInfo::new()
        .try_with_schema(schema)
        .map_err(|e| Status::internal(e.to_string()))?
        .with_endpoint(endpoint)
        .with_descriptor(descriptor)
        .with_total_records(-1);
    Ok(Response::new(info))
}
