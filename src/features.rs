//! The services every shard shares for the seed features: authentication settings and the
//! accounts worker, message history and its writer thread, the admin credential, the stats
//! source, and the links back to the shards that worker threads answer through.
//!
//! One [`Features`] per server, created by [`Features::start`] before the shards and handed to
//! the [`Directory`](crate::directory::Directory) with `with_features`. Worker threads never
//! touch a hub: they send a [`Done`] into the asking shard's inbox (the same channel and
//! `mio::Waker` that carry cross-shard work), and the hub acts on it on its own thread.

use crate::admin::AdminRequest;
use crate::auth::{random_passkey, Accounts, AuthError, AuthMode, AuthVerdict, Throttle};
use crate::config::ServerConfig;
use crate::directory::{Remote, ShardLink};
use crate::files::{FileDone, FileStore, FilesError};
use crate::history::{DurableAcks, History, HistoryError, HistoryMode};
use crate::stats::StatsSnapshot;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Instant;

/// A source of server-wide counters for the admin `stats` command.
pub type StatsSource = Arc<dyn Fn() -> StatsSnapshot + Send + Sync>;

/// Results of off-loop work, delivered to a shard as [`Remote::Done`].
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
}

/// The shards' inboxes, known once the shards exist (workers start before them).
#[derive(Debug, Default)]
pub struct Links(OnceLock<Vec<ShardLink>>);

impl Links {
    /// Sends `done` to `shard` and wakes its loop; false if the shard is unknown or gone.
    pub fn send(&self, shard: usize, done: Done) -> bool {
        let Some(link) = self.0.get().and_then(|l| l.get(shard)) else { return false };
        if link.tx.send(vec![Remote::Done(done)]).is_err() {
            return false;
        }
        let _ = link.waker.wake();
        true
    }
}

/// Errors starting the features.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum FeatureError {
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
pub struct Features {
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
    /// Shared files and their worker, when file sharing is on.
    pub files: Option<FileStore>,
    /// The shards' inboxes, for workers' answers.
    links: Arc<Links>,
    /// Server-wide counters for `stats`, when the server provided them.
    stats: Mutex<Option<StatsSource>>,
    /// When the server started (uptime).
    pub started: Instant,
}

impl std::fmt::Debug for Features {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Features").field("auth", &self.auth).field("history", &self.history).finish_non_exhaustive()
    }
}

impl Default for Features {
    /// Open mode, no history replay, no admin: ChatProto v1.0 semantics, what a server whose
    /// directory was built without [`Features::start`] does.
    fn default() -> Self {
        Features::with_history(AuthMode::Open, History::memory(0), Arc::default())
    }
}

impl Features {
    fn with_history(auth: AuthMode, history: History, links: Arc<Links>) -> Self {
        Features {
            auth,
            passkey: None,
            passkey_generated: false,
            admin: None,
            history,
            accounts: None,
            throttle: Throttle::default(),
            files: None,
            links,
            stats: Mutex::new(None),
            started: Instant::now(),
        }
    }

    /// Starts what `config.features` asks for: creates the data directory, opens the databases,
    /// starts the history writer and the accounts worker, and picks the passkey.
    pub fn start(config: &ServerConfig) -> Result<Arc<Features>, FeatureError> {
        let fs = &config.features;
        let links = Arc::new(Links::default());
        let needs_dir = fs.history == HistoryMode::Sqlite || fs.auth == AuthMode::Accounts;
        if needs_dir {
            std::fs::create_dir_all(&fs.data_dir)
                .map_err(|source| FeatureError::DataDir { path: fs.data_dir.display().to_string(), source })?;
        }
        let history = match fs.history {
            HistoryMode::Memory => History::memory(fs.history_len),
            HistoryMode::Sqlite => History::sqlite(&fs.in_data_dir(&fs.history_path), fs.history_len, links.clone())?,
        };
        let mut f = Features::with_history(fs.auth, history, links.clone());
        if fs.auth == AuthMode::Passkey {
            f.passkey_generated = fs.passkey.is_none();
            f.passkey = Some(fs.passkey.clone().unwrap_or_else(random_passkey));
        }
        if fs.auth == AuthMode::Accounts {
            let path = fs.in_data_dir(&fs.accounts_path);
            f.accounts = Some(Accounts::start(&path, fs.argon2_memory_kib, links.clone())?);
        }
        if fs.files {
            let dir = fs.data_dir.join("files");
            f.files = Some(FileStore::open(dir, fs.max_file_size, fs.files_quota, links.clone())?);
        }
        if let (Some(user), Some(pw)) = (&fs.admin_user, &fs.admin_password) {
            f.admin = Some((user.to_lowercase(), pw.clone()));
        }
        Ok(Arc::new(f))
    }

    /// Lets worker threads reach the shards. Called once by `Directory::with_features`.
    pub(crate) fn attach(&self, links: Vec<ShardLink>) {
        let _ = self.links.0.set(links);
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
        self.admin.as_ref().is_some_and(|(_, p)| crate::auth::secret_eq(p, password))
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
