//! What the desks network does: family requests and matching, every service
//! given at a desk, subsidies, temporary substitutions and training courses.
//!
//! Owns the services' rows, all tied to the people and contracts of
//! `people`. It must not change the people or their contracts.

mod tables;

use std::collections::HashMap;

use rand::Rng as _;

use super::calibration::{FIRST_YEAR, LAST_YEAR};
use super::people::{citizenship_group, Population};
use super::random::{chance, day_in_year, days, pick, stream, year_of, Rng};
use super::world::World;

/// Share of contracts that a desk matched (assumption: S.T.A.F.F. aimed at
/// 280 hires a year in a province of about 3,400 workers).
const DESK_MATCHED_CONTRACTS: f64 = 0.06;
/// Share of requests that end in a hire (assumption).
const MATCHING_RATE: f64 = 0.55;

#[derive(Debug, Clone)]
struct Request {
    household: u32,
    desk: usize,
    opened: i32,
    closed: Option<i32>,
    live_in: bool,
    hours: i32,
    outcome: &'static str,
    matched_worker: Option<u32>,
}

#[derive(Debug, Clone)]
struct Contact {
    desk: usize,
    date: i32,
    household: Option<u32>,
    worker: Option<u32>,
    service: &'static str,
    minutes: i32,
}

#[derive(Debug, Clone)]
struct Subsidy {
    household: u32,
    contract: usize,
    granted: i32,
    kind: &'static str,
    amount: f64,
}

#[derive(Debug, Clone)]
struct Substitution {
    contract: usize,
    worker: u32,
    start: i32,
    end: i32,
    reason: &'static str,
}

#[derive(Debug, Clone)]
struct Course {
    district: usize,
    audience: &'static str,
    topic: &'static str,
    start: i32,
    end: i32,
    hours: i32,
    enrolled: i32,
    completed: i32,
    certified: i32,
}

#[derive(Debug, Default)]
pub struct Services {
    requests: Vec<Request>,
    request_of_contract: HashMap<usize, u32>,
    first_request_year: HashMap<u32, i32>,
    contacts: Vec<Contact>,
    subsidies: Vec<Subsidy>,
    substitutions: Vec<Substitution>,
    courses: Vec<Course>,
}

impl Services {
    pub fn simulate(world: &World, people: &Population, seed: u64) -> Self {
        let mut rng = stream(seed, "services");
        let mut services = Services::default();
        services.match_contracts(world, people, &mut rng);
        services.unmatched_requests(world, people, &mut rng);
        services.registry_contacts(world, people, &mut rng);
        services.train(world, &mut rng);
        for request in &services.requests {
            let year = year_of(request.opened);
            services
                .first_request_year
                .entry(request.household)
                .and_modify(|y| *y = (*y).min(year))
                .or_insert(year);
        }
        services
    }

    pub fn request_id(index: u32) -> String {
        format!("R{:08}", index + 1)
    }

    pub fn request_of_contract(&self, contract: usize) -> Option<u32> {
        self.request_of_contract.get(&contract).copied()
    }

    pub fn household_first_request_year(&self, household: u32) -> Option<i32> {
        self.first_request_year.get(&household).copied()
    }

    fn match_contracts(&mut self, world: &World, people: &Population, rng: &mut Rng) {
        let c = &people.contracts;
        let observed_until = days(LAST_YEAR, 12, 31);
        let mut registry_by_year: Vec<Vec<u32>> =
            vec![Vec::new(); (LAST_YEAR - FIRST_YEAR + 1) as usize];
        for (index, w) in people.workers.iter().enumerate() {
            if w.in_registry {
                for year in w.first_year..=w.last_year {
                    registry_by_year[(year - FIRST_YEAR) as usize].push(index as u32);
                }
            }
        }
        for i in 0..c.len() {
            if !chance(rng, DESK_MATCHED_CONTRACTS) {
                continue;
            }
            let worker = &people.workers[c.worker[i] as usize];
            let district = world.municipalities[worker.municipality as usize].district;
            let desk = world.family_desk[district];
            let start = c.start[i];
            let opened = (start - rng.random_range(5..60)).max(days(FIRST_YEAR, 1, 1));
            let closed = (start - rng.random_range(0..4)).max(opened);
            let household = c.household[i];
            self.request_of_contract
                .insert(i, self.requests.len() as u32);
            self.requests.push(Request {
                household,
                desk,
                opened,
                closed: Some(closed),
                live_in: c.live_in[i],
                hours: c.weekly_hours[i],
                outcome: "hired",
                matched_worker: Some(c.worker[i]),
            });
            self.family_contacts(desk, household, opened, closed, rng);
            if chance(rng, 0.5) {
                self.contact(
                    desk,
                    start,
                    Some(household),
                    None,
                    "contract_advice",
                    rng.random_range(45..=120),
                );
            }
            if citizenship_group(worker.citizenship) == "NON_EU" {
                for (service, p, low, high) in [
                    ("cultural_mediation", 0.25, 60, 180),
                    ("legal_assistance", 0.15, 60, 120),
                    ("psychosocial_assistance", 0.10, 45, 90),
                ] {
                    if chance(rng, p) {
                        let date = (start + rng.random_range(0..90)).min(observed_until);
                        self.contact(
                            desk,
                            date,
                            None,
                            Some(c.worker[i]),
                            service,
                            rng.random_range(low..=high),
                        );
                    }
                }
            }
            let grant = |rng: &mut Rng, after: i32| -> Option<i32> {
                let day = start + after + rng.random_range(0..60);
                (day <= observed_until).then_some(day)
            };
            for (kind, p, low, high) in [
                ("hiring_bonus", 0.40, 10, 40),
                ("contribution_relief", 0.10, 6, 24),
            ] {
                if chance(rng, p) {
                    if let Some(granted) = grant(rng, 30) {
                        let amount = f64::from(rng.random_range(low..=high) * 50);
                        self.subsidies.push(Subsidy {
                            household,
                            contract: i,
                            granted,
                            kind,
                            amount,
                        });
                    }
                }
            }
            if c.live_in[i] && chance(rng, 0.25) {
                let sub_start = start + rng.random_range(30..330);
                let sub_end = sub_start + rng.random_range(7..30);
                let limit = c.end[i].unwrap_or(observed_until).min(observed_until);
                let pool = &registry_by_year
                    [(year_of(sub_start.min(observed_until)) - FIRST_YEAR) as usize];
                if sub_end <= limit && !pool.is_empty() {
                    let substitute = pool[rng.random_range(0..pool.len())];
                    let reason = pick(
                        rng,
                        &[
                            ("holiday", 0.6),
                            ("sickness", 0.25),
                            ("family_leave", 0.1),
                            ("training", 0.05),
                        ],
                    );
                    self.substitutions.push(Substitution {
                        contract: i,
                        worker: substitute,
                        start: sub_start,
                        end: sub_end,
                        reason,
                    });
                    if chance(rng, 0.5) {
                        if let Some(granted) = grant(rng, sub_end - start) {
                            let amount = f64::from(rng.random_range(4..=16) * 50);
                            self.subsidies.push(Subsidy {
                                household,
                                contract: i,
                                granted,
                                kind: "substitution_cost",
                                amount,
                            });
                        }
                    }
                }
            }
        }
    }

    fn unmatched_requests(&mut self, world: &World, people: &Population, rng: &mut Rng) {
        let hired = self.requests.len();
        let unmatched = (hired as f64 * (1.0 / MATCHING_RATE - 1.0)).round() as usize;
        let observed_until = days(LAST_YEAR, 12, 31);
        for _ in 0..unmatched {
            let household = rng.random_range(0..people.households.len() as u32);
            let h = &people.households[household as usize];
            let desk = world.family_desk[world.municipalities[h.municipality as usize].district];
            let year = rng.random_range(FIRST_YEAR..=LAST_YEAR);
            let opened = day_in_year(rng, year, i32::MIN);
            let closed = opened + rng.random_range(10..120);
            let (outcome, closed) = if closed > observed_until {
                ("open", None)
            } else {
                (
                    pick(rng, &[("withdrawn", 0.45), ("unmatched", 0.55)]),
                    Some(closed),
                )
            };
            let live_in = chance(rng, 0.3);
            let hours = if live_in {
                54
            } else {
                rng.random_range(4..=40)
            };
            self.requests.push(Request {
                household,
                desk,
                opened,
                closed,
                live_in,
                hours,
                outcome,
                matched_worker: None,
            });
            self.family_contacts(
                desk,
                household,
                opened,
                closed.unwrap_or(observed_until),
                rng,
            );
        }
    }

    fn family_contacts(
        &mut self,
        desk: usize,
        household: u32,
        opened: i32,
        closed: i32,
        rng: &mut Rng,
    ) {
        self.contact(
            desk,
            opened,
            Some(household),
            None,
            "information",
            rng.random_range(20..=45),
        );
        for _ in 0..rng.random_range(1..=2) {
            let date = if closed > opened {
                rng.random_range(opened..=closed)
            } else {
                opened
            };
            self.contact(
                desk,
                date,
                Some(household),
                None,
                "matching",
                rng.random_range(45..=90),
            );
        }
    }

    fn registry_contacts(&mut self, world: &World, people: &Population, rng: &mut Rng) {
        for (index, w) in people.workers.iter().enumerate() {
            if !w.in_registry {
                continue;
            }
            let district = world.municipalities[w.municipality as usize].district;
            self.contact(
                world.registry_desk(district),
                w.registered_on,
                None,
                Some(index as u32),
                "registry_enrolment",
                rng.random_range(30..=60),
            );
            if chance(rng, 0.5) {
                self.contact(
                    world.family_desk[district],
                    w.registered_on,
                    None,
                    Some(index as u32),
                    "orientation",
                    rng.random_range(30..=60),
                );
            }
        }
    }

    fn contact(
        &mut self,
        desk: usize,
        date: i32,
        household: Option<u32>,
        worker: Option<u32>,
        service: &'static str,
        minutes: i32,
    ) {
        self.contacts.push(Contact {
            desk,
            date,
            household,
            worker,
            service,
            minutes,
        });
    }

    fn train(&mut self, world: &World, rng: &mut Rng) {
        for year in FIRST_YEAR..=LAST_YEAR {
            for district in 0..world.districts.len() {
                for (audience, topics, low, high) in [
                    (
                        "assistants",
                        &[
                            "basic_care",
                            "dementia_care",
                            "italian_language",
                            "labour_rights",
                            "first_aid",
                        ][..],
                        40,
                        120,
                    ),
                    (
                        "assistants",
                        &[
                            "basic_care",
                            "dementia_care",
                            "italian_language",
                            "first_aid",
                        ][..],
                        40,
                        120,
                    ),
                    (
                        "operators",
                        &[
                            "intercultural_mediation",
                            "network_services",
                            "labour_rights",
                        ][..],
                        12,
                        12,
                    ),
                ] {
                    let start = day_in_year(rng, year, i32::MIN).min(days(year, 10, 31));
                    let enrolled = rng.random_range(12..=25);
                    let completed =
                        (f64::from(enrolled) * rng.random_range(0.7..0.95)).round() as i32;
                    let certified = if audience == "assistants" {
                        (f64::from(completed) * rng.random_range(0.6..0.9)).round() as i32
                    } else {
                        completed
                    };
                    self.courses.push(Course {
                        district,
                        audience,
                        topic: topics[rng.random_range(0..topics.len())],
                        start,
                        end: start + rng.random_range(14..60),
                        hours: rng.random_range(low..=high),
                        enrolled,
                        completed,
                        certified,
                    });
                }
            }
        }
    }
}
