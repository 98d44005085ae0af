//! The catalog calls of Flight SQL: catalogs, schemas, tables with their
//! Arrow schemas, table types and the server's SqlInfo, built from the
//! engine's list of tables.
//!
//! Owns turning that list into the protocol's fixed result shapes. It must
//! not read the warehouse or run SQL.

use std::collections::BTreeSet;

use arrow::array::RecordBatch;
use arrow::datatypes::Schema;
use arrow_flight::sql::metadata::{
    SqlInfoData, SqlInfoDataBuilder, XdbcTypeInfo, XdbcTypeInfoData, XdbcTypeInfoDataBuilder,
};
use arrow_flight::sql::{
    CommandGetCatalogs, CommandGetDbSchemas, CommandGetTableTypes, CommandGetTables, Nullable,
    ProstMessageExt, Searchable, SqlInfo, XdbcDataType,
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

/// What GetXdbcTypeInfo answers: the SQL types of the warehouse's columns,
/// for JDBC and ODBC tools (`DatabaseMetaData.getTypeInfo`).
pub(super) fn type_info() -> XdbcTypeInfoData {
    let mut builder = XdbcTypeInfoDataBuilder::new();
    for (name, kind, searchable, case_sensitive, quote) in [
        (
            "BOOLEAN",
            XdbcDataType::XdbcBit,
            Searchable::Basic,
            false,
            None,
        ),
        (
            "INTEGER",
            XdbcDataType::XdbcInteger,
            Searchable::Basic,
            false,
            None,
        ),
        (
            "BIGINT",
            XdbcDataType::XdbcBigint,
            Searchable::Basic,
            false,
            None,
        ),
        (
            "DOUBLE",
            XdbcDataType::XdbcDouble,
            Searchable::Basic,
            false,
            None,
        ),
        (
            "DATE",
            XdbcDataType::XdbcDate,
            Searchable::Basic,
            false,
            Some("DATE '"),
        ),
        (
            "VARCHAR",
            XdbcDataType::XdbcVarchar,
            Searchable::Full,
            true,
            Some("'"),
        ),
    ] {
        builder.append(XdbcTypeInfo {
            type_name: name.to_string(),
            data_type: kind,
            literal_prefix: quote.map(str::to_string),
            literal_suffix: quote.map(|_| "'".to_string()),
            nullable: Nullable::NullabilityNullable,
            case_sensitive,
            searchable,
            unsigned_attribute: (kind != XdbcDataType::XdbcVarchar
                && kind != XdbcDataType::XdbcDate)
                .then_some(false),
            local_type_name: Some(name.to_string()),
            sql_data_type: kind,
            num_prec_radix: matches!(
                kind,
                XdbcDataType::XdbcInteger | XdbcDataType::XdbcBigint | XdbcDataType::XdbcDouble
            )
            .then_some(10),
            ..XdbcTypeInfo::default()
        });
    }
    builder.build().expect("the type list is well formed")
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
