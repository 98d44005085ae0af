//! Deterministic random streams and the small sampling and calendar helpers
//! the generators share.
//!
//! Owns reproducibility: every generator draws from a stream named here, so
//! the same seed gives the same rows whatever order the streams are used in.
//! It must not know about datasets.

use chrono::{Datelike, NaiveDate};
use rand::{Rng as _, SeedableRng};
use rand_chacha::ChaCha8Rng;

pub type Rng = ChaCha8Rng;

/// An independent stream for `label`, derived from the user's seed.
pub fn stream(seed: u64, label: &str) -> Rng {
    // FNV-1a: a stable hash, unlike the standard library's randomised one.
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in label.bytes() {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    ChaCha8Rng::seed_from_u64(seed ^ hash.rotate_left(17))
}

/// Sampling from a fixed discrete distribution by inverse CDF.
#[derive(Debug, Clone)]
pub struct Categorical {
    cumulative: Vec<f64>,
}

impl Categorical {
    /// Weights need not sum to one; zero weights are never drawn.
    pub fn new(weights: impl IntoIterator<Item = f64>) -> Self {
        let mut total = 0.0;
        let cumulative = weights
            .into_iter()
            .map(|w| {
                total += w.max(0.0);
                total
            })
            .collect::<Vec<_>>();
        let cumulative = cumulative.into_iter().map(|c| c / total).collect();
        Self { cumulative }
    }

    pub fn sample(&self, rng: &mut Rng) -> usize {
        let u: f64 = rng.random();
        self.cumulative
            .partition_point(|&c| c <= u)
            .min(self.cumulative.len() - 1)
    }
}

/// Picks one label from `(label, weight)` pairs.
pub fn pick<'a>(rng: &mut Rng, table: &[(&'a str, f64)]) -> &'a str {
    let total: f64 = table.iter().map(|(_, w)| w).sum();
    let mut u = rng.random::<f64>() * total;
    for (label, weight) in table {
        if u < *weight {
            return label;
        }
        u -= weight;
    }
    table[table.len() - 1].0
}

/// True with probability `p`.
pub fn chance(rng: &mut Rng, p: f64) -> bool {
    rng.random::<f64>() < p
}

/// Days since 1970-01-01 (Arrow's Date32) of a calendar date.
pub fn days(year: i32, month: u32, day: u32) -> i32 {
    let date = NaiveDate::from_ymd_opt(year, month, day).expect("valid calendar date");
    date.num_days_from_ce() - EPOCH_DAYS_FROM_CE
}

const EPOCH_DAYS_FROM_CE: i32 = 719_163;

/// The calendar year of a Date32 value.
pub fn year_of(days_since_epoch: i32) -> i32 {
    NaiveDate::from_num_days_from_ce_opt(days_since_epoch + EPOCH_DAYS_FROM_CE)
        .expect("date in range")
        .year()
}

/// A uniformly drawn day of `year`, as Date32, not before `not_before`.
pub fn day_in_year(rng: &mut Rng, year: i32, not_before: i32) -> i32 {
    let first = days(year, 1, 1).max(not_before);
    let last = days(year, 12, 31);
    if first >= last {
        return last;
    }
    rng.random_range(first..=last)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn calendar_round_trips() {
        assert_eq!(days(1970, 1, 1), 0);
        assert_eq!(days(2024, 3, 1), 19_783);
        assert_eq!(year_of(days(2024, 12, 31)), 2024);
        assert_eq!(year_of(days(2025, 1, 1)), 2025);
    }

    #[test]
    fn categorical_respects_weights() {
        let dist = Categorical::new([0.0, 1.0, 3.0]);
        let mut rng = stream(7, "test");
        let mut counts = [0usize; 3];
        for _ in 0..40_000 {
            counts[dist.sample(&mut rng)] += 1;
        }
        assert_eq!(counts[0], 0);
        let share = counts[2] as f64 / 40_000.0;
        assert!((share - 0.75).abs() < 0.01, "share {share}");
    }
}
