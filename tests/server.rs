//! The HTTP API: every route through the router, an auth matrix, entity
//! tags and their invalidation by a new table version, the OpenAPI document
//! and the committee page. SQL over HTTP is in `server_sql`.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::http::{header, Method, Request, StatusCode};
use axum::Router;
use bytes::Bytes;
use osservatorio::auth::{new_token, Access, AggregateAccess, Role};
use osservatorio::catalog::{Warehouse, WriteMode};
use osservatorio::config::{Config, Overrides};
use osservatorio::observatory::Observatory;
use osservatorio::server::{self, AppState, ServerLimits};
use serde_json::Value;
use tower::ServiceExt;

use crate::support::{copy_dir, dictionary, province_warehouse};

const INDICATOR: &str = "staff_assistance_person_days";

pub(crate) struct TestApp {
    pub(crate) router: Router,
    pub(crate) observatory: Arc<Observatory>,
    tokens: Vec<(Role, String)>,
    pub(crate) state: AppState,
}

impl TestApp {
    pub(crate) fn token(&self, role: Role) -> &str {
        &self.tokens.iter().find(|(r, _)| *r == role).unwrap().1
    }
}

pub(crate) fn config(root: &Path, tweak: impl FnOnce(&mut Overrides)) -> Config {
    let mut overrides = Overrides {
        data_dir: Some(root.display().to_string()),
        queries_dir: Some(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("queries")),
        ..Overrides::default()
    };
    tweak(&mut overrides);
    Config::resolve(overrides).expect("config")
}

/// One token per role, and the access policy that knows them.
pub(crate) fn tokens_for_every_role(aggregates: AggregateAccess) -> (Access, Vec<(Role, String)>) {
    let mut records = Vec::new();
    let mut tokens = Vec::new();
    for role in [Role::Public, Role::Committee, Role::Researcher] {
        let (token, record) = new_token(role.as_str(), role);
        records.push(record);
        tokens.push((role, token));
    }
    (Access::new(records, aggregates).unwrap(), tokens)
}

pub(crate) async fn app_with(root: &Path, aggregates: AggregateAccess, config: Config) -> TestApp {
    let (access, tokens) = tokens_for_every_role(aggregates);
    let warehouse = Warehouse::open(root, dictionary()).await.unwrap();
    let observatory = Arc::new(
        Observatory::open(warehouse, config)
            .await
            .expect("observatory"),
    );
    let limits = ServerLimits {
        body_bytes: 4096,
        request_timeout: Duration::from_secs(60),
    };
    let state = AppState::new(observatory.clone(), access, limits);
    TestApp {
        router: server::router(state.clone()),
        observatory,
        tokens,
        state,
    }
}

pub(crate) async fn app(aggregates: AggregateAccess) -> TestApp {
    let root = province_warehouse();
    app_with(root, aggregates, config(root, |_| {})).await
}

pub(crate) struct Reply {
    pub(crate) status: StatusCode,
    headers: axum::http::HeaderMap,
    pub(crate) body: Bytes,
}

impl Reply {
    pub(crate) fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&self.body)))
    }

    pub(crate) fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    pub(crate) fn header(&self, name: header::HeaderName) -> &str {
        self.headers
            .get(name)
            .map(|v| v.to_str().unwrap())
            .unwrap_or("")
    }
}

pub(crate) async fn call(
    router: &Router,
    method: Method,
    uri: &str,
    headers: &[(header::HeaderName, &str)],
    body: &str,
) -> Reply {
    let mut request = Request::builder().method(method).uri(uri);
    for (name, value) in headers {
        request = request.header(name, *value);
    }
    let response = router
        .clone()
        .oneshot(request.body(Body::from(body.to_string())).unwrap())
        .await
        .unwrap();
    let status = response.status();
    let headers = response.headers().clone();
    let body = axum::body::to_bytes(response.into_body(), usize::MAX)
        .await
        .unwrap();
    Reply {
        status,
        headers,
        body,
    }
}

async fn get(router: &Router, uri: &str) -> Reply {
    call(router, Method::GET, uri, &[], "").await
}

pub(crate) async fn sql(
    app: &TestApp,
    body: &str,
    headers: &[(header::HeaderName, &str)],
) -> Reply {
    let auth = format!("Bearer {}", app.token(Role::Researcher));
    let mut all = vec![(header::AUTHORIZATION, auth.as_str())];
    all.extend_from_slice(headers);
    call(&app.router, Method::POST, "/api/sql", &all, body).await
}

/// Every served route, as (method, documented path, a concrete request URI).
fn served_routes() -> Vec<(Method, &'static str, String)> {
    vec![
        (Method::GET, "/", "/".into()),
        (Method::GET, "/api/indicators", "/api/indicators".into()),
        (
            Method::GET,
            "/api/indicators/{id}",
            format!("/api/indicators/{INDICATOR}?year=2024"),
        ),
        (
            Method::GET,
            "/api/charts/{file}",
            format!("/api/charts/{INDICATOR}.svg?year=2024"),
        ),
        (Method::GET, "/api/datasets", "/api/datasets".into()),
        (
            Method::GET,
            "/api/datasets/{name}",
            "/api/datasets/workers".into(),
        ),
        (Method::POST, "/api/sql", "/api/sql".into()),
        (
            Method::GET,
            "/api/reports/{file}",
            "/api/reports/2024.html".into(),
        ),
        (Method::GET, "/healthz", "/healthz".into()),
        (Method::GET, "/metrics", "/metrics".into()),
        (Method::GET, "/api/openapi.json", "/api/openapi.json".into()),
    ]
}

#[tokio::test]
async fn every_route_answers() {
    let app = app(AggregateAccess::Public).await;
    let list = get(&app.router, "/api/indicators?lang=en").await;
    assert_eq!(list.status, StatusCode::OK);
    let indicators = list.json()["indicators"].as_array().unwrap().clone();
    assert_eq!(
        indicators.len(),
        app.observatory.snapshot().catalog.indicators().len()
    );
    let staff = indicators.iter().find(|i| i["id"] == INDICATOR).unwrap();
    assert!(staff["title"]
        .as_str()
        .unwrap()
        .starts_with("Cultural mediation"));
    assert!(staff["tables"]
        .as_array()
        .unwrap()
        .contains(&Value::from("desk_contacts")));

    let json = get(
        &app.router,
        &format!("/api/indicators/{INDICATOR}?year=2024"),
    )
    .await;
    assert_eq!(json.status, StatusCode::OK);
    assert_eq!(json.header(header::CONTENT_TYPE), "application/json");
    let body = json.json();
    assert_eq!(body["parameters"]["year"], "2024");
    assert!(!body["rows"].as_array().unwrap().is_empty());

    let csv = call(
        &app.router,
        Method::GET,
        &format!("/api/indicators/{INDICATOR}?year=2024"),
        &[(header::ACCEPT, "text/csv")],
        "",
    )
    .await;
    assert!(csv.header(header::CONTENT_TYPE).starts_with("text/csv"));
    assert!(csv.text().starts_with("service,"), "{}", csv.text());
    let sdmx = get(
        &app.router,
        &format!("/api/indicators/{INDICATOR}?year=2024&format=sdmx-csv"),
    )
    .await;
    assert!(sdmx.text().starts_with("DATAFLOW,"), "{}", sdmx.text());
    assert_eq!(
        get(
            &app.router,
            &format!("/api/indicators/{INDICATOR}?format=xml")
        )
        .await
        .status,
        StatusCode::BAD_REQUEST
    );
    let refused = call(
        &app.router,
        Method::GET,
        &format!("/api/indicators/{INDICATOR}"),
        &[(header::ACCEPT, "application/xml")],
        "",
    )
    .await;
    assert_eq!(refused.status, StatusCode::NOT_ACCEPTABLE);

    let svg = get(&app.router, &format!("/api/charts/{INDICATOR}.svg?lang=en")).await;
    assert_eq!(svg.header(header::CONTENT_TYPE), "image/svg+xml");
    assert!(svg.text().contains("<svg"));
    let png = get(
        &app.router,
        &format!("/api/charts/{INDICATOR}.png?width=400&height=300"),
    )
    .await;
    assert_eq!(png.header(header::CONTENT_TYPE), "image/png");
    assert!(png.body.starts_with(b"\x89PNG"));
    assert_eq!(
        get(&app.router, &format!("/api/charts/{INDICATOR}.gif"))
            .await
            .status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        get(&app.router, &format!("/api/charts/{INDICATOR}.svg?width=5"))
            .await
            .json()["error"],
        "bad_parameter"
    );

    let datasets = get(&app.router, "/api/datasets").await.json();
    let workers = datasets["datasets"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["name"] == "workers")
        .unwrap()
        .clone();
    assert!(workers["rows"].as_u64().unwrap() > 1000);
    assert_eq!(workers["version"], 0);
    let one = get(&app.router, "/api/datasets/workers").await.json();
    assert_eq!(one["rows"], workers["rows"]);
    assert!(one["columns"].as_array().unwrap().len() > 3);

    let health = get(&app.router, "/healthz").await.json();
    assert_eq!(health["status"], "ok");
    assert_eq!(health["versions"]["workers"], 0);

    let counted = sql(&app, "SELECT count(*) AS n FROM workers", &[]).await;
    assert_eq!(counted.status, StatusCode::OK, "{}", counted.text());
    assert_eq!(counted.json()["rows"][0]["n"], workers["rows"]);

    let metrics = get(&app.router, "/metrics").await.text();
    assert!(metrics.contains(
        "osservatorio_http_requests_total{route=\"/api/indicators/{id}\",method=\"GET\",status=\"200\"}"
    ));
    assert!(metrics.contains("osservatorio_query_duration_seconds_count{kind=\"indicator\"}"));
    assert!(metrics.contains("osservatorio_render_cache_total{result=\"miss\"}"));
}

#[tokio::test]
async fn errors_are_json_with_stable_slugs() {
    let app = app(AggregateAccess::Public).await;
    let unknown = get(&app.router, "/api/indicators/nope").await;
    assert_eq!(unknown.status, StatusCode::NOT_FOUND);
    assert_eq!(unknown.json()["error"], "unknown_indicator");
    assert_eq!(
        get(&app.router, "/api/datasets/nope").await.json()["error"],
        "unknown_dataset"
    );
    let bad_param = get(
        &app.router,
        &format!("/api/indicators/{INDICATOR}?year=soon"),
    )
    .await;
    assert_eq!(bad_param.status, StatusCode::BAD_REQUEST);
    assert_eq!(bad_param.json()["error"], "bad_parameter");
    let unknown_param = get(
        &app.router,
        &format!("/api/indicators/{INDICATOR}?colour=red"),
    )
    .await;
    assert_eq!(unknown_param.json()["error"], "bad_parameter");
    let no_route = get(&app.router, "/api/nothing").await;
    assert_eq!(no_route.status, StatusCode::NOT_FOUND);
    assert_eq!(no_route.json()["error"], "not_found");
    let too_large = sql(&app, &format!("SELECT '{}'", "x".repeat(5000)), &[]).await;
    assert_eq!(too_large.status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(too_large.json()["error"], "payload_too_large");
    let wrong = call(
        &app.router,
        Method::GET,
        "/api/indicators",
        &[(header::AUTHORIZATION, "Bearer osv_nope")],
        "",
    )
    .await;
    assert_eq!(wrong.status, StatusCode::UNAUTHORIZED);
    assert!(wrong.header(header::WWW_AUTHENTICATE).starts_with("Bearer"));
}

#[tokio::test]
async fn the_auth_matrix_holds() {
    for aggregates in [AggregateAccess::Public, AggregateAccess::Committee] {
        let app = app(aggregates).await;
        let credentials: Vec<(&str, Option<String>)> = vec![
            ("none", None),
            ("wrong", Some("Bearer osv_0000".to_string())),
            ("malformed", Some("Basic dXNlcjpwYXNz".to_string())),
            (
                "public",
                Some(format!("Bearer {}", app.token(Role::Public))),
            ),
            (
                "committee",
                Some(format!("Bearer {}", app.token(Role::Committee))),
            ),
            (
                "researcher",
                Some(format!("Bearer {}", app.token(Role::Researcher))),
            ),
        ];
        for (method, path, uri) in served_routes() {
            for (who, credential) in &credentials {
                let expected = expected_status(aggregates, path, who);
                let mut headers = Vec::new();
                if let Some(value) = credential {
                    headers.push((header::AUTHORIZATION, value.as_str()));
                }
                let body = if method == Method::POST {
                    "SELECT 1 AS one"
                } else {
                    ""
                };
                let reply = call(&app.router, method.clone(), &uri, &headers, body).await;
                assert_eq!(
                    reply.status,
                    expected,
                    "{aggregates:?} {method} {path} as {who}: {}",
                    reply.text()
                );
                if !reply.status.is_success() {
                    assert!(reply.json()["error"].is_string());
                }
            }
        }
    }
}

/// The documented access rules (README, "Access").
fn expected_status(aggregates: AggregateAccess, path: &str, who: &str) -> StatusCode {
    let operations = ["/healthz", "/metrics", "/api/openapi.json"];
    if operations.contains(&path) {
        return StatusCode::OK;
    }
    let rank = match who {
        "none" => None,
        "wrong" | "malformed" => return StatusCode::UNAUTHORIZED,
        "public" => Some(Role::Public),
        "committee" => Some(Role::Committee),
        _ => Some(Role::Researcher),
    };
    let needed = if path == "/api/sql" {
        Role::Researcher
    } else if aggregates == AggregateAccess::Committee {
        Role::Committee
    } else {
        Role::Public
    };
    match rank {
        Some(role) if role >= needed => StatusCode::OK,
        None if needed == Role::Public => StatusCode::OK,
        None => StatusCode::UNAUTHORIZED,
        Some(_) => StatusCode::FORBIDDEN,
    }
}

#[tokio::test]
async fn openapi_lists_exactly_the_served_routes() {
    let app = app(AggregateAccess::Public).await;
    let document = get(&app.router, "/api/openapi.json").await.json();
    assert!(document["openapi"].as_str().unwrap().starts_with("3.1"));
    let documented: BTreeSet<(String, String)> = document["paths"]
        .as_object()
        .unwrap()
        .iter()
        .flat_map(|(path, item)| {
            item.as_object()
                .unwrap()
                .keys()
                .map(move |method| (method.to_uppercase(), path.clone()))
        })
        .collect();
    let served: BTreeSet<(String, String)> = served_routes()
        .into_iter()
        .map(|(method, path, _)| (method.to_string(), path.to_string()))
        .collect();
    assert_eq!(documented, served);
    // And each one is really served: no 404 or 405.
    for (method, _, uri) in served_routes() {
        let body = if method == Method::POST {
            "SELECT 1"
        } else {
            ""
        };
        let auth = format!("Bearer {}", app.token(Role::Researcher));
        let reply = call(
            &app.router,
            method.clone(),
            &uri,
            &[(header::AUTHORIZATION, &auth)],
            body,
        )
        .await;
        assert_eq!(reply.status, StatusCode::OK, "{method} {uri}");
    }
    assert_eq!(
        call(&app.router, Method::DELETE, "/api/indicators", &[], "")
            .await
            .status,
        StatusCode::METHOD_NOT_ALLOWED
    );
}
#[tokio::test]
async fn etags_answer_304_and_change_with_a_new_table_version() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("warehouse");
    copy_dir(province_warehouse(), &root);
    let app = app_with(&root, AggregateAccess::Public, config(&root, |_| {})).await;
    let uri = format!("/api/indicators/{INDICATOR}?year=2024");
    let first = get(&app.router, &uri).await;
    let etag = first.header(header::ETAG).to_string();
    assert!(etag.starts_with('"') && etag.len() > 10);
    let again = call(
        &app.router,
        Method::GET,
        &uri,
        &[(header::IF_NONE_MATCH, &etag)],
        "",
    )
    .await;
    assert_eq!(again.status, StatusCode::NOT_MODIFIED);
    assert!(again.body.is_empty());
    // Another language is another representation.
    let english = get(&app.router, &format!("{uri}&lang=en")).await;
    assert_ne!(english.header(header::ETAG), etag);
    let chart = get(
        &app.router,
        &format!("/api/charts/{INDICATOR}.svg?year=2024"),
    )
    .await;
    let chart_etag = chart.header(header::ETAG).to_string();

    // A table the indicator does not read: same tag.
    let warehouse = Warehouse::open(&root, dictionary()).await.unwrap();
    warehouse
        .write("subsidies", vec![], WriteMode::Append)
        .await
        .unwrap();
    let watcher = app.observatory.watch(Duration::from_millis(100));
    wait_for_version(&app, "subsidies", 1).await;
    assert_eq!(get(&app.router, &uri).await.header(header::ETAG), etag);

    // A table it reads: new tag, the old one no longer matches, and the
    // server noticed without a restart.
    warehouse
        .write("desk_contacts", vec![], WriteMode::Append)
        .await
        .unwrap();
    wait_for_version(&app, "desk_contacts", 1).await;
    let after = call(
        &app.router,
        Method::GET,
        &uri,
        &[(header::IF_NONE_MATCH, &etag)],
        "",
    )
    .await;
    assert_eq!(after.status, StatusCode::OK);
    assert_ne!(after.header(header::ETAG), etag);
    let chart_after = get(
        &app.router,
        &format!("/api/charts/{INDICATOR}.svg?year=2024"),
    )
    .await;
    assert_ne!(chart_after.header(header::ETAG), chart_etag);
    let health = get(&app.router, "/healthz").await.json();
    assert_eq!(health["versions"]["desk_contacts"], 1);
    watcher.abort();
}

async fn wait_for_version(app: &TestApp, table: &str, version: u64) {
    for _ in 0..100 {
        if app.observatory.snapshot().versions().get(table) == Some(&Some(version)) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("the server did not load {table} v{version} within 10 s");
}

#[tokio::test]
async fn the_committee_page_has_every_chart_and_nothing_external() {
    let app = app(AggregateAccess::Public).await;
    let page = get(&app.router, "/").await;
    assert_eq!(page.status, StatusCode::OK);
    assert_eq!(
        page.header(header::CONTENT_TYPE),
        "text/html; charset=utf-8"
    );
    let html = page.text();
    assert!(html.starts_with("<!DOCTYPE html>\n<html lang=\"it\">"));
    let snapshot = app.observatory.snapshot();
    for indicator in snapshot.catalog.indicators() {
        let id = &indicator.spec.id;
        let start = html
            .find(&format!("<article id=\"{id}\">"))
            .unwrap_or_else(|| panic!("{id} is on the page"));
        let article = &html[start..start + html[start..].find("</article>").unwrap()];
        assert!(article.contains("<figure><svg"), "{id} has its chart");
        assert!(
            article.contains(&format!("/api/indicators/{id}?format=csv")),
            "{id} links its CSV"
        );
        assert!(
            !article.contains("class=\"error\""),
            "{id} failed on the page"
        );
    }
    for external in ["<script", "<link", "src=", "url(", "@import", "https://"] {
        assert!(
            !html.contains(external),
            "the page must not contain {external}"
        );
    }
    // Plain GET forms select years and districts.
    assert!(html.contains(&format!("name=\"{INDICATOR}.year\"")));
    assert!(html.contains("<option value=\"2024\">2024</option>"));
    assert!(html.contains("<option value=\"Crema\">Crema</option>"));

    let english = get(&app.router, "/?lang=en").await.text();
    assert!(english.starts_with("<!DOCTYPE html>\n<html lang=\"en\">"));
    assert!(english.contains("Download the data (CSV)"));
    let chosen = get(
        &app.router,
        &format!("/?{INDICATOR}.year=2023&{INDICATOR}.district=Crema"),
    )
    .await
    .text();
    assert!(chosen.contains("<option value=\"2023\" selected>2023</option>"));
    assert!(chosen.contains("/api/indicators/staff_assistance_person_days?format=csv&amp;lang=it&amp;district=Crema&amp;year=2023"));
}
