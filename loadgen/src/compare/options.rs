//! What `compare` is asked to do: the options and the session's shape.

use serde::Serialize;
use std::net::SocketAddr;
use std::path::PathBuf;

use crate::scenario::{Scenario, TlsOptions};

/// The seed-shaped chat session.
#[derive(Clone, Debug, Serialize)]
pub struct SessionShape {
    /// Users in the one room.
    pub users: u32,
    /// Nominal session length, seconds (for the bandwidth figure).
    pub nominal_secs: f64,
    /// Messages each user sends.
    pub messages_per_user: u32,
    /// Wall-clock seconds the session is replayed in.
    pub replay_secs: f64,
    /// Chat text length.
    pub payload: usize,
}

/// What `compare` needs.
pub struct CompareOptions {
    /// The load scenario (format and TLS are set per mode).
    pub scenario: Scenario,
    /// Use this server (address, pid, TLS trust) instead of starting one per mode.
    pub external: Option<(SocketAddr, Option<u32>, Option<TlsOptions>)>,
    /// chat-server binary; default: next to the current executable.
    pub server_bin: Option<PathBuf>,
    /// `--shards` for started servers (0: server default).
    pub server_shards: usize,
    /// Extra arguments for started servers.
    pub server_args: Vec<String>,
    /// Parent folder of `<date>-compare/`.
    pub out: PathBuf,
    /// The session part, if wanted.
    pub session: Option<SessionShape>,
    /// Load runs per mode (rounds over all six modes); the tables show medians.
    pub repeat: u32,
    /// The command line, for the README.
    pub command_line: String,
}
