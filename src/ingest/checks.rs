//! Checks across rows: keys repeated in the files, references that resolve
//! nowhere and keys the table already has (as joins of the incoming rows
//! against the warehouse), and files already ingested.
//!
//! Owns those rules; it reports problems and must not drop rows itself.

use std::collections::BTreeSet;
use std::hash::BuildHasher;

use arrow::array::{Array, ArrayRef, RecordBatch, StringArray, UInt32Array, UInt64Array};
use arrow::row::{RowConverter, Rows, SortField};
use hashbrown::hash_table::Entry as TableEntry;
use hashbrown::HashTable;

use super::report::{self, Problem, Rule};
use super::rows::{text_at, tracking, FILE_COLUMN, LINE_COLUMN};
use super::{read, IngestError, IngestMode, INCOMING};
use crate::catalog::{DatasetSpec, Warehouse, YEAR_COLUMN};
use crate::query::QueryEngine;

/// Keys repeated among the incoming rows: every row but the earliest (by
/// file and line) of each key, reported against that earliest one.
pub(super) fn duplicate_keys_in_batch(
    spec: &DatasetSpec,
    batches: &[RecordBatch],
    files: &[String],
) -> Result<Vec<Problem>, IngestError> {
    let key_columns = |batch: &RecordBatch| -> Vec<ArrayRef> {
        spec.primary_key
            .iter()
            .filter_map(|k| batch.column_by_name(k).cloned())
            .collect()
    };
    let Some(first) = batches.first() else {
        return Ok(Vec::new());
    };
    let fields: Vec<SortField> = key_columns(first)
        .iter()
        .map(|c| SortField::new(c.data_type().clone()))
        .collect();
    if fields.is_empty() {
        return Ok(Vec::new());
    }
    let keys = KeyBytes::of(batches, &key_columns, fields)?;
    let positions: Vec<_> = batches.iter().map(tracking).collect();
    let position = |(part, row): (usize, usize)| {
        let (file_ids, lines) = positions[part];
        (file_ids.value(row), lines.value(row))
    };
    let rows: usize = batches.iter().map(RecordBatch::num_rows).sum();
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    // Every key is hashed once, the parts shared among the cores, with
    // hashbrown's hasher (DataFusion's too): several times faster than the
    // standard one on short keys.
    let hasher = hashbrown::DefaultHashBuilder::default();
    let hashes: Vec<Vec<u64>> = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..threads)
            .map(|share| {
                let (keys, hasher) = (&keys, &hasher);
                scope.spawn(move || {
                    (share..batches.len())
                        .step_by(threads)
                        .map(|part| {
                            let hashes: Vec<u64> = (0..keys.rows(part))
                                .map(|row| hasher.hash_one(keys.key(part, row)))
                                .collect();
                            (part, hashes)
                        })
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        let mut hashes = vec![Vec::new(); batches.len()];
        for worker in workers {
            for (part, part_hashes) in worker.join().expect("a key-hashing thread panicked") {
                hashes[part] = part_hashes;
            }
        }
        hashes
    });
    // Each core then keeps the keys whose hash falls to it, so a key and
    // its repeats always meet in the same table. The share is read from
    // bits the table does not place by, and a slot holds only where the
    // row is: with a quarter of the memory of a map from keys, the tables
    // stay closer to the cache.
    let share_of = |hash: u64| (hash >> 32) as usize % threads;
    // A batch's rows and the number of batches fit in 32 bits each: a
    // batch of 2^32 rows would not fit in memory.
    let pack = |(part, row): (usize, usize)| {
        debug_assert!(part <= u32::MAX as usize && row <= u32::MAX as usize);
        ((part as u64) << 32) | row as u64
    };
    let unpack = |at: u64| ((at >> 32) as usize, (at & u64::from(u32::MAX)) as usize);
    let key_at = |at: u64| {
        let (part, row) = unpack(at);
        keys.key(part, row)
    };
    let repeats: Vec<((usize, usize), (usize, usize))> = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..threads)
            .map(|share| {
                let (keys, hashes, hasher) = (&keys, &hashes, &hasher);
                let (position, key_at) = (&position, &key_at);
                scope.spawn(move || {
                    // Room for a share a little above the even one, so
                    // that an uneven share does not grow the table midway.
                    let mut earliest: HashTable<u64> =
                        HashTable::with_capacity(rows / threads + rows / 64 + 16);
                    let mut repeats = Vec::new();
                    for (part, part_hashes) in hashes.iter().enumerate() {
                        for (row, &hash) in part_hashes.iter().enumerate() {
                            if share_of(hash) != share {
                                continue;
                            }
                            let key = keys.key(part, row);
                            match earliest.entry(
                                hash,
                                |&seen| key_at(seen) == key,
                                |&seen| hasher.hash_one(key_at(seen)),
                            ) {
                                TableEntry::Vacant(slot) => {
                                    slot.insert(pack((part, row)));
                                }
                                TableEntry::Occupied(mut seen) => {
                                    // Rows come by year, not by line: the
                                    // earliest line is the one kept.
                                    let kept = unpack(*seen.get());
                                    if position((part, row)) < position(kept) {
                                        *seen.get_mut() = pack((part, row));
                                        repeats.push(kept);
                                    } else {
                                        repeats.push((part, row));
                                    }
                                }
                            }
                        }
                    }
                    repeats
                        .into_iter()
                        .map(|(part, row)| {
                            let key = keys.key(part, row);
                            let kept = earliest
                                .find(hashes[part][row], |&seen| key_at(seen) == key)
                                .expect("a repeated key was kept");
                            ((part, row), unpack(*kept))
                        })
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        workers
            .into_iter()
            .flat_map(|w| w.join().expect("a key-checking thread panicked"))
            .collect()
    });
    let mut problems = Vec::with_capacity(repeats.len());
    for ((part, row), earlier) in repeats {
        let batch = &batches[part];
        let (file, line) = position((part, row));
        let (earlier_file, earlier_line) = position(earlier);
        let shown: Vec<String> = key_columns(batch).iter().map(|c| text_at(c, row)).collect();
        problems.push(Problem {
            file: files[file as usize].clone(),
            line,
            column: Some(spec.primary_key.join(", ")),
            value: Some(shown.join(", ")),
            rule: Rule::DuplicateKey,
            message: format!(
                "the same key as {}:{}",
                files[earlier_file as usize], earlier_line
            ),
        });
    }
    Ok(problems)
}

/// The key of every incoming row as bytes that are equal exactly when the
/// keys are: the text itself for a key of one text column with no missing
/// value (the usual pseudonym), else arrow's row format.
enum KeyBytes {
    Text(Vec<StringArray>),
    Rows(Vec<Rows>),
}

impl KeyBytes {
    fn of(
        batches: &[RecordBatch],
        key_columns: &dyn Fn(&RecordBatch) -> Vec<ArrayRef>,
        fields: Vec<SortField>,
    ) -> Result<Self, IngestError> {
        let texts: Option<Vec<StringArray>> = batches
            .iter()
            .map(|b| match key_columns(b).as_slice() {
                [column] if column.null_count() == 0 => {
                    column.as_any().downcast_ref::<StringArray>().cloned()
                }
                _ => None,
            })
            .collect();
        if let Some(texts) = texts {
            return Ok(Self::Text(texts));
        }
        let converter = RowConverter::new(fields)?;
        Ok(Self::Rows(
            batches
                .iter()
                .map(|b| converter.convert_columns(&key_columns(b)))
                .collect::<Result<_, _>>()?,
        ))
    }

    fn rows(&self, part: usize) -> usize {
        match self {
            Self::Text(texts) => texts[part].len(),
            Self::Rows(rows) => rows[part].num_rows(),
        }
    }

    fn key(&self, part: usize, row: usize) -> &[u8] {
        match self {
            Self::Text(texts) => texts[part].value(row).as_bytes(),
            Self::Rows(rows) => rows[part].row(row).data(),
        }
    }
}

fn quoted(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// References that resolve nowhere and keys the table already has.
pub(super) async fn warehouse_checks(
    spec: &DatasetSpec,
    mode: IngestMode,
    years: &BTreeSet<i32>,
    engine: &QueryEngine,
    files: &[String],
) -> Result<Vec<Problem>, IngestError> {
    let ctx = engine.context();
    let mut problems = Vec::new();
    let mut collect =
        |batches: Vec<RecordBatch>, column: &str, rule: Rule, message: &dyn Fn(&str) -> String| {
            for batch in batches {
                let file_ids = batch
                    .column(0)
                    .as_any()
                    .downcast_ref::<UInt32Array>()
                    .unwrap()
                    .clone();
                let lines = batch
                    .column(1)
                    .as_any()
                    .downcast_ref::<UInt64Array>()
                    .unwrap()
                    .clone();
                for row in 0..batch.num_rows() {
                    let value = text_at(batch.column(2), row);
                    problems.push(Problem {
                        file: files[file_ids.value(row) as usize].clone(),
                        line: lines.value(row),
                        column: Some(column.to_string()),
                        message: message(&value),
                        value: Some(value),
                        rule,
                    });
                }
            }
        };
    // Each check: its query, the column reported, the rule and the message.
    type Check = (String, String, Rule, Box<dyn Fn(&str) -> String>);
    let mut checks: Vec<Check> = Vec::new();
    for column in &spec.columns {
        let Some(reference) = &column.references else {
            continue;
        };
        let Some((table, key)) = reference.split_once('.') else {
            continue;
        };
        let c = quoted(&column.name);
        let mut sql = format!(
            "SELECT {FILE_COLUMN}, {LINE_COLUMN}, i.{c} FROM {INCOMING} i WHERE i.{c} IS NOT NULL \
             AND NOT EXISTS (SELECT 1 FROM {} r WHERE r.{} = i.{c})",
            quoted(table),
            quoted(key)
        );
        if table == spec.name {
            sql.push_str(&format!(
                " AND NOT EXISTS (SELECT 1 FROM {INCOMING} j WHERE j.{} = i.{c})",
                quoted(key)
            ));
        }
        let (rule, message): (Rule, Box<dyn Fn(&str) -> String>) = if table == "territories" {
            (
                Rule::UnknownMunicipality,
                Box::new(|_: &str| "no municipality has this ISTAT code".to_string()),
            )
        } else {
            let reference = reference.clone();
            (
                Rule::ForeignKey,
                Box::new(move |_: &str| format!("not found in {reference}")),
            )
        };
        checks.push((sql, column.name.clone(), rule, message));
    }
    if !spec.primary_key.is_empty() {
        let join: Vec<String> = spec
            .primary_key
            .iter()
            .map(|k| format!("t.{0} = i.{0}", quoted(k)))
            .collect();
        let key_text = spec
            .primary_key
            .iter()
            .map(|k| format!("CAST(i.{} AS VARCHAR)", quoted(k)))
            .collect::<Vec<_>>()
            .join(" || ', ' || ");
        let mut condition = join.join(" AND ");
        if mode == IngestMode::ReplaceYear && !years.is_empty() && spec.year_of.is_some() {
            let list: Vec<String> = years.iter().map(i32::to_string).collect();
            condition.push_str(&format!(
                " AND t.{YEAR_COLUMN} NOT IN ({})",
                list.join(", ")
            ));
        }
        let sql = format!(
            "SELECT {FILE_COLUMN}, {LINE_COLUMN}, {key_text} FROM {INCOMING} i \
             WHERE EXISTS (SELECT 1 FROM {} t WHERE {condition})",
            quoted(&spec.name)
        );
        let name = spec.name.clone();
        checks.push((
            sql,
            spec.primary_key.join(", "),
            Rule::DuplicateKey,
            Box::new(move |_: &str| format!("the key is already in {name}")),
        ));
    }
    // The queries run side by side: each leaves cores idle while it plans
    // and builds its join, which the others fill.
    let found = futures::future::try_join_all(
        checks
            .iter()
            .map(|(sql, ..)| async move { ctx.sql(sql).await?.collect().await }),
    )
    .await?;
    for (batches, (_, column, rule, message)) in found.into_iter().zip(&checks) {
        collect(batches, column, *rule, &**message);
    }
    Ok(problems)
}

/// Refuses input whose exact content an earlier commit already ingested.
pub(super) async fn refuse_repeats(
    warehouse: &Warehouse,
    dataset: &str,
    raws: &[read::RawFile],
) -> Result<(), IngestError> {
    let history = warehouse.history(dataset).await?;
    for raw in raws {
        for commit in &history {
            let seen = commit
                .metadata
                .get("files")
                .and_then(|f| f.as_array())
                .is_some_and(|files| files.iter().any(|f| f["sha256"] == raw.sha256()));
            if seen {
                return Err(IngestError::AlreadyIngested {
                    file: report::file_name(&raw.path),
                    sha256: raw.sha256().to_string(),
                    dataset: dataset.to_string(),
                    version: commit.version,
                });
            }
        }
    }
    Ok(())
}
