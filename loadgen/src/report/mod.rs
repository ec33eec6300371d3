//! The run's report: one struct that serialises to JSON for machines, and a readable summary
//! for people. Every derived figure (rates, bytes per message, CPU per message) is computed here
//! once, so the JSON, the summary and the `compare` tables agree.
//!
//! - `types.rs` holds the data: the [`RunFacts`] and every section of the [`Report`],
//! - [`build`](Report::build) derives every figure from the [`RunFacts`] (`build.rs`),
//! - the checks turn the figures into errors and warnings (`checks.rs`),
//! - [`summary`](Report::summary) writes the text for people (`summary.rs`, with the number
//!   formats in `numbers.rs`, which `compare` shares).

mod build;
mod checks;
mod numbers;
mod summary;
mod types;

pub use numbers::{bytes, n};
pub use types::{
    Bots, Deliveries, Latency, LoadgenCost, Messages, Phases, Report, RunFacts, ServerBytes, ServerCost, Setup, Wire,
};
