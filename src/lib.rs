//! Osservatorio: the data platform of an observatory on domestic care work
//! in Italy. A data dictionary and a warehouse of Delta Lake tables
//! ([`catalog`]), a calibrated synthetic observatory ([`generate`]) and one
//! gate for user SQL ([`query`]).
//!
//! The library knows nothing of terminals or HTTP; the binary and the server
//! are thin layers over it.

pub mod catalog;
pub mod config;
pub mod generate;
pub mod query;
