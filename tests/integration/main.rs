//! The test suite: real servers on loopback (port 0, one per test), driven by one blocking test
//! client that speaks the real wire formats. One test binary (`cargo test --test integration`;
//! a part of it with a filter, e.g. `cargo test --test integration faults::`).
//!
//! Map of the suite:
//! - [`support`]: the test client (plain/TLS, binary/JSON), bounded waits, raw frames, servers
//!   in-process and as a child process. The only place that names the library's module paths.
//! - [`chat`]: room fan-out across formats, presence and rooms, private messages.
//! - [`login`]: naming rules, duplicate names, AlreadyLoggedIn, NotLoggedIn.
//! - [`bad_input`]: every malformed input gets its error code and never disturbs the others.
//! - [`framing`]: frames split into single bytes, and many frames in one write.
//! - [`tls`]: TLS and plaintext clients in one room, bad certificates and records, slow readers.
//! - [`backpressure`]: the outbound cap cuts off readers that fall behind, not those that keep up.
//! - [`paging`]: list replies in pages; big replies reach readers, non-readers are still cut.
//! - [`policy`]: login and idle deadlines, connection caps, TLS-only, the message rate limit.
//! - [`shards`]: several event-loop shards behind one port, invisible to users.
//! - [`scale`]: a thousand clients in one room.
//! - [`presence`]: a join storm coalesced into a bounded number of notices per member.
//! - [`stats`]: the server's counters after a known exchange.
//! - [`shutdown`]: graceful stop.
//! - [`features`]: TIME, history, passkeys, accounts, admin commands, file sharing.
//! - [`faults`]: faults injected beside a pair of clients that must lose nothing.
//! - [`resume`]: resume with "since id N" across restarts, ordered ids, scroll-back, kick with a ban.
//! - [`ops`]: the metrics endpoint, and the `chat-server` binary run as an admin would.
//! - [`websocket`]: the web app over HTTP, the WebSocket handshake, framing rules and close
//!   codes, limits, and `wss://` beside binary and JSON clients.
//! - [`logging`]: the binary with its stderr broken or stuck keeps serving and stops on signals.
//! - [`client`]: the `chat-client` binary, piped and on a real terminal (tmux).
//! - [`web`]: the browser app in real headless Chromium (WebDriver), beside a binary client.
//! - [`cluster`]: nodes joined through a real `nats-server`: rooms, private messages and names
//!   across nodes, lists, a killed node's names freed, recovery after NATS restarts.
//! - [`cluster_files`]: files stored on one node listed and downloaded on another; a download
//!   from a node that died or does not answer fails with a clear error; the index survives a
//!   node restart and NATS losing its store.
//!
//! Every wait is bounded ([`support::DEADLINE`]), every load loop is bounded in count, and no
//! assertion is about timing.

mod backpressure;
mod bad_input;
mod chat;
mod client;
mod cluster;
mod cluster_files;
mod cluster_log;
mod cluster_names;
mod faults;
mod features;
mod framing;
mod logging;
mod login;
mod ops;
mod paging;
mod policy;
mod presence;
mod resume;
mod scale;
mod shards;
mod shutdown;
mod stats;
mod support;
mod tls;
mod web;
mod websocket;
