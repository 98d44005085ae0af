//! Ingest from the command line, as an operator runs it on a monthly
//! export: the report and exit code for good, bad and repeated files,
//! quarantine beside the input, and a killed run that leaves the table as
//! it was.

use std::path::Path;

use osservatorio::catalog::Warehouse;

use crate::ingest::{fixture, scratch, version, KEY, WORKERS};
use crate::support::{block_on, dictionary};

fn osservatorio(args: &[&str], data_dir: &Path) -> std::process::Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_osservatorio"))
        .args(args)
        .arg("--data-dir")
        .arg(data_dir)
        .env(
            "OSSERVATORIO_PSEUDONYM_KEY",
            std::str::from_utf8(KEY).unwrap(),
        )
        .env_remove("OSSERVATORIO_CONFIG")
        .output()
        .unwrap()
}

/// The number under the header of a one-column CSV answer.
fn first_count(output: &std::process::Output) -> i64 {
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .nth(1)
        .unwrap()
        .trim()
        .parse()
        .unwrap()
}

#[test]
fn the_command_line_reports_with_exit_codes_and_quarantines() {
    let (dir, _warehouse) = scratch();
    let root = dir.path().join("warehouse");
    let input = dir.path().join("workers_mixed.csv");
    std::fs::copy(fixture("bad_date.csv"), &input).unwrap();
    let input_text = input.to_str().unwrap();

    let dry = osservatorio(
        &["ingest", "workers", input_text, "--dry-run", "--json"],
        &root,
    );
    assert_eq!(
        dry.status.code(),
        Some(2),
        "{}",
        String::from_utf8_lossy(&dry.stderr)
    );
    let report: serde_json::Value = serde_json::from_slice(&dry.stdout).unwrap();
    assert_eq!(report["outcome"], "checked");
    assert_eq!(report["problems"][0]["line"], 2);
    assert_eq!(report["problems"][0]["column"], "registered_on");
    assert_eq!(report["problems"][0]["rule"], "type");

    let rejected = osservatorio(&["ingest", "workers", input_text], &root);
    assert_eq!(rejected.status.code(), Some(2));
    let text = String::from_utf8_lossy(&rejected.stdout);
    assert!(
        text.contains("registered_on") && text.contains("nothing committed"),
        "{text}"
    );

    let quarantined = osservatorio(&["ingest", "workers", input_text, "--quarantine"], &root);
    assert_eq!(
        quarantined.status.code(),
        Some(3),
        "{}",
        String::from_utf8_lossy(&quarantined.stderr)
    );
    let rejects = std::fs::read_to_string(dir.path().join("workers_mixed.rejects.csv")).unwrap();
    assert_eq!(rejects.lines().count(), 2, "{rejects}");
    assert!(rejects.contains("registered_on type"), "{rejects}");
    assert!(
        !rejects.contains(WORKERS[0]),
        "personal cells are masked: {rejects}"
    );

    let history = osservatorio(&["history", "workers"], &root);
    let text = String::from_utf8_lossy(&history.stdout);
    assert!(
        text.contains("workers_mixed.csv") && text.contains("1 rows committed, 1 rejected"),
        "{text}"
    );

    // The previous version is still there to query.
    let before = osservatorio(
        &[
            "sql",
            "SELECT count(*) AS n FROM workers",
            "--as-of",
            "workers=0",
            "--format",
            "csv",
        ],
        &root,
    );
    let after = osservatorio(
        &[
            "sql",
            "SELECT count(*) AS n FROM workers",
            "--format",
            "csv",
        ],
        &root,
    );
    assert_eq!(first_count(&after), first_count(&before) + 1);

    let no_key = std::process::Command::new(env!("CARGO_BIN_EXE_osservatorio"))
        .args(["ingest", "workers", input_text, "--data-dir"])
        .arg(&root)
        .env_remove("OSSERVATORIO_PSEUDONYM_KEY")
        .env_remove("OSSERVATORIO_CONFIG")
        .output()
        .unwrap();
    assert_eq!(no_key.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&no_key.stderr).contains("OSSERVATORIO_PSEUDONYM_KEY"));
}

/// A child killed at any moment of an ingest leaves the table readable at
/// its previous version or, if the commit landed, the new one.
#[test]
fn a_killed_ingest_leaves_the_table_whole() {
    let (dir, warehouse) = scratch();
    let root = dir.path().join("warehouse");
    // A larger export, so that the kill can land during the work.
    let big = dir.path().join("big.csv");
    let en = std::fs::read_to_string(fixture("workers_en.csv")).unwrap();
    let mut lines = en.lines();
    let header = lines.next().unwrap().trim_start_matches('\u{feff}');
    let template = "RSSGPP90C15D150H,2023-01-09,true,019036,M,1990,IT,IT,italy,domestic_helper,native,40,false,2,false,20,,employed";
    let mut text = format!("{header}\n");
    for i in 0..20_000u32 {
        // A distinct valid 11-digit numeric code per row (Luhn check digit).
        let body = format!("{:010}", 1_000_000 + i);
        let sum: u32 = body
            .bytes()
            .enumerate()
            .map(|(k, b)| {
                let d = (b - b'0') as u32;
                if k % 2 == 1 {
                    if d * 2 > 9 {
                        d * 2 - 9
                    } else {
                        d * 2
                    }
                } else {
                    d
                }
            })
            .sum();
        let code = format!("{body}{}", (10 - sum % 10) % 10);
        text.push_str(&template.replacen("RSSGPP90C15D150H", &code, 1));
        text.push('\n');
    }
    std::fs::write(&big, text).unwrap();
    let base = version(&warehouse, "workers").unwrap();
    let count = |root: &Path| -> i64 {
        let out = osservatorio(
            &["sql", "SELECT count(*) FROM workers", "--format", "csv"],
            root,
        );
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        first_count(&out)
    };
    let original = count(&root);
    for delay_ms in [50u64, 200, 400, 700, 1000, 1500] {
        let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_osservatorio"))
            .args([
                "ingest",
                "workers",
                big.to_str().unwrap(),
                "--force",
                "--data-dir",
            ])
            .arg(&root)
            .env(
                "OSSERVATORIO_PSEUDONYM_KEY",
                std::str::from_utf8(KEY).unwrap(),
            )
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(std::time::Duration::from_millis(delay_ms));
        let _ = child.kill();
        let _ = child.wait();
        let now = count(&root);
        let reopened = root.clone();
        let version = block_on(async move {
            Warehouse::open(&reopened, dictionary())
                .await
                .unwrap()
                .versions()
                .await
                .unwrap()
        })["workers"]
            .unwrap();
        if version == base {
            assert_eq!(now, original, "killed after {delay_ms} ms");
        } else {
            // The commit landed before the kill: all of it.
            assert_eq!(now, original + 20_000, "killed after {delay_ms} ms");
            return;
        }
    }
}
