//! Integration tests: real servers on loopback (port 0, one per test), driven by blocking clients
//! that speak the real wire formats. One test binary (`cargo test --test integration`).
//!
//! Map of the suite:
//! - [`support`]: the test client (plain/TLS, binary/JSON), bounded waits, raw frame builders.
//! - [`chat`]: room fan-out across formats, presence and rooms, private messages.
//! - [`login`]: naming rules, duplicate names, AlreadyLoggedIn, NotLoggedIn.
//! - [`bad_input`]: every malformed input gets its error code and never disturbs the others.
//! - [`framing`]: frames split into single bytes, and many frames in one write.
//! - [`tls`]: TLS and plaintext clients in one room, bad certificates and records, slow readers.
//! - [`backpressure`]: the outbound cap cuts off readers that fall behind, not those that keep up.
//! - [`policy`]: login and idle deadlines, connection caps, TLS-only, the message rate limit.
//! - [`shards`]: several event-loop shards behind one port, invisible to users.
//! - [`scale`]: a thousand clients in one room.
//! - [`stats`]: the server's counters after a known exchange.
//! - [`shutdown`]: graceful stop.
//!
//! Every wait is bounded ([`support::DEADLINE`]); no assertion is about timing.

mod backpressure;
mod bad_input;
mod chat;
mod framing;
mod login;
mod policy;
mod scale;
mod shards;
mod shutdown;
mod stats;
mod support;
mod tls;
