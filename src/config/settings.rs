//! `chat-server`'s settings: the command line, the TOML config file, and how they merge.
//!
//! Precedence, lowest first: built-in defaults < config file (`--config FILE`) < environment
//! (`RUST_LOG` for `log_level`) < command line. The defaults live in one place, the `#[arg]`
//! attributes of [`Settings`], so `--help` shows them. Every command-line option has a config
//! key of the same name with `_` for `-` (`--max-per-address` is `max_per_address`).
//!
//! A config file is checked strictly: an unknown key (a typo), a value of the wrong type or out of
//! range is an error that names the file, the line and the key, and the server does not start.
//!
//! ```
//! use chatproto::config::settings::Settings;
//! let s = Settings::parse_args(["chat-server", "--port", "6000", "--no-tls"]).unwrap();
//! let config = s.server_config();
//! assert_eq!(config.bind.port(), 6000);
//! assert!(!config.tls.enabled);
//! ```

use super::site::check_advertise;
use super::{AuthMode, HistoryMode, ServerConfig, MAX_SHARDS};
use clap::parser::ValueSource;
use clap::{ArgMatches, CommandFactory, FromArgMatches, Parser};
use serde::Deserialize;
use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

/// Calls `$m!` with every setting that has both a command-line option and a config key.
macro_rules! each_setting {
    ($m:ident) => {
        $m!(
            port,
            bind,
            cert,
            key,
            tls_only,
            no_tls,
            max_frame,
            max_outbound,
            max_http_head,
            max_connections,
            max_per_address,
            limit_loopback,
            login_timeout,
            idle_ping,
            msg_rate,
            msg_burst,
            shards,
            metrics,
            log_level,
            log_queue,
            presence_limit,
            presence_interval_ms,
            auth,
            passkey,
            history,
            history_len,
            history_cache,
            history_retain_days,
            history_retain_per_room,
            data_dir,
            admin_user,
            admin_password,
            console,
            no_files,
            max_file_size,
            files_quota,
            upload_idle,
            list_page,
            list_page_bytes,
            outbound_burst,
            slow_grace,
            max_files_per_user,
            max_files,
            auth_workers,
            auth_queue,
            auth_queue_per_address,
            cluster,
            node,
            cluster_name_ttl,
            cluster_queue,
            cluster_inflight,
            advertise,
            cluster_file_timeout,
            cluster_replicas
        )
    };
}

mod file;
pub use file::FileSettings;

/// A LAN chat server speaking ChatProto v1.0 binary and JSON lines, plain or TLS, on one port.
///
/// Every option can also be set in a TOML file given with --config (key = option name with `_`
/// for `-`); the command line wins over the file.
#[derive(Parser, Clone, Debug, PartialEq)]
#[command(name = "chat-server", version, about, long_about = None)]
pub struct Settings {
    /// TOML config file; see chat-server.example.toml.
    #[arg(long, short, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// TCP port to listen on.
    #[arg(long, short, default_value_t = 5555)]
    pub port: u16,
    /// Address to bind (0.0.0.0 serves the whole LAN; 127.0.0.1 this machine only).
    #[arg(long, short, value_name = "ADDR", default_value = "0.0.0.0")]
    pub bind: IpAddr,
    /// Certificate chain (PEM). Generated, self-signed, if it and the key are missing.
    #[arg(long, value_name = "FILE", default_value = "certs/server.crt")]
    pub cert: PathBuf,
    /// Private key (PEM).
    #[arg(long, value_name = "FILE", default_value = "certs/server.key")]
    pub key: PathBuf,
    /// Refuse plaintext connections.
    #[arg(long, value_name = "BOOL", num_args = 0..=1, default_value_t = false, default_missing_value = "true")]
    pub tls_only: bool,
    /// Do not offer TLS (no certificate needed).
    #[arg(long, value_name = "BOOL", num_args = 0..=1, default_value_t = false, default_missing_value = "true")]
    pub no_tls: bool,
    /// Largest frame or JSON line accepted, in bytes.
    #[arg(long, value_name = "BYTES", default_value_t = 64 * 1024)]
    pub max_frame: usize,
    /// Per-connection outbound backlog, in bytes, before a slow reader is disconnected.
    #[arg(long, value_name = "BYTES", default_value_t = 1024 * 1024)]
    pub max_outbound: usize,
    /// Largest HTTP request head (request line and headers) accepted, in bytes; a larger one
    /// is answered 431.
    #[arg(long, value_name = "BYTES", default_value_t = 8 * 1024)]
    pub max_http_head: usize,
    /// Most connections at once.
    #[arg(long, value_name = "N", default_value_t = 100_000)]
    pub max_connections: usize,
    /// Most connections from one address (loopback is exempt unless --limit-loopback).
    #[arg(long, value_name = "N", default_value_t = 1024)]
    pub max_per_address: u32,
    /// Apply --max-per-address to loopback clients too.
    #[arg(long, value_name = "BOOL", num_args = 0..=1, default_value_t = false, default_missing_value = "true")]
    pub limit_loopback: bool,
    /// Seconds a connection may take to log in.
    #[arg(long, value_name = "SECS", default_value_t = 30)]
    pub login_timeout: u64,
    /// Seconds of client silence before the server sends PING; it closes after twice that.
    #[arg(long, value_name = "SECS", default_value_t = 60)]
    pub idle_ping: u64,
    /// Sustained messages per second per connection (0 = unlimited).
    #[arg(long, value_name = "PER_SEC", default_value_t = 100.0)]
    pub msg_rate: f64,
    /// Messages a connection may send in a burst.
    #[arg(long, value_name = "N", default_value_t = 200.0)]
    pub msg_burst: f64,
    /// Event-loop shards (0 = one per CPU core).
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub shards: usize,
    /// Serve Prometheus metrics over HTTP at ADDR/metrics, e.g. 127.0.0.1:9555 ("off" = don't).
    #[arg(long, value_name = "ADDR", default_value = "off")]
    pub metrics: MetricsAddr,
    /// Log filter (error, warn, info, debug, trace, or a RUST_LOG-style directive).
    #[arg(long, value_name = "FILTER", default_value = "info", env = "RUST_LOG")]
    pub log_level: String,
    /// Log lines that may wait for a slow stderr; past it lines are dropped (and counted), so
    /// logging never stalls the server.
    #[arg(long, value_name = "LINES", default_value_t = 4096)]
    pub log_queue: usize,
    /// Rooms with more members get no join/leave notices (0 = no limit).
    #[arg(long, value_name = "N", default_value_t = 1000)]
    pub presence_limit: usize,
    /// Milliseconds over which a room's joins and leaves become one PRESENCE notice per member
    /// (the first change after a quiet interval still goes out at once); 0 = a notice per change.
    #[arg(long, value_name = "MS", default_value_t = 250)]
    pub presence_interval_ms: u64,
    /// Authentication: open (a name is enough), passkey, or accounts (register + password).
    #[arg(long, value_name = "MODE", default_value = "open")]
    pub auth: String,
    /// The passkey for --auth passkey (empty: generate one at start and print it).
    #[arg(long, value_name = "KEY", default_value = "")]
    pub passkey: String,
    /// Where room history lives: sqlite (survives restarts) or memory.
    #[arg(long, value_name = "MODE", default_value = "sqlite")]
    pub history: String,
    /// Messages per room replayed on joining it (0 = no replay).
    #[arg(long, value_name = "N", default_value_t = 50)]
    pub history_len: usize,
    /// Bytes of room history kept in RAM in all (least recently used rooms evicted; they are
    /// read back from the database on demand).
    #[arg(long, value_name = "BYTES", default_value_t = 64 * 1024 * 1024)]
    pub history_cache: usize,
    /// Days the database keeps a message (0 = no age limit).
    #[arg(long, value_name = "DAYS", default_value_t = 30)]
    pub history_retain_days: u64,
    /// Messages the database keeps per room (0 = no limit).
    #[arg(long, value_name = "N", default_value_t = 10_000)]
    pub history_retain_per_room: usize,
    /// Directory for the history and accounts databases and shared files.
    #[arg(long, value_name = "DIR", default_value = "data")]
    pub data_dir: PathBuf,
    /// User name allowed to run admin commands once logged in with --admin-password.
    #[arg(long, value_name = "NAME", default_value = "")]
    pub admin_user: String,
    /// Password of the admin user (prefer the environment variable).
    #[arg(long, value_name = "PASSWORD", default_value = "", env = "CHATPROTO_ADMIN_PASSWORD", hide_env_values = true)]
    pub admin_password: String,
    /// Read admin commands from standard input (users, rooms, alert TEXT, kick USER, time, stats).
    #[arg(long, value_name = "BOOL", num_args = 0..=1, default_value_t = false, default_missing_value = "true")]
    pub console: bool,
    /// Turn file sharing off.
    #[arg(long, value_name = "BOOL", num_args = 0..=1, default_value_t = false, default_missing_value = "true")]
    pub no_files: bool,
    /// Largest file a client may upload, in bytes.
    #[arg(long, value_name = "BYTES", default_value_t = 16 * 1024 * 1024)]
    pub max_file_size: u64,
    /// Disk space all shared files may use together, in bytes.
    #[arg(long, value_name = "BYTES", default_value_t = 1024 * 1024 * 1024)]
    pub files_quota: u64,
    /// Seconds an upload may go without a chunk before it is aborted and its space freed.
    #[arg(long, value_name = "SECS", default_value_t = 30)]
    pub upload_idle: u64,
    /// Most entries in one LIST_ROOMS / LIST_USERS / LIST_FILES reply (the rest come in pages).
    #[arg(long, value_name = "N", default_value_t = 500)]
    pub list_page: usize,
    /// Most bytes (encoded, about) in one list reply page.
    #[arg(long, value_name = "BYTES", default_value_t = 64 * 1024)]
    pub list_page_bytes: usize,
    /// Hard cap on a connection's outbound backlog, in bytes (raised to --max-outbound if below):
    /// past it a reader is cut at once. Between --max-outbound and this, a reader is cut only if
    /// it takes nothing for --slow-grace.
    #[arg(long, value_name = "BYTES", default_value_t = 4 * 1024 * 1024)]
    pub outbound_burst: usize,
    /// Seconds a backlog over --max-outbound may go without the reader taking a byte.
    #[arg(long, value_name = "SECS", default_value_t = 2)]
    pub slow_grace: u64,
    /// Most shared files one user may have stored at once.
    #[arg(long, value_name = "N", default_value_t = 1000)]
    pub max_files_per_user: u64,
    /// Most shared files stored at once, in total.
    #[arg(long, value_name = "N", default_value_t = 100_000)]
    pub max_files: u64,
    /// Password-hashing threads for --auth accounts (0 = one per CPU core).
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub auth_workers: usize,
    /// Most logins/registrations waiting for a hashing thread, in total.
    #[arg(long, value_name = "N", default_value_t = 256)]
    pub auth_queue: usize,
    /// Most logins/registrations one address may have waiting or being hashed at once.
    #[arg(long, value_name = "N", default_value_t = 4)]
    pub auth_queue_per_address: usize,
    /// Join a cluster through these NATS servers (nats://HOST:PORT[,...]); empty = run alone.
    /// The NATS server needs JetStream (`nats-server -js`).
    #[arg(long, value_name = "URLS", default_value = "")]
    pub cluster: String,
    /// This node's name in the cluster (letters, digits, `-`, `_`; unique per node).
    #[arg(long, value_name = "NAME", default_value = "")]
    pub node: String,
    /// Seconds within which a dead node's user names become free (claims are renewed every third).
    #[arg(long, value_name = "SECS", default_value_t = 10)]
    pub cluster_name_ttl: u64,
    /// Batches of cross-node work that may wait for the NATS thread; past it a batch is dropped
    /// and counted (the event loops never wait).
    #[arg(long, value_name = "N", default_value_t = 4096)]
    pub cluster_queue: usize,
    /// Room messages awaiting the cluster log's confirmation at once; past it the NATS thread
    /// waits for the oldest (and --cluster-queue takes the pressure).
    #[arg(long, value_name = "N", default_value_t = 4096)]
    pub cluster_inflight: usize,
    /// How clients reach this node (HOST:PORT, or HOST for this node's port), listed to the web
    /// app for fail-over and trusted as a WebSocket origin by the other nodes; empty = not listed.
    #[arg(long, value_name = "HOST:PORT", default_value = "")]
    pub advertise: String,
    /// Seconds a download of a file stored on another node waits for each chunk from that node
    /// before it fails with an error.
    #[arg(long, value_name = "SECS", default_value_t = 5)]
    pub cluster_file_timeout: u64,
    /// Replicas of the room log and the buckets this node makes in NATS (1-5): with a NATS
    /// cluster of three, 3 keeps everything through the loss of one NATS server.
    #[arg(long, value_name = "N", default_value_t = 1)]
    pub cluster_replicas: usize,
}

/// Where the metrics endpoint listens, or `off`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(try_from = "String")]
pub struct MetricsAddr(pub Option<SocketAddr>);

impl FromStr for MetricsAddr {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s.trim() {
            "" | "off" | "none" | "false" => Ok(MetricsAddr(None)),
            a => a
                .parse()
                .map(|a| MetricsAddr(Some(a)))
                .map_err(|_| format!("`{a}` is not an address with a port (like 127.0.0.1:9555) or \"off\"")),
        }
    }
}

impl TryFrom<String> for MetricsAddr {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        s.parse()
    }
}

impl fmt::Display for MetricsAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Some(a) => write!(f, "{a}"),
            None => f.write_str("off"),
        }
    }
}

/// Why the settings cannot be used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SettingsError {
    /// The command line itself is wrong (clap prints it with usage; `--help` lands here too).
    #[error(transparent)]
    Cli(#[from] clap::Error),
    /// The config file could not be read.
    #[error("cannot read config file {}: {source}", path.display())]
    Read { path: PathBuf, source: std::io::Error },
    /// The config file is not valid TOML, has an unknown key, or a value of the wrong type.
    #[error("config file {}{}: {}{message}", path.display(), line.map(|l| format!(", line {l}")).unwrap_or_default(), key.as_ref().map(|k| format!("key `{k}`: ")).unwrap_or_default())]
    Parse { path: PathBuf, line: Option<usize>, key: Option<String>, message: String },
    /// A value is out of range, or two settings contradict each other.
    #[error("invalid setting `{key}` ({origin}): {problem}")]
    Invalid { key: &'static str, origin: String, problem: String },
}

impl Settings {
    /// Parses the process's command line and merges the config file it names. On a command-line
    /// error or `--help`, prints and exits as clap does.
    pub fn from_env() -> Result<Settings, SettingsError> {
        Settings::from_matches(&Settings::command().get_matches())
    }

    /// Parses `args` (the first is the program name) and merges the config file they name.
    pub fn parse_args<I, T>(args: I) -> Result<Settings, SettingsError>
    where
        I: IntoIterator<Item = T>,
        T: Into<std::ffi::OsString> + Clone,
    {
        Settings::from_matches(&Settings::command().try_get_matches_from(args)?)
    }

    /// Builds settings from parsed arguments: defaults, then the config file, then whatever the
    /// command line or environment gave explicitly. Checks ranges.
    pub fn from_matches(matches: &ArgMatches) -> Result<Settings, SettingsError> {
        let mut settings = Settings::from_arg_matches(matches)?;
        let file = match &settings.config {
            Some(path) => FileSettings::load(path)?,
            None => FileSettings::default(),
        };
        settings.merge_file(&file, matches);
        if let Err((key, problem)) = settings.check() {
            let origin = if matches.value_source(key) == Some(ValueSource::EnvVariable) {
                "environment variable RUST_LOG".to_string()
            } else if explicit(matches, key) {
                format!("--{}", key.replace('_', "-"))
            } else if file.has(key) {
                format!("config file {}", settings.config.as_deref().unwrap_or(Path::new("?")).display())
            } else {
                "default".to_string()
            };
            return Err(SettingsError::Invalid { key, origin, problem });
        }
        Ok(settings)
    }

    /// Takes each value the file sets, unless the command line (or environment) set it.
    pub fn merge_file(&mut self, file: &FileSettings, matches: &ArgMatches) {
        macro_rules! merge {
            ($($f:ident),*) => { $(
                if let (Some(v), false) = (&file.$f, explicit(matches, stringify!($f))) {
                    self.$f = v.clone();
                }
            )* };
        }
        each_setting!(merge);
    }

    /// Range checks after merging: the offending key and what is wrong with it.
    fn check(&self) -> Result<(), (&'static str, String)> {
        self.check_limits()?;
        self.check_modes()?;
        self.check_cluster()
    }

    /// Sizes, counts, rates and intervals.
    fn check_limits(&self) -> Result<(), (&'static str, String)> {
        need(!(self.tls_only && self.no_tls), "tls_only", || "tls_only and no_tls cannot both be true".into())?;
        need(self.max_frame >= 256, "max_frame", || format!("{} is below the minimum of 256 bytes", self.max_frame))?;
        need(self.max_outbound >= 1024, "max_outbound", || {
            format!("{} is below the minimum of 1024 bytes", self.max_outbound)
        })?;
        need(self.list_page >= 1, "list_page", || "must be at least 1".into())?;
        need(self.list_page_bytes >= 1024, "list_page_bytes", || {
            format!("{} is below the minimum of 1024 bytes", self.list_page_bytes)
        })?;
        need(self.max_files_per_user >= 1, "max_files_per_user", || "must be at least 1".into())?;
        need(self.max_files >= 1, "max_files", || "must be at least 1".into())?;
        need(self.auth_queue >= 1, "auth_queue", || "must be at least 1".into())?;
        need(self.auth_queue_per_address >= 1, "auth_queue_per_address", || "must be at least 1".into())?;
        need((256..=32 * 1024).contains(&self.max_http_head), "max_http_head", || {
            format!("{} is outside 256..=32768 bytes", self.max_http_head)
        })?;
        need(self.max_connections >= 1, "max_connections", || "must be at least 1".into())?;
        need(self.max_per_address >= 1, "max_per_address", || "must be at least 1".into())?;
        need(self.presence_interval_ms <= 60_000, "presence_interval_ms", || {
            format!("{} is over the maximum of 60000 ms", self.presence_interval_ms)
        })?;
        need(self.login_timeout >= 1, "login_timeout", || "must be at least 1 second".into())?;
        need(self.idle_ping >= 1, "idle_ping", || "must be at least 1 second".into())?;
        need(self.msg_rate.is_finite() && self.msg_rate >= 0.0, "msg_rate", || {
            format!("{} is not a rate (0 or more per second; 0 = unlimited)", self.msg_rate)
        })?;
        need(self.msg_burst.is_finite() && self.msg_burst >= 1.0, "msg_burst", || {
            format!("{} is not a burst (1 or more messages)", self.msg_burst)
        })?;
        need(self.shards <= MAX_SHARDS, "shards", || format!("{} shards is more than {MAX_SHARDS}", self.shards))
    }

    /// The named modes and the settings that go together.
    fn check_modes(&self) -> Result<(), (&'static str, String)> {
        need(self.auth.parse::<AuthMode>().is_ok(), "auth", || {
            format!("`{}` is not an auth mode (open, passkey, accounts)", self.auth)
        })?;
        need(self.history.parse::<HistoryMode>().is_ok(), "history", || {
            format!("`{}` is not a history mode (sqlite, memory)", self.history)
        })?;
        need(self.admin_user.is_empty() == self.admin_password.is_empty(), "admin_user", || {
            "admin_user and admin_password go together".into()
        })?;
        need(tracing_subscriber::EnvFilter::try_new(&self.log_level).is_ok(), "log_level", || {
            format!("`{}` is not a log filter (error, warn, info, debug, trace, or RUST_LOG syntax)", self.log_level)
        })
    }

    /// The cluster settings (only checked in full when `cluster` is set).
    fn check_cluster(&self) -> Result<(), (&'static str, String)> {
        let node_ok = !self.node.is_empty()
            && self.node.len() <= 64
            && self.node.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        need(self.cluster.is_empty() || node_ok, "node", || {
            format!("{:?}: a cluster node needs a name of 1 to 64 letters, digits, - or _", self.node)
        })?;
        need(
            self.cluster.split(',').all(|u| u.trim().parse::<async_nats::ServerAddr>().is_ok())
                || self.cluster.is_empty(),
            "cluster",
            || format!("{:?} is not a list of nats://HOST:PORT addresses", self.cluster),
        )?;
        need((2..=3600).contains(&self.cluster_name_ttl), "cluster_name_ttl", || {
            format!("{} is outside 2..=3600 seconds", self.cluster_name_ttl)
        })?;
        need(self.cluster_queue >= 1, "cluster_queue", || "must be at least 1".into())?;
        need(self.cluster_inflight >= 1, "cluster_inflight", || "must be at least 1".into())?;
        let advertise = if self.advertise.is_empty() { Ok(()) } else { check_advertise(&self.advertise) };
        advertise.map_err(|why| ("advertise", why))?;
        need((1..=600).contains(&self.cluster_file_timeout), "cluster_file_timeout", || {
            format!("{} is outside 1..=600 seconds", self.cluster_file_timeout)
        })?;
        need((1..=5).contains(&self.cluster_replicas), "cluster_replicas", || {
            format!("{} is outside 1..=5 (NATS keeps at most 5 replicas)", self.cluster_replicas)
        })
    }

    /// The server configuration these settings describe.
    pub fn server_config(&self) -> ServerConfig {
        let mut config = ServerConfig { bind: SocketAddr::new(self.bind, self.port), ..ServerConfig::default() };
        config.limits.max_frame = self.max_frame;
        config.max_outbound_bytes = self.max_outbound;
        config.outbound_burst = self.outbound_burst;
        config.slow_grace = Duration::from_secs(self.slow_grace);
        config.max_http_head = self.max_http_head;
        config.max_connections = self.max_connections;
        config.max_per_address = self.max_per_address;
        config.exempt_loopback = !self.limit_loopback;
        config.login_timeout = Duration::from_secs(self.login_timeout);
        config.idle_ping = Duration::from_secs(self.idle_ping.max(1));
        config.idle_timeout = config.idle_ping * 2;
        config.rate_limit.rate = self.msg_rate;
        config.rate_limit.burst = self.msg_burst.max(1.0);
        config.tls.enabled = !self.no_tls;
        config.tls.tls_only = self.tls_only;
        config.tls.cert = self.cert.clone();
        config.tls.key = self.key.clone();
        config.shards = self.shards;
        config.metrics = self.metrics.0;
        config.presence_limit = self.presence_limit;
        config.presence_interval = Duration::from_millis(self.presence_interval_ms);
        let f = &mut config.services;
        f.auth = self.auth.parse().unwrap_or(f.auth);
        f.passkey = Some(self.passkey.clone()).filter(|k| !k.is_empty());
        f.history = self.history.parse().unwrap_or(f.history);
        f.history_len = self.history_len;
        f.history_cache = self.history_cache;
        f.retention.max_age =
            Some(Duration::from_secs(self.history_retain_days * 24 * 3600)).filter(|_| self.history_retain_days > 0);
        f.retention.per_room = self.history_retain_per_room;
        f.data_dir = self.data_dir.clone();
        f.admin_user = Some(self.admin_user.clone()).filter(|u| !u.is_empty());
        f.admin_password = Some(self.admin_password.clone()).filter(|p| !p.is_empty());
        f.files = !self.no_files;
        f.max_file_size = self.max_file_size;
        f.files_quota = self.files_quota;
        f.upload_idle = Duration::from_secs(self.upload_idle.max(1));
        f.list_page = crate::config::ListPage { entries: self.list_page, bytes: self.list_page_bytes };
        f.max_files_per_user = self.max_files_per_user;
        f.max_files = self.max_files;
        f.auth_workers = self.auth_workers;
        f.auth_queue = self.auth_queue;
        f.auth_queue_per_address = self.auth_queue_per_address;
        config.cluster = (!self.cluster.is_empty()).then(|| super::ClusterConfig {
            servers: self.cluster.split(',').map(|u| u.trim().to_string()).collect(),
            node: self.node.clone(),
            name_ttl: Duration::from_secs(self.cluster_name_ttl),
            queue: self.cluster_queue,
            inflight: self.cluster_inflight,
            advertise: super::site::Advertised::new(&self.advertise),
            file_timeout: Duration::from_secs(self.cluster_file_timeout),
            replicas: self.cluster_replicas,
        });
        config
    }
}

/// Whether the command line or the environment gave `id`, rather than its default.
fn explicit(matches: &ArgMatches, id: &str) -> bool {
    matches!(matches.value_source(id), Some(ValueSource::CommandLine | ValueSource::EnvVariable))
}

#[cfg(test)]
#[path = "settings_tests.rs"]
mod tests;

/// `Ok` when `ok`, else the key and its problem.
fn need(ok: bool, key: &'static str, problem: impl FnOnce() -> String) -> Result<(), (&'static str, String)> {
    if ok {
        Ok(())
    } else {
        Err((key, problem()))
    }
}
