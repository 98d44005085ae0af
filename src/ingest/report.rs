//! The ingest report: every problem with its file, line, column, value
//! (masked when personal) and the rule broken, and what was committed.
//!
//! Owns the report's shape and its text and JSON forms. It must not hold a
//! raw personal identifier: values of personal columns arrive masked or as
//! pseudonyms.

use std::io::Write;
use std::path::Path;

use serde::Serialize;

/// The rules a row or a file can break.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Rule {
    /// A row has more or fewer fields than the header.
    FieldCount,
    /// A field is longer than any column allows.
    FieldTooLong,
    /// A header names no column of the dataset.
    UnknownColumn,
    /// A required column is not in the header.
    MissingColumn,
    /// Two headers name the same column.
    DuplicateColumn,
    /// The file has a header and no rows.
    NoRows,
    /// A required value is empty.
    Required,
    /// The text is not a value of the column's type.
    Type,
    /// The value is not one of the allowed codes.
    Code,
    /// The text does not match the column's pattern.
    Pattern,
    /// The number is outside the allowed range.
    Range,
    /// The date is before 1900 or more than a year ahead.
    ImplausibleDate,
    /// An end date comes before its start.
    DateOrder,
    /// The codice fiscale is malformed or its check character is wrong.
    CodiceFiscale,
    /// The ISTAT municipality code is not in `territories`.
    UnknownMunicipality,
    /// A reference to another dataset resolves nowhere.
    ForeignKey,
    /// The key is already used, in the file or in the warehouse.
    DuplicateKey,
}

impl Rule {
    pub fn slug(self) -> &'static str {
        match self {
            Rule::FieldCount => "field_count",
            Rule::FieldTooLong => "field_too_long",
            Rule::UnknownColumn => "unknown_column",
            Rule::MissingColumn => "missing_column",
            Rule::DuplicateColumn => "duplicate_column",
            Rule::NoRows => "no_rows",
            Rule::Required => "required",
            Rule::Type => "type",
            Rule::Code => "code",
            Rule::Pattern => "pattern",
            Rule::Range => "range",
            Rule::ImplausibleDate => "implausible_date",
            Rule::DateOrder => "date_order",
            Rule::CodiceFiscale => "codice_fiscale",
            Rule::UnknownMunicipality => "unknown_municipality",
            Rule::ForeignKey => "foreign_key",
            Rule::DuplicateKey => "duplicate_key",
        }
    }
}

/// One problem found.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Problem {
    /// The input file's name.
    pub file: String,
    /// 1-based line of the file (the header is line 1).
    pub line: u64,
    /// The dataset column, or the header as written for header problems.
    pub column: Option<String>,
    /// The value, masked or pseudonymised when personal.
    pub value: Option<String>,
    pub rule: Rule,
    pub message: String,
}

impl Problem {
    pub fn file_level(path: &Path, line: u64, rule: Rule, message: String) -> Self {
        Self {
            file: file_name(path),
            line,
            column: None,
            value: None,
            rule,
            message,
        }
    }
}

pub(super) fn file_name(path: &Path) -> String {
    path.file_name().map_or_else(
        || path.display().to_string(),
        |n| n.to_string_lossy().into_owned(),
    )
}

/// One input file as ingested.
#[derive(Debug, Clone, Serialize)]
pub struct FileSummary {
    pub file: String,
    pub sha256: String,
    pub bytes: u64,
    pub format: String,
    pub rows: usize,
}

/// What happened.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum Outcome {
    /// Every row was valid and is committed.
    Committed { version: u64 },
    /// Some rows were invalid; nothing was committed.
    Rejected,
    /// The valid rows are committed; the others are in the rejects file.
    Quarantined { version: u64, rejects: String },
    /// A dry run: nothing was to be committed.
    Checked { valid: bool },
}

impl Outcome {
    /// The process exit code: 0 committed or a clean check, 2 rejected or a
    /// failed check, 3 committed with rows quarantined. (1 is an error that
    /// stopped the ingest before any row was judged.)
    pub fn exit_code(&self) -> u8 {
        match self {
            Outcome::Committed { .. } | Outcome::Checked { valid: true } => 0,
            Outcome::Rejected | Outcome::Checked { valid: false } => 2,
            Outcome::Quarantined { .. } => 3,
        }
    }
}

/// The report of one ingest.
#[derive(Debug, Clone, Serialize)]
pub struct IngestReport {
    pub dataset: String,
    pub files: Vec<FileSummary>,
    pub rows_read: usize,
    pub rows_valid: usize,
    pub rows_rejected: usize,
    #[serde(flatten)]
    pub outcome: Outcome,
    pub problems: Vec<Problem>,
    /// Remarks that are not problems, e.g. a dropped column of names.
    pub notes: Vec<String>,
}

impl IngestReport {
    /// The report for people: a summary, then one line per problem.
    pub fn write_text(&self, mut out: impl Write) -> std::io::Result<()> {
        let files: Vec<String> = self
            .files
            .iter()
            .map(|f| format!("{} ({}, {} rows)", f.file, f.format, f.rows))
            .collect();
        writeln!(out, "{}: {}", self.dataset, files.join("; "))?;
        for note in &self.notes {
            writeln!(out, "note: {note}")?;
        }
        if !self.problems.is_empty() {
            let width = |f: &dyn Fn(&Problem) -> usize, title: &str| {
                self.problems
                    .iter()
                    .map(f)
                    .max()
                    .unwrap_or(0)
                    .max(title.len())
            };
            let file_w = width(&|p| p.file.len(), "file");
            let column_w = width(&|p| p.column.as_deref().unwrap_or("").len(), "column");
            let value_w = width(
                &|p| p.value.as_deref().unwrap_or("").chars().count().min(30),
                "value",
            );
            let rule_w = width(&|p| p.rule.slug().len(), "rule");
            writeln!(
                out,
                "{:<file_w$}  {:>6}  {:<column_w$}  {:<value_w$}  {:<rule_w$}  problem",
                "file", "line", "column", "value", "rule"
            )?;
            for p in &self.problems {
                let value: String = p.value.as_deref().unwrap_or("").chars().take(30).collect();
                writeln!(
                    out,
                    "{:<file_w$}  {:>6}  {:<column_w$}  {:<value_w$}  {:<rule_w$}  {}",
                    p.file,
                    p.line,
                    p.column.as_deref().unwrap_or(""),
                    value,
                    p.rule.slug(),
                    p.message
                )?;
            }
        }
        let verdict = match &self.outcome {
            Outcome::Committed { version } => format!(
                "committed {} rows as version {version} of {}",
                self.rows_valid, self.dataset
            ),
            Outcome::Rejected => format!(
                "nothing committed: {} of {} rows have problems (use --quarantine to commit the valid rows)",
                self.rows_rejected, self.rows_read
            ),
            Outcome::Quarantined { version, rejects } => format!(
                "committed {} rows as version {version} of {}; {} rejected rows are in {rejects}",
                self.rows_valid, self.dataset, self.rows_rejected
            ),
            Outcome::Checked { valid: true } => {
                format!("dry run: all {} rows are valid; nothing committed", self.rows_read)
            }
            Outcome::Checked { valid: false } => format!(
                "dry run: {} of {} rows have problems; nothing committed",
                self.rows_rejected, self.rows_read
            ),
        };
        writeln!(out, "{verdict}")
    }
}
