//! Arrow Flight SQL, driven by arrow-flight's own client against a real
//! server on port 0: queries, prepared statements with parameters, the
//! catalog calls, tokens and roles, hostile SQL, the row cap on a huge
//! result, and a client that leaves in the middle of a stream.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

use arrow::array::{Array, Int64Array, RecordBatch, StringArray};
use arrow::datatypes::Schema;
use arrow_flight::sql::client::FlightSqlServiceClient;
use arrow_flight::sql::{CommandGetDbSchemas, CommandGetTables, SqlInfo};
use arrow_flight::{FlightInfo, Ticket};
use futures::{StreamExt, TryStreamExt};
use osservatorio::auth::{AggregateAccess, Role};
use osservatorio::catalog::Warehouse;
use osservatorio::flight::{self, FlightSql};
use osservatorio::observatory::Observatory;
use osservatorio::server;
use prost::Message as _;
use tonic::transport::{Channel, Endpoint};

use crate::server::{config, tokens_for_every_role};
use crate::support::{dictionary, province_warehouse, scalar_i64};

struct FlightServer {
    address: SocketAddr,
    tokens: Vec<(Role, String)>,
    _stop: tokio::sync::oneshot::Sender<()>,
}

impl FlightServer {
    async fn start(root: &Path, max_rows: Option<usize>) -> Self {
        let (access, tokens) = tokens_for_every_role(AggregateAccess::Public);
        let config = config(root, |o| o.max_rows = max_rows);
        let warehouse = Warehouse::open(root, dictionary()).await.unwrap();
        let observatory = Arc::new(Observatory::open(warehouse, config).await.unwrap());
        let listener = server::bind("127.0.0.1:0".parse().unwrap()).await.unwrap();
        let address = listener.local_addr().unwrap();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        tokio::spawn(flight::serve(
            listener,
            FlightSql::new(observatory, access),
            async move {
                let _ = stopped.await;
            },
        ));
        Self {
            address,
            tokens,
            _stop: stop,
        }
    }

    fn token(&self, role: Role) -> &str {
        &self.tokens.iter().find(|(r, _)| *r == role).unwrap().1
    }

    async fn client(&self, token: Option<&str>) -> FlightSqlServiceClient<Channel> {
        let channel = Endpoint::from_shared(format!("http://{}", self.address))
            .unwrap()
            .connect()
            .await
            .unwrap();
        let mut client = FlightSqlServiceClient::new(channel);
        if let Some(token) = token {
            client.set_token(token.to_string());
        }
        client
    }

    async fn researcher(&self) -> FlightSqlServiceClient<Channel> {
        self.client(Some(self.token(Role::Researcher))).await
    }
}

async fn fetch(client: &mut FlightSqlServiceClient<Channel>, info: FlightInfo) -> Vec<RecordBatch> {
    let mut batches = Vec::new();
    for endpoint in info.endpoint {
        let ticket: Ticket = endpoint.ticket.expect("a ticket");
        let stream = client.do_get(ticket).await.expect("do_get");
        batches.extend(stream.try_collect::<Vec<_>>().await.expect("the stream"));
    }
    batches
}

async fn query(client: &mut FlightSqlServiceClient<Channel>, sql: &str) -> Vec<RecordBatch> {
    let info = client.execute(sql.to_string(), None).await.expect(sql);
    fetch(client, info).await
}

fn first_i64(batches: &[RecordBatch]) -> i64 {
    let batch = batches.iter().find(|b| b.num_rows() > 0).expect("a row");
    batch
        .column(0)
        .as_any()
        .downcast_ref::<Int64Array>()
        .expect("an Int64 column")
        .value(0)
}

fn rows(batches: &[RecordBatch]) -> usize {
    batches.iter().map(RecordBatch::num_rows).sum()
}

/// The gRPC code in a client error, as its debug text names it.
fn code_of(error: impl std::fmt::Debug) -> String {
    let text = format!("{error:?}");
    for code in [
        "Unauthenticated",
        "PermissionDenied",
        "InvalidArgument",
        "NotFound",
        "ResourceExhausted",
        "DeadlineExceeded",
        "Internal",
    ] {
        if text.contains(code) {
            return code.to_string();
        }
    }
    text
}

#[tokio::test]
async fn queries_and_prepared_statements_with_parameters() {
    let root = province_warehouse();
    let server = FlightServer::start(root, None).await;
    let mut client = server.researcher().await;

    let workers = query(&mut client, "SELECT count(*) AS n FROM workers").await;
    assert_eq!(
        first_i64(&workers),
        scalar_i64("SELECT count(*) AS n FROM workers").await
    );

    // Each stream keeps the schema its FlightInfo announced, as ADBC
    // checks: table columns (read as view types) and computed strings alike.
    let info = client
        .execute(
            "SELECT citizenship, upper(citizenship) AS loud, count(*) AS n FROM workers GROUP BY 1, 2"
                .into(),
            None,
        )
        .await
        .unwrap();
    let announced = info.clone().try_decode_schema().unwrap();
    let ticket = info.endpoint[0].ticket.clone().unwrap();
    let mut stream = client.do_get(ticket).await.unwrap();
    while let Some(batch) = stream.next().await {
        assert_eq!(batch.unwrap().schema().as_ref(), &announced);
    }
    assert_eq!(stream.schema().unwrap().as_ref(), &announced);

    let expected = scalar_i64("SELECT count(*) FROM contracts WHERE year = 2024").await;
    assert!(expected > 0);
    // Positional, as ADBC and JDBC bind.
    let mut prepared = client
        .prepare(
            "SELECT count(*) AS n FROM contracts WHERE year = $1".into(),
            None,
        )
        .await
        .unwrap();
    assert_eq!(prepared.parameter_schema().unwrap().fields().len(), 1);
    assert_eq!(prepared.dataset_schema().unwrap().field(0).name(), "n");
    let value = RecordBatch::try_from_iter([(
        "0",
        Arc::new(Int64Array::from(vec![2024])) as Arc<dyn Array>,
    )])
    .unwrap();
    prepared.set_parameters(value).unwrap();
    let info = prepared.execute().await.unwrap();
    let announced = info.clone().try_decode_schema().unwrap();
    let batches = fetch(&mut client, info).await;
    assert_eq!(batches[0].schema().as_ref(), &announced);
    assert_eq!(first_i64(&batches), expected);
    prepared.close().await.unwrap();

    // By name, with a string that would be an injection if it were text.
    let mut named = client
        .prepare(
            "SELECT count(*) AS n FROM contracts WHERE year = $year AND CAST(year AS VARCHAR) <> $other".into(),
            None,
        )
        .await
        .unwrap();
    let values = RecordBatch::try_from_iter([
        (
            "$other",
            Arc::new(StringArray::from(vec!["x' OR '1'='1"])) as Arc<dyn Array>,
        ),
        ("year", Arc::new(Int64Array::from(vec![2024])) as _),
    ])
    .unwrap();
    named.set_parameters(values).unwrap();
    let info = named.execute().await.unwrap();
    assert_eq!(first_i64(&fetch(&mut client, info).await), expected);

    // Two rows of values for one query are refused, not half-run.
    let mut twice = client.prepare("SELECT $1 AS v".into(), None).await.unwrap();
    let two = RecordBatch::try_from_iter([(
        "0",
        Arc::new(Int64Array::from(vec![1, 2])) as Arc<dyn Array>,
    )])
    .unwrap();
    twice.set_parameters(two).unwrap();
    assert_eq!(
        code_of(twice.execute().await.unwrap_err()),
        "InvalidArgument"
    );

    // A ticket this server did not make is refused.
    let forged = arrow_flight::sql::TicketStatementQuery {
        statement_handle: b"{\"sql\":\"SELECT 1\",\"params\":null,\"expires\":99999999999}0123456789012345678901234567890123"
            .to_vec()
            .into(),
    };
    let forged = Ticket::new(arrow_flight::sql::ProstMessageExt::as_any(&forged).encode_to_vec());
    let error = match client.do_get(forged).await {
        Ok(mut stream) => stream.next().await.unwrap().unwrap_err().to_string(),
        Err(error) => format!("{error:?}"),
    };
    assert!(
        error.contains("InvalidArgument") || error.contains("not valid"),
        "{error}"
    );
}

#[tokio::test]
async fn catalog_calls_list_the_datasets_with_their_schemas() {
    let root = province_warehouse();
    let server = FlightServer::start(root, None).await;
    let mut client = server.researcher().await;

    let info = client.get_catalogs().await.unwrap();
    let catalogs = fetch(&mut client, info).await;
    let names = catalogs[0]
        .column(0)
        .as_any()
        .downcast_ref::<StringArray>()
        .unwrap();
    assert!(names.iter().any(|n| n == Some("osservatorio")));

    let info = client
        .get_db_schemas(CommandGetDbSchemas {
            catalog: Some("osservatorio".into()),
            db_schema_filter_pattern: None,
        })
        .await
        .unwrap();
    let schemas = fetch(&mut client, info).await;
    let schema_names = schemas[0]
        .column_by_name("db_schema_name")
        .unwrap()
        .as_any()
        .downcast_ref::<StringArray>()
        .unwrap();
    assert!(schema_names.iter().any(|n| n == Some("public")));

    let info = client
        .get_tables(CommandGetTables {
            catalog: Some("osservatorio".into()),
            db_schema_filter_pattern: Some("public".into()),
            table_name_filter_pattern: Some("work%".into()),
            table_types: vec![],
            include_schema: true,
        })
        .await
        .unwrap();
    let tables = fetch(&mut client, info).await;
    assert_eq!(rows(&tables), 1, "only `workers` matches work%");
    let batch = &tables[0];
    let name = batch
        .column_by_name("table_name")
        .unwrap()
        .as_any()
        .downcast_ref::<StringArray>()
        .unwrap();
    assert_eq!(name.value(0), "workers");
    let kind = batch
        .column_by_name("table_type")
        .unwrap()
        .as_any()
        .downcast_ref::<StringArray>()
        .unwrap();
    assert_eq!(kind.value(0), "TABLE");
    let schema_bytes = batch
        .column_by_name("table_schema")
        .unwrap()
        .as_any()
        .downcast_ref::<arrow::array::BinaryArray>()
        .unwrap()
        .value(0)
        .to_vec();
    let schema = Schema::try_from(arrow_flight::IpcMessage(schema_bytes.into())).unwrap();
    assert!(schema.field_with_name("worker_id").is_ok());

    let info = client
        .get_tables(CommandGetTables {
            catalog: None,
            db_schema_filter_pattern: None,
            table_name_filter_pattern: None,
            table_types: vec!["TABLE".into()],
            include_schema: false,
        })
        .await
        .unwrap();
    let all = fetch(&mut client, info).await;
    assert_eq!(
        rows(&all),
        dictionary().datasets().len(),
        "every dataset is a table"
    );

    let info = client
        .get_sql_info(vec![
            SqlInfo::FlightSqlServerName,
            SqlInfo::FlightSqlServerReadOnly,
        ])
        .await
        .unwrap();
    assert_eq!(rows(&fetch(&mut client, info).await), 2);

    // JDBC's getTypeInfo: the warehouse's column types.
    let info = client
        .get_xdbc_type_info(arrow_flight::sql::CommandGetXdbcTypeInfo { data_type: None })
        .await
        .unwrap();
    let types = fetch(&mut client, info).await;
    let names = types[0]
        .column_by_name("type_name")
        .unwrap()
        .as_any()
        .downcast_ref::<StringArray>()
        .unwrap();
    for name in ["VARCHAR", "BIGINT", "DATE", "BOOLEAN"] {
        assert!(names.iter().any(|n| n == Some(name)), "{name}");
    }
}

#[tokio::test]
async fn tokens_and_roles_are_checked_on_every_call() {
    let root = province_warehouse();
    let server = FlightServer::start(root, None).await;
    let sql = "SELECT count(*) FROM workers".to_string();

    let mut anonymous = server.client(None).await;
    assert_eq!(
        code_of(anonymous.execute(sql.clone(), None).await.unwrap_err()),
        "Unauthenticated"
    );
    assert_eq!(
        code_of(anonymous.get_catalogs().await.unwrap_err()),
        "Unauthenticated"
    );
    let mut wrong = server.client(Some("osv_not_a_token")).await;
    assert_eq!(
        code_of(wrong.execute(sql.clone(), None).await.unwrap_err()),
        "Unauthenticated"
    );
    for role in [Role::Public, Role::Committee] {
        let mut client = server.client(Some(server.token(role))).await;
        assert_eq!(
            code_of(client.execute(sql.clone(), None).await.unwrap_err()),
            "PermissionDenied",
            "{role:?}"
        );
    }
    // A ticket obtained by a researcher is no use to a caller without the role.
    let mut researcher = server.researcher().await;
    let info = researcher.execute(sql.clone(), None).await.unwrap();
    let ticket = info.endpoint[0].ticket.clone().unwrap();
    let mut committee = server.client(Some(server.token(Role::Committee))).await;
    assert_eq!(
        code_of(committee.do_get(ticket).await.unwrap_err()),
        "PermissionDenied"
    );

    // Tools that only speak user and password send the token as password.
    let mut basic = server.client(None).await;
    basic
        .handshake("anyone", server.token(Role::Researcher))
        .await
        .unwrap();
    let rows = query(&mut basic, &sql).await;
    assert!(first_i64(&rows) > 0);
    let mut bad = server.client(None).await;
    let refused = format!("{:?}", bad.handshake("anyone", "wrong").await.unwrap_err());
    assert!(refused.contains("the token is not valid"), "{refused}");
}

#[tokio::test]
async fn ddl_dml_and_copy_are_refused() {
    let root = province_warehouse();
    let server = FlightServer::start(root, None).await;
    let mut client = server.researcher().await;
    let target =
        std::env::temp_dir().join(format!("osservatorio-flight-{}.csv", std::process::id()));
    for statement in [
        "CREATE TABLE stolen AS SELECT * FROM workers".to_string(),
        "DROP TABLE workers".to_string(),
        "INSERT INTO workers SELECT * FROM workers".to_string(),
        format!("COPY workers TO '{}'", target.display()),
        "SET datafusion.execution.batch_size = 1".to_string(),
    ] {
        let error = client.execute(statement.clone(), None).await.unwrap_err();
        assert_eq!(code_of(&error), "PermissionDenied", "{statement}: {error}");
        let error = client
            .execute_update(statement.clone(), None)
            .await
            .unwrap_err();
        assert_eq!(code_of(&error), "PermissionDenied", "{statement}: {error}");
        let error = client.prepare(statement.clone(), None).await.unwrap_err();
        assert_eq!(code_of(&error), "PermissionDenied", "{statement}: {error}");
    }
    assert!(!target.exists());
    let still = query(&mut client, "SELECT count(*) FROM workers").await;
    assert!(first_i64(&still) > 0);
}

#[tokio::test]
async fn a_huge_result_streams_under_the_row_cap() {
    let root = province_warehouse();
    let server = FlightServer::start(root, Some(5_000)).await;
    let mut client = server.researcher().await;
    let workers = scalar_i64("SELECT count(*) FROM workers").await;
    assert!(workers * workers > 1_000_000, "the cross join is huge");
    let info = client
        .execute(
            "SELECT a.worker_id, b.worker_id AS other FROM workers a CROSS JOIN workers b".into(),
            None,
        )
        .await
        .unwrap();
    let ticket = info.endpoint[0].ticket.clone().unwrap();
    let mut stream = client.do_get(ticket).await.unwrap();
    let mut total = 0;
    while let Some(batch) = stream.next().await {
        total += batch.unwrap().num_rows();
    }
    assert_eq!(total, 5_000);
    let schema = stream.schema().expect("the schema came first");
    assert_eq!(
        schema
            .metadata()
            .get("osservatorio:row_limit")
            .map(String::as_str),
        Some("5000")
    );
}

#[tokio::test]
async fn the_server_keeps_serving_after_a_client_leaves_mid_stream() {
    let root = province_warehouse();
    let server = FlightServer::start(root, None).await;
    for _ in 0..3 {
        let mut leaving = server.researcher().await;
        let info = leaving
            .execute(
                "SELECT a.worker_id, b.worker_id AS other FROM workers a CROSS JOIN workers b"
                    .into(),
                None,
            )
            .await
            .unwrap();
        let ticket = info.endpoint[0].ticket.clone().unwrap();
        let mut stream = leaving.do_get(ticket).await.unwrap();
        let first = stream.next().await.unwrap().unwrap();
        assert!(first.num_rows() > 0);
        drop(stream);
        drop(leaving);
    }
    let mut next = server.researcher().await;
    let count = query(&mut next, "SELECT count(*) FROM workers").await;
    assert_eq!(
        first_i64(&count),
        scalar_i64("SELECT count(*) FROM workers").await
    );
}
