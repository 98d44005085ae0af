//! Design-based survey estimation: the estimators ([`estimators`]) and
//! their SQL aggregate functions (`svy_mean`, `svy_total`, `svy_prop`,
//! `svy_ratio`), registered in every query session so that the CLI, HTTP,
//! Flight SQL and indicators all reach them.
//!
//! Owns the design's arithmetic and its exposure to SQL. It must not read
//! tables itself: the rows come from the query that calls the function.

pub mod estimators;
mod sql;

pub use estimators::{Design, DesignRow, Estimate, LonelyPsu, Reliability, SurveyError};
pub use sql::{functions, register, SurveyOptions};
