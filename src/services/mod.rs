//! The services every shard shares, each doing its slow work on a [`Worker`] thread so that no
//! event loop ever blocks:
//! - [`accounts`]: the auth modes, login throttling, and the argon2id accounts worker (SQLite).
//! - [`bans`]: names refused for a while after an admin kick.
//! - [`history`]: room history: the RAM cache replays read, and a [`history::HistoryStore`]
//!   (SQLite today) that makes messages durable.
//! - [`files`]: shared files: ids, caps and quota, metadata sidecars, the disk worker.
//! - [`console`]: admin commands typed on the server's stdin.
//! - [`fair`]: the bounded queue, round-robin by address, that feeds the accounts pool.
//! - [`worker`]: the one worker-thread type they all use.
//!
//! One [`Services`] per server, created by [`Services::start`] before the shards. Worker threads
//! never touch a shard: they answer with a [`Done`] through [`Links`], which the server wires to
//! the asking shard's inbox (the channel and `mio::Waker` that carry cross-shard work), and the
//! chat core acts on it on its own thread.

pub mod accounts;
pub mod bans;
pub mod console;
pub mod fair;
pub mod files;
pub mod history;
pub mod worker;

pub use worker::Worker;

use crate::config::{AuthMode, HistoryMode, ServerConfig};
use crate::protocol::validate::fold_name;
use crate::stats::StatsSnapshot;
use accounts::{random_passkey, Accounts, AuthError, AuthVerdict, Throttle};
use console::AdminRequest;
use files::{FileDone, FileStore, FilesError};
use history::{DurableAcks, History, HistoryError};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Instant;

/// A source of server-wide counters for the admin `stats` command.
pub type StatsSource = Arc<dyn Fn() -> StatsSnapshot + Send + Sync>;

/// Results of off-loop work, delivered to the shard that asked.
#[derive(Debug)]
pub enum Done {
    /// The accounts worker's verdict on a LOGIN or REGISTER.
    Auth(AuthVerdict),
    /// The history writer committed these messages: acknowledge them.
    Durable(DurableAcks),
    /// A command typed on the server's console (always sent to shard 0).
    Console(AdminRequest),
    /// The file worker stored or refused an upload, or read a chunk of a download.
    File(FileDone),
    /// The history reader answered a read the cache could not.
    HistoryRead(history::ReadDone),
}

/// How a worker's answer reaches shard `n`: set by the server once the shards exist.
pub type Answer = Arc<dyn Fn(usize, Done) -> bool + Send + Sync>;

/// The way back to the shards, known once they exist (workers start before them).
#[derive(Default)]
pub struct Links(OnceLock<Answer>);

impl std::fmt::Debug for Links {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("Links").field(&self.0.get().is_some()).finish()
    }
}

impl Links {
    /// Sends `done` to `shard` and wakes its loop; false if the shard is unknown or gone (or
    /// the server has not wired the links yet).
    pub fn send(&self, shard: usize, done: Done) -> bool {
        self.0.get().is_some_and(|answer| answer(shard, done))
    }
}

/// Errors starting the services.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ServiceError {
    #[error("cannot create the data directory {path}: {source}")]
    DataDir { path: String, source: std::io::Error },
    #[error(transparent)]
    History(#[from] HistoryError),
    #[error(transparent)]
    Auth(#[from] AuthError),
    #[error(transparent)]
    Files(#[from] FilesError),
}

/// The shared feature services of one server.
pub struct Services {
    /// How clients authenticate.
    pub auth: AuthMode,
    /// The passkey, in passkey mode.
    passkey: Option<String>,
    /// True when the passkey was generated (so the operator must be shown it).
    passkey_generated: bool,
    /// Admin user name (case-folded) and password, when admin commands are on.
    admin: Option<(String, String)>,
    /// Room history (RAM, or RAM cache plus SQLite writer).
    pub history: History,
    /// The accounts worker, in accounts mode.
    accounts: Option<Accounts>,
    /// Login attempt limits (accounts and passkey modes).
    pub throttle: Throttle,
    /// Names banned by an administrator's kick.
    pub bans: bans::Bans,
    /// Shared files and their worker, when file sharing is on.
    pub files: Option<FileStore>,
    /// An upload idle this long is aborted and its reservation freed.
    pub upload_idle: std::time::Duration,
    /// How big one page of a list reply may be.
    pub list_page: crate::config::ListPage,
    /// The shards' inboxes, for workers' answers.
    links: Arc<Links>,
    /// Server-wide counters for `stats`, when the server provided them.
    stats: Mutex<Option<StatsSource>>,
    /// When the server started (uptime).
    pub started: Instant,
}

impl std::fmt::Debug for Services {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Services").field("auth", &self.auth).field("history", &self.history).finish_non_exhaustive()
    }
}

impl Default for Services {
    /// Open mode, no history replay, no admin: ChatProto v1.0 semantics, what a server whose
    /// directory was built without [`Services::start`] does.
    fn default() -> Self {
        Services::with_history(AuthMode::Open, History::memory(0, 0, 1), Arc::default())
    }
}

impl Services {
    fn with_history(auth: AuthMode, history: History, links: Arc<Links>) -> Self {
        Services {
            auth,
            passkey: None,
            passkey_generated: false,
            admin: None,
            history,
            accounts: None,
            throttle: Throttle::default(),
            bans: bans::Bans::default(),
            files: None,
            upload_idle: std::time::Duration::from_secs(30),
            list_page: crate::config::ListPage::default(),
            links,
            stats: Mutex::new(None),
            started: Instant::now(),
        }
    }

    /// Starts what `config.services` asks for: creates the data directory, opens the databases,
    /// starts the history writer and the accounts worker, and picks the passkey.
    pub fn start(config: &ServerConfig) -> Result<Arc<Services>, ServiceError> {
        Services::start_with(config, None)
    }

    /// [`Services::start`], with accounts in `book` instead of the server's own database
    /// (a cluster's shared accounts).
    pub fn start_with(
        config: &ServerConfig,
        book: Option<Arc<dyn accounts::AccountBook>>,
    ) -> Result<Arc<Services>, ServiceError> {
        let cfg = &config.services;
        let links = Arc::new(Links::default());
        let needs_dir = cfg.history == HistoryMode::Sqlite || cfg.auth == AuthMode::Accounts;
        if needs_dir {
            std::fs::create_dir_all(&cfg.data_dir)
                .map_err(|source| ServiceError::DataDir { path: cfg.data_dir.display().to_string(), source })?;
        }
        // One cache slot per shard: a room's owner shard is the only one appending to it.
        let shards = config.shard_count();
        let history = match cfg.history {
            HistoryMode::Memory => History::memory(cfg.history_len, cfg.history_cache, shards),
            HistoryMode::Sqlite => {
                let path = cfg.in_data_dir(&cfg.history_path);
                let (store, max_id) = history::sqlite::SqliteStore::open(&path, cfg.retention, links.clone())?;
                History::with_store(cfg.history_len, cfg.history_cache, shards, Box::new(store), max_id)
            }
        };
        let mut f = Services::with_history(cfg.auth, history, links.clone());
        if cfg.auth == AuthMode::Passkey {
            f.passkey_generated = cfg.passkey.is_none();
            f.passkey = Some(cfg.passkey.clone().unwrap_or_else(random_passkey));
        }
        if cfg.auth == AuthMode::Accounts {
            let path = cfg.in_data_dir(&cfg.accounts_path);
            let limits = accounts::PoolLimits {
                workers: cfg.auth_workers,
                queue: cfg.auth_queue,
                per_address: cfg.auth_queue_per_address,
            };
            f.accounts = Some(Accounts::start((&path, book), cfg.argon2_memory_kib, limits, links.clone())?);
        }
        f.upload_idle = cfg.upload_idle;
        f.list_page = cfg.list_page;
        if cfg.files {
            let dir = cfg.data_dir.join("files");
            let limits = files::FileLimits {
                max_file_size: cfg.max_file_size,
                quota: cfg.files_quota,
                per_user: cfg.max_files_per_user,
                total: cfg.max_files,
            };
            f.files = Some(FileStore::open(dir, limits, links.clone())?);
        }
        if let (Some(user), Some(pw)) = (&cfg.admin_user, &cfg.admin_password) {
            f.admin = Some((fold_name(user), pw.clone()));
        }
        Ok(Arc::new(f))
    }

    /// Lets worker threads reach the shards (the first call wins).
    pub fn attach(&self, answer: Answer) {
        let _ = self.links.0.set(answer);
    }

    /// The shards' inboxes.
    pub fn links(&self) -> &Links {
        &self.links
    }

    /// The passkey clients must send, in passkey mode.
    pub fn passkey(&self) -> Option<&str> {
        self.passkey.as_deref()
    }

    /// The passkey if the server generated it: the operator has to be shown it once.
    pub fn generated_passkey(&self) -> Option<&str> {
        self.passkey.as_deref().filter(|_| self.passkey_generated)
    }

    /// True when `folded` (a case-folded user name) is the admin's.
    pub fn is_admin_name(&self, folded: &str) -> bool {
        self.admin.as_ref().is_some_and(|(u, _)| u == folded)
    }

    /// True when `password` is the admin's password.
    pub fn admin_password_ok(&self, password: &str) -> bool {
        self.admin.as_ref().is_some_and(|(_, p)| crate::services::accounts::secret_eq(p, password))
    }

    /// The accounts worker, in accounts mode.
    pub fn accounts(&self) -> Option<&Accounts> {
        self.accounts.as_ref()
    }

    /// Sets the source of server-wide counters for the admin `stats` command.
    pub fn set_stats_source(&self, f: StatsSource) {
        *self.stats.lock().unwrap_or_else(|e| e.into_inner()) = Some(f);
    }

    /// The server-wide counters, if a source was set.
    pub fn stats(&self) -> Option<StatsSnapshot> {
        let source = self.stats.lock().unwrap_or_else(|e| e.into_inner()).clone();
        source.map(|f| f())
    }
}

/// Opens (creating) the SQLite database at `path` the way every service wants it (WAL, normal
/// sync: a commit survives the process being killed) and applies `schema`.
pub(crate) fn open_sqlite(path: &std::path::Path, schema: &str) -> rusqlite::Result<rusqlite::Connection> {
    let db = rusqlite::Connection::open(path)?;
    db.execute_batch("PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;")?;
    db.execute_batch(schema)?;
    Ok(db)
}
