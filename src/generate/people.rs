//! Workers, employer households and their contracts: a yearly stock of
//! workers that follows INPS's series, with entries, exits and hires.
//!
//! Owns the people and their employment histories. It must not decide what
//! desks do (see `services`) or sample surveys (see `survey`).

mod tables;

use rand::Rng as _;
use rand_distr::{Distribution, Exp};

use super::calibration::*;
use super::random::{chance, day_in_year, days, pick, stream, year_of, Categorical};
use super::world::World;

/// Citizenship index: 0 is Italy, `i + 1` is `FOREIGN_CITIZENSHIPS[i]`.
pub type Citizenship = u8;

pub fn citizenship_code(c: Citizenship) -> &'static str {
    if c == 0 {
        "IT"
    } else {
        FOREIGN_CITIZENSHIPS[c as usize - 1].0
    }
}

pub fn citizenship_group(c: Citizenship) -> &'static str {
    match c {
        0 => "IT",
        c if FOREIGN_CITIZENSHIPS[c as usize - 1].2 => "EU",
        _ => "NON_EU",
    }
}

pub(super) fn origin_area(c: Citizenship) -> &'static str {
    if c == 0 {
        "italy"
    } else {
        FOREIGN_CITIZENSHIPS[c as usize - 1].3
    }
}

/// The share of carers among Italian workers that makes the overall share
/// of carers equal INPS's, given each foreign citizenship's own share.
fn italian_carer_share() -> f64 {
    let foreign: f64 = FOREIGN_CITIZENSHIPS.iter().map(|c| c.1 * c.4).sum::<f64>() * SHARE_FOREIGN;
    ((SHARE_CARERS - foreign) / (1.0 - SHARE_FOREIGN)).clamp(0.0, 1.0)
}

/// A worker's stable traits; the registry's other columns are drawn when the
/// batch is built.
#[derive(Debug, Clone)]
pub struct Worker {
    pub first_year: i32,
    pub last_year: i32,
    pub registered_on: i32,
    pub municipality: u32,
    pub female: bool,
    pub birth_year: i32,
    pub citizenship: Citizenship,
    pub carer: bool,
    pub in_registry: bool,
}

impl Worker {
    pub fn active_in(&self, year: i32) -> bool {
        (self.first_year..=self.last_year).contains(&year)
    }
}

/// Contracts as columns, ready to become Arrow arrays.
#[derive(Debug, Default)]
pub struct Contracts {
    pub worker: Vec<u32>,
    pub household: Vec<u32>,
    pub start: Vec<i32>,
    pub end: Vec<Option<i32>>,
    pub level: Vec<&'static str>,
    pub live_in: Vec<bool>,
    pub weekly_hours: Vec<i32>,
    pub pay: Vec<f64>,
    pub declared: Vec<bool>,
    pub end_reason: Vec<Option<&'static str>>,
}

impl Contracts {
    pub fn len(&self) -> usize {
        self.worker.len()
    }
}

/// An employer household and the person it cares for.
#[derive(Debug, Clone)]
pub struct Household {
    pub municipality: u32,
    pub recipient_birth_year: i32,
    pub recipient_female: bool,
    pub dependency: &'static str,
    /// First year with a contract, if any.
    pub first_contract_year: Option<i32>,
    /// Bit `y - FIRST_YEAR` set when the household employs someone in year y.
    pub employing_years: u16,
}

#[derive(Debug)]
pub struct Population {
    pub workers: Vec<Worker>,
    pub households: Vec<Household>,
    pub contracts: Contracts,
}

impl Population {
    pub fn simulate(world: &World, seed: u64) -> Self {
        let workers = simulate_workers(world, seed);
        let (mut households, households_by_municipality) =
            simulate_households(world, &workers, seed);
        let contracts =
            simulate_contracts(&workers, &mut households, &households_by_municipality, seed);
        Population {
            workers,
            households,
            contracts,
        }
    }

    pub fn worker_id(index: u32) -> String {
        format!("W{:08}", index + 1)
    }

    pub fn household_id(index: u32) -> String {
        format!("H{:08}", index + 1)
    }
}

fn simulate_workers(world: &World, seed: u64) -> Vec<Worker> {
    let mut rng = stream(seed, "workers");
    let citizenships = Categorical::new(
        std::iter::once(1.0 - SHARE_FOREIGN)
            .chain(FOREIGN_CITIZENSHIPS.iter().map(|c| c.1 * SHARE_FOREIGN)),
    );
    let ages = Categorical::new(AGE_CLASSES.iter().map(|a| a.2));
    let italian_carers = italian_carer_share();
    let mut workers = Vec::new();
    let mut expected_stock = 0.0;
    for (offset, year) in World::years().enumerate() {
        let target = world.workers_per_year[offset];
        let entrants = (target - expected_stock * YEARLY_RETENTION)
            .max(target * 0.05)
            .round() as usize;
        expected_stock = expected_stock * YEARLY_RETENTION + entrants as f64;
        for _ in 0..entrants {
            let mut last_year = year;
            while last_year < LAST_YEAR && chance(&mut rng, YEARLY_RETENTION) {
                last_year += 1;
            }
            let citizenship = citizenships.sample(&mut rng) as Citizenship;
            let carer_share = if citizenship == 0 {
                italian_carers
            } else {
                FOREIGN_CITIZENSHIPS[citizenship as usize - 1].4
            };
            let carer = chance(&mut rng, carer_share);
            let places = if carer {
                &world.carer_places
            } else {
                &world.helper_places
            };
            let (low, high, _) = AGE_CLASSES[ages.sample(&mut rng)];
            let age_in_2024 = rng.random_range(low..=high);
            let registered_on = day_in_year(&mut rng, year, i32::MIN);
            workers.push(Worker {
                first_year: year,
                last_year,
                registered_on,
                municipality: places.sample(&mut rng) as u32,
                female: chance(&mut rng, SHARE_WOMEN),
                birth_year: (2024 - age_in_2024).min(year - 18),
                citizenship,
                carer,
                in_registry: chance(&mut rng, 0.12),
            });
        }
    }
    workers
}

fn simulate_households(
    world: &World,
    workers: &[Worker],
    seed: u64,
) -> (Vec<Household>, Vec<(u32, u32)>) {
    let mut rng = stream(seed, "households");
    let mut workers_in = vec![0u32; world.municipalities.len()];
    for w in workers {
        workers_in[w.municipality as usize] += 1;
    }
    let mut households = Vec::new();
    let mut ranges = Vec::with_capacity(workers_in.len());
    for (municipality, count) in workers_in.iter().enumerate() {
        let len = ((*count as f64 * EMPLOYERS_PER_WORKER).round() as u32).max(1);
        ranges.push((households.len() as u32, len));
        for _ in 0..len {
            let age = pick(
                &mut rng,
                &[("60", 0.05), ("65", 0.30), ("80", 0.45), ("90", 0.20)],
            );
            let low: i32 = age.parse().expect("numeric age class");
            let age_in_2024 = low
                + rng.random_range(
                    0..if low == 90 {
                        12
                    } else if low == 65 {
                        15
                    } else {
                        10
                    },
                );
            households.push(Household {
                municipality: municipality as u32,
                recipient_birth_year: 2024 - age_in_2024,
                recipient_female: chance(&mut rng, 0.68),
                dependency: pick(
                    &mut rng,
                    &[
                        ("non_self_sufficient", 0.55),
                        ("partly_dependent", 0.33),
                        ("self_sufficient", 0.12),
                    ],
                ),
                first_contract_year: None,
                employing_years: 0,
            });
        }
    }
    (households, ranges)
}

fn simulate_contracts(
    workers: &[Worker],
    households: &mut [Household],
    ranges: &[(u32, u32)],
    seed: u64,
) -> Contracts {
    let mut rng = stream(seed, "contracts");
    let live_in_hours = WEEKLY_HOURS_CLASSES.last().expect("hours classes");
    let live_in_share = SHARE_CARERS * LIVE_IN_CARERS + (1.0 - SHARE_CARERS) * LIVE_IN_HELPERS;
    // Hours of contracts that are not live-in, so that all contracts together
    // follow the INPS classes: live-in ones all fall in the top class.
    let other_hours = Categorical::new(WEEKLY_HOURS_CLASSES.iter().enumerate().map(|(i, c)| {
        if i + 1 == WEEKLY_HOURS_CLASSES.len() {
            c.2 - live_in_share
        } else {
            c.2
        }
    }));
    let carer_duration = Exp::new(1.0 / 600.0).expect("positive rate");
    let helper_duration = Exp::new(1.0 / 900.0).expect("positive rate");
    let observed_until = days(LAST_YEAR, 12, 31);
    let mut c = Contracts::default();
    for year in World::years() {
        let minimum_index = (1.0 + CCNL_YEARLY_INDEXATION).powi(year - 2024);
        for (index, w) in workers.iter().enumerate() {
            if !w.active_in(year) {
                continue;
            }
            let count =
                1 + usize::from(chance(&mut rng, 0.28)) + usize::from(chance(&mut rng, 0.06));
            for _ in 0..count {
                let (start_range, len) = ranges[w.municipality as usize];
                let household = start_range + rng.random_range(0..len);
                let not_before = if year == w.first_year {
                    w.registered_on
                } else {
                    i32::MIN
                };
                let start = day_in_year(&mut rng, year, not_before);
                let live_in = chance(
                    &mut rng,
                    if w.carer {
                        LIVE_IN_CARERS
                    } else {
                        LIVE_IN_HELPERS
                    },
                );
                let (low, high, _) = if live_in {
                    *live_in_hours
                } else {
                    WEEKLY_HOURS_CLASSES[other_hours.sample(&mut rng)]
                };
                let hours = rng.random_range(low..=if live_in { high } else { high.min(40) });
                let level = pick(
                    &mut rng,
                    if w.carer {
                        LEVELS_CARERS
                    } else {
                        LEVELS_HELPERS
                    },
                );
                let (_, monthly, hourly) = CCNL_MINIMA_2024
                    .iter()
                    .find(|l| l.0 == level)
                    .expect("level in table");
                let minimum = if live_in { *monthly } else { *hourly } * minimum_index;
                let declared = chance(&mut rng, DECLARED_CONTRACTS);
                let factor = if !declared && chance(&mut rng, 0.3) {
                    rng.random_range(0.8..0.98)
                } else {
                    1.0 + rng.random::<f64>().powi(2) * 0.3
                };
                let duration = if w.carer {
                    carer_duration.sample(&mut rng)
                } else {
                    helper_duration.sample(&mut rng)
                };
                let end = start + 1 + duration as i32;
                let (end, reason) = if end > observed_until {
                    (None, None)
                } else {
                    let reasons: &[(&str, f64)] = if w.carer {
                        &[
                            ("recipient_death", 0.35),
                            ("recipient_to_care_home", 0.15),
                            ("resignation", 0.25),
                            ("dismissal", 0.10),
                            ("mutual_agreement", 0.10),
                            ("fixed_term_end", 0.05),
                        ]
                    } else {
                        &[
                            ("resignation", 0.40),
                            ("dismissal", 0.25),
                            ("mutual_agreement", 0.20),
                            ("fixed_term_end", 0.10),
                            ("recipient_death", 0.05),
                        ]
                    };
                    (Some(end), Some(pick(&mut rng, reasons)))
                };
                let h = &mut households[household as usize];
                h.first_contract_year = Some(h.first_contract_year.map_or(year, |y| y.min(year)));
                let last = end.map_or(LAST_YEAR, year_of);
                for y in year..=last {
                    h.employing_years |= 1 << (y - FIRST_YEAR);
                }
                c.worker.push(index as u32);
                c.household.push(household);
                c.start.push(start);
                c.end.push(end);
                c.level.push(level);
                c.live_in.push(live_in);
                c.weekly_hours.push(hours);
                c.pay.push((minimum * factor * 100.0).round() / 100.0);
                c.declared.push(declared);
                c.end_reason.push(reason);
            }
        }
    }
    c
}
