//! The suite's one test client and one set of helpers. Every wait is bounded, so a broken server
//! makes a test fail with a message instead of hanging.
//!
//! - [`client`]: [`Client`], one blocking connection (plain or TLS, binary or JSON) that decodes
//!   with the crate's codec; [`Client::sync`] is a PING/PONG barrier for exact counts.
//! - [`net`]: raw sockets: connect from a chosen loopback address, small receive buffers, RST,
//!   read until the peer closes.
//! - [`frames`]: hand-made binary frames ([`raw`]), matchers and failure summaries of frames.
//! - [`server`]: in-process servers on `127.0.0.1:0`, configs, stats polling, fd limits, temp dirs.
//! - [`process`]: the real `chat-server` binary as a child process, killed on drop.
//! - [`webdriver`]: headless Chromium through chromedriver's W3C WebDriver HTTP API.
//! - [`ws`]: the WebSocket side: upgrade requests, [`Client`]s over `ws://` and `wss://`, raw
//!   masked frames and the server's frames read back, plain HTTP requests.
//!
//! The library paths the suite uses are all named in this file: when the crate moves a module,
//! only the `pub use` lines below change.

mod client;
mod frames;
mod nats;
mod net;
mod process;
mod server;
pub mod webdriver;
mod ws;

pub use chatproto::config::AuthMode;
pub use chatproto::config::HistoryMode;
pub use chatproto::metrics::{self, Extra, MetricsEndpoint, MAX_REQUEST, MAX_SCRAPES};
pub use chatproto::net::raise_fd_limit;
pub use chatproto::net::tls::{client_connect, ClientStream, ClientTrust};
pub use chatproto::protocol::ws as wsframe;
pub use chatproto::protocol::{ClientMsg, DecodeError, ErrorCode, Limits, ServerMsg, SystemKind, WireFormat};
pub use chatproto::server::{spawn, RunningServer};
pub use chatproto::stats::StatsSnapshot;
pub use chatproto::ServerConfig;

pub use client::Client;
pub use frames::{decode_all, is_notice, is_room_msg, random_bytes, raw, room_msgs, summary};
pub use nats::{node, node_at, node_with, NatsCluster, NatsServer, Node, TTL_S};
pub use net::{raw_connect, raw_connect_small_rcvbuf, read_until_closed, reset, tcp_connect_from};
pub use process::{ServerProcess, PROCESS_DEADLINE};
pub use server::{have_fds, server, server_with, tls_config, unlimited_config, wait_for_stats, TempDir};
pub use ws::{frames_until_closed, http_get, masked, upgrade_request, ws_connect, ws_connect_tls, ws_raw, WsFrame};

use std::time::Duration;

/// The longest any single wait of a test client may take before the test fails. A guard
/// against hangs, not a performance bound: no assertion is about timing.
pub const DEADLINE: Duration = Duration::from_secs(10);

/// A server-to-client message that owns its strings.
pub type Msg = ServerMsg<'static>;
