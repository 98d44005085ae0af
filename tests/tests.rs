//! The one integration-test binary: each module exercises a part of the
//! platform against real Delta tables in a temporary directory.

mod support;

mod cli;
mod dictionary;
mod generate;
mod query;
mod warehouse;
