//! The observatory's two sample surveys, of workers and of employer
//! families, drawn from the generated population as stratified two-stage
//! cluster samples: strata are districts, PSUs are municipalities drawn with
//! probability proportional to size, and up to ten respondents per PSU.
//!
//! Owns the sample design and the questionnaire items. Weights are inverse
//! inclusion probabilities, then ratio-adjusted so that each stratum's
//! weights sum to its population. It must not alter the population.

use std::collections::BTreeMap;
use std::sync::Arc;

use arrow::array::{BooleanArray, Date32Array, Float64Array, Int32Array, StringArray};
use arrow::record_batch::RecordBatch;
use rand::Rng as _;

use super::calibration::{
    FIRST_YEAR, LIVE_IN_CARERS, LIVE_IN_HELPERS, SURVEY_PARTLY_DECLARED, SURVEY_UNDECLARED,
};
use super::people::{citizenship_code, citizenship_group, Population};
use super::random::{chance, day_in_year, pick, stream, year_of, Rng};
use super::world::World;
use super::{batch, GenerateError, Scale};

/// Survey waves (years).
pub const WAVES: &[i32] = &[2022, 2025];
const PER_PSU: usize = 10;

fn sample_size(scale: Scale) -> usize {
    match scale {
        Scale::Province => 600,
        Scale::Region => 2_000,
        Scale::National => 6_000,
    }
}

/// One respondent: the sampled unit's index, its PSU and stratum, its weight.
struct Draw {
    unit: u32,
    stratum: usize,
    psu: u32,
    weight: f64,
}

/// Draws a stratified two-stage sample of `units`, each given as
/// (unit index, stratum, PSU).
fn draw(units: &[(u32, usize, u32)], total: usize, rng: &mut Rng) -> Vec<Draw> {
    let mut strata: BTreeMap<usize, BTreeMap<u32, Vec<u32>>> = BTreeMap::new();
    for &(unit, stratum, psu) in units {
        strata
            .entry(stratum)
            .or_default()
            .entry(psu)
            .or_default()
            .push(unit);
    }
    let population = units.len() as f64;
    let mut out = Vec::new();
    for (stratum, psus) in strata {
        let size: f64 = psus.values().map(|u| u.len() as f64).sum();
        let wanted_psus =
            ((total as f64 * size / population / PER_PSU as f64).round() as usize).max(2);
        let chosen_psus = wanted_psus.min(psus.len());
        // Efraimidis–Spirakis: without replacement, probability ∝ size.
        let mut keyed: Vec<(f64, u32)> = psus
            .iter()
            .map(|(psu, members)| (rng.random::<f64>().powf(1.0 / members.len() as f64), *psu))
            .collect();
        keyed.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
        let first = out.len();
        for &(_, psu) in keyed.iter().take(chosen_psus) {
            let members = &psus[&psu];
            let inclusion = (chosen_psus as f64 * members.len() as f64 / size).min(1.0);
            let k = PER_PSU.min(members.len());
            let mut pool = members.clone();
            for i in 0..k {
                let j = rng.random_range(i..pool.len());
                pool.swap(i, j);
                out.push(Draw {
                    unit: pool[i],
                    stratum,
                    psu,
                    weight: members.len() as f64 / k as f64 / inclusion,
                });
            }
        }
        let drawn: f64 = out[first..].iter().map(|d| d.weight).sum();
        for d in &mut out[first..] {
            d.weight *= size / drawn;
        }
    }
    out
}

fn contract_status(rng: &mut Rng) -> &'static str {
    pick(
        rng,
        &[
            ("undeclared", SURVEY_UNDECLARED),
            ("partly_declared", SURVEY_PARTLY_DECLARED),
            ("declared", 1.0 - SURVEY_UNDECLARED - SURVEY_PARTLY_DECLARED),
        ],
    )
}

pub fn workers_batch(
    world: &World,
    people: &Population,
    seed: u64,
) -> Result<RecordBatch, GenerateError> {
    let mut rng = stream(seed, "survey.workers");
    let mut rows = Rows::default();
    for &wave in WAVES {
        let units: Vec<(u32, usize, u32)> = people
            .workers
            .iter()
            .enumerate()
            .filter(|(_, w)| w.active_in(wave))
            .map(|(i, w)| {
                (
                    i as u32,
                    world.municipalities[w.municipality as usize].district,
                    w.municipality,
                )
            })
            .collect();
        for d in draw(&units, sample_size(world.scale), &mut rng) {
            let w = &people.workers[d.unit as usize];
            let live_in = chance(
                &mut rng,
                if w.carer {
                    LIVE_IN_CARERS + 0.05
                } else {
                    LIVE_IN_HELPERS
                },
            );
            let status = contract_status(&mut rng);
            let foreign = w.citizenship != 0;
            rows.common(&mut rng, wave, world, &d);
            rows.text("sex", if w.female { "F" } else { "M" });
            rows.int("age", wave - w.birth_year);
            rows.text("citizenship", citizenship_code(w.citizenship));
            rows.text("citizenship_group", citizenship_group(w.citizenship));
            rows.text(
                "job_type",
                if w.carer { "carer" } else { "domestic_helper" },
            );
            rows.flag("live_in", live_in);
            rows.int(
                "weekly_hours",
                if live_in {
                    rng.random_range(50..=70)
                } else {
                    rng.random_range(6..=45)
                },
            );
            let pay = if status == "declared" {
                rng.random_range(7.0..11.0)
            } else {
                rng.random_range(5.0..9.5)
            };
            rows.float(
                "hourly_pay_eur",
                (!chance(&mut rng, 0.05)).then_some((pay * 100.0_f64).round() / 100.0),
            );
            rows.text("contract_status", status);
            rows.opt_int("years_in_italy", foreign.then(|| rng.random_range(1..=30)));
            rows.flag("children_abroad", foreign && chance(&mut rng, 0.45));
            let anxious = chance(&mut rng, if live_in { 0.35 } else { 0.22 });
            rows.opt_int(
                "gad2",
                Some(if anxious {
                    rng.random_range(3..=6)
                } else {
                    rng.random_range(0..=2)
                }),
            );
            rows.opt_int("satisfaction", Some(rng.random_range(3..=10)));
            rows.opt_text(
                "italian_level",
                Some(if foreign {
                    pick(
                        &mut rng,
                        &[("A2", 0.25), ("B1", 0.4), ("B2", 0.25), ("C1", 0.1)],
                    )
                } else {
                    "native"
                }),
            );
        }
    }
    rows.finish("survey_workers")
}

pub fn families_batch(
    world: &World,
    people: &Population,
    seed: u64,
) -> Result<RecordBatch, GenerateError> {
    let mut rng = stream(seed, "survey.families");
    let mut rows = Rows::default();
    for &wave in WAVES {
        let assistants = current_assistants(people, wave);
        let bit = 1u16 << (wave - FIRST_YEAR);
        let units: Vec<(u32, usize, u32)> = people
            .households
            .iter()
            .enumerate()
            .filter(|(_, h)| h.employing_years & bit != 0)
            .map(|(i, h)| {
                (
                    i as u32,
                    world.municipalities[h.municipality as usize].district,
                    h.municipality,
                )
            })
            .collect();
        for d in draw(&units, sample_size(world.scale), &mut rng) {
            let h = &people.households[d.unit as usize];
            let live_in = chance(
                &mut rng,
                if h.dependency == "non_self_sufficient" {
                    0.4
                } else {
                    0.1
                },
            );
            rows.common(&mut rng, wave, world, &d);
            rows.int("recipient_age", wave - h.recipient_birth_year);
            rows.text("recipient_sex", if h.recipient_female { "F" } else { "M" });
            rows.text("dependency", h.dependency);
            rows.flag("live_in", live_in);
            let assistant =
                assistants[d.unit as usize].map_or(0, |w| people.workers[w as usize].citizenship);
            rows.text("assistant_citizenship_group", citizenship_group(assistant));
            let spending = if live_in {
                rng.random_range(1_300.0_f64..2_100.0)
            } else {
                rng.random_range(250.0..1_400.0)
            };
            rows.float(
                "monthly_care_spending_eur",
                (!chance(&mut rng, 0.04)).then_some(spending.round()),
            );
            rows.text("contract_status", contract_status(&mut rng));
            let found_via = pick(
                &mut rng,
                &[
                    ("word_of_mouth", 0.55),
                    ("parish_or_association", 0.15),
                    ("agency", 0.12),
                    ("desk", 0.08),
                    ("other", 0.10),
                ],
            );
            rows.text("found_via", found_via);
            rows.flag("used_desk", found_via == "desk" || chance(&mut rng, 0.12));
            rows.opt_int("satisfaction", Some(rng.random_range(2..=10)));
        }
    }
    rows.finish("survey_families")
}

/// Column-wise accumulation of survey rows, keyed by column name so that the
/// order of the dictionary, not of the code, decides the batch's layout.
#[derive(Default)]
struct Rows {
    text: BTreeMap<&'static str, Vec<Option<String>>>,
    ints: BTreeMap<&'static str, Vec<Option<i32>>>,
    floats: BTreeMap<&'static str, Vec<Option<f64>>>,
    flags: BTreeMap<&'static str, Vec<bool>>,
    dates: BTreeMap<&'static str, Vec<i32>>,
    count: usize,
}

impl Rows {
    fn common(&mut self, rng: &mut Rng, wave: i32, world: &World, d: &Draw) {
        self.count += 1;
        let interview = day_in_year(rng, wave, i32::MIN);
        self.text("respondent_id", &format!("P{wave}{:06}", self.count));
        self.int("wave", wave);
        self.dates
            .entry("interview_date")
            .or_default()
            .push(interview);
        self.int("year", year_of(interview));
        self.text("stratum", &world.districts[d.stratum]);
        self.text("psu", &world.municipalities[d.psu as usize].istat_code);
        self.floats
            .entry("weight")
            .or_default()
            .push(Some(d.weight));
    }
    fn text(&mut self, column: &'static str, value: &str) {
        self.opt_text(column, Some(value));
    }
    fn opt_text(&mut self, column: &'static str, value: Option<&str>) {
        self.text
            .entry(column)
            .or_default()
            .push(value.map(str::to_string));
    }
    fn int(&mut self, column: &'static str, value: i32) {
        self.opt_int(column, Some(value));
    }
    fn opt_int(&mut self, column: &'static str, value: Option<i32>) {
        self.ints.entry(column).or_default().push(value);
    }
    fn float(&mut self, column: &'static str, value: Option<f64>) {
        self.floats.entry(column).or_default().push(value);
    }
    fn flag(&mut self, column: &'static str, value: bool) {
        self.flags.entry(column).or_default().push(value);
    }

    fn finish(mut self, dataset: &'static str) -> Result<RecordBatch, GenerateError> {
        let schema = super::dictionary().require(dataset)?.arrow_schema();
        let mut columns: Vec<arrow::array::ArrayRef> = Vec::new();
        for field in schema.fields() {
            let name = field.name().as_str();
            let missing = || GenerateError::Arrow {
                dataset,
                source: arrow::error::ArrowError::SchemaError(format!(
                    "no values for column `{name}`"
                )),
            };
            columns.push(match field.data_type() {
                arrow::datatypes::DataType::Utf8 => Arc::new(StringArray::from(
                    self.text.remove(name).ok_or_else(missing)?,
                )),
                arrow::datatypes::DataType::Int32 => Arc::new(Int32Array::from(
                    self.ints.remove(name).ok_or_else(missing)?,
                )),
                arrow::datatypes::DataType::Float64 => Arc::new(Float64Array::from(
                    self.floats.remove(name).ok_or_else(missing)?,
                )),
                arrow::datatypes::DataType::Boolean => Arc::new(BooleanArray::from(
                    self.flags.remove(name).ok_or_else(missing)?,
                )),
                arrow::datatypes::DataType::Date32 => Arc::new(Date32Array::from(
                    self.dates.remove(name).ok_or_else(missing)?,
                )),
                _ => return Err(missing()),
            });
        }
        batch(dataset, columns)
    }
}

/// For each household, the worker of its latest contract started by the end
/// of `wave`: the assistant a family interviewed that year describes.
fn current_assistants(people: &Population, wave: i32) -> Vec<Option<u32>> {
    let mut latest: Vec<Option<(i32, u32)>> = vec![None; people.households.len()];
    let contracts = &people.contracts;
    for i in 0..contracts.len() {
        let start = contracts.start[i];
        if year_of(start) > wave {
            continue;
        }
        let slot = &mut latest[contracts.household[i] as usize];
        if slot.is_none_or(|(s, _)| s <= start) {
            *slot = Some((start, contracts.worker[i]));
        }
    }
    latest
        .into_iter()
        .map(|l| l.map(|(_, worker)| worker))
        .collect()
}
