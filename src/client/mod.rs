//! The ChatProto client: a blocking connection shared by the `chat-client` binary and the
//! integration tests, and the terminal client built on it.
//!
//! Map of the module:
//! - [`connection`]: [`ConnectOptions`] and [`Client`], one connection: [`Client::connect`],
//!   [`Client::login`], then [`Client::send`] / [`Client::recv`] / [`Client::recv_timeout`].
//! - [`session`]: [`Client::spawn`] moves the connection to a network thread; the returned
//!   [`Session`] queues messages and [`Event`]s report what arrives.
//! - [`error`]: [`ClientError`], split the way a user acts on it, with the hint for each kind.
//! - [`commands`]: what the user types, parsed into a [`commands::Command`].
//! - [`complete`]: Tab completion of commands, user names and rooms.
//! - [`render`]: every server message turned into the text to print.
//! - [`style`]: timestamps and colours (off under `NO_COLOR` or when output is not a terminal).
//! - [`servers`]: the `--server a:5555,b:5555` list tried in turn.
//! - [`catalog`]: files seen, so `/get` takes a short id, `#index` or name.
//! - [`transfer`]: hashing and chunking uploads, writing and checking downloads, progress lines.
//! - [`app`]: the interactive terminal client `chat-client` runs: [`app::connect`], then
//!   [`app::run`] until the user quits or the connection is lost for good.
//!
//! ```no_run
//! use chatproto::client::{Client, ConnectOptions};
//! use chatproto::protocol::ClientMsg;
//! # fn main() -> Result<(), chatproto::client::ClientError> {
//! let mut c = Client::connect(&ConnectOptions::new("127.0.0.1", 5555))?;
//! let info = c.login("alice", None)?;
//! c.send(&ClientMsg::RoomMsg { text: "hi".into() })?;
//! let reply = c.recv()?; // blocks; or c.recv_timeout(Duration)
//! # let _ = (info, reply); Ok(()) }
//! ```

pub mod app;
pub mod catalog;
pub mod commands;
pub mod complete;
pub mod connection;
pub mod error;
pub mod render;
pub mod servers;
pub mod session;
pub mod style;
pub mod transfer;

/// The TLS trust settings and errors the client's options and errors carry; imported here once
/// so that the rest of the client names `crate::net::tls` in one other place ([`connection`]).
pub use crate::net::tls::{ClientTrust, TlsError};
pub use connection::{Client, ConnectOptions, LoginInfo, CLIENT_MAX_FRAME};
pub use error::ClientError;
pub use session::{Event, Session, POLL_INTERVAL};

#[cfg(test)]
mod tests;
