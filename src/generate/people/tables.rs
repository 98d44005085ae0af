//! The people tables as Arrow batches: workers (with the registry's
//! remaining columns, drawn here from their own stream), households and
//! contracts.
//!
//! Owns the columns of those three tables; the simulation that decides who
//! works where and when is in `people`. It must not change the simulation.

use std::fmt::Write as _;
use std::sync::Arc;

use arrow::array::{
    ArrayRef, BooleanArray, Date32Array, Float64Array, Int32Array, StringArray, StringBuilder,
};
use arrow::record_batch::RecordBatch;
use rand::Rng as _;

use super::{citizenship_code, citizenship_group, origin_area, Population};
use crate::generate::calibration::LAST_YEAR;
use crate::generate::random::{chance, pick, stream, year_of};
use crate::generate::services::Services;
use crate::generate::world::World;
use crate::generate::{batch, GenerateError};

impl Population {
    pub fn workers_batch(&self, world: &World, seed: u64) -> Result<RecordBatch, GenerateError> {
        let mut rng = stream(seed, "workers.registry");
        let n = self.workers.len();
        let mut desk = StringBuilder::with_capacity(n, n * 6);
        let mut italian_level = StringBuilder::with_capacity(n, n * 2);
        let mut skills = StringBuilder::with_capacity(n, n * 24);
        let (mut training, mut certified, mut experience, mut live_in_ok, mut hours, mut status) = (
            Vec::with_capacity(n),
            Vec::with_capacity(n),
            Vec::with_capacity(n),
            Vec::with_capacity(n),
            Vec::with_capacity(n),
            Vec::with_capacity(n),
        );
        let mut buffer = String::new();
        for w in &self.workers {
            let district = world.municipalities[w.municipality as usize].district;
            if w.in_registry {
                desk.append_value(World::desk_id(world.registry_desk(district)));
            } else {
                desk.append_null();
            }
            if w.citizenship == 0 {
                italian_level.append_value("native");
            } else if chance(&mut rng, 0.1) {
                italian_level.append_null();
            } else {
                italian_level.append_value(pick(
                    &mut rng,
                    &[
                        ("A1", 0.08),
                        ("A2", 0.22),
                        ("B1", 0.35),
                        ("B2", 0.25),
                        ("C1", 0.08),
                        ("C2", 0.02),
                    ],
                ));
            }
            let trained = chance(&mut rng, if w.in_registry { 0.6 } else { 0.3 });
            let hours_trained = if trained {
                rng.random_range(16..=600)
            } else {
                0
            };
            training.push(hours_trained);
            certified.push(hours_trained >= 300 && chance(&mut rng, 0.7));
            experience.push(
                rng.random_range(0..=25)
                    .min((2024 - w.birth_year - 18).max(0)),
            );
            live_in_ok.push(chance(&mut rng, if w.carer { 0.55 } else { 0.1 }));
            hours.push(rng.random_range(10..=if w.carer { 54 } else { 40 }));
            buffer.clear();
            let pool: &[&str] = if w.carer {
                &[
                    "personal_care",
                    "mobility",
                    "dementia_care",
                    "night_care",
                    "cooking",
                ]
            } else {
                &["cleaning", "cooking", "childcare", "driving"]
            };
            for skill in pool {
                if chance(&mut rng, 0.45) {
                    if !buffer.is_empty() {
                        buffer.push(';');
                    }
                    buffer.push_str(skill);
                }
            }
            if buffer.is_empty() {
                skills.append_null()
            } else {
                skills.append_value(&buffer)
            }
            status.push(if w.last_year < LAST_YEAR {
                "left"
            } else {
                pick(
                    &mut rng,
                    &[("employed", 0.8), ("available", 0.17), ("suspended", 0.03)],
                )
            });
        }
        let workers = &self.workers;
        batch(
            "workers",
            vec![
                Arc::new(StringArray::from_iter_values(
                    (0..n as u32).map(Self::worker_id),
                )),
                Arc::new(Date32Array::from_iter_values(
                    workers.iter().map(|w| w.registered_on),
                )),
                Arc::new(BooleanArray::from_iter(
                    workers.iter().map(|w| Some(w.in_registry)),
                )),
                Arc::new(desk.finish()),
                Arc::new(StringArray::from_iter_values(workers.iter().map(|w| {
                    world.municipalities[w.municipality as usize]
                        .istat_code
                        .as_str()
                }))),
                Arc::new(StringArray::from_iter_values(workers.iter().map(|w| {
                    if w.female {
                        "F"
                    } else {
                        "M"
                    }
                }))),
                Arc::new(Int32Array::from_iter_values(
                    workers.iter().map(|w| w.birth_year),
                )),
                Arc::new(StringArray::from_iter_values(
                    workers.iter().map(|w| citizenship_code(w.citizenship)),
                )),
                Arc::new(StringArray::from_iter_values(
                    workers.iter().map(|w| citizenship_group(w.citizenship)),
                )),
                Arc::new(StringArray::from_iter_values(
                    workers.iter().map(|w| origin_area(w.citizenship)),
                )),
                Arc::new(StringArray::from_iter_values(workers.iter().map(|w| {
                    if w.carer {
                        "carer"
                    } else {
                        "domestic_helper"
                    }
                }))),
                Arc::new(italian_level.finish()),
                Arc::new(Int32Array::from(training)),
                Arc::new(BooleanArray::from(certified)),
                Arc::new(Int32Array::from(experience)),
                Arc::new(BooleanArray::from(live_in_ok)),
                Arc::new(Int32Array::from(hours)),
                Arc::new(skills.finish()),
                Arc::new(StringArray::from(status)),
                Arc::new(Int32Array::from_iter_values(
                    workers.iter().map(|w| year_of(w.registered_on)),
                )),
            ],
        )
    }

    pub fn households_batch(
        &self,
        world: &World,
        services: &Services,
    ) -> Result<RecordBatch, GenerateError> {
        let households = &self.households;
        let first_year = |i: usize| {
            let by_request = services.household_first_request_year(i as u32);
            match (households[i].first_contract_year, by_request) {
                (Some(a), Some(b)) => a.min(b),
                (Some(a), None) | (None, Some(a)) => a,
                (None, None) => LAST_YEAR,
            }
        };
        batch(
            "households",
            vec![
                Arc::new(StringArray::from_iter_values(
                    (0..households.len() as u32).map(Self::household_id),
                )),
                Arc::new(StringArray::from_iter_values(households.iter().map(|h| {
                    world.municipalities[h.municipality as usize]
                        .istat_code
                        .as_str()
                }))),
                Arc::new(Int32Array::from_iter_values(
                    households.iter().map(|h| h.recipient_birth_year),
                )),
                Arc::new(StringArray::from_iter_values(households.iter().map(|h| {
                    if h.recipient_female {
                        "F"
                    } else {
                        "M"
                    }
                }))),
                Arc::new(StringArray::from_iter_values(
                    households.iter().map(|h| h.dependency),
                )),
                Arc::new(Int32Array::from_iter_values(
                    (0..households.len()).map(first_year),
                )),
            ],
        )
    }

    pub fn contracts_batch(
        &self,
        world: &World,
        services: &Services,
    ) -> Result<RecordBatch, GenerateError> {
        let c = &self.contracts;
        let n = c.len();
        let mut ids = StringBuilder::with_capacity(n, n * 10);
        let mut workers = StringBuilder::with_capacity(n, n * 9);
        let mut households = StringBuilder::with_capacity(n, n * 9);
        let mut requests = StringBuilder::with_capacity(n, n);
        let mut buffer = String::new();
        for i in 0..n {
            buffer.clear();
            write!(buffer, "C{:09}", i + 1).expect("write to string");
            ids.append_value(&buffer);
            buffer.clear();
            write!(buffer, "W{:08}", c.worker[i] + 1).expect("write to string");
            workers.append_value(&buffer);
            buffer.clear();
            write!(buffer, "H{:08}", c.household[i] + 1).expect("write to string");
            households.append_value(&buffer);
            match services.request_of_contract(i) {
                Some(request) => requests.append_value(Services::request_id(request)),
                None => requests.append_null(),
            }
        }
        let columns: Vec<ArrayRef> = vec![
            Arc::new(ids.finish()),
            Arc::new(workers.finish()),
            Arc::new(households.finish()),
            Arc::new(requests.finish()),
            Arc::new(StringArray::from_iter_values(c.worker.iter().map(|w| {
                world.municipalities[self.workers[*w as usize].municipality as usize]
                    .istat_code
                    .as_str()
            }))),
            Arc::new(Date32Array::from(c.start.clone())),
            Arc::new(Date32Array::from(c.end.clone())),
            Arc::new(StringArray::from_iter_values(c.worker.iter().map(|w| {
                if self.workers[*w as usize].carer {
                    "carer"
                } else {
                    "domestic_helper"
                }
            }))),
            Arc::new(StringArray::from(c.level.clone())),
            Arc::new(BooleanArray::from(c.live_in.clone())),
            Arc::new(Int32Array::from(c.weekly_hours.clone())),
            Arc::new(StringArray::from_iter_values(c.live_in.iter().map(|l| {
                if *l {
                    "month"
                } else {
                    "hour"
                }
            }))),
            Arc::new(Float64Array::from(c.pay.clone())),
            Arc::new(BooleanArray::from(c.declared.clone())),
            Arc::new(StringArray::from(c.end_reason.clone())),
            Arc::new(Int32Array::from_iter_values(
                c.start.iter().map(|d| year_of(*d)),
            )),
        ];
        batch("contracts", columns)
    }
}
