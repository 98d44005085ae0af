//! The data dictionary: one `datasets/<name>.toml` per dataset, parsed into
//! typed specs and checked for internal consistency.
//!
//! Owns the mapping from the dictionary's column types to Arrow types and the
//! rules a dictionary file must obey. It must not touch the warehouse: it
//! describes tables, it never reads or writes them.

use std::collections::HashSet;
use std::sync::Arc;

use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use serde::{Deserialize, Serialize};

use super::CatalogError;

/// Name of the partition column every dated dataset carries.
pub const YEAR_COLUMN: &str = "year";

/// The dictionary files, embedded so the binary and the tests never depend on
/// the working directory. Order is the order `osservatorio datasets` lists.
const DICTIONARY_FILES: &[(&str, &str)] = &[
    (
        "territories.toml",
        include_str!("../../datasets/territories.toml"),
    ),
    (
        "projects.toml",
        include_str!("../../datasets/projects.toml"),
    ),
    (
        "project_targets.toml",
        include_str!("../../datasets/project_targets.toml"),
    ),
    (
        "ccnl_pay_scales.toml",
        include_str!("../../datasets/ccnl_pay_scales.toml"),
    ),
    ("desks.toml", include_str!("../../datasets/desks.toml")),
    (
        "households.toml",
        include_str!("../../datasets/households.toml"),
    ),
    ("workers.toml", include_str!("../../datasets/workers.toml")),
    (
        "family_requests.toml",
        include_str!("../../datasets/family_requests.toml"),
    ),
    (
        "desk_contacts.toml",
        include_str!("../../datasets/desk_contacts.toml"),
    ),
    (
        "contracts.toml",
        include_str!("../../datasets/contracts.toml"),
    ),
    (
        "subsidies.toml",
        include_str!("../../datasets/subsidies.toml"),
    ),
    (
        "substitutions.toml",
        include_str!("../../datasets/substitutions.toml"),
    ),
    (
        "trainings.toml",
        include_str!("../../datasets/trainings.toml"),
    ),
    (
        "survey_workers.toml",
        include_str!("../../datasets/survey_workers.toml"),
    ),
    (
        "survey_families.toml",
        include_str!("../../datasets/survey_families.toml"),
    ),
];

/// The committed reference tables, embedded for the same reason.
const REFERENCE_CSVS: &[(&str, &str)] = &[
    (
        "territories.csv",
        include_str!("../../datasets/territories.csv"),
    ),
    ("projects.csv", include_str!("../../datasets/projects.csv")),
    (
        "project_targets.csv",
        include_str!("../../datasets/project_targets.csv"),
    ),
    (
        "ccnl_pay_scales.csv",
        include_str!("../../datasets/ccnl_pay_scales.csv"),
    ),
];

/// Text of a committed reference CSV, by file name.
pub fn reference_csv(file: &str) -> Option<&'static str> {
    REFERENCE_CSVS
        .iter()
        .find(|(name, _)| *name == file)
        .map(|(_, text)| *text)
}

/// What a dataset is for; decides who may write it and how it is partitioned.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DatasetKind {
    /// Small committed tables (territories, projects, targets, pay scales, desks).
    Reference,
    /// Records of services, contracts and people from administrative sources.
    Administrative,
    /// Sample survey microdata with a declared design.
    Survey,
}

/// The column types the dictionary may use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ColumnType {
    Utf8,
    Int32,
    Int64,
    Float64,
    Boolean,
    Date,
}

impl ColumnType {
    /// The Arrow type a column of this kind has in the warehouse.
    pub fn arrow_type(self) -> DataType {
        match self {
            ColumnType::Utf8 => DataType::Utf8,
            ColumnType::Int32 => DataType::Int32,
            ColumnType::Int64 => DataType::Int64,
            ColumnType::Float64 => DataType::Float64,
            ColumnType::Boolean => DataType::Boolean,
            ColumnType::Date => DataType::Date32,
        }
    }
}

/// One column of a dataset, as the dictionary describes it.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ColumnSpec {
    pub name: String,
    #[serde(rename = "type")]
    pub column_type: ColumnType,
    pub nullable: bool,
    pub label_it: String,
    pub label_en: String,
    pub description: String,
    /// True for keyed pseudonyms of people or households.
    #[serde(default)]
    pub pseudonymous: bool,
    /// Allowed codes, for categorical columns.
    #[serde(default)]
    pub codes: Option<Vec<String>>,
    /// Regular expression a text value must match.
    #[serde(default)]
    pub pattern: Option<String>,
    /// Inclusive lower bound for numbers.
    #[serde(default)]
    pub min: Option<f64>,
    /// Inclusive upper bound for numbers.
    #[serde(default)]
    pub max: Option<f64>,
    /// A date column this one may not precede (end ≥ start).
    #[serde(default)]
    pub after: Option<String>,
    /// Foreign key, as `dataset.column`.
    #[serde(default)]
    pub references: Option<String>,
    /// Other header names exports use for this column; the Italian label
    /// counts as one too.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub aliases: Vec<String>,
    /// What an export holds in a pseudonymous column before ingest turns it
    /// into a pseudonym; `codice_fiscale` values must pass its check.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub identifier: Option<IdentifierKind>,
}

/// The kind of personal identifier an export carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum IdentifierKind {
    /// The Italian tax code: 16 characters with a check letter, or the
    /// 11-digit provisional code with a Luhn check digit.
    CodiceFiscale,
}

/// The survey design columns of a survey dataset.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct SurveyDesign {
    pub weight: String,
    pub stratum: String,
    pub psu: String,
}

/// One dataset of the dictionary.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct DatasetSpec {
    pub name: String,
    pub kind: DatasetKind,
    pub label_it: String,
    pub label_en: String,
    pub description: String,
    pub primary_key: Vec<String>,
    /// The date column whose year fills the `year` partition column.
    #[serde(default)]
    pub year_of: Option<String>,
    /// Committed CSV in `datasets/` holding the rows of a reference table.
    #[serde(default)]
    pub source_csv: Option<String>,
    #[serde(default)]
    pub design: Option<SurveyDesign>,
    pub columns: Vec<ColumnSpec>,
}

impl DatasetSpec {
    /// The Arrow schema the dataset has in the warehouse.
    pub fn arrow_schema(&self) -> SchemaRef {
        let fields: Vec<Field> = self
            .columns
            .iter()
            .map(|c| Field::new(&c.name, c.column_type.arrow_type(), c.nullable))
            .collect();
        Arc::new(Schema::new(fields))
    }

    /// Partition columns of the Delta table: `year` for dated datasets.
    pub fn partition_columns(&self) -> Vec<String> {
        match self.year_of {
            Some(_) => vec![YEAR_COLUMN.to_string()],
            None => Vec::new(),
        }
    }

    pub fn column(&self, name: &str) -> Option<&ColumnSpec> {
        self.columns.iter().find(|c| c.name == name)
    }

    /// Every rule that relates a dictionary entry to itself; cross-dataset rules
    /// (foreign keys) are checked by [`Dictionary`].
    fn check(&self, file: &str) -> Result<(), CatalogError> {
        let bad = |reason: String| CatalogError::Dictionary {
            file: file.to_string(),
            reason,
        };
        let mut seen = HashSet::new();
        for column in &self.columns {
            if !seen.insert(column.name.as_str()) {
                return Err(bad(format!("column `{}` is declared twice", column.name)));
            }
            if column.label_it.trim().is_empty() || column.label_en.trim().is_empty() {
                return Err(bad(format!("column `{}` lacks a label", column.name)));
            }
            if let Some(pattern) = &column.pattern {
                regex::Regex::new(pattern)
                    .map_err(|e| bad(format!("column `{}` has a bad pattern: {e}", column.name)))?;
            }
            if let Some(after) = &column.after {
                match self.column(after) {
                    Some(other) if other.column_type == column.column_type => {}
                    _ => {
                        return Err(bad(format!(
                            "column `{}` must come after `{after}`, which is not a column of the same type",
                            column.name
                        )))
                    }
                }
            }
        }
        for key in &self.primary_key {
            if self.column(key).is_none() {
                return Err(bad(format!("primary key column `{key}` is not declared")));
            }
        }
        if let Some(date) = &self.year_of {
            match self.column(date) {
                Some(c) if c.column_type == ColumnType::Date && !c.nullable => {}
                _ => {
                    return Err(bad(format!(
                        "`year_of = {date}` must name a non-null date column"
                    )))
                }
            }
            match self.column(YEAR_COLUMN) {
                Some(c) if c.column_type == ColumnType::Int32 && !c.nullable => {}
                _ => {
                    return Err(bad(
                        "a dated dataset needs a non-null int32 `year` column".into()
                    ))
                }
            }
        }
        match (self.kind, &self.design) {
            (DatasetKind::Survey, None) => {
                return Err(bad("a survey dataset must declare its [design]".into()))
            }
            (DatasetKind::Survey, Some(design)) => {
                for column in [&design.weight, &design.stratum, &design.psu] {
                    if self.column(column).is_none() {
                        return Err(bad(format!("design column `{column}` is not declared")));
                    }
                }
            }
            (_, Some(_)) => return Err(bad("only survey datasets have a [design]".into())),
            _ => {}
        }
        Ok(())
    }
}

/// The whole dictionary, in a fixed order.
#[derive(Debug, Clone)]
pub struct Dictionary {
    datasets: Vec<DatasetSpec>,
}

impl Dictionary {
    /// Parses and checks the embedded dictionary.
    pub fn load() -> Result<Self, CatalogError> {
        Self::from_sources(
            DICTIONARY_FILES
                .iter()
                .map(|(f, t)| (f.to_string(), t.to_string())),
        )
    }

    /// Parses and checks dictionary files given as (file name, text).
    pub fn from_sources(
        files: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Self, CatalogError> {
        let mut datasets = Vec::new();
        for (file, text) in files {
            let spec: DatasetSpec =
                toml::from_str(&text).map_err(|e| CatalogError::Dictionary {
                    file: file.clone(),
                    reason: e.to_string(),
                })?;
            if format!("{}.toml", spec.name) != file {
                return Err(CatalogError::Dictionary {
                    file,
                    reason: format!("declares dataset `{}`; the file name must match", spec.name),
                });
            }
            spec.check(&file)?;
            datasets.push(spec);
        }
        let dictionary = Dictionary { datasets };
        dictionary.check_references()?;
        Ok(dictionary)
    }

    fn check_references(&self) -> Result<(), CatalogError> {
        for spec in &self.datasets {
            for column in &spec.columns {
                let Some(target) = &column.references else {
                    continue;
                };
                let resolved = target
                    .split_once('.')
                    .and_then(|(d, c)| self.get(d).and_then(|d| d.column(c)));
                if resolved.is_none() {
                    return Err(CatalogError::Dictionary {
                        file: format!("{}.toml", spec.name),
                        reason: format!(
                            "column `{}` references `{target}`, which is not in the dictionary",
                            column.name
                        ),
                    });
                }
            }
        }
        Ok(())
    }

    pub fn datasets(&self) -> &[DatasetSpec] {
        &self.datasets
    }

    pub fn get(&self, name: &str) -> Option<&DatasetSpec> {
        self.datasets.iter().find(|d| d.name == name)
    }

    /// Looks a dataset up, or says which names exist.
    pub fn require(&self, name: &str) -> Result<&DatasetSpec, CatalogError> {
        self.get(name).ok_or_else(|| CatalogError::UnknownDataset {
            name: name.to_string(),
            known: self.names().join(", "),
        })
    }

    pub fn names(&self) -> Vec<&str> {
        self.datasets.iter().map(|d| d.name.as_str()).collect()
    }
}
