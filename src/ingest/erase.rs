//! The right to erasure: every row naming a person, by pseudonym, removed
//! from every dataset in recorded commits.
//!
//! Owns finding and deleting those rows. It must not write except through
//! `catalog::Warehouse`.

use chrono::Utc;
use datafusion::prelude::{col, lit, Expr};
use serde_json::json;

use super::IngestError;
use crate::catalog::Warehouse;
use crate::query::{QueryEngine, QueryLimits};

/// What `osservatorio erase` did in one dataset.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Erasure {
    pub dataset: String,
    pub version: u64,
    pub rows: usize,
}

/// Removes every row that names `pseudonym` in a personal column, one
/// recorded commit per dataset that had such rows.
pub async fn erase(warehouse: &Warehouse, pseudonym: &str) -> Result<Vec<Erasure>, IngestError> {
    let engine = QueryEngine::open(warehouse, QueryLimits::default()).await?;
    let mut done = Vec::new();
    for spec in warehouse.dictionary().datasets() {
        let personal: Vec<&str> = spec
            .columns
            .iter()
            .filter(|c| c.pseudonymous)
            .map(|c| c.name.as_str())
            .collect();
        if personal.is_empty() {
            continue;
        }
        let predicate: Expr = personal
            .iter()
            .map(|c| col(*c).eq(lit(pseudonym)))
            .reduce(Expr::or)
            .expect("at least one column");
        let count = engine
            .context()
            .table(spec.name.as_str())
            .await?
            .filter(predicate.clone())?
            .count()
            .await?;
        if count == 0 {
            continue;
        }
        let mut metadata = serde_json::Map::new();
        metadata.insert("operation".into(), json!("erase"));
        metadata.insert("person".into(), json!(pseudonym));
        metadata.insert("rows_deleted".into(), json!(count));
        metadata.insert("at".into(), json!(Utc::now().to_rfc3339()));
        if let Some((version, _)) = warehouse
            .delete_recorded(&spec.name, predicate, metadata)
            .await?
        {
            done.push(Erasure {
                dataset: spec.name.clone(),
                version,
                rows: count,
            });
        }
    }
    Ok(done)
}
