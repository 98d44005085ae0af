//! Arrow Flight SQL: researchers' SQL from ADBC, JDBC and Python clients,
//! over gRPC on a port of its own.
//!
//! Owns the Flight SQL protocol: bearer tokens on every call, statement
//! handles, streaming results and the catalog calls that SQL tools browse
//! with. It must not plan, check or limit SQL itself: every statement goes
//! through the observatory's gate, as over HTTP and from the CLI, so the
//! read-only rule and the memory, time and row limits are the same.
//!
//! Nothing is kept per client. A handle carries its SQL and bound values,
//! signed and with an expiry ([`handle`]); rows are computed only when a
//! ticket is fetched and stop when the client goes away.

mod catalog;
mod credentials;
mod error;
mod handle;

use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use arrow::array::RecordBatch;
use arrow::datatypes::Schema;
use arrow::datatypes::{DataType, Field, SchemaRef};
use arrow::error::ArrowError;
use arrow_flight::encode::FlightDataEncoderBuilder;
use arrow_flight::error::FlightError as EncodeError;
use arrow_flight::flight_service_server::FlightServiceServer;
use arrow_flight::sql::metadata::{SqlInfoData, XdbcTypeInfoData};
use arrow_flight::sql::server::{FlightSqlService, PeekableFlightDataStream};
use arrow_flight::sql::{
    ActionClosePreparedStatementRequest, ActionCreatePreparedStatementRequest,
    ActionCreatePreparedStatementResult, Any, CommandGetCatalogs, CommandGetDbSchemas,
    CommandGetSqlInfo, CommandGetTableTypes, CommandGetTables, CommandGetXdbcTypeInfo,
    CommandPreparedStatementQuery, CommandPreparedStatementUpdate, CommandStatementIngest,
    CommandStatementQuery, CommandStatementUpdate, DoPutPreparedStatementResult, ProstMessageExt,
    SqlInfo, TicketStatementQuery,
};
use arrow_flight::{
    Action, FlightData, FlightDescriptor, FlightEndpoint, FlightInfo, HandshakeRequest,
    HandshakeResponse, IpcMessage, SchemaAsIpc, Ticket,
};
use futures::{Stream, StreamExt, TryStreamExt};
use prost::Message;
use tokio::net::TcpListener;
use tonic::metadata::MetadataMap;
use tonic::{Request, Response, Status, Streaming};

use crate::auth::{Access, Caller, Resource};
use crate::observatory::Observatory;
use crate::query::ROW_LIMIT_KEY;

pub use error::FlightSqlError;
pub use handle::{HandleError, HandleSigner, Statement};

/// How long a ticket or prepared-statement handle stays valid: long enough
/// for a SQL tool kept open over a working day.
pub const HANDLE_LIFETIME: Duration = Duration::from_secs(12 * 3600);

/// A stream of replies to one call.
type Replies<T> = Pin<Box<dyn Stream<Item = Result<T, Status>> + Send + 'static>>;

/// The Flight SQL service over one observatory.
pub struct FlightSql {
    observatory: Arc<Observatory>,
    access: Access,
    handles: HandleSigner,
    sql_info: SqlInfoData,
    type_info: XdbcTypeInfoData,
}

impl FlightSql {
    pub fn new(observatory: Arc<Observatory>, access: Access) -> Self {
        Self {
            observatory,
            access,
            handles: HandleSigner::new(HANDLE_LIFETIME),
            sql_info: catalog::server_info(),
            type_info: catalog::type_info(),
        }
    }

    /// The caller of a request, who must be a researcher.
    fn researcher(&self, metadata: &MetadataMap) -> Result<Caller, FlightSqlError> {
        let token = credentials::bearer(metadata)?;
        Ok(self.access.authorize(token.as_deref(), Resource::Sql)?)
    }

    /// The FlightInfo of a query: its result schema and one ticket that
    /// runs it.
    async fn query_info(
        &self,
        statement: Statement,
        descriptor: FlightDescriptor,
    ) -> Result<FlightInfo, FlightSqlError> {
        let schema = self.wire_schema(&statement).await?;
        let ticket = TicketStatementQuery {
            statement_handle: self.handles.seal(&statement)?,
        };
        let endpoint =
            FlightEndpoint::new().with_ticket(Ticket::new(ticket.as_any().encode_to_vec()));
        Ok(FlightInfo::new()
            .try_with_schema(&schema)?
            .with_endpoint(endpoint)
            .with_descriptor(descriptor)
            .with_total_records(-1))
    }

    /// The schema a statement's results travel with, announced in its
    /// FlightInfo and kept by every batch: clients such as ADBC refuse a
    /// stream whose schema differs from the announced one, and the engine
    /// may pick view types while it runs, which older JDBC drivers cannot
    /// read. So strings and binaries go as plain types, every field is
    /// nullable, and the metadata carries the row limit, as Arrow results
    /// over HTTP do.
    async fn wire_schema(&self, statement: &Statement) -> Result<SchemaRef, FlightSqlError> {
        let shape = self
            .observatory
            .describe_sql(&statement.sql, statement.params.clone())
            .await?;
        Ok(self.wire(&shape.schema))
    }

    fn wire(&self, planned: &Schema) -> SchemaRef {
        let fields: Vec<Field> = planned
            .fields()
            .iter()
            .map(|field| {
                let kind = match field.data_type() {
                    DataType::Utf8View => DataType::Utf8,
                    DataType::BinaryView => DataType::Binary,
                    other => other.clone(),
                };
                Field::new(field.name(), kind, true)
            })
            .collect();
        let row_limit = self.observatory.config().limits.max_rows;
        let metadata = [(ROW_LIMIT_KEY.to_string(), row_limit.to_string())].into();
        Arc::new(Schema::new_with_metadata(fields, metadata))
    }

    /// Runs a statement through the gate and streams its batches in the
    /// announced schema.
    async fn run(&self, statement: Statement) -> Result<Replies<FlightData>, FlightSqlError> {
        let stream = self
            .observatory
            .sql(&statement.sql, statement.params)
            .await?;
        // Planned once: the plan's own schema is the one the FlightInfo
        // announced for the same SQL and values.
        let schema = self.wire(&stream.planned_schema());
        let wire = schema.clone();
        let batches = stream.map(move |batch| {
            let batch = batch.map_err(|error| {
                let status: Status =
                    FlightSqlError::from(crate::observatory::ObservatoryError::from(error)).into();
                EncodeError::Tonic(Box::new(status))
            })?;
            to_wire(batch, &wire).map_err(EncodeError::Arrow)
        });
        let encoded = FlightDataEncoderBuilder::new()
            .with_schema(schema)
            .build(batches)
            .map_err(Status::from);
        Ok(Box::pin(encoded))
    }
}

/// `batch` in the wire schema: view types cast to plain ones.
fn to_wire(batch: RecordBatch, wire: &SchemaRef) -> Result<RecordBatch, ArrowError> {
    let columns = batch
        .columns()
        .iter()
        .zip(wire.fields())
        .map(|(column, field)| {
            if column.data_type() == field.data_type() {
                Ok(column.clone())
            } else {
                arrow::compute::cast(column, field.data_type())
            }
        })
        .collect::<Result<Vec<_>, _>>()?;
    RecordBatch::try_new(wire.clone(), columns)
}

/// One batch as a Flight data stream.
fn one_batch(batch: RecordBatch) -> Replies<FlightData> {
    let schema = batch.schema();
    Box::pin(
        FlightDataEncoderBuilder::new()
            .with_schema(schema)
            .build(futures::stream::once(async move { Ok(batch) }))
            .map_err(Status::from),
    )
}

fn refuse_changes() -> Status {
    FlightSqlError::ReadOnly.into()
}

#[tonic::async_trait]
impl FlightSqlService for FlightSql {
    type FlightService = FlightSql;

    /// Checks the credentials, `Bearer` or `Basic` with the token as the
    /// password, and answers with the bearer token to use on later calls.
    async fn do_handshake(
        &self,
        request: Request<Streaming<HandshakeRequest>>,
    ) -> Result<Response<Replies<HandshakeResponse>>, Status> {
        let token = match credentials::basic_password(request.metadata()) {
            Some(password) => password,
            None => credentials::bearer(request.metadata())?.ok_or_else(|| {
                Status::from(FlightSqlError::Auth(
                    crate::auth::AuthError::Unauthenticated(self.access.needed(Resource::Sql)),
                ))
            })?,
        };
        self.access
            .authorize(Some(&token), Resource::Sql)
            .map_err(FlightSqlError::from)?;
        let reply = HandshakeResponse {
            protocol_version: 0,
            payload: token.clone().into(),
        };
        let mut response: Response<Replies<HandshakeResponse>> =
            Response::new(Box::pin(futures::stream::once(async move { Ok(reply) })));
        let header = format!("Bearer {token}").parse().map_err(|_| {
            Status::from(FlightSqlError::Auth(crate::auth::AuthError::InvalidToken))
        })?;
        response.metadata_mut().insert("authorization", header);
        Ok(response)
    }

    async fn get_flight_info_statement(
        &self,
        query: CommandStatementQuery,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        self.researcher(request.metadata())?;
        let statement = Statement {
            sql: query.query,
            params: Vec::new(),
        };
        Ok(Response::new(
            self.query_info(statement, request.into_inner()).await?,
        ))
    }

    async fn get_flight_info_prepared_statement(
        &self,
        query: CommandPreparedStatementQuery,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        self.researcher(request.metadata())?;
        let statement = self
            .handles
            .open(&query.prepared_statement_handle)
            .map_err(FlightSqlError::from)?;
        Ok(Response::new(
            self.query_info(statement, request.into_inner()).await?,
        ))
    }

    async fn do_get_statement(
        &self,
        ticket: TicketStatementQuery,
        request: Request<Ticket>,
    ) -> Result<Response<Replies<FlightData>>, Status> {
        let caller = self.researcher(request.metadata())?;
        let statement = self
            .handles
            .open(&ticket.statement_handle)
            .map_err(FlightSqlError::from)?;
        // The text may quote personal values; the log keeps its hash and length.
        tracing::info!(
            caller = caller.name.as_deref().unwrap_or("-"),
            sql_sha256 = %hex::encode(<sha2::Sha256 as sha2::Digest>::digest(statement.sql.as_bytes())),
            sql_bytes = statement.sql.len(),
            "sql over flight"
        );
        Ok(Response::new(self.run(statement).await?))
    }

    async fn do_get_prepared_statement(
        &self,
        query: CommandPreparedStatementQuery,
        request: Request<Ticket>,
    ) -> Result<Response<Replies<FlightData>>, Status> {
        self.researcher(request.metadata())?;
        let statement = self
            .handles
            .open(&query.prepared_statement_handle)
            .map_err(FlightSqlError::from)?;
        Ok(Response::new(self.run(statement).await?))
    }

    async fn do_action_create_prepared_statement(
        &self,
        query: ActionCreatePreparedStatementRequest,
        request: Request<Action>,
    ) -> Result<ActionCreatePreparedStatementResult, Status> {
        self.researcher(request.metadata())?;
        let shape = self
            .observatory
            .describe_sql(&query.query, Vec::new())
            .await
            .map_err(FlightSqlError::from)?;
        let parameter_schema = Schema::new(
            shape
                .parameters
                .iter()
                .map(|(name, kind)| {
                    arrow::datatypes::Field::new(
                        format!("${name}"),
                        kind.clone().unwrap_or(arrow::datatypes::DataType::Null),
                        true,
                    )
                })
                .collect::<Vec<_>>(),
        );
        let statement = Statement {
            sql: query.query,
            params: Vec::new(),
        };
        Ok(ActionCreatePreparedStatementResult {
            prepared_statement_handle: self
                .handles
                .seal(&statement)
                .map_err(FlightSqlError::from)?,
            dataset_schema: schema_bytes(&shape.schema)?,
            parameter_schema: schema_bytes(&parameter_schema)?,
        })
    }

    /// Binds parameters: the answer is a new handle carrying them, so the
    /// server remembers nothing.
    async fn do_put_prepared_statement_query(
        &self,
        query: CommandPreparedStatementQuery,
        request: Request<PeekableFlightDataStream>,
    ) -> Result<DoPutPreparedStatementResult, Status> {
        self.researcher(request.metadata())?;
        let mut statement = self
            .handles
            .open(&query.prepared_statement_handle)
            .map_err(FlightSqlError::from)?;
        let shape = self
            .observatory
            .describe_sql(&statement.sql, Vec::new())
            .await
            .map_err(FlightSqlError::from)?;
        let data = request.into_inner().map_err(EncodeError::from);
        let batches: Vec<RecordBatch> =
            arrow_flight::decode::FlightRecordBatchStream::new_from_flight_data(data)
                .try_collect()
                .await
                .map_err(|e| FlightSqlError::Handle(HandleError::Parameters(e.to_string())))?;
        let batch = match batches.as_slice() {
            [] => RecordBatch::new_empty(Arc::new(Schema::empty())),
            [one] => one.clone(),
            _ => arrow::compute::concat_batches(&batches[0].schema(), &batches)
                .map_err(|e| FlightSqlError::Handle(HandleError::Parameters(e.to_string())))?,
        };
        statement.params = handle::bind(&batch, &shape.parameters).map_err(FlightSqlError::from)?;
        Ok(DoPutPreparedStatementResult {
            prepared_statement_handle: Some(
                self.handles
                    .seal(&statement)
                    .map_err(FlightSqlError::from)?,
            ),
        })
    }

    /// Nothing to free: handles hold no server state.
    async fn do_action_close_prepared_statement(
        &self,
        _query: ActionClosePreparedStatementRequest,
        request: Request<Action>,
    ) -> Result<(), Status> {
        self.researcher(request.metadata())?;
        Ok(())
    }

    async fn do_put_statement_update(
        &self,
        _command: CommandStatementUpdate,
        request: Request<PeekableFlightDataStream>,
    ) -> Result<i64, Status> {
        self.researcher(request.metadata())?;
        Err(refuse_changes())
    }

    async fn do_put_prepared_statement_update(
        &self,
        _command: CommandPreparedStatementUpdate,
        request: Request<PeekableFlightDataStream>,
    ) -> Result<i64, Status> {
        self.researcher(request.metadata())?;
        Err(refuse_changes())
    }

    async fn do_put_statement_ingest(
        &self,
        _command: CommandStatementIngest,
        request: Request<PeekableFlightDataStream>,
    ) -> Result<i64, Status> {
        self.researcher(request.metadata())?;
        Err(refuse_changes())
    }

    async fn get_flight_info_catalogs(
        &self,
        query: CommandGetCatalogs,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        self.researcher(request.metadata())?;
        let schema = query.clone().into_builder().schema();
        catalog::info(query, &schema, request.into_inner())
    }

    async fn do_get_catalogs(
        &self,
        query: CommandGetCatalogs,
        request: Request<Ticket>,
    ) -> Result<Response<Replies<FlightData>>, Status> {
        self.researcher(request.metadata())?;
        let tables = self
            .observatory
            .tables()
            .await
            .map_err(FlightSqlError::from)?;
        Ok(Response::new(one_batch(catalog::catalogs(query, tables)?)))
    }

    async fn get_flight_info_schemas(
        &self,
        query: CommandGetDbSchemas,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        self.researcher(request.metadata())?;
        let schema = query.clone().into_builder().schema();
        catalog::info(query, &schema, request.into_inner())
    }

    async fn do_get_schemas(
        &self,
        query: CommandGetDbSchemas,
        request: Request<Ticket>,
    ) -> Result<Response<Replies<FlightData>>, Status> {
        self.researcher(request.metadata())?;
        let tables = self
            .observatory
            .tables()
            .await
            .map_err(FlightSqlError::from)?;
        Ok(Response::new(one_batch(catalog::schemas(query, tables)?)))
    }

    async fn get_flight_info_tables(
        &self,
        query: CommandGetTables,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        self.researcher(request.metadata())?;
        let schema = query.clone().into_builder().schema();
        catalog::info(query, &schema, request.into_inner())
    }

    async fn do_get_tables(
        &self,
        query: CommandGetTables,
        request: Request<Ticket>,
    ) -> Result<Response<Replies<FlightData>>, Status> {
        self.researcher(request.metadata())?;
        let tables = self
            .observatory
            .tables()
            .await
            .map_err(FlightSqlError::from)?;
        Ok(Response::new(one_batch(catalog::tables(query, tables)?)))
    }

    async fn get_flight_info_table_types(
        &self,
        query: CommandGetTableTypes,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        self.researcher(request.metadata())?;
        let schema = query.clone().into_builder().schema();
        catalog::info(query, &schema, request.into_inner())
    }

    async fn do_get_table_types(
        &self,
        query: CommandGetTableTypes,
        request: Request<Ticket>,
    ) -> Result<Response<Replies<FlightData>>, Status> {
        self.researcher(request.metadata())?;
        Ok(Response::new(one_batch(catalog::table_types(query)?)))
    }

    async fn get_flight_info_sql_info(
        &self,
        query: CommandGetSqlInfo,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        self.researcher(request.metadata())?;
        let schema = query.clone().into_builder(&self.sql_info).schema();
        catalog::info(query, &schema, request.into_inner())
    }

    async fn do_get_sql_info(
        &self,
        query: CommandGetSqlInfo,
        request: Request<Ticket>,
    ) -> Result<Response<Replies<FlightData>>, Status> {
        self.researcher(request.metadata())?;
        let batch = query
            .into_builder(&self.sql_info)
            .build()
            .map_err(|e| Status::internal(e.to_string()))?;
        Ok(Response::new(one_batch(batch)))
    }

    async fn get_flight_info_xdbc_type_info(
        &self,
        query: CommandGetXdbcTypeInfo,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        self.researcher(request.metadata())?;
        let schema = query.clone().into_builder(&self.type_info).schema();
        catalog::info(query, &schema, request.into_inner())
    }

    async fn do_get_xdbc_type_info(
        &self,
        query: CommandGetXdbcTypeInfo,
        request: Request<Ticket>,
    ) -> Result<Response<Replies<FlightData>>, Status> {
        self.researcher(request.metadata())?;
        let batch = query
            .into_builder(&self.type_info)
            .build()
            .map_err(|e| Status::internal(e.to_string()))?;
        Ok(Response::new(one_batch(batch)))
    }

    async fn do_get_fallback(
        &self,
        request: Request<Ticket>,
        message: Any,
    ) -> Result<Response<Replies<FlightData>>, Status> {
        self.researcher(request.metadata())?;
        Err(Status::unimplemented(format!(
            "this server does not answer {}",
            message.type_url
        )))
    }

    async fn register_sql_info(&self, _id: i32, _result: &SqlInfo) {}
}

fn schema_bytes(schema: &Schema) -> Result<bytes::Bytes, Status> {
    let options = arrow::ipc::writer::IpcWriteOptions::default();
    let IpcMessage(bytes) = SchemaAsIpc::new(schema, &options)
        .try_into()
        .map_err(|e: arrow::error::ArrowError| Status::internal(e.to_string()))?;
    Ok(bytes)
}

/// Serves Flight SQL on `listener` (bound like the HTTP one, e.g. with
/// [`crate::server::bind`]) until `shutdown` completes.
pub async fn serve(
    listener: TcpListener,
    service: FlightSql,
    shutdown: impl std::future::Future<Output = ()> + Send,
) -> Result<(), FlightSqlError> {
    tonic::transport::Server::builder()
        .add_service(FlightServiceServer::new(service))
        .serve_with_incoming_shutdown(
            // Without TCP_NODELAY every call waited for the client's delayed
            // ACK (about 40 ms): gRPC writes headers, data and trailers apart.
            tonic::transport::server::TcpIncoming::from(listener).with_nodelay(Some(true)),
            shutdown,
        )
        .await
        .map_err(|e| FlightSqlError::Serve(e.to_string()))
}
