//! The names task: this node's claims on user names in the `chat_names` bucket (create if
//! absent), their renewals, and the mirror of other nodes' claims.
//!
//! Claims, releases and renewals run concurrently, up to [`IN_FLIGHT`] requests at once, but
//! one at a time per name and in queue order for it, so a release never overtakes its claim. A
//! login storm costs about one round trip per [`IN_FLIGHT`] logins, and a node's renewals (every
//! `ttl / 3`, one per name it holds) no longer hold up its logins.

use super::link::Ctx;
use super::wire;
use super::{Cmd, RemoteName};
use crate::cluster::{Backplane, Claim, InProcess, Remote, UserEntry};
use async_nats::jetstream::kv::{self, CreateErrorKind, Operation, Store, UpdateErrorKind};
use bytes::Bytes;
use futures_util::stream::FuturesUnordered;
use futures_util::StreamExt;
use std::collections::{HashMap, VecDeque};
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use tokio::sync::mpsc;

/// Requests to the bucket the names task keeps in flight at once.
const IN_FLIGHT: usize = 128;

/// Tells the shard holding `entry` the verdict on its name claim.
pub(super) fn verdict(local: &InProcess, entry: UserEntry, verdict: Claim) {
    local.deliver(entry.shard, vec![Remote::Claimed { key: entry.key, user: entry.name, verdict }]);
}

/// One request about one name.
enum Op {
    /// Claim it for a local connection.
    Claim(UserEntry),
    /// Drop this node's claim.
    Release,
    /// Re-write this node's claim (the heartbeat).
    Renew,
}

/// A finished request.
enum Done {
    Claimed(UserEntry, Bytes, Result<u64, CreateErrorKind>),
    Released,
    Renewed(Renewal),
}

/// What a renewal found.
enum Renewal {
    /// Written again: the new revision.
    Kept(u64),
    /// No longer held here (a lost release): deleted.
    Dropped,
    /// Another node took it while this node could not renew it.
    Lost,
    /// Could not tell now: kept, tried again at the next beat.
    Unknown,
}

type Running = Pin<Box<dyn Future<Output = (Box<str>, Done)> + Send>>;

/// The names task's state: claims held, and requests running or waiting per name.
struct Names {
    kv: Store,
    ctx: Arc<Ctx>,
    /// Claims this node holds: case-folded name -> (the claim's value, its revision).
    held: HashMap<Box<str>, (Bytes, u64)>,
    /// Names with a request in flight, and the requests waiting behind it, in order.
    busy: HashMap<Box<str>, VecDeque<Op>>,
    /// Names whose next request waits for room in flight (claims first, renewals after).
    ready: VecDeque<Box<str>>,
    running: FuturesUnordered<Running>,
}

/// The names task: runs until the command queue closes.
pub(super) async fn names(kv: Store, (ttl, mut slot): (Duration, Slot), ctx: Arc<Ctx>, mut rx: mpsc::Receiver<Cmd>) {
    let mut n = Names {
        kv: kv.clone(),
        ctx,
        held: HashMap::new(),
        busy: HashMap::new(),
        ready: VecDeque::new(),
        running: FuturesUnordered::new(),
    };
    let mut beat = tokio::time::interval(ttl / 3);
    loop {
        tokio::select! {
            // Claims and releases wait in the bounded queue (full: a claim is answered
            // "unavailable") while this many are waiting here beyond one renewal per name held.
            cmd = rx.recv(), if n.ready.len() < IN_FLIGHT + n.held.len() => match cmd {
                Some(Cmd::Claim { entry, .. }) if !n.ctx.stats.connected.load(Ordering::Relaxed) => {
                    // It would wait for the request timeout.
                    verdict(&n.ctx.local, entry, Claim::Unavailable);
                }
                Some(Cmd::Claim { folded, entry }) => n.queue(folded, Op::Claim(entry), true),
                Some(Cmd::Release(folded)) => n.queue(folded, Op::Release, true),
                Some(_) => {}
                None => break,
            },
            Some((folded, done)) = n.running.next() => n.finish(folded, done),
            _ = beat.tick() => {
                if n.ctx.stats.connected.load(Ordering::Relaxed) {
                    renew_slot(&kv, &mut slot).await;
                    // Renew every claim held (drop those no longer held: a lost release).
                    let names: Vec<Box<str>> = n.held.keys().cloned().collect();
                    names.into_iter().for_each(|f| n.queue(f, Op::Renew, false));
                }
            }
        }
        n.start_ready();
    }
}

impl Names {
    /// Queues `op` behind any request for the same name; `urgent` ones (a user waits) start
    /// before renewals.
    fn queue(&mut self, folded: Box<str>, op: Op, urgent: bool) {
        match self.busy.get_mut(&folded) {
            Some(waiting) => {
                if matches!(op, Op::Renew) && !waiting.is_empty() {
                    return; // something else for this name comes first; it renews anyway
                }
                waiting.push_back(op);
            }
            None => {
                self.busy.insert(folded.clone(), VecDeque::from([op]));
                if urgent {
                    self.ready.push_front(folded);
                } else {
                    self.ready.push_back(folded);
                }
            }
        }
    }

    /// Starts waiting requests while there is room in flight.
    fn start_ready(&mut self) {
        while self.running.len() < IN_FLIGHT {
            let Some(folded) = self.ready.pop_front() else { return };
            let Some(op) = self.busy.get_mut(&folded).and_then(VecDeque::pop_front) else {
                self.busy.remove(&folded);
                continue;
            };
            let request = self.request(folded, op);
            self.running.push(request);
        }
    }

    /// The request for `op` on `folded`.
    fn request(&mut self, folded: Box<str>, op: Op) -> Running {
        let (kv, key) = (self.kv.clone(), wire::hex(&folded));
        match op {
            Op::Claim(entry) => {
                let value = wire::claim_value(&self.ctx.node, &entry.name);
                Box::pin(async move {
                    let result = kv.create(key, value.clone()).await.map_err(|e| {
                        if e.kind() != CreateErrorKind::AlreadyExists {
                            tracing::warn!("cluster: cannot claim a name: {e}");
                        }
                        e.kind()
                    });
                    (folded, Done::Claimed(entry, value, result))
                })
            }
            Op::Release => {
                let held = self.held.remove(&folded).is_some();
                Box::pin(async move {
                    if held {
                        if let Err(e) = kv.delete(key).await {
                            tracing::debug!("cluster: cannot release a name (it expires by itself): {e}");
                        }
                    }
                    (folded, Done::Released)
                })
            }
            Op::Renew => {
                let held = self.held.get(&folded).cloned();
                let here = self.ctx.local.locate(&folded).is_some();
                Box::pin(async move {
                    let renewal = match held {
                        None => Renewal::Unknown,
                        Some(_) if !here => {
                            let _ = kv.delete(key).await;
                            Renewal::Dropped
                        }
                        Some((value, rev)) => renew(&kv, key, value, rev).await,
                    };
                    (folded, Done::Renewed(renewal))
                })
            }
        }
    }

    /// Applies a finished request and lets the next one for that name run.
    fn finish(&mut self, folded: Box<str>, done: Done) {
        match done {
            Done::Claimed(entry, value, result) => {
                let claim = match result {
                    Ok(rev) => {
                        self.held.insert(folded.clone(), (value, rev));
                        Claim::Granted
                    }
                    Err(CreateErrorKind::AlreadyExists) => Claim::Taken,
                    Err(_) => Claim::Unavailable,
                };
                verdict(&self.ctx.local, entry, claim);
            }
            Done::Released => {}
            Done::Renewed(Renewal::Kept(rev)) => {
                if let Some(held) = self.held.get_mut(&folded) {
                    held.1 = rev;
                }
            }
            Done::Renewed(Renewal::Dropped) => drop(self.held.remove(&folded)),
            Done::Renewed(Renewal::Lost) => {
                self.held.remove(&folded);
                self.ctx.stats.names_lost.fetch_add(1, Ordering::Relaxed);
                tracing::warn!("cluster: a local user's name was taken by another node; closing that connection");
                if let Some(e) = self.ctx.local.locate(&folded) {
                    self.ctx.local.deliver(e.shard, vec![Remote::NameLost { key: e.key, user: e.name }]);
                }
            }
            Done::Renewed(Renewal::Unknown) => {}
        }
        match self.busy.get(&folded) {
            Some(waiting) if !waiting.is_empty() => self.ready.push_front(folded),
            _ => drop(self.busy.remove(&folded)),
        }
    }
}

/// Re-writes one claim (so it outlives the bucket's `max_age`), or makes it again if it expired
/// meanwhile (NATS was away), or finds another node took it.
async fn renew(kv: &Store, key: String, value: Bytes, rev: u64) -> Renewal {
    match rewrite(kv, &key, &value, rev).await {
        Ok(rev) => Renewal::Kept(rev),
        Err(Rewrite::Taken) => Renewal::Lost,
        Err(Rewrite::Unknown(e)) => {
            tracing::debug!("cluster: cannot renew a name claim now (kept, retried): {e}");
            Renewal::Unknown
        }
    }
}

/// Why a key this node holds could not be written again.
enum Rewrite {
    /// Another value is there now: someone else holds it.
    Taken,
    /// Could not tell now (no answer, NATS electing a leader): try again later.
    Unknown(String),
}

/// Writes `value` again under `key`, which this node wrote at revision `rev`. Only a key that now
/// holds someone else's value is [`Rewrite::Taken`]: a failed request, an answer missed (the
/// key holds this value at a later revision) or an expired key are not.
async fn rewrite(kv: &Store, key: &str, value: &Bytes, rev: u64) -> Result<u64, Rewrite> {
    let unknown = |e: &dyn std::fmt::Display| Rewrite::Unknown(e.to_string());
    match kv.update(key, value.clone(), rev).await {
        Ok(rev) => return Ok(rev),
        Err(e) if e.kind() != UpdateErrorKind::WrongLastRevision => return Err(unknown(&e)),
        Err(_) => {}
    }
    let now = kv.entry(key).await.map_err(|e| unknown(&e))?.filter(|e| e.operation == Operation::Put);
    match now {
        Some(e) if e.value == *value => kv.update(key, value.clone(), e.revision).await.map_err(|e| unknown(&e)),
        Some(_) => Err(Rewrite::Taken),
        None => match kv.create(key, value.clone()).await {
            Ok(rev) => Ok(rev),
            Err(e) if e.kind() == CreateErrorKind::AlreadyExists => Err(Rewrite::Taken),
            Err(e) => Err(unknown(&e)),
        },
    }
}

/// This node's id slot: a key `slot.N` in the names bucket, held like a name.
pub(super) struct Slot {
    /// N: the node's place among at most [`super::MAX_NODES`].
    pub index: u64,
    /// The key's value (the node's name, a newline, this run's instance) and revision.
    value: Bytes,
    rev: u64,
}

/// Claims an id slot: takes back this node's own from its last run (a restart within the TTL),
/// refuses to start if a live node already holds this node's name, or claims the first free one.
pub(super) async fn claim_slot(kv: &Store, node: &str, ttl: Duration) -> Result<Slot, String> {
    let instance = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_nanos());
    let value = Bytes::from(format!("{node}\n{}-{instance:x}", std::process::id()));
    for index in 0..super::MAX_NODES {
        let key = format!("slot.{index}");
        let held = kv.entry(&key).await.map_err(|e| e.to_string())?.filter(|e| e.operation == Operation::Put);
        let Some(entry) = held.filter(|e| e.value.split(|&b| b == b'\n').next() == Some(node.as_bytes())) else {
            continue;
        };
        // A live node renews its slot every ttl / 3: wait a little longer and see whether it did.
        tokio::time::sleep(ttl / 3 + Duration::from_secs(1)).await;
        match kv.entry(&key).await.map_err(|e| e.to_string())?.filter(|e| e.operation == Operation::Put) {
            Some(now) if now.revision != entry.revision => {
                return Err(format!("another node named {node:?} is running (node names must be unique)"));
            }
            Some(now) => {
                let rev = kv.update(&key, value.clone(), now.revision).await.map_err(|e| e.to_string())?;
                return Ok(Slot { index, value, rev });
            }
            None => break, // expired meanwhile: claim afresh
        }
    }
    for index in 0..super::MAX_NODES {
        match kv.create(format!("slot.{index}"), value.clone()).await {
            Ok(rev) => return Ok(Slot { index, value, rev }),
            Err(e) if e.kind() == CreateErrorKind::AlreadyExists => {}
            Err(e) => return Err(e.to_string()),
        }
    }
    Err(format!("every one of the {} node slots is taken", super::MAX_NODES))
}

/// Renews the id slot's claim (or claims it again after it expired while NATS was away).
pub(super) async fn renew_slot(kv: &Store, slot: &mut Slot) {
    let key = format!("slot.{}", slot.index);
    match rewrite(kv, &key, &slot.value, slot.rev).await {
        Ok(rev) => slot.rev = rev,
        Err(Rewrite::Taken) => tracing::error!(
            "cluster: another node took this node's id slot {} while it could not renew it (file ids may collide)",
            slot.index
        ),
        Err(Rewrite::Unknown(e)) => tracing::warn!("cluster: cannot renew this node's id slot {} now: {e}", slot.index),
    }
}

/// Mirrors the names bucket (other nodes' claims) into the backplane's mirror; starts again
/// after a break (a lost connection).
pub(super) async fn watch(kv: Store, ctx: Arc<Ctx>) {
    loop {
        match kv.watch_all().await {
            Ok(mut w) => {
                while let Some(Ok(entry)) = w.next().await {
                    mirror_entry(&ctx, entry);
                }
            }
            Err(e) => tracing::debug!("cluster: cannot watch the names bucket: {e}"),
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

/// Applies one bucket change to the mirror.
fn mirror_entry(ctx: &Ctx, entry: kv::Entry) {
    let Some(folded) = wire::unhex(&entry.key).and_then(|b| String::from_utf8(b).ok()) else { return };
    let mut mirror = ctx.mirror.lock().unwrap_or_else(|e| e.into_inner());
    match entry.operation {
        Operation::Put => match wire::parse_claim(&entry.value) {
            Some((node, _)) if node == ctx.node => {
                mirror.names.remove(folded.as_str());
            }
            Some((node, name)) => {
                let r = RemoteName { name: name.into(), node: node.into(), seen: Instant::now() };
                mirror.names.insert(folded.into(), r);
            }
            None => {}
        },
        Operation::Delete | Operation::Purge => {
            mirror.names.remove(folded.as_str());
        }
    }
}
