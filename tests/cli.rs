//! The binary as a user meets it: one-line errors with a non-zero exit, the
//! output formats, and the demo on a fresh clone.

use std::path::Path;
use std::process::{Command, Output};

use crate::support::province_warehouse;

fn osservatorio(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_osservatorio"))
        .current_dir(dir)
        .args(args)
        .env_remove("OSSERVATORIO_DATA_DIR")
        .env_remove("OSSERVATORIO_CONFIG")
        .output()
        .expect("run osservatorio")
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

fn assert_one_line_error(output: &Output, expected: &str) {
    assert!(!output.status.success(), "should fail: {}", stderr(output));
    let text = stderr(output);
    assert_eq!(text.trim_end().lines().count(), 1, "one line: {text}");
    assert!(
        text.starts_with("error: ") && text.contains(expected),
        "{text}"
    );
}

#[test]
fn bad_input_gets_a_one_line_error() {
    let warehouse = province_warehouse().to_str().unwrap().to_string();
    let dir = tempfile::tempdir().unwrap();
    assert_one_line_error(
        &osservatorio(dir.path(), &["generate", "--scale", "planet"]),
        "unknown scale `planet`; use province, region or national",
    );
    assert_one_line_error(
        &osservatorio(dir.path(), &["--data-dir", &warehouse, "sql", "SELEC 1"]),
        "SELEC",
    );
    assert_one_line_error(
        &osservatorio(
            dir.path(),
            &["--data-dir", &warehouse, "sql", "SELECT * FROM nosuch"],
        ),
        "nosuch",
    );
    assert_one_line_error(
        &osservatorio(
            dir.path(),
            &["--data-dir", &warehouse, "sql", "DROP TABLE workers"],
        ),
        "only read-only queries are allowed",
    );
    assert_one_line_error(
        &osservatorio(dir.path(), &["--data-dir", "missing", "datasets"]),
        "does not exist",
    );
    assert_one_line_error(
        &osservatorio(
            dir.path(),
            &[
                "--data-dir",
                &warehouse,
                "--memory-limit",
                "lots",
                "datasets",
            ],
        ),
        "memory limit `lots`",
    );
    std::fs::write(dir.path().join("notes.txt"), "mine").unwrap();
    assert_one_line_error(
        &osservatorio(dir.path(), &["--data-dir", ".", "generate"]),
        "is not an Osservatorio warehouse",
    );
    assert!(
        !dir.path().join("osservatorio-warehouse.toml").exists(),
        "a foreign directory is left untouched"
    );
}

#[test]
fn sql_writes_the_requested_format() {
    let warehouse = province_warehouse().to_str().unwrap().to_string();
    let dir = tempfile::tempdir().unwrap();
    let output = osservatorio(
        dir.path(),
        &[
            "--data-dir",
            &warehouse,
            "sql",
            "SELECT count(*) AS n FROM territories WHERE province_code = '019'",
            "--format",
            "json",
        ],
    );
    assert!(output.status.success(), "{}", stderr(&output));
    let json: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    let n = json[0]["n"].as_i64().unwrap();
    assert!((110..=116).contains(&n), "{json}");

    let out = dir.path().join("contracts.parquet");
    let output = osservatorio(
        dir.path(),
        &[
            "--data-dir",
            &warehouse,
            "sql",
            "SELECT * FROM contracts WHERE year = 2024",
            "--format",
            "parquet",
            "--out",
            out.to_str().unwrap(),
        ],
    );
    assert!(output.status.success(), "{}", stderr(&output));
    let reader = parquet::arrow::arrow_reader::ParquetRecordBatchReader::try_new(
        std::fs::File::open(&out).unwrap(),
        8192,
    )
    .unwrap();
    assert!(reader.map(|b| b.unwrap().num_rows()).sum::<usize>() > 1000);
    assert!(!dir.path().join("contracts.partial").exists());

    let output = osservatorio(dir.path(), &["datasets", "contracts"]);
    let description = String::from_utf8_lossy(&output.stdout);
    assert!(
        description.contains("ccnl_level")
            && description.contains("one of A, AS, B, BS, C, CS, D, DS"),
        "{description}"
    );
    assert!(
        description.contains("(pseudonym)") && description.contains("→ workers.worker_id"),
        "{description}"
    );

    let mut child = Command::new(env!("CARGO_BIN_EXE_osservatorio"))
        .current_dir(dir.path())
        .args(["--data-dir", &warehouse, "sql", "--format", "csv"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write as _;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"SELECT count(*) AS desks FROM desks")
        .unwrap();
    let piped = child.wait_with_output().unwrap();
    assert_eq!(
        String::from_utf8_lossy(&piped.stdout),
        "desks\n9\n",
        "SQL read from standard input"
    );

    let sql_file = dir.path().join("q.sql");
    std::fs::write(&sql_file, "SELECT name FROM desks ORDER BY desk_id LIMIT 1").unwrap();
    let output = osservatorio(
        dir.path(),
        &[
            "--data-dir",
            &warehouse,
            "sql",
            "--file",
            sql_file.to_str().unwrap(),
            "--format",
            "csv",
        ],
    );
    assert_eq!(
        String::from_utf8_lossy(&output.stdout),
        "name\nSportello assistenti familiari – ambito di Cremona\n"
    );

    let output = osservatorio(
        dir.path(),
        &[
            "--data-dir",
            &warehouse,
            "--max-rows",
            "3",
            "sql",
            "SELECT * FROM workers",
            "--format",
            "csv",
        ],
    );
    assert!(output.status.success());
    assert_eq!(
        String::from_utf8_lossy(&output.stdout).lines().count(),
        4,
        "header and three rows"
    );
    assert!(stderr(&output).contains("cut at 3 rows"));
}

#[test]
fn a_fresh_clone_gets_the_demo_once() {
    let dir = tempfile::tempdir().unwrap();
    let first = osservatorio(dir.path(), &["datasets"]);
    assert!(first.status.success(), "{}", stderr(&first));
    assert!(
        stderr(&first).contains("province-scale demo"),
        "{}",
        stderr(&first)
    );
    let listing = String::from_utf8_lossy(&first.stdout).into_owned();
    assert!(
        listing.lines().any(|l| l.starts_with("contracts ")),
        "{listing}"
    );
    assert!(dir
        .path()
        .join("data")
        .join("contracts")
        .join("_delta_log")
        .is_dir());

    let second = osservatorio(
        dir.path(),
        &[
            "sql",
            "SELECT count(*) AS n FROM workers",
            "--format",
            "csv",
        ],
    );
    assert!(second.status.success(), "{}", stderr(&second));
    assert!(
        !stderr(&second).contains("demo"),
        "the demo is generated only once"
    );
}

#[test]
fn indicators_print_and_draw_from_the_command_line() {
    let warehouse = province_warehouse().to_str().unwrap().to_string();
    let queries = crate::indicators::queries_dir()
        .to_str()
        .unwrap()
        .to_string();
    let dir = tempfile::tempdir().unwrap();
    let base = [
        "--data-dir",
        warehouse.as_str(),
        "--queries-dir",
        queries.as_str(),
    ];
    let run = |args: &[&str]| osservatorio(dir.path(), &[&base[..], args].concat());

    let listing = run(&["indicators"]);
    assert!(listing.status.success(), "{}", stderr(&listing));
    assert!(String::from_utf8_lossy(&listing.stdout)
        .lines()
        .any(|l| l.starts_with("staff_hires ")));

    let sdmx = run(&[
        "indicator",
        "staff_hires",
        "--year",
        "2023",
        "--format",
        "sdmx-csv",
    ]);
    assert!(sdmx.status.success(), "{}", stderr(&sdmx));
    let text = String::from_utf8_lossy(&sdmx.stdout);
    assert!(
        text.starts_with(
            "DATAFLOW,SEX,CITIZENSHIP_GROUP,TIME_PERIOD,MEASURE,OBS_VALUE,OBS_STATUS,CONF_STATUS\n"
        ),
        "{text}"
    );

    let chart = dir.path().join("hires.png");
    let drawn = run(&[
        "chart",
        "staff_hires",
        "--year",
        "2023",
        "--out",
        chart.to_str().unwrap(),
        "--lang",
        "en",
    ]);
    assert!(drawn.status.success(), "{}", stderr(&drawn));
    assert!(std::fs::read(&chart).unwrap().starts_with(b"\x89PNG"));

    assert_one_line_error(
        &run(&["chart", "staff_hires", "--out", "hires.gif"]),
        "--out must end in .svg or .png",
    );
    assert_one_line_error(
        &run(&["indicator", "staff_hirez"]),
        "unknown indicator `staff_hirez`",
    );
    assert_one_line_error(
        &run(&["indicator", "staff_hires", "--year", "twenty"]),
        "`year` must be a whole number",
    );
    assert_one_line_error(
        &run(&["--disclosure-threshold", "2", "indicator", "staff_hires"]),
        "below the legal floor of 3",
    );

    let broken = dir.path().join("queries");
    std::fs::create_dir(&broken).unwrap();
    std::fs::write(
        broken.join("oops.sql"),
        "-- id = \"oops\"\n-- theme = \"nowhere\"\nSELECT 1\n",
    )
    .unwrap();
    let output = osservatorio(
        dir.path(),
        &[
            "--data-dir",
            &warehouse,
            "--queries-dir",
            broken.to_str().unwrap(),
            "indicators",
        ],
    );
    assert_one_line_error(&output, "oops.sql:2:");
}

#[test]
fn token_create_stores_only_the_hash() {
    let dir = tempfile::tempdir().unwrap();
    let created = osservatorio(
        dir.path(),
        &["token", "create", "--role", "committee", "--name", "anna"],
    );
    assert!(created.status.success(), "{}", stderr(&created));
    let token = String::from_utf8(created.stdout)
        .unwrap()
        .trim()
        .to_string();
    assert!(token.starts_with("osv_") && token.len() > 40, "{token}");
    let config = std::fs::read_to_string(dir.path().join("osservatorio.toml")).unwrap();
    assert!(!config.contains(&token), "the token itself is never stored");
    assert!(config.contains(&osservatorio::auth::token_hash(&token)));
    assert!(config.contains("name = \"anna\"") && config.contains("role = \"committee\""));
    // A second token goes beside the first; the same name twice is refused.
    let second = osservatorio(
        dir.path(),
        &["token", "create", "--role", "researcher", "--name", "bruno"],
    );
    assert!(second.status.success(), "{}", stderr(&second));
    assert_one_line_error(
        &osservatorio(
            dir.path(),
            &["token", "create", "--role", "researcher", "--name", "anna"],
        ),
        "a token named `anna` already exists",
    );
    let config = std::fs::read_to_string(dir.path().join("osservatorio.toml")).unwrap();
    assert_eq!(config.matches("[[tokens]]").count(), 2);
}

#[test]
fn serve_refuses_an_open_address_without_tokens() {
    let warehouse = province_warehouse().to_str().unwrap().to_string();
    let dir = tempfile::tempdir().unwrap();
    assert_one_line_error(
        &osservatorio(
            dir.path(),
            &["serve", "--data-dir", &warehouse, "--listen", "0.0.0.0:0"],
        ),
        "refusing to listen on 0.0.0.0:0",
    );
}

/// `serve` with no config prints the URL and a session token, answers, and
/// on SIGTERM stops cleanly.
#[test]
fn serve_prints_a_session_token_and_stops_on_sigterm() {
    use std::io::{BufRead, BufReader, Read, Write};
    let warehouse = province_warehouse().to_str().unwrap().to_string();
    let mut child = Command::new(env!("CARGO_BIN_EXE_osservatorio"))
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .args([
            "serve",
            "--data-dir",
            &warehouse,
            "--listen",
            "127.0.0.1:0",
            "--flight-listen",
            "127.0.0.1:0",
        ])
        .env_remove("OSSERVATORIO_CONFIG")
        .env_remove("OSSERVATORIO_DATA_DIR")
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let mut address = None;
    let mut token = None;
    let mut flight = None;
    while let Some(Ok(line)) = lines.next() {
        if let Some(url) = line.strip_prefix("serving the observatory at http://") {
            address = Some(url.trim_end_matches('/').to_string());
        }
        if let Some(url) = line.strip_prefix("serving Arrow Flight SQL at grpc://") {
            flight = Some(url.to_string());
        }
        if let Some(found) = line.trim().strip_prefix("osv_") {
            token = Some(format!("osv_{found}"));
            break;
        }
    }
    let address = address.expect("the URL is printed");
    let token = token.expect("a session token is printed");
    let flight = flight.expect("the Flight SQL address is printed");
    std::net::TcpStream::connect(&flight).expect("Flight SQL listens");
    let request = |path: &str, auth: Option<&str>, body: &str| -> String {
        let mut stream = std::net::TcpStream::connect(&address).unwrap();
        let auth = auth.map_or_else(String::new, |t| format!("Authorization: Bearer {t}\r\n"));
        write!(
            stream,
            "POST {path} HTTP/1.1\r\nHost: x\r\n{auth}Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        )
        .unwrap();
        let mut reply = String::new();
        stream.read_to_string(&mut reply).unwrap();
        reply
    };
    let ok = request("/api/sql", Some(&token), "SELECT 41 + 1 AS answer");
    assert!(ok.starts_with("HTTP/1.1 200"), "{ok}");
    assert!(ok.contains("\"answer\":42"), "{ok}");
    let refused = request("/api/sql", None, "SELECT 1");
    assert!(refused.starts_with("HTTP/1.1 401"), "{refused}");
    let killed = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    let status = child.wait().unwrap();
    assert!(status.success(), "graceful shutdown exits 0: {status:?}");
}

#[test]
fn report_writes_a_whole_directory_for_a_territory() {
    let warehouse = province_warehouse().to_str().unwrap().to_string();
    let dir = tempfile::tempdir().unwrap();
    let queries = concat!(env!("CARGO_MANIFEST_DIR"), "/queries");
    let out = dir.path().join("crema-2024");
    let made = osservatorio(
        dir.path(),
        &[
            "report",
            "--year",
            "2024",
            "--territory",
            "Crema",
            "--lang",
            "en",
            "--out",
            out.to_str().unwrap(),
            "--data-dir",
            &warehouse,
            "--queries-dir",
            queries,
        ],
    );
    assert!(made.status.success(), "{}", stderr(&made));
    let html = std::fs::read_to_string(out.join("report.html")).unwrap();
    assert!(html.contains("district Crema") && html.contains("<html lang=\"en\">"));
    assert!(
        html.contains("--district Crema --as-of "),
        "the rebuild command names the territory"
    );
    assert!(out.join("indicators.csv").is_file());
    assert!(out.join("figures/staff_hires.png").is_file());
    // No staging directory is left beside it.
    let left: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .flatten()
        .map(|e| e.file_name())
        .collect();
    assert_eq!(left.len(), 1, "{left:?}");
}
