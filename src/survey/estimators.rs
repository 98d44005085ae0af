//! Design-based point estimates and Taylor-linearised standard errors for a stratified, clustered,
//! weighted design with a with-replacement first stage, as R's `survey` package computes them for
//! `svydesign(ids = ~psu, strata = ~stratum, weights = ~weight)` without fpc.
//!
//! Owns the design, the linearisation scores, the variance `Σ_h n_h/(n_h−1) Σ_i (z_hi − z̄_h)²`
//! of PSU score totals with R's lonely-PSU options, the intervals and the reliability flag.
//! Domains and missing values follow R's subset designs: their rows leave the sums, every stratum
//! keeps its `n_h`. It must not do I/O, SQL or Arrow: callers pass slices aligned with the rows.

use std::collections::{HashMap, HashSet};
use std::fmt;

/// `qnorm(0.975)`: R's `confint` on a mean, total or ratio uses the normal distribution.
pub const Z_975: f64 = 1.959_963_984_540_054;

/// One sampled unit: where it sits in the design and how many population units it stands for.
#[derive(Debug, Clone, PartialEq)]
pub struct DesignRow {
    pub stratum: String,
    /// Primary sampling unit; an id belongs to a single stratum.
    pub psu: String,
    /// Sampling weight (inverse inclusion probability), positive and finite.
    pub weight: f64,
}

/// What to do with a stratum of a single PSU, which has no variance: R's `survey.lonely.psu`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LonelyPsu {
    /// Refuse to estimate, R's default.
    #[default]
    Fail,
    /// The stratum contributes nothing to the variance.
    Remove,
    /// The PSU was taken with certainty, so it contributes nothing (as `Remove`).
    Certainty,
    /// Centre the lonely PSU total on the grand mean of all PSU totals instead of on itself.
    Adjust,
    /// Scale the variance by (strata) / (strata with a variance).
    Average,
}

/// Everything that stops an estimate from being computed.
#[derive(Debug, Clone, PartialEq)]
pub enum SurveyError {
    /// The design has no rows.
    NoRows,
    /// A weight is zero, negative or not finite: the row would stand for no one, or nonsense.
    InvalidWeight { row: usize, weight: f64 },
    /// A PSU id occurs in two strata. PSUs must be nested in strata: make the ids unique across
    /// strata (R's `nest = TRUE`) before building the design.
    PsuInTwoStrata { psu: String, strata: [String; 2] },
    /// A variable or domain mask does not have one entry per design row.
    LengthMismatch { what: &'static str, found: usize },
    /// A present value is NaN or infinite; missing values must be `None`.
    NonFiniteValue { what: &'static str, row: usize },
    /// No row is both in the domain and non-missing: there is nothing to estimate.
    EmptyDomain,
    /// The weighted total of a ratio's denominator is zero.
    ZeroDenominator,
    /// A stratum in use has a single PSU and the design was built with [`LonelyPsu::Fail`].
    LonelyPsu { stratum: String },
    /// With [`LonelyPsu::Average`], every stratum in use has a single PSU: nothing to average.
    NoStratumWithVariance,
}

impl fmt::Display for SurveyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NoRows => write!(f, "the survey design has no rows"),
            Self::InvalidWeight { row, weight } => {
                write!(f, "row {row} has weight {weight}, not positive and finite")
            }
            Self::PsuInTwoStrata { psu, strata } => {
                let [first, second] = strata;
                write!(f, "PSU ({psu}) occurs in strata ({first}) and ({second})")
            }
            Self::LengthMismatch { what, found } => {
                write!(f, "{what} has {found} entries, not one per design row")
            }
            Self::NonFiniteValue { what, row } => write!(f, "{what} is not finite in row {row}"),
            Self::EmptyDomain => write!(f, "no row is in the domain and non-missing"),
            Self::ZeroDenominator => write!(f, "the ratio's denominator totals zero"),
            Self::LonelyPsu { stratum } => write!(f, "Stratum ({stratum}) has only one PSU"),
            Self::NoStratumWithVariance => write!(f, "every stratum in use has a single PSU"),
        }
    }
}

impl std::error::Error for SurveyError {}

/// The result of every fallible operation here, in the manner of `std::io::Result`.
pub type SurveyResult<T> = Result<T, SurveyError>;

/// A stratified, clustered, weighted design: strata, the PSUs nested in them, each row's PSU.
#[derive(Debug, Clone)]
pub struct Design {
    lonely: LonelyPsu,
    weights: Vec<f64>,
    /// Index into `psu_stratum` for each row.
    row_psu: Vec<usize>,
    /// Index into `strata` for each PSU.
    psu_stratum: Vec<usize>,
    strata: Vec<String>,
    /// The PSUs of each stratum; `n_h` is the length.
    stratum_psus: Vec<Vec<usize>>,
}

/// A point estimate with its Taylor-linearised precision.
#[derive(Debug, Clone, PartialEq)]
pub struct Estimate {
    pub estimate: f64,
    pub se: f64,
    /// 95% normal interval, estimate ± [`Z_975`]·SE, as R's `confint` on a `svystat`.
    pub ci_low: f64,
    pub ci_high: f64,
    /// R's `degf(subset(design, domain))`: PSUs minus strata with a row in the domain. Missing
    /// values do not lower it, as `svyciprop` takes `degf` of its design before `na.rm`.
    pub degf: usize,
    /// Unweighted rows used: in the domain and non-missing.
    pub n: usize,
    /// SE/|estimate|; infinite for an estimate of zero, which must not pass as reliable.
    pub cv: f64,
    /// Proportions only: the 95% interval of `svyciprop(method = "logit")`. `None` when the
    /// proportion is 0 or 1 or `degf` is 0, where R gives NaN.
    pub logit_ci: Option<(f64, f64)>,
}

/// When an estimate is too imprecise to publish without the flag `u` (unreliable).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Reliability {
    /// Fewer unweighted rows than this is unreliable.
    pub min_n: usize,
    /// A coefficient of variation above this is unreliable.
    pub max_cv: f64,
}

impl Default for Reliability {
    fn default() -> Self {
        Reliability {
            min_n: 30,
            max_cv: 0.33,
        }
    }
}

impl Reliability {
    /// True when the estimate deserves the flag `u`: `n < min_n` or `cv > max_cv`.
    pub fn is_low(&self, estimate: &Estimate) -> bool {
        estimate.n < self.min_n || estimate.cv > self.max_cv
    }
}

impl Design {
    /// Builds the design, checking the weights and that PSUs are nested in strata.
    pub fn new(rows: &[DesignRow], lonely: LonelyPsu) -> SurveyResult<Design> {
        if rows.is_empty() {
            return Err(SurveyError::NoRows);
        }
        let (mut stratum_ids, mut psu_ids) = (HashMap::new(), HashMap::new());
        let mut design = Design {
            lonely,
            weights: Vec::with_capacity(rows.len()),
            row_psu: Vec::with_capacity(rows.len()),
            psu_stratum: Vec::new(),
            strata: Vec::new(),
            stratum_psus: Vec::new(),
        };
        for (row, unit) in rows.iter().enumerate() {
            let weight = unit.weight;
            if !(weight.is_finite() && weight > 0.0) {
                return Err(SurveyError::InvalidWeight { row, weight });
            }
            let stratum = *stratum_ids.entry(unit.stratum.as_str()).or_insert_with(|| {
                design.strata.push(unit.stratum.clone());
                design.stratum_psus.push(Vec::new());
                design.strata.len() - 1
            });
            let psu = *psu_ids.entry(unit.psu.as_str()).or_insert_with(|| {
                design.psu_stratum.push(stratum);
                design.stratum_psus[stratum].push(design.psu_stratum.len() - 1);
                design.psu_stratum.len() - 1
            });
            if design.psu_stratum[psu] != stratum {
                let first = design.strata[design.psu_stratum[psu]].clone();
                let (psu, strata) = (unit.psu.clone(), [first, unit.stratum.clone()]);
                return Err(SurveyError::PsuInTwoStrata { psu, strata });
            }
            design.weights.push(weight);
            design.row_psu.push(psu);
        }
        Ok(design)
    }

    /// Number of PSUs minus number of strata, R's `degf(design)`.
    pub fn degrees_of_freedom(&self) -> usize {
        self.psu_stratum.len() - self.strata.len()
    }

    /// `Σwy/Σw` over the domain: `svymean(~y, design, na.rm = TRUE)`.
    pub fn mean(&self, y: &[Option<f64>], domain: Option<&[bool]>) -> SurveyResult<Estimate> {
        let rows = self.rows_in_use(domain, &[("y", y)])?;
        let (w, y) = (&rows.weights, present(y));
        let weight_sum: f64 = w.iter().sum();
        let mean = dot(w, &y) / weight_sum;
        self.linearised(mean, &rows, &|i| w[i] * (y[i] - mean) / weight_sum)
    }

    /// `Σwy` over the domain: `svytotal(~y, design, na.rm = TRUE)`.
    pub fn total(&self, y: &[Option<f64>], domain: Option<&[bool]>) -> SurveyResult<Estimate> {
        let rows = self.rows_in_use(domain, &[("y", y)])?;
        let (w, y) = (&rows.weights, present(y));
        self.linearised(dot(w, &y), &rows, &|i| w[i] * y[i])
    }

    /// Weighted share of `true`, with the interval of `svyciprop(~y, design, method = "logit")`.
    pub fn proportion(
        &self,
        y: &[Option<bool>],
        domain: Option<&[bool]>,
    ) -> SurveyResult<Estimate> {
        let indicator: Vec<_> = y.iter().map(|v| v.map(f64::from)).collect();
        let mut estimate = self.mean(&indicator, domain)?;
        estimate.logit_ci = logit_interval(estimate.estimate, estimate.se, estimate.degf);
        Ok(estimate)
    }

    /// Combined ratio `Σwy/Σwx` over the domain: `svyratio(~y, ~x, design, na.rm = TRUE)`. A row
    /// missing either variable leaves both totals.
    pub fn ratio(
        &self,
        y: &[Option<f64>],
        x: &[Option<f64>],
        domain: Option<&[bool]>,
    ) -> SurveyResult<Estimate> {
        let rows = self.rows_in_use(domain, &[("y", y), ("x", x)])?;
        let (w, y, x) = (&rows.weights, present(y), present(x));
        let total_x = dot(w, &x);
        if total_x == 0.0 {
            return Err(SurveyError::ZeroDenominator);
        }
        let ratio = dot(w, &y) / total_x;
        self.linearised(ratio, &rows, &|i| w[i] * (y[i] - ratio * x[i]) / total_x)
    }

    /// Checks the variables and finds the rows in use: in the domain with every variable present
    /// (R's subset and `na.rm = TRUE` drop the others from the sums), and the domain's `degf`.
    fn rows_in_use(&self, domain: Option<&[bool]>, variables: &[Variable]) -> SurveyResult<Rows> {
        let rows = self.weights.len();
        let in_domain = domain.map_or_else(|| vec![true; rows], <[bool]>::to_vec);
        let lengths = variables.iter().map(|&(what, values)| (what, values.len()));
        for (what, found) in lengths.chain([("domain", in_domain.len())]) {
            if found != rows {
                return Err(SurveyError::LengthMismatch { what, found });
            }
        }
        let mut weights = self.weights.clone();
        for (row, weight) in weights.iter_mut().enumerate() {
            for &(what, values) in variables {
                match values[row] {
                    Some(value) if !value.is_finite() => {
                        return Err(SurveyError::NonFiniteValue { what, row })
                    }
                    Some(_) if in_domain[row] => {}
                    _ => *weight = 0.0,
                }
            }
        }
        if weights.iter().all(|&w| w == 0.0) {
            return Err(SurveyError::EmptyDomain);
        }
        let domain_rows = (0..rows).filter(|&row| in_domain[row]);
        let psus: HashSet<usize> = domain_rows.map(|row| self.row_psu[row]).collect();
        let strata: HashSet<usize> = psus.iter().map(|&psu| self.psu_stratum[psu]).collect();
        let degf = psus.len() - strata.len();
        Ok(Rows { degf, weights })
    }

    /// The estimate with its SE from the row scores `z_k`, its intervals and its counts.
    fn linearised(&self, estimate: f64, rows: &Rows, score: Score) -> SurveyResult<Estimate> {
        let se = self.variance(&rows.weights, score)?.sqrt();
        let cv = se / estimate.abs();
        Ok(Estimate {
            estimate,
            se,
            ci_low: estimate - Z_975 * se,
            ci_high: estimate + Z_975 * se,
            degf: rows.degf,
            n: rows.weights.iter().filter(|&&w| w > 0.0).count(),
            cv: if estimate == 0.0 { f64::INFINITY } else { cv },
            logit_ci: None,
        })
    }

    /// `Σ_h n_h/(n_h−1) Σ_i (z_hi − z̄_h)²` over the strata with a row in use, as R's `onestrat` on
    /// a subset design: a stratum with no row left is not counted (which matters for `Average`),
    /// while `n_h` stays the design's, so a PSU with no row in use has a total of zero.
    fn variance(&self, weights: &[f64], score: Score) -> SurveyResult<f64> {
        let mut psu_totals = vec![0.0; self.psu_stratum.len()];
        let mut stratum_in_use = vec![false; self.strata.len()];
        for row in (0..weights.len()).filter(|&row| weights[row] > 0.0) {
            psu_totals[self.row_psu[row]] += score(row);
            stratum_in_use[self.psu_stratum[self.row_psu[row]]] = true;
        }
        let strata = 0..self.strata.len();
        let in_use: Vec<usize> = strata.filter(|&h| stratum_in_use[h]).collect();
        // `Adjust`, as survey >= 4.4-1: the lonely PSU is centred on Σz / (PSUs of the strata in
        // use); 4.1-1 centred it on 0. Mean, proportion and ratio scores sum to zero, so the two
        // agree there (DOMAIN.md's 0.652279 was computed with 4.1-1); totals differ.
        let psus_in_use: usize = in_use.iter().map(|&h| self.stratum_psus[h].len()).sum();
        let grand_mean = psu_totals.iter().sum::<f64>() / psus_in_use as f64;
        let (mut variance, mut strata_with_variance) = (0.0, 0);
        for &h in &in_use {
            let psus = &self.stratum_psus[h];
            let n_h = psus.len() as f64;
            if psus.len() > 1 {
                let mean = psus.iter().map(|&p| psu_totals[p]).sum::<f64>() / n_h;
                let squares: f64 = psus.iter().map(|&p| (psu_totals[p] - mean).powi(2)).sum();
                variance += squares * n_h / (n_h - 1.0);
            } else {
                let stratum = self.strata[h].clone();
                match self.lonely {
                    LonelyPsu::Fail => return Err(SurveyError::LonelyPsu { stratum }),
                    LonelyPsu::Average => continue,
                    // R centres the single PSU on itself: a zero that still counts as a stratum.
                    LonelyPsu::Remove | LonelyPsu::Certainty => {}
                    LonelyPsu::Adjust => variance += (psu_totals[psus[0]] - grand_mean).powi(2),
                }
            }
            strata_with_variance += 1;
        }
        if strata_with_variance == 0 {
            return Err(SurveyError::NoStratumWithVariance);
        }
        Ok(variance * in_use.len() as f64 / strata_with_variance as f64)
    }
}

/// The linearisation score `z_k` of each row, by row index.
type Score<'a> = &'a dyn Fn(usize) -> f64;

/// A variable as passed in, with its name for error messages.
type Variable<'a> = (&'static str, &'a [Option<f64>]);

/// The rows an estimate uses: design weights are positive, so a row is in use exactly when its
/// weight here is. `degf` is the domain's, whatever is missing (see [`Estimate::degf`]).
struct Rows {
    degf: usize,
    weights: Vec<f64>,
}

/// The values with missing ones as zero; their rows carry zero weight anyway.
fn present(values: &[Option<f64>]) -> Vec<f64> {
    values.iter().map(|v| v.unwrap_or(0.0)).collect()
}

fn dot(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(a, b)| a * b).sum()
}

/// `svyciprop(method = "logit")` fits `svyglm(y ~ 1, family = quasibinomial)`, whose sandwich SE
/// for the intercept alone is exactly SE(p)/(p(1−p)); `confint.svyglm` then uses
/// `qt(0.975, df = degf(design))`, not the normal quantile, and the ends are back-transformed.
fn logit_interval(p: f64, se: f64, degf: usize) -> Option<(f64, f64)> {
    if !(p > 0.0 && p < 1.0) || degf == 0 {
        return None;
    }
    let centre = (p / (1.0 - p)).ln();
    let half_width = student_t_quantile(0.975, degf) * se / (p * (1.0 - p));
    let expit = |eta: f64| 1.0 / (1.0 + (-eta).exp());
    Some((expit(centre - half_width), expit(centre + half_width)))
}

/// Quantile of Student's t with `df` (≥ 1) degrees of freedom, for `p` in (0, 1): the exact CDF
/// for integer `df` (design degrees of freedom always are) inverted by bisection to the last bit.
pub fn student_t_quantile(p: f64, df: usize) -> f64 {
    assert!(p > 0.0 && p < 1.0 && df > 0, "need 0 < p < 1 and df >= 1");
    if p < 0.5 {
        return -student_t_quantile(1.0 - p, df);
    }
    let (mut low, mut high) = (0.0_f64, 1.0_f64);
    while student_t_cdf(high, df) < p {
        (low, high) = (high, 2.0 * high);
    }
    let mut middle = 0.5 * (low + high);
    while low < middle && middle < high {
        let below = student_t_cdf(middle, df) < p;
        (low, high) = if below { (middle, high) } else { (low, middle) };
        middle = 0.5 * (low + high);
    }
    middle
}

/// P(T ≤ t) for t ≥ 0 from the finite series of Abramowitz & Stegun 26.7.3–4, with
/// θ = atan(t/√df): exact up to rounding, in O(df) terms, with no gamma function.
fn student_t_cdf(t: f64, df: usize) -> f64 {
    let theta = (t / (df as f64).sqrt()).atan();
    let cos_squared = theta.cos().powi(2);
    let odd = df % 2 == 1;
    // Odd df: cosθ[1 + (2/3)cos²θ + (2·4)/(3·5)cos⁴θ + …]; even: 1 + (1/2)cos²θ + (1·3)/(2·4)cos⁴θ
    // + …; the factors are (k−1)/k for k = 3, 5, … or 2, 4, … up to df − 2.
    let mut term = if odd { theta.cos() } else { 1.0 };
    let mut sum = if df == 1 { 0.0 } else { term };
    let mut k = if odd { 3 } else { 2 };
    while k + 2 <= df && term > 1e-17 * sum {
        term *= cos_squared * (k - 1) as f64 / k as f64;
        sum += term;
        k += 2;
    }
    let two_sided = if odd {
        std::f64::consts::FRAC_2_PI * (theta + theta.sin() * sum)
    } else {
        theta.sin() * sum
    };
    0.5 + 0.5 * two_sided
}

#[cfg(test)]
mod tests {
    use super::LonelyPsu::*;
    use super::*;

    /// DOMAIN.md §5: (stratum, psu, w, y, badante, hours).
    #[rustfmt::skip]
    const SAMPLE: [(u8, u8, f64, f64, u8, f64); 14] = [
        (1, 1, 10.0, 3.0, 1, 54.0), (1, 1, 10.0, 5.0, 1, 40.0), (1, 2, 12.0, 2.0, 0, 20.0),
        (1, 2, 12.0, 4.0, 1, 54.0), (1, 3, 8.0, 6.0, 0, 25.0), (2, 4, 20.0, 1.0, 0, 10.0),
        (2, 4, 20.0, 2.0, 0, 12.0), (2, 5, 15.0, 3.0, 1, 40.0), (2, 5, 15.0, 7.0, 1, 54.0),
        (3, 6, 5.0, 2.0, 0, 30.0), (3, 6, 5.0, 8.0, 1, 54.0), (3, 7, 6.0, 5.0, 1, 45.0),
        (3, 7, 6.0, 4.0, 0, 20.0), (3, 8, 7.0, 6.0, 1, 54.0),
    ];

    type Column = Vec<Option<f64>>;

    fn unit(stratum: impl ToString, psu: impl ToString, weight: f64) -> DesignRow {
        let (stratum, psu) = (stratum.to_string(), psu.to_string());
        DesignRow {
            stratum,
            psu,
            weight,
        }
    }

    /// The sample without the given PSUs: its design, y, badante (as a domain) and hours.
    fn sample(without: &[u8], lonely: LonelyPsu) -> (Design, Column, Vec<bool>, Column) {
        let rows: Vec<_> = SAMPLE.iter().filter(|r| !without.contains(&r.1)).collect();
        let units: Vec<_> = rows.iter().map(|r| unit(r.0, r.1, r.2)).collect();
        let design = Design::new(&units, lonely).unwrap();
        let (y, hours) = rows.iter().map(|r| (Some(r.3), Some(r.5))).unzip();
        (design, y, rows.iter().map(|r| r.4 == 1).collect(), hours)
    }

    /// Within 1e-6 relative, or half the sixth decimal DOMAIN.md prints (0.2486324 is 0.248632).
    fn check(result: SurveyResult<Estimate>, estimate: f64, se: f64) -> Estimate {
        let e = result.unwrap();
        for (actual, expected) in [(e.estimate, estimate), (e.se, se)] {
            let off = (actual - expected).abs();
            assert!(
                off <= (1e-6 * expected).max(5e-7),
                "{actual} is not {expected}"
            );
        }
        e
    }

    #[test]
    fn test_vectors_match_r() {
        let (d, y, badante, hours) = sample(&[], Fail);
        assert_eq!(d.degrees_of_freedom(), 5);
        let mean = check(d.mean(&y, None), 3.682119, 0.864904);
        assert_eq!((mean.n, mean.degf), (14, 5));
        assert_eq!(mean.ci_high, mean.estimate + Z_975 * mean.se);
        check(d.total(&y, None), 556.0, 95.0999);
        let flags: Vec<_> = badante.iter().map(|&b| Some(b)).collect();
        check(d.proportion(&flags, None), 0.529801, 0.248632);
        let carer: Column = flags.iter().map(|b| b.map(f64::from)).collect();
        check(d.ratio(&hours, &carer, None), 63.325, 13.28983);
        let carers = check(d.mean(&y, Some(&badante)), 4.875, 0.253987);
        assert_eq!((carers.n, carers.degf), (8, 3)); // PSUs 1, 2, 5, 6, 7, 8 in 3 strata
        let others: Vec<bool> = badante.iter().map(|b| !b).collect();
        check(d.mean(&y, Some(&others)), 2.338028, 0.666056);
    }

    #[test]
    fn lonely_psu_options_match_r() -> SurveyResult<()> {
        let options = [Remove, Certainty, Adjust, Average];
        for (option, se) in options
            .into_iter()
            .zip([0.221980, 0.221980, 0.652279, 0.271869])
        {
            let (d, y, ..) = sample(&[5], option);
            check(d.mean(&y, None), 3.355372, se);
        }
        let (d, y, ..) = sample(&[5], Fail);
        let error = d.mean(&y, None).unwrap_err();
        assert_eq!(error.to_string(), "Stratum (2) has only one PSU");
        // A domain outside the lonely stratum never reaches it, as in R.
        let outside: Vec<bool> = d.row_psu.iter().map(|&p| d.psu_stratum[p] != 1).collect();
        d.mean(&y, Some(&outside))?;
        // A total under Adjust: PSU 4, alone in stratum 2 with 20·1 + 20·2 = 60, is centred on
        // the mean of the 7 PSU totals instead of being left out.
        let ((remove, y, ..), (adjust, ..)) = (sample(&[5], Remove), sample(&[5], Adjust));
        let (removed, adjusted) = (remove.total(&y, None)?, adjust.total(&y, None)?);
        let expected = removed.se.powi(2) + (60.0 - removed.estimate / 7.0).powi(2);
        assert!((adjusted.se.powi(2) / expected - 1.0).abs() < 1e-12);
        Ok(())
    }

    #[test]
    fn missing_values_act_as_out_of_domain() {
        let (d, y, _, hours) = sample(&[], Fail);
        let mut gaps = y.clone();
        (gaps[2], gaps[9]) = (None, None);
        let known: Vec<bool> = gaps.iter().map(Option::is_some).collect();
        let known = Some(known.as_slice());
        assert_eq!(d.mean(&gaps, None), d.mean(&y, known));
        assert_eq!(d.total(&gaps, None), d.total(&y, known));
        assert_eq!(d.ratio(&hours, &gaps, None), d.ratio(&hours, &y, known));
        assert_eq!(d.mean(&gaps, None).unwrap().n, 12);
    }

    #[test]
    fn invalid_designs_and_degenerate_estimates_are_errors() {
        let nested = Design::new(&[unit("a", 1, 1.0), unit("b", 1, 1.0)], Fail).unwrap_err();
        assert_eq!(nested.to_string(), "PSU (1) occurs in strata (a) and (b)");
        assert_eq!(Design::new(&[], Fail).unwrap_err(), SurveyError::NoRows);
        for weight in [0.0, -1.0, f64::NAN, f64::INFINITY] {
            let error = Design::new(&[unit("a", 1, weight)], Fail).unwrap_err();
            assert!(matches!(error, SurveyError::InvalidWeight { row: 0, .. }));
        }
        let (d, y, ..) = sample(&[], Fail);
        let empty = Err(SurveyError::EmptyDomain);
        assert_eq!(d.mean(&y, Some(&[false; 14])), empty);
        assert_eq!(d.total(&[None; 14], None), empty);
        let zero = Err(SurveyError::ZeroDenominator);
        assert_eq!(d.ratio(&y, &[Some(0.0); 14], None), zero);
        let short = d.mean(&y[1..], None).unwrap_err().to_string();
        assert_eq!(short, "y has 13 entries, not one per design row");
        let mut nan = y.clone();
        nan[3] = Some(f64::NAN);
        let nan = d.total(&nan, None).unwrap_err().to_string();
        assert_eq!(nan, "y is not finite in row 3");
        let lonely = Design::new(&[unit("a", 1, 2.0)], Average).unwrap();
        let error = lonely.mean(&[Some(1.0)], None).unwrap_err();
        assert_eq!(error, SurveyError::NoStratumWithVariance);
    }

    #[test]
    fn reliability_flags_small_or_imprecise_estimates() -> SurveyResult<()> {
        let (d, y, ..) = sample(&[], Fail);
        let base = d.mean(&y, None)?;
        let flagged = |rule: &Reliability, n, cv| {
            let mut estimate = base.clone();
            (estimate.n, estimate.cv) = (n, cv);
            rule.is_low(&estimate)
        };
        let rule = Reliability::default();
        assert!(!flagged(&rule, 30, 0.33) && flagged(&rule, 29, 0.1) && flagged(&rule, 99, 0.34));
        let mut strict = rule;
        (strict.min_n, strict.max_cv) = (50, 0.2);
        assert!(flagged(&strict, 40, 0.1) && flagged(&strict, 60, 0.25));
        assert!(!flagged(&strict, 60, 0.2));
        let zero = d.total(&[Some(0.0); 14], None)?;
        assert!(zero.cv.is_infinite() && rule.is_low(&zero));
        Ok(())
    }

    #[test]
    fn logit_interval_follows_svyciprop() -> SurveyResult<()> {
        let (d, y, badante, _) = sample(&[], Fail);
        let flags: Vec<_> = badante.iter().map(|&b| Some(b)).collect();
        let p = d.proportion(&flags, None)?;
        let (low, high) = p.logit_ci.unwrap();
        assert!(0.0 < low && low < p.estimate && p.estimate < high && high < 1.0);
        // By hand, with qt(0.975, 5) = 2.570582.
        let logit = (p.estimate / (1.0 - p.estimate)).ln();
        let half_width = 2.570582 * p.se / (p.estimate * (1.0 - p.estimate));
        let expit = |eta: f64| 1.0 / (1.0 + (-eta).exp());
        assert!((low - expit(logit - half_width)).abs() < 1e-6);
        assert!((high - expit(logit + half_width)).abs() < 1e-6);
        assert_eq!(d.mean(&y, None)?.logit_ci, None);
        assert_eq!(d.proportion(&[Some(true); 14], None)?.logit_ci, None);
        Ok(())
    }

    #[test]
    fn student_t_quantiles() {
        for (df, expected) in [(5, 2.570582), (10, 2.228139), (30, 2.042272)] {
            assert!((student_t_quantile(0.975, df) - expected).abs() < 5e-7);
        }
        // Closed forms: df = 1 is Cauchy; df = 2 has t = (2p − 1)/√(2p(1 − p)).
        let cauchy = (0.475 * std::f64::consts::PI).tan();
        assert!((student_t_quantile(0.025, 1) + cauchy).abs() < 1e-10);
        let two = 0.95 / (2.0 * 0.975 * 0.025_f64).sqrt();
        assert!((student_t_quantile(0.975, 2) - two).abs() < 1e-10);
        // Large df tends to the normal: t ≈ z + (z³ + z)/(4 df).
        let large = Z_975 + (Z_975.powi(3) + Z_975) / 4e5;
        assert!((student_t_quantile(0.975, 100_000) - large).abs() < 1e-8);
    }
}
