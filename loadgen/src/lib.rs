//! `loadgen`: an open-loop load generator for chatproto servers.
//!
//! Thousands of bots from one process, a few mio event loops, latency measured the honest way
//! (from each message's *intended* send time, wrk2's model), every delivery accounted for, bytes
//! counted on the wire, and the server's CPU and memory read from /proc.
//!
//! Map of the crate:
//! - [`scenario`]: the knobs, room assignment, source addresses.
//! - [`schedule`]: intended send times, message kinds, private-message targets (pure functions).
//! - [`stamp`]: the text prefix carrying sender, sequence number and send times.
//! - [`shared`]: run-wide state the coordinator, threads and bots exchange (phase, membership,
//!   progress).
//! - [`bot`]: one connection's phases, buffers and message handling.
//! - [`failover`]: a bot's resume state (address, ids seen, back-off) for `--failover`.
//! - [`driver`]: one event-loop thread (mio + timerfd) over its bots.
//! - [`runner`]: the coordinator: phases, /proc sampling, the report.
//! - [`printer`]: the once-a-second progress line.
//! - [`ledger`]: per-message delivery counters, audited for loss and duplicates.
//! - [`stats`]: HdrHistograms and counters per thread, merged.
//! - [`hgrm`]: the standard `.hgrm` percentile-distribution text.
//! - [`report`]: JSON and human summary.
//! - [`compare`]: binary vs JSON vs TLS, written to `results/<date>-compare/`.
//! - [`plot`]: PNG latency spectrum (plotters).
//! - [`record`]: a results folder for one `run`.
//! - [`transport`], [`tls`], [`net`], [`timer`], [`procstat`], [`machine`]: plumbing.

pub mod bot;
pub mod compare;
pub mod driver;
pub mod failover;
pub mod hgrm;
pub mod ledger;
pub mod machine;
pub mod net;
pub mod plot;
pub mod printer;
pub mod procstat;
pub mod record;
pub mod report;
pub mod runner;
pub mod scenario;
pub mod schedule;
pub mod shared;
pub mod stamp;
pub mod stats;
pub mod timer;
pub mod tls;
pub mod transport;

pub use report::Report;
pub use runner::{run, Hooks};
pub use scenario::{Rate, Scenario, Spread, TlsOptions, TlsTrust};
