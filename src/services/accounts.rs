//! Authentication: the three modes, the passkey, login throttling, and the accounts worker.
//!
//! Nothing here runs on an event loop except [`Throttle::check`] and the constant-time passkey
//! comparison, both cheap. Password hashing (argon2id) and the accounts database (SQLite) run on
//! a pool of worker threads ([`Accounts`], one per core by default), fed by a bounded
//! [`FairQueue`] that takes jobs round-robin across source addresses: a registration storm from
//! many addresses delays an honest login by about one job per storming address, and an address
//! with `per_address` jobs outstanding is told "busy, retry" for its excess alone. Verdicts go
//! back to the asking shard through the shard's inbox and waker as
//! [`Done::Auth`](crate::services::Done::Auth).

use crate::protocol::validate::fold_name;
use crate::protocol::ErrorCode;
use crate::services::fair::{Busy, FairQueue};
use crate::services::{Done, Links};
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use std::collections::HashMap;
use std::net::IpAddr;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

pub use crate::config::AuthMode;

/// Errors starting the accounts store.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AuthError {
    #[error("accounts database {path}: {source}")]
    Db { path: String, source: rusqlite::Error },
    #[error("argon2 parameters: {0}")]
    Params(String),
    #[error("cannot start the accounts thread: {0}")]
    Thread(#[from] std::io::Error),
}

/// Why a job was not queued: a LOGIN_REJECT code and reason for the client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refused {
    /// `RATE_LIMITED` when busy (retry), `INTERNAL` when the service is gone.
    pub code: ErrorCode,
    /// Words for the user.
    pub reason: String,
}

/// Compares two secrets in time that depends only on their lengths.
pub fn secret_eq(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// A random passkey: 16 characters from an unambiguous alphabet (about 80 bits).
pub fn random_passkey() -> String {
    const ALPHABET: &[u8] = b"abcdefghjkmnpqrstuvwxyz23456789";
    let mut bytes = [0u8; 16];
    // The OS RNG failing is not something a server can work around; fall back to the clock
    // mixed with the address of a local (never a predictable constant).
    if getrandom::getrandom(&mut bytes).is_err() {
        let seed = Instant::now().elapsed().as_nanos() ^ (&bytes as *const _ as u128);
        bytes.iter_mut().enumerate().for_each(|(i, b)| *b = (seed >> (i % 16 * 8)) as u8);
    }
    bytes.iter().map(|b| ALPHABET[*b as usize % ALPHABET.len()] as char).collect()
}

/// Login attempts allowed per window, per (user name, source address) and per source address,
/// before any hashing. Counting a name per address means that guessing a name's password from
/// one address locks out that address only: the owner, elsewhere, still logs in.
#[derive(Debug)]
pub struct Throttle {
    /// Attempt counts per (case-folded user name, IP) and per IP, with the window's start.
    state: Mutex<ThrottleState>,
    /// Attempts allowed per user name from one address per window.
    per_user: u32,
    /// Attempts allowed per address per window.
    per_ip: u32,
    /// The window.
    window: Duration,
}

#[derive(Debug, Default)]
struct ThrottleState {
    users: HashMap<(String, IpAddr), (Instant, u32)>,
    ips: HashMap<IpAddr, (Instant, u32)>,
}

impl Default for Throttle {
    fn default() -> Self {
        Throttle { state: Mutex::default(), per_user: 5, per_ip: 20, window: Duration::from_secs(60) }
    }
}

impl Throttle {
    /// Counts an attempt for `user` from `ip`; `Err(wait)` when either is over its budget.
    pub fn check(&self, user: &str, ip: IpAddr, now: Instant) -> Result<(), Duration> {
        let mut st = self.state.lock().unwrap_or_else(|e| e.into_inner());
        if st.users.len() + st.ips.len() > 100_000 {
            let window = self.window;
            st.users.retain(|_, (t, _)| now.duration_since(*t) < window);
            st.ips.retain(|_, (t, _)| now.duration_since(*t) < window);
        }
        let window = self.window;
        let bump = |slot: &mut (Instant, u32), max: u32| {
            if now.duration_since(slot.0) >= window {
                *slot = (now, 0);
            }
            if slot.1 >= max {
                return Err(window.saturating_sub(now.duration_since(slot.0)));
            }
            slot.1 += 1;
            Ok(())
        };
        bump(st.ips.entry(ip).or_insert((now, 0)), self.per_ip)?;
        bump(st.users.entry((fold_name(user), ip)).or_insert((now, 0)), self.per_user)
    }

    /// Forgets `user`'s failed attempts from `ip` after a successful login from there.
    pub fn succeeded(&self, user: &str, ip: IpAddr) {
        self.state.lock().unwrap_or_else(|e| e.into_inner()).users.remove(&(fold_name(user), ip));
    }
}

/// What a login or registration asks the accounts worker.
#[derive(Debug)]
pub struct AuthJob {
    /// The shard to answer.
    pub shard: usize,
    /// The connection on that shard.
    pub key: usize,
    /// The connection's pending-auth nonce (keys are reused).
    pub nonce: u64,
    /// The client's address: jobs are shared out fairly between addresses.
    pub ip: IpAddr,
    /// True to create the account, false to check it.
    pub register: bool,
    /// The user name as typed.
    pub username: String,
    /// The password.
    pub password: String,
    /// The LOGIN's "since id N", handed back with the verdict.
    pub since: Option<u64>,
}

/// The worker's verdict.
#[derive(Debug)]
pub struct AuthVerdict {
    /// The connection that asked.
    pub key: usize,
    /// Its nonce.
    pub nonce: u64,
    /// The user name as typed.
    pub username: String,
    /// `Ok` to log in; otherwise the LOGIN_REJECT code and reason.
    pub result: Result<(), (ErrorCode, String)>,
    /// The LOGIN's "since id N".
    pub since: Option<u64>,
}

/// How the accounts pool is sized and bounded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PoolLimits {
    /// Hashing threads (0: one per CPU core).
    pub workers: usize,
    /// Most jobs waiting in all.
    pub queue: usize,
    /// Most jobs one address may have waiting or running.
    pub per_address: usize,
}

/// Where accounts live when not in this server's own SQLite database: shared by several
/// servers (a cluster keeps them in NATS, `cluster::nats`). Called from the accounts threads,
/// which may block on it; each call is bounded by its implementation.
pub trait AccountBook: Send + Sync {
    /// Creates the account `folded` (the lower-cased name) unless it exists: `Ok(false)` if it
    /// does.
    fn create(&self, folded: &str, name: &str, hash: &str, created_ms: i64) -> Result<bool, String>;
    /// The stored password hash of `folded`, if the account exists.
    fn hash(&self, folded: &str) -> Result<Option<String>, String>;
}

/// Where one accounts thread reads and writes accounts.
enum Book {
    /// This server's database (one connection per thread).
    Own(rusqlite::Connection),
    /// A book shared with other servers.
    Shared(Arc<dyn AccountBook>),
}

impl Book {
    fn create(&self, folded: &str, name: &str, hash: &str, created_ms: i64) -> Result<bool, String> {
        match self {
            Book::Own(db) => {
                let r = db.execute(
                    "INSERT INTO users (name_folded, name, hash, created_ms) VALUES (?1, ?2, ?3, ?4)",
                    rusqlite::params![folded, name, hash, created_ms],
                );
                match r {
                    Ok(_) => Ok(true),
                    Err(rusqlite::Error::SqliteFailure(e, _)) if e.code == rusqlite::ErrorCode::ConstraintViolation => {
                        Ok(false)
                    }
                    Err(e) => Err(e.to_string()),
                }
            }
            Book::Shared(book) => book.create(folded, name, hash, created_ms),
        }
    }

    fn hash(&self, folded: &str) -> Result<Option<String>, String> {
        match self {
            Book::Own(db) => {
                let q = db.query_row("SELECT hash FROM users WHERE name_folded = ?1", [folded], |r| r.get(0));
                match q {
                    Ok(hash) => Ok(Some(hash)),
                    Err(rusqlite::Error::QueryReturnedNoRows) => Ok(None),
                    Err(e) => Err(e.to_string()),
                }
            }
            Book::Shared(book) => book.hash(folded),
        }
    }
}

/// The accounts store: a pool of threads doing all hashing, each with its own SQLite connection
/// (or a shared [`AccountBook`]), fed by a fair bounded queue.
pub struct Accounts {
    /// Jobs waiting, round-robin by address.
    queue: Arc<FairQueue<IpAddr, AuthJob>>,
    /// The pool, joined on drop.
    threads: Vec<std::thread::JoinHandle<()>>,
}

impl std::fmt::Debug for Accounts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Accounts").field("threads", &self.threads.len()).finish_non_exhaustive()
    }
}

impl Accounts {
    /// Opens (creating) the accounts database at `path` and starts the pool, which answers
    /// through `links`.
    /// With `shared`, accounts live there and no database is opened.
    pub fn start(
        (path, shared): (&Path, Option<Arc<dyn AccountBook>>),
        memory_kib: u32,
        limits: PoolLimits,
        links: Arc<Links>,
    ) -> Result<Accounts, AuthError> {
        let db_err = |source| AuthError::Db { path: path.display().to_string(), source };
        let schema = "CREATE TABLE IF NOT EXISTS users (
                 name_folded TEXT NOT NULL UNIQUE,
                 name TEXT NOT NULL,
                 hash TEXT NOT NULL,
                 created_ms INTEGER NOT NULL)";
        let params = Params::new(memory_kib, 2, 1, None).map_err(|e| AuthError::Params(e.to_string()))?;
        let argon = Argon2::new(Algorithm::Argon2id, Version::V0x13, params);
        let workers = match limits.workers {
            0 => std::thread::available_parallelism().map_or(1, |n| n.get()),
            n => n,
        };
        let queue = Arc::new(FairQueue::new(limits.per_address, limits.queue));
        let mut accounts = Accounts { queue, threads: Vec::with_capacity(workers) };
        for i in 0..workers {
            let book = match &shared {
                Some(book) => Book::Shared(book.clone()),
                None => {
                    let db = super::open_sqlite(path, schema).map_err(db_err)?;
                    // Writers from several threads take turns on the database instead of failing.
                    db.busy_timeout(std::time::Duration::from_secs(5)).map_err(db_err)?;
                    Book::Own(db)
                }
            };
            let (queue, argon, links) = (accounts.queue.clone(), argon.clone(), links.clone());
            let thread = std::thread::Builder::new()
                .name(format!("chat-accounts-{i}"))
                .spawn(move || run(book, argon, &queue, &links))?;
            accounts.threads.push(thread);
        }
        Ok(accounts)
    }

    /// Queues a job, or says why not: this address has its share outstanding, the queue is
    /// full (both "busy, retry"), or the pool is gone.
    pub fn submit(&self, job: AuthJob) -> Result<(), Refused> {
        let busy = |reason: &str| Refused { code: ErrorCode::RateLimited, reason: reason.to_string() };
        match self.queue.push(job.ip, job) {
            Ok(()) => Ok(()),
            Err(Busy::Key) => {
                Err(busy("the accounts service is busy with this address's other logins; retry in a moment"))
            }
            Err(Busy::Full) => Err(busy("the accounts service is busy; retry in a moment")),
            Err(Busy::Closed) => {
                Err(Refused { code: ErrorCode::Internal, reason: "the accounts service is not available".into() })
            }
        }
    }
}

impl Drop for Accounts {
    /// Lets the pool finish what is queued, then waits for it.
    fn drop(&mut self) {
        self.queue.close();
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

/// One accounts thread: answers jobs in the queue's fair order until it closes.
fn run(book: Book, argon: Argon2<'static>, queue: &FairQueue<IpAddr, AuthJob>, links: &Links) {
    while let Some((ip, job)) = queue.pop() {
        let result = if job.register { register(&book, &argon, &job) } else { verify(&book, &argon, &job) };
        queue.done(&ip);
        let verdict = AuthVerdict { key: job.key, nonce: job.nonce, username: job.username, result, since: job.since };
        links.send(job.shard, Done::Auth(verdict));
    }
}

fn register(book: &Book, argon: &Argon2<'_>, job: &AuthJob) -> Result<(), (ErrorCode, String)> {
    let internal = |e: String| (ErrorCode::Internal, format!("could not create the account: {e}"));
    let mut salt = [0u8; 16];
    getrandom::getrandom(&mut salt).map_err(|e| internal(e.to_string()))?;
    let salt = SaltString::encode_b64(&salt).map_err(|e| internal(e.to_string()))?;
    let hash = argon.hash_password(job.password.as_bytes(), &salt).map_err(|e| internal(e.to_string()))?;
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis() as i64);
    match book.create(&job.username.to_lowercase(), &job.username, &hash.to_string(), now) {
        Ok(true) => Ok(()),
        Ok(false) => Err((ErrorCode::UsernameTaken, format!("the account {:?} already exists", job.username))),
        Err(e) => Err(internal(e)),
    }
}

fn verify(book: &Book, argon: &Argon2<'_>, job: &AuthJob) -> Result<(), (ErrorCode, String)> {
    let bad = || (ErrorCode::AuthFailed, "wrong user name or password".to_string());
    let stored = book
        .hash(&job.username.to_lowercase())
        .map_err(|e| (ErrorCode::Internal, format!("the accounts store cannot be read now ({e}); try again")))?;
    let Some(stored) = stored else {
        // Hash anyway so that an unknown name takes as long as a wrong password.
        let _ =
            argon.hash_password(job.password.as_bytes(), &SaltString::from_b64("c2FsdHNhbHRzYWx0").map_err(|_| bad())?);
        return Err(bad());
    };
    let parsed = PasswordHash::new(&stored).map_err(|_| bad())?;
    argon.verify_password(job.password.as_bytes(), &parsed).map_err(|_| bad())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_name_is_locked_out_per_address_not_everywhere() {
        let t = Throttle::default();
        let (now, a, b) = (Instant::now(), IpAddr::from([10, 0, 0, 1]), IpAddr::from([10, 0, 0, 2]));
        (0..5).for_each(|_| assert!(t.check("Bob", a, now).is_ok()));
        assert!(t.check("bob", a, now).is_err(), "the sixth guess from one address");
        assert!(t.check("BOB", b, now).is_ok(), "the owner, from elsewhere");
        // A success from `a` forgives `a`'s failures for that name.
        t.succeeded("bob", a);
        assert!(t.check("bob", a, now).is_ok());
        // The window passes.
        assert!(t.check("carol", a, now + Duration::from_secs(61)).is_ok());
    }

    #[test]
    fn an_address_has_its_own_budget_over_every_name() {
        let t = Throttle::default();
        let (now, a) = (Instant::now(), IpAddr::from([10, 0, 0, 1]));
        (0..20).for_each(|i| assert!(t.check(&format!("user{i}"), a, now).is_ok()));
        assert!(t.check("another", a, now).is_err());
    }
}
