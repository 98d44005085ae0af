//! The desks' tables as Arrow batches: family requests, desk contacts,
//! subsidies, substitutions and training courses.
//!
//! Owns the columns of those tables; what happened is decided in
//! `services`. It must not change it.

use std::sync::Arc;

use arrow::array::{
    BooleanArray, Date32Array, Float64Array, Int32Array, StringArray, StringBuilder,
};
use arrow::record_batch::RecordBatch;

use crate::generate::people::Population;
use crate::generate::random::year_of;
use crate::generate::services::Services;
use crate::generate::world::World;
use crate::generate::{batch, GenerateError};

impl Services {
    pub fn batches(
        &self,
        world: &World,
        people: &Population,
    ) -> Result<Vec<(&'static str, RecordBatch)>, GenerateError> {
        let desk_ids = |desks: &mut dyn Iterator<Item = usize>| {
            StringArray::from_iter_values(desks.map(World::desk_id))
        };
        let optional = |values: &mut dyn Iterator<Item = Option<String>>| {
            let mut builder = StringBuilder::new();
            for value in values {
                builder.append_option(value);
            }
            builder.finish()
        };
        let r = &self.requests;
        let requests = batch(
            "family_requests",
            vec![
                Arc::new(StringArray::from_iter_values(
                    (0..r.len() as u32).map(Self::request_id),
                )),
                Arc::new(StringArray::from_iter_values(
                    r.iter().map(|q| Population::household_id(q.household)),
                )),
                Arc::new(desk_ids(&mut r.iter().map(|q| q.desk))),
                Arc::new(Date32Array::from_iter_values(r.iter().map(|q| q.opened))),
                Arc::new(Date32Array::from(
                    r.iter().map(|q| q.closed).collect::<Vec<_>>(),
                )),
                Arc::new(Int32Array::from_iter_values(r.iter().map(|q| {
                    let h = &people.households[q.household as usize];
                    (year_of(q.opened) - h.recipient_birth_year).max(0)
                }))),
                Arc::new(StringArray::from_iter_values(
                    r.iter()
                        .map(|q| people.households[q.household as usize].dependency),
                )),
                Arc::new(BooleanArray::from(
                    r.iter().map(|q| q.live_in).collect::<Vec<_>>(),
                )),
                Arc::new(Int32Array::from_iter_values(r.iter().map(|q| q.hours))),
                Arc::new(StringArray::from_iter_values(r.iter().map(|q| {
                    if q.live_in {
                        "personal_care;night_care"
                    } else {
                        "cleaning"
                    }
                }))),
                Arc::new(StringArray::from_iter_values(r.iter().map(|q| q.outcome))),
                Arc::new(optional(
                    &mut r
                        .iter()
                        .map(|q| q.matched_worker.map(Population::worker_id)),
                )),
                Arc::new(Int32Array::from_iter_values(
                    r.iter().map(|q| year_of(q.opened)),
                )),
            ],
        )?;
        let k = &self.contacts;
        let contacts = batch(
            "desk_contacts",
            vec![
                Arc::new(StringArray::from_iter_values(
                    (0..k.len()).map(|i| format!("K{:09}", i + 1)),
                )),
                Arc::new(desk_ids(&mut k.iter().map(|c| c.desk))),
                Arc::new(Date32Array::from_iter_values(k.iter().map(|c| c.date))),
                Arc::new(StringArray::from_iter_values(k.iter().map(|c| {
                    if c.household.is_some() {
                        "family"
                    } else {
                        "worker"
                    }
                }))),
                Arc::new(optional(
                    &mut k.iter().map(|c| c.household.map(Population::household_id)),
                )),
                Arc::new(optional(
                    &mut k.iter().map(|c| c.worker.map(Population::worker_id)),
                )),
                Arc::new(StringArray::from_iter_values(k.iter().map(|c| c.service))),
                Arc::new(Int32Array::from_iter_values(k.iter().map(|c| c.minutes))),
                Arc::new(Int32Array::from_iter_values(
                    k.iter().map(|c| year_of(c.date)),
                )),
            ],
        )?;
        let s = &self.subsidies;
        let subsidies = batch(
            "subsidies",
            vec![
                Arc::new(StringArray::from_iter_values(
                    (0..s.len()).map(|i| format!("S{:08}", i + 1)),
                )),
                Arc::new(StringArray::from_iter_values(
                    s.iter().map(|x| Population::household_id(x.household)),
                )),
                Arc::new(StringArray::from_iter_values(
                    s.iter().map(|x| format!("C{:09}", x.contract + 1)),
                )),
                Arc::new(Date32Array::from_iter_values(s.iter().map(|x| x.granted))),
                Arc::new(StringArray::from_iter_values(s.iter().map(|x| x.kind))),
                Arc::new(Float64Array::from_iter_values(s.iter().map(|x| x.amount))),
                Arc::new(StringArray::from(vec![None::<&str>; s.len()])),
                Arc::new(Int32Array::from_iter_values(
                    s.iter().map(|x| year_of(x.granted)),
                )),
            ],
        )?;
        let t = &self.substitutions;
        let substitutions = batch(
            "substitutions",
            vec![
                Arc::new(StringArray::from_iter_values(
                    (0..t.len()).map(|i| format!("T{:08}", i + 1)),
                )),
                Arc::new(StringArray::from_iter_values(
                    t.iter().map(|x| format!("C{:09}", x.contract + 1)),
                )),
                Arc::new(StringArray::from_iter_values(
                    t.iter().map(|x| Population::worker_id(x.worker)),
                )),
                Arc::new(Date32Array::from_iter_values(t.iter().map(|x| x.start))),
                Arc::new(Date32Array::from_iter_values(t.iter().map(|x| x.end))),
                Arc::new(StringArray::from_iter_values(t.iter().map(|x| x.reason))),
                Arc::new(Int32Array::from_iter_values(
                    t.iter().map(|x| year_of(x.start)),
                )),
            ],
        )?;
        let f = &self.courses;
        let trainings = batch(
            "trainings",
            vec![
                Arc::new(StringArray::from_iter_values(
                    (0..f.len()).map(|i| format!("F{:06}", i + 1)),
                )),
                Arc::new(StringArray::from(vec![None::<&str>; f.len()])),
                Arc::new(StringArray::from_iter_values(
                    f.iter().map(|x| world.districts[x.district].as_str()),
                )),
                Arc::new(StringArray::from_iter_values(f.iter().map(|x| x.audience))),
                Arc::new(StringArray::from_iter_values(f.iter().map(|x| x.topic))),
                Arc::new(Date32Array::from_iter_values(f.iter().map(|x| x.start))),
                Arc::new(Date32Array::from_iter_values(f.iter().map(|x| x.end))),
                Arc::new(Int32Array::from_iter_values(f.iter().map(|x| x.hours))),
                Arc::new(Int32Array::from_iter_values(f.iter().map(|x| x.enrolled))),
                Arc::new(Int32Array::from_iter_values(f.iter().map(|x| x.completed))),
                Arc::new(Int32Array::from_iter_values(f.iter().map(|x| x.certified))),
                Arc::new(Int32Array::from_iter_values(
                    f.iter().map(|x| year_of(x.start)),
                )),
            ],
        )?;
        Ok(vec![
            ("family_requests", requests),
            ("desk_contacts", contacts),
            ("subsidies", subsidies),
            ("substitutions", substitutions),
            ("trainings", trainings),
        ])
    }
}
