//! Tests of the suppression rules, the secondary suppression and the audit,
//! including an attacker that tries to recompute every suppressed cell.

use super::*;

fn table(dimensions: &[&str], cells: &[(&[&str], i64)]) -> CountTable {
    CountTable {
        dimensions: dimensions.iter().map(|d| d.to_string()).collect(),
        cells: cells
            .iter()
            .map(|(coordinates, count)| Cell {
                coordinates: coordinates.iter().map(|c| c.to_string()).collect(),
                count: *count,
            })
            .collect(),
    }
}

/// A table over `sizes[d]` categories per dimension from its innermost cells (row-major), with
/// the margins that `GROUP BY CUBE` would give over the dimensions where `margins[d]`.
fn with_margins(sizes: &[usize], base: &[i64], margins: &[bool]) -> CountTable {
    assert_eq!(base.len(), sizes.iter().product::<usize>());
    let axes: Vec<Vec<Option<usize>>> = sizes
        .iter()
        .zip(margins)
        .map(|(&size, &margin)| (0..size).map(Some).chain(margin.then_some(None)).collect())
        .collect();
    let mut tuples: Vec<Vec<Option<usize>>> = vec![Vec::new()];
    for axis in &axes {
        tuples = tuples
            .iter()
            .flat_map(|tuple| {
                axis.iter()
                    .map(move |&code| [tuple.clone(), vec![code]].concat())
            })
            .collect();
    }
    let covers = |tuple: &[Option<usize>], mut flat: usize| {
        for (d, &size) in sizes.iter().enumerate().rev() {
            if tuple[d].is_some_and(|code| code != flat % size) {
                return false;
            }
            flat /= size;
        }
        true
    };
    let cells = tuples
        .iter()
        .map(|tuple| Cell {
            coordinates: tuple
                .iter()
                .enumerate()
                .map(|(d, code)| code.map_or(TOTAL.to_string(), |c| format!("{d}-{c}")))
                .collect(),
            count: (0..base.len())
                .filter(|&i| covers(tuple, i))
                .map(|i| base[i])
                .sum(),
        })
        .collect();
    CountTable {
        dimensions: (0..sizes.len()).map(|d| format!("dim{d}")).collect(),
        cells,
    }
}

fn cube(sizes: &[usize], base: &[i64]) -> CountTable {
    with_margins(sizes, base, &vec![true; sizes.len()])
}

fn primary_mask(table: &CountTable, rule: &Rule) -> Vec<bool> {
    table
        .cells
        .iter()
        .map(|c| rule.is_primary_unsafe(c.count))
        .collect()
}

fn lone_suppressions(table: &CountTable, mask: &[bool]) -> Vec<Relation> {
    relations(table)
        .into_iter()
        .filter(|relation| relation.cells().filter(|&cell| mask[cell]).count() == 1)
        .collect()
}

/// Protects `table` and checks everything `protect` promises.
fn protect_and_check(table: &CountTable, rule: &Rule) -> Protection {
    let protection = protect(table, rule).expect("protect");
    assert_eq!(protection.suppressed.len(), table.cells.len());
    for (index, cell) in table.cells.iter().enumerate() {
        let expected_primary = rule.is_primary_unsafe(cell.count);
        assert_eq!(
            protection.suppressed[index] == Suppression::Primary,
            expected_primary
        );
    }
    let mask = protection.mask();
    assert_eq!(
        recoverable_cells(table, &mask),
        Vec::<usize>::new(),
        "{table:?}"
    );
    assert_eq!(attack(table, &mask), Vec::new());
    assert_eq!(lone_suppressions(table, &mask), Vec::new());
    protection
}

#[test]
fn threshold_edges() {
    let unsafe_of = |rule: Rule, counts: &[i64]| -> Vec<bool> {
        counts
            .iter()
            .map(|&count| rule.is_primary_unsafe(count))
            .collect()
    };
    let five = Rule::default();
    assert_eq!(five.threshold, 5);
    assert_eq!(
        unsafe_of(five, &[0, 1, 4, 5, 6]),
        [false, true, true, false, false]
    );
    let five_and_zeros = Rule {
        protect_zeros: true,
        ..five
    };
    assert_eq!(
        unsafe_of(five_and_zeros, &[0, 1, 4, 5, 6]),
        [true, true, true, false, false]
    );
    let three = Rule {
        threshold: 3,
        protect_zeros: false,
    };
    assert_eq!(
        unsafe_of(three, &[0, 1, 2, 3, 4]),
        [false, true, true, false, false]
    );

    let flat = table(
        &["x"],
        &[
            (&["a"], 0),
            (&["b"], 1),
            (&["c"], 4),
            (&["d"], 5),
            (&["e"], 6),
        ],
    );
    let kinds = protect(&flat, &five).unwrap().suppressed;
    use Suppression::{Primary as P, Published as O};
    assert_eq!(kinds, [O, P, P, O, O]);
    assert_eq!(
        protect(&flat, &five_and_zeros).unwrap().suppressed,
        [P, P, P, O, O]
    );
}

#[test]
fn cube_with_one_small_member_hides_a_rectangle_and_nothing_is_recoverable() {
    let sex_by_citizenship = table(
        &["sex", "citizenship"],
        &[
            (&["F", "IT"], 120),
            (&["F", "EXT"], 3),
            (&["M", "IT"], 40),
            (&["M", "EXT"], 25),
            (&["F", TOTAL], 123),
            (&["M", TOTAL], 65),
            (&[TOTAL, "IT"], 160),
            (&[TOTAL, "EXT"], 28),
            (&[TOTAL, TOTAL], 188),
        ],
    );
    let protection = protect_and_check(&sex_by_citizenship, &Rule::default());
    assert_eq!(protection.suppressed[1], Suppression::Primary);
    assert_eq!(protection.primary_count(), 1);
    assert!(protection.suppressed_count() >= 4);
    assert_eq!(protection.flag(1), Some(Flag::Confidential));
    assert_eq!(protection.flag(8), None);
    // The cheapest cover is the four members; the grand total and margins stay published.
    assert_eq!(protection.mask()[4..], [false; 5]);
    assert_eq!(
        protection.published_count() + protection.primary_count() + protection.secondary_count(),
        9
    );
}

#[test]
fn the_attacker_recovers_primary_cells_unless_protected() {
    let rule = Rule::default();
    #[rustfmt::skip]
    let tables = [
        cube(&[3, 4], &[
            3, 40, 55, 20,
            30, 2, 45, 60,
            25, 35, 50, 4,
        ]),
        table(&["region"], &[(&["N"], 12), (&["C"], 2), (&["S"], 30), (&[TOTAL], 44)]),
        cube(&[2, 2, 2], &[1, 20, 30, 40, 50, 60, 70, 80]),
    ];
    for table in &tables {
        let primary = primary_mask(table, &rule);
        let truth: Vec<(usize, i64)> = (0..table.cells.len())
            .filter(|&i| primary[i])
            .map(|i| (i, table.cells[i].count))
            .collect();
        assert!(!truth.is_empty());
        assert_eq!(attack(table, &primary), truth, "{table:?}");

        let protection = protect_and_check(table, &rule);
        assert!(protection.secondary_count() > 0);
    }
}

#[test]
fn without_margins_only_primary_cells_are_withheld() {
    let rule = Rule::default();
    let flat = with_margins(&[2, 3], &[1, 10, 2, 30, 4, 50], &[false, false]);
    let protection = protect_and_check(&flat, &rule);
    assert_eq!(protection.primary_count(), 3);
    assert_eq!(protection.secondary_count(), 0);
}

#[test]
fn margins_on_one_dimension_protect_only_along_it() {
    // Totals by row only: a lone small cell in a row needs a partner in that row, no more.
    let rule = Rule::default();
    let table = with_margins(&[2, 3], &[2, 10, 20, 30, 40, 50], &[false, true]);
    let protection = protect_and_check(&table, &rule);
    assert_eq!(protection.primary_count(), 1);
    assert_eq!(protection.secondary_count(), 1);
    let partner = protection
        .suppressed
        .iter()
        .position(|&s| s == Suppression::Secondary);
    assert_eq!(table.cells[partner.unwrap()].count, 10);
}

#[test]
fn two_withheld_cells_per_relation_can_still_leak() {
    // Rows and columns as the two sides of a bipartite graph, withheld cells as its edges: two
    // 4-cycles joined by the edge (1, 2). Every row and column holds at least two withheld
    // cells, yet the joining edge lies on no cycle, so the margins pin it down.
    let table = cube(&[4, 4], &(10..26).collect::<Vec<i64>>());
    let at = |row: usize, column: usize| row * 5 + column;
    let mut mask = vec![false; table.cells.len()];
    for (row, column) in [
        (0, 0),
        (0, 1),
        (1, 0),
        (1, 1),
        (2, 2),
        (2, 3),
        (3, 2),
        (3, 3),
        (1, 2),
    ] {
        mask[at(row, column)] = true;
    }
    assert!(lone_suppressions(&table, &mask).is_empty());
    assert_eq!(
        attack(&table, &mask),
        [(at(1, 2), table.cells[at(1, 2)].count)]
    );
    mask[at(1, 2)] = false;
    assert!(
        recoverable_cells(&table, &mask).is_empty(),
        "two separate cycles are safe"
    );
}

#[test]
fn audit_agrees_with_a_floating_point_rank_test() {
    let mut rng = XorShift(0x9E37_79B9_7F4A_7C15);
    for _ in 0..150 {
        let three_dimensional = rng.below(2) == 0;
        let sizes: Vec<usize> = if three_dimensional {
            (0..3).map(|_| 2 + rng.below(2) as usize).collect()
        } else {
            (0..2).map(|_| 2 + rng.below(3) as usize).collect()
        };
        let base: Vec<i64> = (0..sizes.iter().product())
            .map(|_| rng.below(30) as i64)
            .collect();
        let margins: Vec<bool> = sizes.iter().map(|_| rng.below(4) != 0).collect();
        let table = with_margins(&sizes, &base, &margins);
        let mask: Vec<bool> = table.cells.iter().map(|_| rng.below(3) == 0).collect();
        let expected = recoverable_by_rank(&table, &mask);
        let recovered = attack(&table, &mask);
        assert_eq!(
            recovered.iter().map(|&(c, _)| c).collect::<Vec<_>>(),
            expected
        );
        for (cell, value) in recovered {
            assert_eq!(table.cells[cell].count, value);
        }
    }
}

/// The definition, checked the slow way: cell j is determined iff adding the row e_j to the
/// coefficient matrix leaves its rank unchanged.
fn recoverable_by_rank(table: &CountTable, mask: &[bool]) -> Vec<usize> {
    let unknowns: Vec<usize> = (0..mask.len()).filter(|&i| mask[i]).collect();
    let rows: Vec<Vec<f64>> = relations(table)
        .iter()
        .map(|relation| {
            let mut row = vec![0.0; unknowns.len()];
            for (position, cell) in relation.cells().enumerate() {
                if let Ok(column) = unknowns.binary_search(&cell) {
                    row[column] = if position == 0 { 1.0 } else { -1.0 };
                }
            }
            row
        })
        .collect();
    let base_rank = rank(rows.clone());
    (0..unknowns.len())
        .filter(|&column| {
            let mut with_unit = rows.clone();
            let mut unit = vec![0.0; unknowns.len()];
            unit[column] = 1.0;
            with_unit.push(unit);
            rank(with_unit) == base_rank
        })
        .map(|column| unknowns[column])
        .collect()
}

fn rank(mut rows: Vec<Vec<f64>>) -> usize {
    let columns = rows.first().map_or(0, Vec::len);
    let mut rank = 0;
    for column in 0..columns {
        let Some(best) = (rank..rows.len())
            .filter(|&r| rows[r][column].abs() > 1e-9)
            .max_by(|&a, &b| rows[a][column].abs().total_cmp(&rows[b][column].abs()))
        else {
            continue;
        };
        rows.swap(rank, best);
        let (done, rest) = rows.split_at_mut(rank + 1);
        let pivot = &done[rank];
        for row in rest {
            let factor = row[column] / pivot[column];
            for (entry, above) in row.iter_mut().zip(pivot).skip(column) {
                *entry -= factor * above;
            }
        }
        rank += 1;
    }
    rank
}

struct XorShift(u64);

impl XorShift {
    fn below(&mut self, bound: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % bound
    }
}

#[test]
fn random_tables_are_protected() {
    let mut rng = XorShift(0x2545_F491_4F6C_DD1D);
    let mut secondary = 0;
    for round in 0..200 {
        let sizes: Vec<usize> = if round % 2 == 0 {
            (0..2).map(|_| 2 + rng.below(4) as usize).collect()
        } else {
            (0..3).map(|_| 2 + rng.below(2) as usize).collect()
        };
        let base: Vec<i64> = (0..sizes.iter().product())
            .map(|_| match rng.below(3) {
                0 => rng.below(7) as i64,
                _ => rng.below(60) as i64,
            })
            .collect();
        let mut margins: Vec<bool> = sizes.iter().map(|_| rng.below(3) != 0).collect();
        margins[0] = true;
        let mut table = with_margins(&sizes, &base, &margins);
        // GROUP BY leaves empty combinations out.
        if rng.below(2) == 0 {
            table.cells.retain(|cell| cell.count > 0);
        }
        let rule = Rule {
            threshold: [3, 5, 10][rng.below(3) as usize],
            protect_zeros: rng.below(4) == 0,
        };
        let protection = protect_and_check(&table, &rule);
        for (index, cell) in table.cells.iter().enumerate() {
            if rule.is_primary_unsafe(cell.count) {
                assert!(protection.is_suppressed(index));
            }
        }
        secondary += protection.secondary_count();
    }
    assert!(secondary > 0);
}

#[test]
fn invalid_tables_and_rules_are_rejected() {
    let rule = Rule::default();
    let short = table(&["sex", "age"], &[(&["F", "0-14"], 7), (&["M"], 9)]);
    assert_eq!(
        protect(&short, &rule),
        Err(DisclosureError::CoordinateCount {
            cell: 1,
            expected: 2,
            found: 1
        })
    );
    let twice = table(&["sex"], &[(&["F"], 7), (&["M"], 9), (&["F"], 8)]);
    assert!(matches!(
        protect(&twice, &rule),
        Err(DisclosureError::DuplicateCoordinates {
            first: 0,
            second: 2,
            ..
        })
    ));
    let negative = table(&["sex"], &[(&["F"], 7), (&["M"], -1)]);
    assert_eq!(
        protect(&negative, &rule),
        Err(DisclosureError::NegativeCount { cell: 1, count: -1 })
    );
    let incomplete = table(&["sex"], &[(&["F"], 7), (&[TOTAL], 16)]);
    assert_eq!(
        protect(&incomplete, &rule),
        Err(DisclosureError::NonAdditiveMargin {
            margin: 1,
            dimension: "sex".into(),
            margin_count: 16,
            members_sum: 7
        })
    );
    let lax = Rule {
        threshold: 2,
        protect_zeros: false,
    };
    assert_eq!(
        protect(&table(&["sex"], &[(&["F"], 1)]), &lax),
        Err(DisclosureError::ThresholdBelowLegalFloor { threshold: 2 })
    );
    assert!(DisclosureError::NegativeCount { cell: 1, count: -1 }
        .to_string()
        .contains("-1"));
}

#[test]
fn flags_follow_eurostat_and_sdmx() {
    let codes: Vec<(char, &str)> = [Flag::Confidential, Flag::LowReliability, Flag::Provisional]
        .iter()
        .map(|flag| (flag.eurostat_code(), flag.sdmx_obs_status()))
        .collect();
    assert_eq!(codes, [('c', "Q"), ('u', "U"), ('p', "P")]);
    assert_eq!(Suppression::Primary.sdmx_conf_status(), "C");
    assert_eq!(Suppression::Secondary.sdmx_conf_status(), "D");
    assert_eq!(Suppression::Published.sdmx_conf_status(), "F");
}
