//! chatproto: a LAN chat server speaking ChatProto v1.0 binary and JSON lines, plain or TLS,
//! on one port, built on one mio event loop per core.
//!
//! Map of the crate:
//! - [`protocol`]: the sans-IO message model and its binary and JSON codecs (never sees a socket).
//! - [`buffer`]: the per-connection read buffer and the bounded outbound queue of shared `Bytes`.
//! - [`transport`]: the plain/TLS seam: read into a buffer, write a queue, report the outcome.
//! - [`tls`]: every rustls call lives here (server config, certificates, the TLS pump).
//! - [`connection`]: one client's phase, buffers and session.
//! - [`room`]: rooms and their members, for fan-out.
//! - [`limits`]: abuse limits: message rate (token bucket) and connections per address.
//! - [`hub`]: the chat semantics: login, rooms, private messages, lists, presence.
//! - [`directory`]: what shards share: user names, rooms across shards, links between loops.
//! - [`server`]: one shard: mio poll, slab of connections, accept, dispatch, flush, sweep.
//! - [`config`]: server settings and their defaults.
//! - [`settings`]: the command line and TOML config file of `chat-server`, merged into a config.
//! - [`metrics`]: the Prometheus endpoint, served from shard 0's loop.
//! - [`net`]: socket setup (socket2).
//! - [`stats`]: counters the loop publishes once per turn.
//! - [`client`]: the blocking client connection used by `chat-client` and tests.
//! - [`features`]: the services shards share for the seed features, and how workers answer.
//! - [`auth`]: auth modes (open, passkey, accounts), throttling, the argon2id accounts worker.
//! - [`history`]: room history in RAM or SQLite (WAL, group-committing writer thread).
//! - [`admin`]: the admin command set and the server console on stdin.
//! - [`files`]: shared files: ids, caps and quota, metadata sidecars, the disk worker thread.

pub mod admin;
pub mod auth;
pub mod buffer;
pub mod client;
pub mod config;
pub mod connection;
pub mod directory;
pub mod features;
pub mod files;
pub mod history;
pub mod hub;
pub mod limits;
pub mod metrics;
pub mod net;
pub mod protocol;
pub mod room;
pub mod server;
pub mod settings;
pub mod stats;
pub mod tls;
pub mod transport;

pub use config::ServerConfig;
pub use protocol::{ClientMsg, ServerMsg, WireFormat};
pub use server::{Server, ServerHandle};
