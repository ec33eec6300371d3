//! chatproto: a LAN chat server speaking ChatProto v1.0 binary, JSON lines and JSON over
//! WebSocket (with its web app over HTTP), plain or TLS, on one port, built on one mio event
//! loop per core.
//!
//! Map of the crate, from the wire inwards (docs/ARCHITECTURE.md has the whole picture):
//! - [`protocol`]: the sans-IO message model and its binary and JSON codecs, and the WebSocket
//!   frame codec (never sees a socket).
//! - [`net`]: sockets, buffers, the plain/TLS transport seam, every rustls call, and HTTP (the
//!   embedded web app, the WebSocket handshake).
//! - [`conn`]: one client connection (phase, buffers, limits), the table of them that is the
//!   chat core's outbox, and intake: bytes to messages (HTTP and WebSocket unwrapped first),
//!   refusing what is malformed or too fast.
//! - [`chat`]: the chat rules, sans-IO over [`chat::Outbox`]: login, rooms, messages,
//!   presence, history, admin, files.
//! - [`cluster`]: the backplane seam between shards (in-process today).
//! - [`services`]: accounts, history (a store trait and SQLite), files, the admin console; one
//!   worker-thread type.
//! - [`server`]: one shard's I/O: mio poll, accept, read, flush, timers, shutdown; the shards.
//! - [`config`]: server settings and their defaults; `settings`: the command line and TOML file.
//! - [`metrics`]: the Prometheus endpoint, served from shard 0's loop.
//! - [`stats`]: counters the loop publishes once per turn.
//! - [`logging`]: the log sink: a bounded queue to one writer thread (never blocks, never panics).
//! - [`client`]: the terminal client's library (connection, commands, rendering, transfers).

pub mod chat;
pub mod client;
pub mod cluster;
pub mod config;
pub mod conn;
pub mod logging;
pub mod metrics;
pub mod net;
pub mod protocol;
pub mod server;
pub mod services;
pub mod stats;

pub use config::ServerConfig;
pub use protocol::{ClientMsg, ServerMsg, WireFormat};
pub use server::{Server, ServerHandle};
