//! Authentication: the three modes, the passkey, login throttling, and the accounts worker.
//!
//! Nothing here runs on an event loop except [`Throttle::check`] and the constant-time passkey
//! comparison, both cheap. Password hashing (argon2id) and the accounts database (SQLite) live on
//! one worker thread ([`Accounts`]); its verdicts go back to the asking shard through the shard's
//! inbox and waker as [`Done::Auth`](crate::services::Done::Auth).

use crate::protocol::validate::fold_name;
use crate::protocol::ErrorCode;
use crate::services::{Done, Links, Worker};
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use std::collections::HashMap;
use std::net::IpAddr;
use std::path::Path;
use std::sync::mpsc::Receiver;
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

/// The accounts store: a worker thread owning the SQLite connection and doing all hashing.
#[derive(Debug)]
pub struct Accounts {
    /// The thread that owns the database and does the hashing.
    worker: Worker<AuthJob>,
}

impl Accounts {
    /// Opens (creating) the accounts database at `path` and starts the worker, which answers
    /// through `links`.
    pub fn start(path: &Path, memory_kib: u32, links: Arc<Links>) -> Result<Accounts, AuthError> {
        let db_err = |source| AuthError::Db { path: path.display().to_string(), source };
        let schema = "CREATE TABLE IF NOT EXISTS users (
                 name_folded TEXT NOT NULL UNIQUE,
                 name TEXT NOT NULL,
                 hash TEXT NOT NULL,
                 created_ms INTEGER NOT NULL)";
        let db = super::open_sqlite(path, schema).map_err(db_err)?;
        let params = Params::new(memory_kib, 2, 1, None).map_err(|e| AuthError::Params(e.to_string()))?;
        let argon = Argon2::new(Algorithm::Argon2id, Version::V0x13, params);
        let worker = Worker::spawn("chat-accounts", move |rx| run(db, argon, rx, links))?;
        Ok(Accounts { worker })
    }

    /// Queues a job; false if the worker is gone.
    pub fn submit(&self, job: AuthJob) -> bool {
        self.worker.submit(job)
    }
}

/// The accounts thread: answers each job in turn until the queue closes.
fn run(db: rusqlite::Connection, argon: Argon2<'static>, rx: Receiver<AuthJob>, links: Arc<Links>) {
    while let Ok(job) = rx.recv() {
        let result = if job.register { register(&db, &argon, &job) } else { verify(&db, &argon, &job) };
        let verdict = AuthVerdict { key: job.key, nonce: job.nonce, username: job.username, result, since: job.since };
        links.send(job.shard, Done::Auth(verdict));
    }
}

fn register(db: &rusqlite::Connection, argon: &Argon2<'_>, job: &AuthJob) -> Result<(), (ErrorCode, String)> {
    let internal = |e: String| (ErrorCode::Internal, format!("could not create the account: {e}"));
    let mut salt = [0u8; 16];
    getrandom::getrandom(&mut salt).map_err(|e| internal(e.to_string()))?;
    let salt = SaltString::encode_b64(&salt).map_err(|e| internal(e.to_string()))?;
    let hash = argon.hash_password(job.password.as_bytes(), &salt).map_err(|e| internal(e.to_string()))?;
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis() as i64);
    let r = db.execute(
        "INSERT INTO users (name_folded, name, hash, created_ms) VALUES (?1, ?2, ?3, ?4)",
        rusqlite::params![job.username.to_lowercase(), job.username, hash.to_string(), now],
    );
    match r {
        Ok(_) => Ok(()),
        Err(rusqlite::Error::SqliteFailure(e, _)) if e.code == rusqlite::ErrorCode::ConstraintViolation => {
            Err((ErrorCode::UsernameTaken, format!("the account {:?} already exists", job.username)))
        }
        Err(e) => Err(internal(e.to_string())),
    }
}

fn verify(db: &rusqlite::Connection, argon: &Argon2<'_>, job: &AuthJob) -> Result<(), (ErrorCode, String)> {
    let bad = || (ErrorCode::AuthFailed, "wrong user name or password".to_string());
    let stored: Option<String> =
        db.query_row("SELECT hash FROM users WHERE name_folded = ?1", [job.username.to_lowercase()], |r| r.get(0)).ok();
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
