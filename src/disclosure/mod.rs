//! Statistical disclosure control for published tables of counts: the threshold rule, secondary
//! suppression over the table's additive margins, an exact audit of what an attacker can
//! recompute from what is left, and the Eurostat/SDMX flags for the cells held back.
//!
//! Owns the suppression rules and the flags. It must not run queries or know about Arrow, HTTP
//! or any other transport: callers turn a result into a [`CountTable`], call [`protect`] and
//! blank the cells the returned [`Protection`] marks.

mod audit;
mod secondary;
#[cfg(test)]
mod tests;

use std::collections::HashMap;
use std::fmt;

pub use audit::{attack, recoverable_cells};
pub use secondary::protect;

/// The SDMX code for "all categories" of a dimension: a cell with this coordinate is a margin.
pub const TOTAL: &str = "_T";

/// The lowest threshold the Italian rules allow: Sistan's rules of conduct for statistics in
/// the public interest forbid publishing frequencies below 3.
pub const LEGAL_MIN_THRESHOLD: i64 = 3;

/// A table of counts as it is about to be published.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CountTable {
    /// The names of the dimensions, in the order of every cell's coordinates.
    pub dimensions: Vec<String>,
    pub cells: Vec<Cell>,
}

/// One published number and where it sits in the table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cell {
    /// One category code per dimension; [`TOTAL`] stands for all the categories of that
    /// dimension.
    pub coordinates: Vec<String>,
    /// An unweighted count of units (people, households, contracts).
    pub count: i64,
}

/// The threshold rule.
///
/// The threshold applies to unweighted counts of units: a weighted estimate built on two
/// respondents discloses them however large it looks, so callers must test the sample count
/// behind an estimate, not the estimate. The legal floor is [`LEGAL_MIN_THRESHOLD`]; the default
/// is 5 because data on domestic workers, their employers and the people they care for touch
/// health, migration status and irregular work.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rule {
    /// Counts in `1..threshold` are withheld.
    pub threshold: i64,
    /// Also withhold empty cells, when an empty cell would itself tell something about a person
    /// (e.g. "no one in this municipality is not a citizen" beside a published total). The table
    /// must then list its empty combinations: a row `GROUP BY` left out reads as a zero.
    pub protect_zeros: bool,
}

impl Default for Rule {
    fn default() -> Self {
        Self {
            threshold: 5,
            protect_zeros: false,
        }
    }
}

impl Rule {
    /// Whether a count must be withheld on its own account (primary suppression).
    pub fn is_primary_unsafe(&self, count: i64) -> bool {
        (count > 0 && count < self.threshold) || (count == 0 && self.protect_zeros)
    }

    fn check(&self) -> Result<(), DisclosureError> {
        if self.threshold < LEGAL_MIN_THRESHOLD {
            return Err(DisclosureError::ThresholdBelowLegalFloor {
                threshold: self.threshold,
            });
        }
        Ok(())
    }
}

/// The flags published beside an observation, after Eurostat's dissemination conventions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Flag {
    /// The value is withheld for confidentiality (primary or secondary alike: telling the two
    /// apart would point at the small cells).
    Confidential,
    /// The value is published but rests on too few units to be relied upon.
    LowReliability,
    /// The value may still be revised.
    Provisional,
}

impl Flag {
    /// The one-letter flag Eurostat prints beside a value.
    pub fn eurostat_code(&self) -> char {
        match self {
            Flag::Confidential => 'c',
            Flag::LowReliability => 'u',
            Flag::Provisional => 'p',
        }
    }

    /// The code of the SDMX `OBS_STATUS` attribute (code list `CL_OBS_STATUS`): `Q` "missing
    /// value; suppressed", `U` "low reliability", `P` "provisional".
    pub fn sdmx_obs_status(&self) -> &'static str {
        match self {
            Flag::Confidential => "Q",
            Flag::LowReliability => "U",
            Flag::Provisional => "P",
        }
    }
}

/// What happens to one cell.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Suppression {
    /// Shown as it is.
    Published,
    /// Withheld because the count itself breaks the rule.
    Primary,
    /// Withheld, though safe itself, so that the margins do not give a primary cell away.
    Secondary,
}

impl Suppression {
    pub fn is_suppressed(self) -> bool {
        self != Suppression::Published
    }

    /// The code of the SDMX `CONF_STATUS` attribute (code list `CL_CONF_STATUS`), for exchanges
    /// with partners who keep the two kinds apart: `F` free, `C` primary confidentiality, `D`
    /// secondary confidentiality set by the sender. Public releases should use [`Flag`] instead.
    pub fn sdmx_conf_status(self) -> &'static str {
        match self {
            Suppression::Published => "F",
            Suppression::Primary => "C",
            Suppression::Secondary => "D",
        }
    }
}

/// The outcome of [`protect`]: one decision per cell, in the order of the table's cells.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Protection {
    pub suppressed: Vec<Suppression>,
}

impl Protection {
    pub fn is_suppressed(&self, cell: usize) -> bool {
        self.suppressed[cell].is_suppressed()
    }

    /// The flag to publish beside the cell, if any.
    pub fn flag(&self, cell: usize) -> Option<Flag> {
        self.is_suppressed(cell).then_some(Flag::Confidential)
    }

    /// One `true` per withheld cell, the form [`recoverable_cells`] and [`attack`] take.
    pub fn mask(&self) -> Vec<bool> {
        self.suppressed.iter().map(|s| s.is_suppressed()).collect()
    }

    pub fn published_count(&self) -> usize {
        self.count_of(Suppression::Published)
    }

    pub fn primary_count(&self) -> usize {
        self.count_of(Suppression::Primary)
    }

    pub fn secondary_count(&self) -> usize {
        self.count_of(Suppression::Secondary)
    }

    pub fn suppressed_count(&self) -> usize {
        self.suppressed.len() - self.published_count()
    }

    fn count_of(&self, kind: Suppression) -> usize {
        self.suppressed.iter().filter(|&&s| s == kind).count()
    }
}

/// Everything that can stop a table from being protected.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DisclosureError {
    /// A cell has more or fewer coordinates than the table has dimensions.
    CoordinateCount {
        cell: usize,
        expected: usize,
        found: usize,
    },
    /// Two cells sit at the same coordinates, so neither can be trusted.
    DuplicateCoordinates {
        first: usize,
        second: usize,
        coordinates: Vec<String>,
    },
    /// A count below zero: the table is not a table of counts.
    NegativeCount { cell: usize, count: i64 },
    /// A margin differs from the sum of its members. Secondary suppression relies on margins
    /// adding up, so a table whose categories are incomplete cannot be protected by it.
    NonAdditiveMargin {
        margin: usize,
        dimension: String,
        margin_count: i64,
        members_sum: i64,
    },
    /// The rule's threshold is below what the law allows.
    ThresholdBelowLegalFloor { threshold: i64 },
    /// Exact elimination outgrew 128-bit integers; never seen on tables of counts, but the
    /// audit refuses to guess rather than publish unchecked.
    AuditOverflow,
    /// These withheld cells stay recoverable with every related cell withheld. Only cells that
    /// the margins force to zero can end here.
    Unprotectable { cells: Vec<usize> },
}

impl fmt::Display for DisclosureError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DisclosureError::CoordinateCount {
                cell,
                expected,
                found,
            } => write!(
                f,
                "cell {cell} has {found} coordinates but the table has {expected} dimensions"
            ),
            DisclosureError::DuplicateCoordinates {
                first,
                second,
                coordinates,
            } => write!(
                f,
                "cells {first} and {second} share the coordinates ({})",
                coordinates.join(", ")
            ),
            DisclosureError::NegativeCount { cell, count } => {
                write!(f, "cell {cell} has the negative count {count}")
            }
            DisclosureError::NonAdditiveMargin {
                margin,
                dimension,
                margin_count,
                members_sum,
            } => write!(
                f,
                "the margin in cell {margin} over dimension {dimension} is {margin_count} \
                 but its members add up to {members_sum}"
            ),
            DisclosureError::ThresholdBelowLegalFloor { threshold } => write!(
                f,
                "threshold {threshold} is below the legal minimum of {LEGAL_MIN_THRESHOLD}"
            ),
            DisclosureError::AuditOverflow => {
                write!(
                    f,
                    "the disclosure audit overflowed 128-bit integer arithmetic"
                )
            }
            DisclosureError::Unprotectable { cells } => {
                write!(
                    f,
                    "cells {cells:?} stay recoverable whatever else is withheld"
                )
            }
        }
    }
}

impl std::error::Error for DisclosureError {}

/// One additive relation the table publishes: `margin = sum of members`.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Relation {
    /// The dimension summed over.
    dimension: usize,
    margin: usize,
    members: Vec<usize>,
}

impl Relation {
    fn cells(&self) -> impl Iterator<Item = usize> + '_ {
        std::iter::once(self.margin).chain(self.members.iter().copied())
    }
}

impl CountTable {
    /// Checks the table's shape, its counts and that every margin equals the sum of its members.
    pub fn validate(&self) -> Result<(), DisclosureError> {
        self.checked_relations().map(|_| ())
    }

    fn checked_relations(&self) -> Result<Vec<Relation>, DisclosureError> {
        let expected = self.dimensions.len();
        let mut seen: HashMap<&[String], usize> = HashMap::with_capacity(self.cells.len());
        for (index, cell) in self.cells.iter().enumerate() {
            if cell.coordinates.len() != expected {
                return Err(DisclosureError::CoordinateCount {
                    cell: index,
                    expected,
                    found: cell.coordinates.len(),
                });
            }
            if cell.count < 0 {
                return Err(DisclosureError::NegativeCount {
                    cell: index,
                    count: cell.count,
                });
            }
            if let Some(&first) = seen.get(cell.coordinates.as_slice()) {
                return Err(DisclosureError::DuplicateCoordinates {
                    first,
                    second: index,
                    coordinates: cell.coordinates.clone(),
                });
            }
            seen.insert(&cell.coordinates, index);
        }
        let relations = relations(self);
        for relation in &relations {
            let margin_count = self.cells[relation.margin].count;
            // Saturating: a sum past i64 cannot match any margin anyway.
            let members_sum = relation
                .members
                .iter()
                .fold(0i64, |sum, &m| sum.saturating_add(self.cells[m].count));
            if margin_count != members_sum {
                return Err(DisclosureError::NonAdditiveMargin {
                    margin: relation.margin,
                    dimension: self.dimensions[relation.dimension].clone(),
                    margin_count,
                    members_sum,
                });
            }
        }
        Ok(relations)
    }
}

/// The relations the table publishes, in a deterministic order. Cells of the wrong length are
/// left out and the first of duplicate cells wins, so that the audit can run on any table;
/// [`CountTable::validate`] is what rejects such tables.
fn relations(table: &CountTable) -> Vec<Relation> {
    let width = table.dimensions.len();
    let mut relations = Vec::new();
    for dimension in 0..width {
        let mut group_of: HashMap<Vec<Option<&str>>, usize> = HashMap::new();
        let mut groups: Vec<(Option<usize>, Vec<usize>)> = Vec::new();
        for (index, cell) in table.cells.iter().enumerate() {
            if cell.coordinates.len() != width {
                continue;
            }
            let key: Vec<Option<&str>> = cell
                .coordinates
                .iter()
                .enumerate()
                .map(|(d, code)| (d != dimension).then_some(code.as_str()))
                .collect();
            let group = *group_of.entry(key).or_insert_with(|| {
                groups.push((None, Vec::new()));
                groups.len() - 1
            });
            let (margin, members) = &mut groups[group];
            if cell.coordinates[dimension] == TOTAL {
                margin.get_or_insert(index);
            } else {
                members.push(index);
            }
        }
        relations.extend(groups.into_iter().filter_map(|(margin, members)| {
            let margin = margin?;
            (!members.is_empty()).then_some(Relation {
                dimension,
                margin,
                members,
            })
        }));
    }
    relations
}
