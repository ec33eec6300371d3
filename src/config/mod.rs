//! Server settings: every knob with its default, in one place; [`site`]: what the server says
//! about itself over HTTP (`/config.json`, and a cluster's advertised node addresses, shared
//! live between the cluster link and the shards).

pub mod settings;
pub mod site;

use crate::protocol::Limits;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

/// The most shards a server can run (a room's shard mask is one `u64`).
pub const MAX_SHARDS: usize = 64;

/// Everything a server shard needs to know. `Default` serves a LAN out of the box.
#[derive(Clone, Debug)]
pub struct ServerConfig {
    /// Address to listen on. Default `0.0.0.0:5555`.
    pub bind: SocketAddr,
    /// Frame and field size limits enforced by the decoders.
    pub limits: Limits,
    /// Per-connection cap on bytes waiting to be written (our queue plus TLS's buffer). A client
    /// whose backlog passes it is a slow consumer and is disconnected; the room keeps flowing.
    pub max_outbound_bytes: usize,
    /// Hard per-connection cap on bytes waiting to be written: the memory bound. A backlog
    /// between `max_outbound_bytes` and this is allowed while the reader keeps taking bytes (a
    /// big reply to a reader that reads); a push past it cuts the connection at once. Taken as
    /// `max_outbound_bytes` when below it.
    pub outbound_burst: usize,
    /// How long a backlog over `max_outbound_bytes` may go without the reader taking a byte
    /// before the connection is cut as a slow consumer.
    pub slow_grace: Duration,
    /// Largest HTTP request head accepted (the web app and the WebSocket handshake share the
    /// port); a larger one is answered 431 and closed. At most 32 KiB, so it fits the read arena.
    pub max_http_head: usize,
    /// Most connections served at once; past it, new connections get ERROR_MSG SERVER_FULL.
    pub max_connections: usize,
    /// Most connections from one source address; loopback is exempt when
    /// `exempt_loopback` is set (load tests run on the server's own host).
    pub max_per_address: u32,
    /// Exempt 127.0.0.0/8 and ::1 from `max_per_address`.
    pub exempt_loopback: bool,
    /// A connection that has not logged in by then is closed (slowloris defence).
    pub login_timeout: Duration,
    /// After this long without a frame from the client, the server sends PING.
    pub idle_ping: Duration,
    /// After this long without a frame from the client (PONG included), it is closed.
    pub idle_timeout: Duration,
    /// Per-connection message rate limit.
    pub rate_limit: RateLimit,
    /// Rooms with more members than this get no join/leave/disconnect notices ("auditorium"
    /// mode: 6,000 joins would otherwise mean 18 million notices). 0 means no limit.
    pub presence_limit: usize,
    /// A room's presence changes within this interval become one PRESENCE notice per member
    /// (the first change after a quiet interval goes out at once as SYSTEM_MSG), so a join storm
    /// of n users costs O(n) frames, not O(n²). Zero: every change is its own SYSTEM_MSG.
    pub presence_interval: Duration,
    /// TLS: where the certificate and key are, and whether plaintext is refused.
    pub tls: TlsSettings,
    /// Event-loop shards (SO_REUSEPORT listeners); 0 means one per CPU core.
    pub shards: usize,
    /// Serve Prometheus metrics over HTTP on this address (off when `None`).
    pub metrics: Option<SocketAddr>,
    /// Authentication, history, files and admin settings: what `services` runs.
    pub services: ServiceSettings,
    /// Join a cluster of nodes through NATS (`None`: run alone, no NATS needed).
    pub cluster: Option<ClusterConfig>,
}

/// Settings of the shared services (the features brought by the seed systems): authentication,
/// persistent history, file sharing, the admin console.
#[derive(Clone, Debug)]
pub struct ServiceSettings {
    /// How clients authenticate: `open` (a name is enough), `passkey`, or `accounts`.
    pub auth: AuthMode,
    /// The passkey for `AuthMode::Passkey`; `None` generates a random one at start.
    pub passkey: Option<String>,
    /// Where message history lives: in RAM, or in SQLite at `history_path`.
    pub history: HistoryMode,
    /// The SQLite history database; relative paths are under `data_dir`.
    pub history_path: PathBuf,
    /// Messages per room replayed on joining it (0 turns replay off).
    pub history_len: usize,
    /// Bytes of history the RAM cache may hold in all.
    pub history_cache: usize,
    /// What the history database keeps.
    pub retention: Retention,
    /// Directory for databases and uploaded files. Created if missing.
    pub data_dir: PathBuf,
    /// The accounts database for `AuthMode::Accounts`; relative paths are under `data_dir`.
    pub accounts_path: PathBuf,
    /// Argon2id memory cost in KiB (OWASP's minimum for argon2id is 19 MiB, the default).
    pub argon2_memory_kib: u32,
    /// The user name that, logged in with `admin_password`, may run admin commands.
    pub admin_user: Option<String>,
    /// The admin's password. Admin commands are off unless both admin settings are set.
    pub admin_password: Option<String>,
    /// File sharing on (files live in `data_dir/files`, created on the first upload).
    pub files: bool,
    /// Largest file accepted for upload, in bytes.
    pub max_file_size: u64,
    /// Most bytes all shared files may take on disk together.
    pub files_quota: u64,
    /// An upload that receives no chunk for this long is aborted and its reservation freed.
    pub upload_idle: Duration,
    /// How big one page of a LIST_ROOMS / LIST_USERS / LIST_FILES reply may be.
    pub list_page: ListPage,
    /// Most files one user may have stored at once.
    pub max_files_per_user: u64,
    /// Most files stored at once, in total.
    pub max_files: u64,
    /// Password-hashing threads (0: one per CPU core).
    pub auth_workers: usize,
    /// Most accounts jobs waiting for a hashing thread, in total.
    pub auth_queue: usize,
    /// Most accounts jobs one source address may have waiting or running at once.
    pub auth_queue_per_address: usize,
}

/// The bounds of one page of a list reply: whichever is reached first ends the page, and the
/// reply carries a `next` cursor for the rest.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ListPage {
    /// Most entries in one page.
    pub entries: usize,
    /// Most bytes of entries in one page (their encoded size in the asker's format, about).
    pub bytes: usize,
}

impl Default for ListPage {
    fn default() -> Self {
        ListPage { entries: 500, bytes: 64 * 1024 }
    }
}

impl Default for ServiceSettings {
    fn default() -> Self {
        ServiceSettings {
            auth: AuthMode::Open,
            passkey: None,
            history: HistoryMode::Sqlite,
            history_path: PathBuf::from("history.db"),
            history_len: 50,
            history_cache: 64 * 1024 * 1024,
            retention: Retention::default(),
            data_dir: PathBuf::from("data"),
            accounts_path: PathBuf::from("accounts.db"),
            argon2_memory_kib: 19 * 1024,
            admin_user: None,
            admin_password: None,
            files: true,
            max_file_size: 16 * 1024 * 1024,
            files_quota: 1024 * 1024 * 1024,
            upload_idle: Duration::from_secs(30),
            list_page: ListPage::default(),
            max_files_per_user: 1000,
            max_files: 100_000,
            auth_workers: 0,
            auth_queue: 256,
            auth_queue_per_address: 4,
        }
    }
}

impl ServiceSettings {
    /// `path`, under `data_dir` when relative.
    pub fn in_data_dir(&self, path: &std::path::Path) -> PathBuf {
        if path.is_absolute() {
            path.to_path_buf()
        } else {
            self.data_dir.join(path)
        }
    }
}

/// TLS settings. TLS is always offered on the same port; the first byte (0x16) selects it.
#[derive(Clone, Debug)]
pub struct TlsSettings {
    /// Offer TLS at all. Default true.
    pub enabled: bool,
    /// Refuse plaintext connections.
    pub tls_only: bool,
    /// PEM certificate chain. Default `certs/server.crt`.
    pub cert: PathBuf,
    /// PEM private key. Default `certs/server.key`.
    pub key: PathBuf,
    /// A TLS handshake not done by then is abandoned.
    pub handshake_timeout: Duration,
}

impl Default for TlsSettings {
    fn default() -> Self {
        TlsSettings {
            enabled: true,
            tls_only: false,
            cert: PathBuf::from("certs/server.crt"),
            key: PathBuf::from("certs/server.key"),
            handshake_timeout: Duration::from_secs(10),
        }
    }
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            bind: SocketAddr::from(([0, 0, 0, 0], 5555)),
            limits: Limits::default(),
            max_outbound_bytes: 1024 * 1024,
            outbound_burst: 4 * 1024 * 1024,
            slow_grace: Duration::from_secs(2),
            max_http_head: 8 * 1024,
            max_connections: 100_000,
            max_per_address: 1024,
            exempt_loopback: true,
            login_timeout: Duration::from_secs(30),
            idle_ping: Duration::from_secs(60),
            idle_timeout: Duration::from_secs(120),
            rate_limit: RateLimit::default(),
            presence_limit: 1000,
            presence_interval: Duration::from_millis(250),
            tls: TlsSettings::default(),
            shards: 0,
            metrics: None,
            services: ServiceSettings::default(),
            cluster: None,
        }
    }
}

impl ServerConfig {
    /// The number of shards to run: `shards`, or the number of CPU cores when it is 0.
    pub fn shard_count(&self) -> usize {
        match self.shards {
            0 => std::thread::available_parallelism().map_or(1, |n| n.get()),
            n => n,
        }
    }

    /// The server's public settings as a JSON object, served at `GET /config.json` for the web
    /// app to shape its sign-in form and its uploads before it logs in. Only what any client may
    /// learn by trying: never a passkey, password, path or address.
    /// A cluster node adds `"servers"`, the live list ([`crate::config::site::Site`]).
    pub fn site_json(&self) -> serde_json::Value {
        let s = &self.services;
        let auth = match s.auth {
            AuthMode::Open => "open",
            AuthMode::Passkey => "passkey",
            AuthMode::Accounts => "accounts",
        };
        serde_json::json!({
            "server": "chatproto",
            "version": env!("CARGO_PKG_VERSION"),
            "auth": auth,
            "max_frame": self.limits.max_frame,
            "max_text": self.limits.max_text,
            "history_len": s.history_len,
            "files": s.files,
            "max_file_size": s.max_file_size,
        })
    }

    /// A config for tests: loopback, an OS-chosen port, TLS off, history in memory and not replayed
    /// (`services.history_len` 0), so frames seen are exactly ChatProto v1.0's.
    pub fn loopback() -> Self {
        ServerConfig {
            bind: SocketAddr::from(([127, 0, 0, 1], 0)),
            tls: TlsSettings { enabled: false, ..TlsSettings::default() },
            shards: 1,
            // Plain v1.0 semantics unless a test asks for more: no replay on joining.
            services: ServiceSettings { history: HistoryMode::Memory, history_len: 0, ..ServiceSettings::default() },
            // ... and one SYSTEM_MSG per presence change, not coalesced PRESENCE notices.
            presence_interval: Duration::ZERO,
            ..ServerConfig::default()
        }
    }
}

/// Message rate policy: `rate` frames per second on average, bursts of up to `burst`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct RateLimit {
    /// Sustained frames per second; 0 disables the limit.
    pub rate: f64,
    /// Frames that may arrive at once after a quiet period.
    pub burst: f64,
    /// Refused frames in a row after which the connection is closed as a flooder.
    pub disconnect_after: u32,
}

impl Default for RateLimit {
    fn default() -> Self {
        RateLimit { rate: 100.0, burst: 200.0, disconnect_after: 200 }
    }
}

/// How clients prove who they are.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum AuthMode {
    /// A user name is enough (ChatProto v1.0).
    #[default]
    Open,
    /// Every client sends the server's passkey as its LOGIN credential.
    Passkey,
    /// Registered accounts: REGISTER creates one, LOGIN checks its password.
    Accounts,
}

impl std::str::FromStr for AuthMode {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "open" => Ok(AuthMode::Open),
            "passkey" => Ok(AuthMode::Passkey),
            "accounts" => Ok(AuthMode::Accounts),
            other => Err(format!("unknown auth mode {other:?} (expected open, passkey or accounts)")),
        }
    }
}

/// How long and how much the store keeps (pruned by the writer, a bounded amount per pass).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Retention {
    /// Messages older than this are deleted (`None`: kept regardless of age).
    pub max_age: Option<Duration>,
    /// At most this many messages per room are kept (0: no limit).
    pub per_room: usize,
}

impl Default for Retention {
    fn default() -> Self {
        Retention { max_age: Some(Duration::from_secs(30 * 24 * 3600)), per_room: 10_000 }
    }
}

/// Where history is kept.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum HistoryMode {
    /// RAM only: lost on restart; ROOM_MSG_ACK means accepted.
    Memory,
    /// SQLite (WAL) plus a RAM cache; ROOM_MSG_ACK means committed.
    #[default]
    Sqlite,
}

impl std::str::FromStr for HistoryMode {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "memory" => Ok(HistoryMode::Memory),
            "sqlite" => Ok(HistoryMode::Sqlite),
            other => Err(format!("unknown history mode {other:?} (expected memory or sqlite)")),
        }
    }
}

/// How a node joins a cluster.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClusterConfig {
    /// NATS server URLs (`nats://host:port`); the client fails over between them.
    pub servers: Vec<String>,
    /// This node's name, unique in the cluster (`[A-Za-z0-9_-]`, at most 64 bytes).
    pub node: String,
    /// A dead node's user names are free again within this long.
    pub name_ttl: Duration,
    /// Batches of work that may wait between the shards and the NATS thread; past it a batch is
    /// dropped and counted (the shards never wait).
    pub queue: usize,
    /// Room messages awaiting the log's PubAck at once; past it the NATS thread waits.
    pub inflight: usize,
    /// The address clients reach this node at (`--advertise`; empty: not listed), and the
    /// live list of every node's, kept by the link and read by the shards (`/config.json`,
    /// trusted WebSocket origins).
    pub advertise: crate::config::site::Advertised,
    /// How long a download of a file stored on another node waits for each chunk before it
    /// fails with an error.
    pub file_timeout: Duration,
    /// Replicas of the log and buckets this node makes (1: NATS alone; 3 or 5 with a NATS
    /// cluster of that many, so the loss of one NATS server loses nothing).
    pub replicas: usize,
}
