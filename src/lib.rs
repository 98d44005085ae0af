//! Osservatorio: the data platform of an observatory on domestic care work
//! in Italy. A data dictionary and a warehouse of Delta Lake tables
//! ([`catalog`]), a calibrated synthetic observatory ([`generate`]), one
//! gate for user SQL ([`query`]), indicators defined as SQL files
//! ([`indicators`]) that pass disclosure control ([`disclosure`]) before
//! they are published, their charts ([`charts`]), and design-based survey
//! estimators callable from SQL ([`survey`]). [`observatory`] keeps the live
//! snapshot and cache behind long-running front ends, [`server`] is the HTTP
//! API over it, and [`auth`] holds roles and tokens. [`ingest`] takes the
//! exports that desks and offices send, validated and pseudonymised, as
//! atomic commits. [`report`] writes the annual report.
//!
//! The library knows nothing of terminals or HTTP; the binary and the server
//! are thin layers over it.

pub mod auth;
pub mod catalog;
pub mod charts;
#[cfg(feature = "cluster")]
pub mod cluster;
pub mod config;
pub mod disclosure;
pub mod flight;
pub mod generate;
pub mod indicators;
pub mod ingest;
pub mod markup;
pub mod observatory;
pub mod query;
pub mod report;
pub mod server;
pub mod survey;
