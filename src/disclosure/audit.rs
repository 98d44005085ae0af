//! The attacker's side: which withheld cells the published cells and the margins pin down.
//!
//! Every relation `margin = sum of members` that touches a withheld cell becomes one linear
//! equation whose unknowns are the withheld cells, the published ones moved to the right-hand
//! side. A withheld cell is recoverable exactly when its unit vector lies in the row space of
//! the equations. The system is brought to reduced echelon form once, in exact integers (every
//! row kept primitive by dividing out its gcd), and then the test is read off: the unit vector
//! of a column is in the row space iff some reduced row has that column as its only term. (Write
//! the vector as a combination of the reduced rows: its entry at each pivot column is that
//! row's coefficient, since no other row has a term there; so every row but the one pivoting on
//! the column must drop out, and that row must be the unit vector itself.)

use super::{relations, CountTable, DisclosureError, Relation};

/// The withheld cells (`suppressed[i]` true) whose exact value follows from the published cells
/// and the table's additive relations, in increasing order.
///
/// # Panics
///
/// If `suppressed` does not have one entry per cell, or if exact elimination outgrows 128-bit
/// integers, which would take a table far larger and more tangled than any table of counts.
pub fn recoverable_cells(table: &CountTable, suppressed: &[bool]) -> Vec<usize> {
    attack(table, suppressed)
        .into_iter()
        .map(|(cell, _)| cell)
        .collect()
}

/// What an attacker learns: every recoverable withheld cell with the value the relations force
/// on it, in increasing order of cell. The values are the true counts whenever the table passes
/// [`CountTable::validate`].
///
/// # Panics
///
/// As [`recoverable_cells`].
pub fn attack(table: &CountTable, suppressed: &[bool]) -> Vec<(usize, i64)> {
    assert_eq!(
        suppressed.len(),
        table.cells.len(),
        "the suppression mask needs one entry per cell"
    );
    match determined_cells(table, &relations(table), suppressed) {
        Ok(determined) => determined,
        Err(error) => panic!("{error}"),
    }
}

/// [`attack`] over relations already built, failing instead of panicking.
pub(super) fn determined_cells(
    table: &CountTable,
    relations: &[Relation],
    suppressed: &[bool],
) -> Result<Vec<(usize, i64)>, DisclosureError> {
    let unknowns: Vec<usize> = (0..table.cells.len()).filter(|&i| suppressed[i]).collect();
    let mut column_of = vec![None; table.cells.len()];
    for (column, &cell) in unknowns.iter().enumerate() {
        column_of[cell] = Some(column);
    }
    let mut equations: Vec<Equation> = relations
        .iter()
        .filter(|relation| relation.cells().any(|cell| suppressed[cell]))
        .map(|relation| Equation::of(table, relation, &column_of))
        .collect();
    reduce(&mut equations, unknowns.len())?;
    let mut determined: Vec<(usize, i64)> = equations
        .iter()
        .filter_map(|equation| match equation.terms.as_slice() {
            &[(column, coefficient)] => {
                let value = equation.constant / coefficient;
                let value =
                    i64::try_from(value).unwrap_or(if value < 0 { i64::MIN } else { i64::MAX });
                Some((unknowns[column], value))
            }
            _ => None,
        })
        .collect();
    determined.sort_unstable();
    Ok(determined)
}

/// `sum of coefficient * unknown = constant`, with terms sorted by column and none zero.
#[derive(Debug, Clone, Default)]
struct Equation {
    terms: Vec<(usize, i128)>,
    constant: i128,
}

impl Equation {
    fn of(table: &CountTable, relation: &Relation, column_of: &[Option<usize>]) -> Self {
        let mut equation = Equation::default();
        let signed = std::iter::once(1).chain(std::iter::repeat(-1));
        for (cell, sign) in relation.cells().zip(signed) {
            match column_of[cell] {
                Some(column) => equation.terms.push((column, sign)),
                None => equation.constant -= sign * i128::from(table.cells[cell].count),
            }
        }
        equation.terms.sort_unstable();
        equation
    }

    fn coefficient(&self, column: usize) -> i128 {
        match self.terms.binary_search_by_key(&column, |&(c, _)| c) {
            Ok(position) => self.terms[position].1,
            Err(_) => 0,
        }
    }

    /// Cancels `column` in `self` with a multiple of `pivot`, scaling `self` as little as
    /// integers allow.
    fn eliminate(&mut self, pivot: &Equation, column: usize) -> Result<(), DisclosureError> {
        let target_coefficient = self.coefficient(column);
        let pivot_coefficient = pivot.coefficient(column);
        let common = i128::try_from(gcd(target_coefficient, pivot_coefficient))
            .map_err(|_| DisclosureError::AuditOverflow)?;
        let own_scale = pivot_coefficient / common;
        let pivot_scale = target_coefficient / common;
        let combine = |own: i128, theirs: i128| -> Result<i128, DisclosureError> {
            let own = own
                .checked_mul(own_scale)
                .ok_or(DisclosureError::AuditOverflow)?;
            let theirs = theirs
                .checked_mul(pivot_scale)
                .ok_or(DisclosureError::AuditOverflow)?;
            own.checked_sub(theirs)
                .ok_or(DisclosureError::AuditOverflow)
        };
        let mut terms = Vec::with_capacity(self.terms.len() + pivot.terms.len());
        let (mut mine, mut theirs) = (self.terms.iter().peekable(), pivot.terms.iter().peekable());
        loop {
            let (column, value) = match (mine.peek(), theirs.peek()) {
                (None, None) => break,
                (Some(&&(a, x)), Some(&&(b, y))) if a == b => {
                    mine.next();
                    theirs.next();
                    (a, combine(x, y)?)
                }
                (Some(&&(a, x)), Some(&&(b, _))) if a < b => {
                    mine.next();
                    (a, combine(x, 0)?)
                }
                (Some(&&(a, x)), None) => {
                    mine.next();
                    (a, combine(x, 0)?)
                }
                (_, Some(&&(b, y))) => {
                    theirs.next();
                    (b, combine(0, y)?)
                }
            };
            if value != 0 {
                terms.push((column, value));
            }
        }
        self.terms = terms;
        self.constant = combine(self.constant, pivot.constant)?;
        self.make_primitive();
        Ok(())
    }

    /// Divides out the common factor so that entries stay as small as the row space allows.
    fn make_primitive(&mut self) {
        let common = self
            .terms
            .iter()
            .fold(self.constant.unsigned_abs(), |g, &(_, v)| {
                gcd_u(g, v.unsigned_abs())
            });
        // A factor past i128::MAX (both entries i128::MIN) is left in: it is harmless.
        if let Ok(common @ 2..) = i128::try_from(common) {
            for (_, value) in &mut self.terms {
                *value /= common;
            }
            self.constant /= common;
        }
    }
}

/// Gauss-Jordan elimination: afterwards each leading row has a pivot column that no other row
/// has a term in, and the remaining rows have no terms.
fn reduce(equations: &mut [Equation], columns: usize) -> Result<(), DisclosureError> {
    let mut rank = 0;
    for column in 0..columns {
        // The smallest, shortest pivot keeps the integers and the fill-in down.
        let best = (rank..equations.len())
            .filter(|&row| equations[row].coefficient(column) != 0)
            .min_by_key(|&row| {
                let equation = &equations[row];
                (
                    equation.coefficient(column).unsigned_abs(),
                    equation.terms.len(),
                )
            });
        let Some(best) = best else { continue };
        equations.swap(rank, best);
        let pivot = std::mem::take(&mut equations[rank]);
        for (row, equation) in equations.iter_mut().enumerate() {
            if row != rank && equation.coefficient(column) != 0 {
                equation.eliminate(&pivot, column)?;
            }
        }
        equations[rank] = pivot;
        rank += 1;
    }
    Ok(())
}

/// Greatest common divisor of two coefficients that are not both zero.
fn gcd(a: i128, b: i128) -> u128 {
    gcd_u(a.unsigned_abs(), b.unsigned_abs())
}

fn gcd_u(mut a: u128, mut b: u128) -> u128 {
    while b != 0 {
        (a, b) = (b, a % b);
    }
    a
}
