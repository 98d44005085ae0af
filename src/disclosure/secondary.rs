//! Primary and secondary suppression.
//!
//! Withholding the small cells is not enough once margins are published: a margin minus the
//! other members gives a lone withheld member back. The classic remedy, at least two withheld
//! cells in every relation, is applied first because it is cheap and settles most tables; it
//! does not settle all of them, since relations chain (in a 2-D table a withheld cell can be
//! solved for through its row, another column and a third row), so the exact audit of
//! [`super::audit`] decides, and more cells are withheld until it finds nothing.

use super::audit::determined_cells;
use super::{CountTable, DisclosureError, Protection, Relation, Rule, Suppression, TOTAL};

/// Decides which cells of `table` to withhold under `rule`.
///
/// Cells that break the rule are withheld (primary suppression). Then, until no withheld cell
/// can be recomputed exactly from the published cells through the table's margins, more cells
/// are withheld (secondary suppression), choosing in each relation the published cell that
/// costs least: a positive count before a zero (withholding a zero seldom hides anything), a
/// member before a margin (margins are what readers come for), the smallest count, the first
/// cell. Secondary cells that turn out to be recomputable anyway are published again, since
/// publishing a value the table already gives away reveals nothing.
///
/// Guarantees that no withheld cell is exactly recoverable by linear algebra over the
/// published relations; see [`super::recoverable_cells`] for what that does not cover.
pub fn protect(table: &CountTable, rule: &Rule) -> Result<Protection, DisclosureError> {
    rule.check()?;
    let relations = table.checked_relations()?;
    let primary: Vec<bool> = table
        .cells
        .iter()
        .map(|cell| rule.is_primary_unsafe(cell.count))
        .collect();
    let relations_of = relations_by_cell(table.cells.len(), &relations);
    let mut hidden = primary.clone();
    let mut released = false;
    loop {
        close_singletons(table, &relations, &mut hidden);
        let exposed: Vec<usize> = determined_cells(table, &relations, &hidden)?
            .into_iter()
            .map(|(cell, _)| cell)
            .collect();
        let exposed_primary: Vec<usize> = exposed
            .iter()
            .copied()
            .filter(|&cell| primary[cell])
            .collect();
        if !exposed_primary.is_empty() {
            let covered = cover(
                table,
                &relations,
                &relations_of,
                &exposed_primary,
                &mut hidden,
            );
            if !covered {
                return Err(DisclosureError::Unprotectable {
                    cells: exposed_primary,
                });
            }
        } else if exposed.is_empty() {
            break;
        } else if !released {
            // Publishing cells the system already determines leaves the row space, and so
            // every other cell's status, unchanged; one release is therefore final.
            for cell in exposed {
                hidden[cell] = false;
            }
            released = true;
        } else {
            // Unreachable by the argument above; withheld cells are still safe, only wasted.
            break;
        }
    }
    let suppressed = primary
        .iter()
        .zip(&hidden)
        .map(|(&primary, &hidden)| match (primary, hidden) {
            (true, _) => Suppression::Primary,
            (false, true) => Suppression::Secondary,
            (false, false) => Suppression::Published,
        })
        .collect();
    Ok(Protection { suppressed })
}

/// For each cell, the relations it takes part in.
fn relations_by_cell(cells: usize, relations: &[Relation]) -> Vec<Vec<usize>> {
    let mut relations_of = vec![Vec::new(); cells];
    for (index, relation) in relations.iter().enumerate() {
        for cell in relation.cells() {
            relations_of[cell].push(index);
        }
    }
    relations_of
}

/// Withholds one more cell in every relation with a single withheld cell, until there is none.
fn close_singletons(table: &CountTable, relations: &[Relation], hidden: &mut [bool]) {
    loop {
        let mut changed = false;
        for relation in relations {
            if relation.cells().filter(|&cell| hidden[cell]).count() == 1 {
                if let Some(pick) = cheapest_published(table, relation.cells(), hidden) {
                    hidden[pick] = true;
                    changed = true;
                }
            }
        }
        if !changed {
            return;
        }
    }
}

/// Withholds, for each exposed cell, one more cell in its relations; returns false when no
/// published cell is left anywhere near a withheld one.
fn cover(
    table: &CountTable,
    relations: &[Relation],
    relations_of: &[Vec<usize>],
    exposed: &[usize],
    hidden: &mut [bool],
) -> bool {
    let mut fresh = vec![false; table.cells.len()];
    let mut added = false;
    for &cell in exposed {
        let neighbours = || {
            relations_of[cell]
                .iter()
                .flat_map(|&r| relations[r].cells())
        };
        // A cell withheld this round next to this one may already cover it; the next audit
        // says, and withholding two at once would often be one too many.
        if neighbours().any(|neighbour| fresh[neighbour]) {
            continue;
        }
        if let Some(pick) = cheapest_published(table, neighbours(), hidden) {
            hidden[pick] = true;
            fresh[pick] = true;
            added = true;
        }
    }
    if added {
        return true;
    }
    // Every relation of every exposed cell is fully withheld, so the exposure runs through a
    // chain of relations further out: widen to all relations with a withheld cell.
    let wider = relations
        .iter()
        .filter(|relation| relation.cells().any(|cell| hidden[cell]))
        .flat_map(|relation| relation.cells());
    match cheapest_published(table, wider, hidden) {
        Some(pick) => {
            hidden[pick] = true;
            true
        }
        None => false,
    }
}

/// The published cell among `cells` whose loss costs least (see [`protect`]).
fn cheapest_published(
    table: &CountTable,
    cells: impl Iterator<Item = usize>,
    hidden: &[bool],
) -> Option<usize> {
    cells.filter(|&cell| !hidden[cell]).min_by_key(|&cell| {
        let cell_data = &table.cells[cell];
        let margins = cell_data
            .coordinates
            .iter()
            .filter(|code| *code == TOTAL)
            .count();
        (cell_data.count == 0, margins, cell_data.count, cell)
    })
}
