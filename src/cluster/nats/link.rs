//! The NATS thread: one OS thread with its own single-threaded tokio runtime, between the
//! shards (a bounded queue in, their inboxes and wakers out) and the NATS server.
//!
//! Tasks on the runtime: the command loop (publishes, log appends, room subscriptions), the
//! names task (claims, releases and heartbeats, one at a time in queue order, so a release never
//! overtakes its claim), the bucket watcher (the mirror of names on other nodes), the log's
//! acknowledger and replay readers ([`super::log`]), and one task per subscription (this node's
//! subject, alerts, each room with local members: its notices and its log) that hands what
//! arrives to the local shards.

use super::directory;
use super::log::{self, Log, LogLimits};
use super::wire::{self, Kind, DIRS_BUCKET, NAMES_BUCKET};
use super::{ClusterConfig, ClusterError, ClusterStats, Cmd, Mirror, RemoteName};
use crate::cluster::{Backplane, Claim, InProcess, Remote, UserEntry};
use crate::protocol::validate::fold_name;
use async_nats::jetstream::context::GetStreamErrorKind;
use async_nats::jetstream::kv::{self, CreateErrorKind, Operation, Store};
use async_nats::jetstream::stream;
use async_nats::jetstream::ErrorCode;
use async_nats::{Client, ConnectOptions, Event, Subscriber};
use bytes::Bytes;
use futures_util::StreamExt;
use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

/// How long the first connection may take before the server refuses to start.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// Claims and releases that may wait for the names task; past it a claim is answered
/// [`Claim::Unavailable`] and a release is left to the next heartbeat.
const NAMES_QUEUE: usize = 1024;

/// What every task shares.
pub(super) struct Ctx {
    pub node: String,
    pub local: Arc<InProcess>,
    pub mirror: Arc<Mutex<Mirror>>,
    pub stats: Arc<ClusterStats>,
    /// Signalled when the connection to NATS is made again after a loss: the room followers
    /// start again from where they stopped, reading what they missed from the log.
    pub reconnected: tokio::sync::Notify,
}

/// Starts the thread and waits until it is connected and has the names bucket.
/// Returns the node's id slot and the TTL the cluster runs on (the names bucket's, which the
/// first node set).
pub(super) fn spawn(
    (mut config, limits): (ClusterConfig, LogLimits),
    local: Arc<InProcess>,
    mirror: Arc<Mutex<Mirror>>,
    stats: Arc<ClusterStats>,
    rx: mpsc::Receiver<Cmd>,
) -> Result<(u64, Duration), ClusterError> {
    let (ready_tx, ready_rx) = std::sync::mpsc::channel();
    std::thread::Builder::new().name("chat-nats".into()).spawn(move || {
        let rt = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
            Ok(rt) => rt,
            Err(e) => return drop(ready_tx.send(Err(ClusterError::Thread(e)))),
        };
        rt.block_on(async move {
            let reconnected = tokio::sync::Notify::new();
            let ctx = Arc::new(Ctx { node: config.node.clone(), local, mirror, stats, reconnected });
            match setup(&mut config, &limits, &ctx).await {
                Ok((client, [kv, dirs], slot, log)) => {
                    let _ = ready_tx.send(Ok((slot.index, config.name_ttl)));
                    tokio::spawn(directory::publish(dirs.clone(), config.name_ttl, ctx.clone()));
                    tokio::spawn(directory::watch(dirs, ctx.clone()));
                    let js = async_nats::jetstream::new(client.clone());
                    tokio::spawn(guard_streams(js, config.name_ttl, log::stream_config(&limits)));
                    run(client, kv, (config.name_ttl, config.file_timeout, slot), (ctx, log), rx).await;
                }
                Err(e) => drop(ready_tx.send(Err(e))),
            }
        });
    })?;
    ready_rx.recv_timeout(CONNECT_TIMEOUT * 3).map_err(|_| ClusterError::Timeout)?
}

/// Connects and opens (or creates) the buckets and the room log.
async fn setup(
    config: &mut ClusterConfig,
    limits: &LogLimits,
    ctx: &Arc<Ctx>,
) -> Result<(Client, [Store; 2], Slot, Log), ClusterError> {
    let servers = config.servers.join(",");
    let events = ctx.clone();
    let client = ConnectOptions::new()
        .name(format!("chat-server {}", config.node))
        .no_echo()
        .connection_timeout(CONNECT_TIMEOUT)
        .max_reconnects(None)
        .event_callback(move |event| {
            let ctx = events.clone();
            async move { on_event(&ctx, event) }
        })
        .connect(config.servers.as_slice())
        .await
        .map_err(|e| ClusterError::Connect { servers: servers.clone(), reason: e.to_string() })?;
    ctx.stats.connected.store(true, Ordering::Relaxed);
    let js = async_nats::jetstream::new(client.clone());
    let mut stores = Vec::with_capacity(2);
    for bucket in [NAMES_BUCKET, DIRS_BUCKET] {
        let bucket_err = |e: &dyn std::fmt::Display| ClusterError::Bucket { bucket, reason: e.to_string() };
        let stream = match js.get_stream(format!("KV_{bucket}")).await {
            Ok(stream) => stream,
            // The bucket's stream as `create_key_value` would make it; made directly because
            // that call first asks for account details that nats-server 2.9's answer lacks.
            Err(_) => {
                js.get_or_create_stream(bucket_stream(bucket, config.name_ttl)).await.map_err(|e| bucket_err(&e))?
            }
        };
        let max_age = stream.cached_info().config.max_age;
        if bucket == NAMES_BUCKET && max_age != config.name_ttl && !max_age.is_zero() {
            // The first node made the bucket; its TTL is what the cluster runs on.
            let (theirs, mine) = (max_age.as_secs_f64(), config.name_ttl.as_secs_f64());
            tracing::warn!("cluster: the names bucket expires claims after {theirs} s, not {mine} s: using {theirs} s");
            config.name_ttl = max_age;
        }
        stores.push(js.get_key_value(bucket).await.map_err(|e| bucket_err(&e))?);
    }
    let (Some(dirs), Some(kv)) = (stores.pop(), stores.pop()) else { unreachable!("two buckets") };
    let bucket_err = |e: &dyn std::fmt::Display| ClusterError::Bucket { bucket: NAMES_BUCKET, reason: e.to_string() };
    let slot = claim_slot(&kv, &config.node).await.map_err(|e| bucket_err(&e))?;
    let log = Log::open(&client, ctx.clone(), limits).await?;
    let ttl_s = config.name_ttl.as_secs();
    tracing::info!(node = %config.node, slot = slot.index, %servers, ttl_s, "cluster: joined through NATS");
    Ok((client, [kv, dirs], slot, log))
}

/// A bucket's stream: one value per key, each expiring `ttl` after it was written.
fn bucket_stream(bucket: &str, ttl: Duration) -> stream::Config {
    stream::Config {
        name: format!("KV_{bucket}"),
        subjects: vec![format!("$KV.{bucket}.>")],
        max_messages_per_subject: 1,
        max_age: ttl,
        storage: stream::StorageType::File,
        allow_rollup: true,
        deny_delete: true,
        allow_direct: true,
        discard: stream::DiscardPolicy::New,
        num_replicas: 1,
        ..Default::default()
    }
}

/// Makes the buckets and the log again if NATS lost them (restarted without its store): every
/// `ttl / 3` it checks they exist. The renewals then write this node's claims and slot again,
/// and the directory is rewritten, within another `ttl / 3`. (The log starts empty: what it
/// held is gone with NATS's store.)
async fn guard_streams(js: async_nats::jetstream::Context, ttl: Duration, log: stream::Config) {
    let mut tick = tokio::time::interval(ttl / 3);
    let mut streams: Vec<_> = [NAMES_BUCKET, DIRS_BUCKET].iter().map(|b| bucket_stream(b, ttl)).collect();
    streams.push(log);
    loop {
        tick.tick().await;
        for config in &streams {
            let name = &config.name;
            let missing = match js.get_stream(name).await {
                Err(e) => {
                    matches!(e.kind(), GetStreamErrorKind::JetStream(j) if j.error_code() == ErrorCode::STREAM_NOT_FOUND)
                }
                Ok(_) => false,
            };
            if missing {
                match js.get_or_create_stream(config.clone()).await {
                    Ok(_) => tracing::warn!(
                        "cluster: stream {name} was gone from NATS (restarted without its store?); made it again"
                    ),
                    Err(e) => {
                        tracing::warn!("cluster: stream {name} is gone from NATS and cannot be made again: {e}")
                    }
                }
            }
        }
    }
}

/// Logs connection changes, keeps the connected flag and tells the command loop of a
/// reconnection.
fn on_event(ctx: &Ctx, event: Event) {
    let stats = &ctx.stats;
    match event {
        Event::Connected => {
            stats.connected.store(true, Ordering::Relaxed);
            ctx.reconnected.notify_one();
            tracing::info!("cluster: connected to NATS");
        }
        Event::Disconnected => {
            stats.connected.store(false, Ordering::Relaxed);
            stats.disconnects.fetch_add(1, Ordering::Relaxed);
            tracing::warn!("cluster: lost NATS; local users are still served, cross-node traffic waits or is dropped");
        }
        other => tracing::warn!("cluster: NATS {other}"),
    }
}

/// The command loop: runs until the shards' queue closes (the server stopped).
async fn run(
    client: Client,
    kv: Store,
    (ttl, file_timeout, slot): (Duration, Duration, Slot),
    (ctx, log): (Arc<Ctx>, Log),
    mut rx: mpsc::Receiver<Cmd>,
) {
    let (names_tx, names_rx) = mpsc::channel(NAMES_QUEUE);
    tokio::spawn(names(kv.clone(), (ttl, slot), ctx.clone(), names_rx));
    tokio::spawn(watch(kv, ctx.clone()));
    let files = super::files::Files::start(&client, &ctx, (ttl, file_timeout));
    for subject in [wire::node_subject(&ctx.node), wire::ALL_SUBJECT.to_string()] {
        match client.subscribe(subject.clone()).await {
            Ok(sub) => drop(tokio::spawn(inbound(sub, None, ctx.clone()))),
            Err(e) => tracing::error!("cluster: cannot subscribe to {subject}: {e}"),
        }
    }
    // Per room with local members: the tasks following its notices and its log.
    let mut rooms: HashMap<Arc<str>, [Option<JoinHandle<()>>; 2]> = HashMap::new();
    loop {
        let cmd = tokio::select! {
            cmd = rx.recv() => cmd,
            () = ctx.reconnected.notified() => {
                // What the log republished while the node was away never reached it: each
                // room's follower starts again from its last hand-over, reading the gap.
                for (room, [_, messages]) in rooms.iter_mut() {
                    if let Some(task) = messages.take() {
                        task.abort();
                    }
                    *messages = Some(log.follow(&client, room, log.position(room)));
                }
                continue;
            }
        };
        let Some(cmd) = cmd else { break };
        match cmd {
            Cmd::Out(batch) => {
                for work in batch {
                    match work {
                        Remote::Stamp(stamp) => log.append(stamp).await,
                        Remote::Replay(req) => log.replay(req),
                        work => publish(&client, &ctx, work).await,
                    }
                }
            }
            Cmd::Membership(room) => {
                let wanted = ctx.local.local_mask(&room) != 0;
                if wanted && !rooms.contains_key(&room) {
                    let notices = match client.subscribe(wire::room_subject(&room)).await {
                        Ok(sub) => Some(tokio::spawn(inbound(sub, Some(room.clone()), ctx.clone()))),
                        Err(e) => {
                            tracing::error!("cluster: cannot subscribe to room {room:?}: {e}");
                            None
                        }
                    };
                    let messages = log.follow(&client, &room, None);
                    rooms.insert(room, [notices, Some(messages)]);
                } else if !wanted {
                    // Dropping a subscriber (with its task) unsubscribes.
                    log.unfollow(&room);
                    rooms.remove(&room).into_iter().flatten().flatten().for_each(|task| task.abort());
                }
            }
            Cmd::Claim { folded, entry } => {
                if let Err(mpsc::error::TrySendError::Full(Cmd::Claim { entry, .. })) =
                    names_tx.try_send(Cmd::Claim { folded, entry })
                {
                    verdict(&ctx.local, entry, Claim::Unavailable);
                }
            }
            release @ Cmd::Release(_) => drop(names_tx.try_send(release)),
            Cmd::Files(cmd) => files.handle(cmd),
        }
    }
    let _ = client.flush().await;
}

/// Publishes one piece of a shard's outgoing work on its subject.
async fn publish(client: &Client, ctx: &Ctx, work: Remote) {
    let (subject, payload) = match work {
        Remote::Room { room, frames, chat, .. } => {
            let kind = if chat { Kind::Chat } else { Kind::Notice };
            (wire::room_subject(&room), wire::encode(kind, "", Some(&frames), 0))
        }
        Remote::Direct { user, frames, .. } => {
            let folded = fold_name(&user);
            let Some(node) = holder(ctx, &folded) else { return };
            (wire::node_subject(&node), wire::encode(Kind::Direct, &folded, Some(&frames), 0))
        }
        Remote::Kick { user, ban, .. } => {
            let folded = fold_name(&user);
            let Some(node) = holder(ctx, &folded) else { return };
            (wire::node_subject(&node), wire::encode(Kind::Kick, &folded, None, ban.as_millis() as u64))
        }
        Remote::All { frames } => (wire::ALL_SUBJECT.to_string(), wire::encode(Kind::All, "", Some(&frames), 0)),
        Remote::Ban { user, ban } => {
            (wire::ALL_SUBJECT.to_string(), wire::encode(Kind::Ban, &user, None, ban.as_millis() as u64))
        }
        // Stamps, replays and worker results always stay on their node (room owners are local).
        _ => return,
    };
    match client.publish(subject, payload).await {
        Ok(()) => drop(ctx.stats.published.fetch_add(1, Ordering::Relaxed)),
        Err(e) => tracing::debug!("cluster: publish failed: {e}"),
    }
}

/// The node holding `folded`, from the mirror.
fn holder(ctx: &Ctx, folded: &str) -> Option<Arc<str>> {
    let mirror = ctx.mirror.lock().unwrap_or_else(|e| e.into_inner());
    mirror.names.get(folded).map(|r| r.node.clone())
}

/// Hands what arrives on one subscription to the local shards: a room's messages to the shards
/// hosting its members (`room`), or this node's private messages, kicks and alerts.
async fn inbound(mut sub: Subscriber, room: Option<Arc<str>>, ctx: Arc<Ctx>) {
    while let Some(msg) = sub.next().await {
        let Some(env) = wire::decode(msg.payload) else {
            tracing::debug!("cluster: malformed envelope on {}", msg.subject);
            continue;
        };
        ctx.stats.received.fetch_add(1, Ordering::Relaxed);
        let local = &ctx.local;
        let user = std::str::from_utf8(&env.user).unwrap_or_default();
        match (env.kind, env.frames, &room) {
            (Kind::Chat | Kind::Notice, Some(frames), Some(room)) => {
                let mask = local.local_mask(room);
                for shard in (0..local.shard_count()).filter(|s| mask & (1 << s) != 0) {
                    let chat = env.kind == Kind::Chat;
                    let work = Remote::Room { room: room.clone(), frames: frames.clone(), chat, skip: None };
                    local.deliver(shard, vec![work]);
                }
            }
            (Kind::Direct, Some(frames), None) => {
                if let Some(e) = local.locate(user) {
                    local.deliver(e.shard, vec![Remote::Direct { key: e.key, user: e.name, frames }]);
                }
            }
            (Kind::Kick, _, None) => {
                if let Some(e) = local.locate(user) {
                    let ban = Duration::from_millis(env.ban_ms);
                    local.deliver(e.shard, vec![Remote::Kick { key: e.key, user: e.name, ban }]);
                }
            }
            (Kind::Ban, _, None) => {
                // One shard is enough: the ban list is the node's.
                let ban = Duration::from_millis(env.ban_ms);
                local.deliver(0, vec![Remote::Ban { user: user.into(), ban }]);
            }
            (Kind::All, Some(frames), None) => {
                for shard in 0..local.shard_count() {
                    local.deliver(shard, vec![Remote::All { frames: frames.clone() }]);
                }
            }
            _ => tracing::debug!("cluster: unexpected envelope on {}", msg.subject),
        }
    }
}

/// Tells the shard holding `entry` the verdict on its name claim.
fn verdict(local: &InProcess, entry: UserEntry, verdict: Claim) {
    local.deliver(entry.shard, vec![Remote::Claimed { key: entry.key, user: entry.name, verdict }]);
}

/// The names task: claims, releases and heartbeats, in order.
async fn names(kv: Store, (ttl, mut slot): (Duration, Slot), ctx: Arc<Ctx>, mut rx: mpsc::Receiver<Cmd>) {
    // Claims this node holds: case-folded name -> (the claim's value, its revision).
    let mut held: HashMap<Box<str>, (Bytes, u64)> = HashMap::new();
    let mut beat = tokio::time::interval(ttl / 3);
    loop {
        tokio::select! {
            cmd = rx.recv() => match cmd {
                Some(Cmd::Claim { entry, .. }) if !ctx.stats.connected.load(Ordering::Relaxed) => {
                    // Each would wait for the request timeout, one after another.
                    verdict(&ctx.local, entry, Claim::Unavailable);
                }
                Some(Cmd::Claim { folded, entry }) => {
                    let value = wire::claim_value(&ctx.node, &entry.name);
                    let claim = match kv.create(wire::hex(&folded), value.clone()).await {
                        Ok(rev) => {
                            held.insert(folded, (value, rev));
                            Claim::Granted
                        }
                        Err(e) if e.kind() == CreateErrorKind::AlreadyExists => Claim::Taken,
                        Err(e) => {
                            tracing::warn!("cluster: cannot claim a name: {e}");
                            Claim::Unavailable
                        }
                    };
                    verdict(&ctx.local, entry, claim);
                }
                Some(Cmd::Release(folded)) => {
                    if held.remove(&folded).is_some() {
                        if let Err(e) = kv.delete(wire::hex(&folded)).await {
                            tracing::debug!("cluster: cannot release a name (it expires by itself): {e}");
                        }
                    }
                }
                Some(_) => {}
                None => break,
            },
            _ = beat.tick() => {
                if ctx.stats.connected.load(Ordering::Relaxed) {
                    renew_slot(&kv, &mut slot).await;
                }
                heartbeat(&kv, &ctx, &mut held).await;
            }
        }
    }
}

/// This node's id slot: a key `slot.N` in the names bucket, held like a name.
pub(super) struct Slot {
    /// N: the node's place among at most [`super::MAX_NODES`].
    pub index: u64,
    /// The key's value (the node's name) and revision.
    value: Bytes,
    rev: u64,
}

/// Claims the first free id slot, or takes back this node's own (a restart within the TTL).
async fn claim_slot(kv: &Store, node: &str) -> Result<Slot, String> {
    let value = Bytes::from(node.to_string());
    for index in 0..super::MAX_NODES {
        let key = format!("slot.{index}");
        match kv.create(&key, value.clone()).await {
            Ok(rev) => return Ok(Slot { index, value, rev }),
            Err(e) if e.kind() == CreateErrorKind::AlreadyExists => {
                let mine = kv.entry(&key).await.ok().flatten().filter(|e| e.value == value);
                if let Some(entry) = mine {
                    if let Ok(rev) = kv.update(&key, value.clone(), entry.revision).await {
                        return Ok(Slot { index, value, rev });
                    }
                }
            }
            Err(e) => return Err(e.to_string()),
        }
    }
    Err(format!("every one of the {} node slots is taken (is the node name unique?)", super::MAX_NODES))
}

/// Renews the id slot's claim (or claims it again after it expired while NATS was away).
async fn renew_slot(kv: &Store, slot: &mut Slot) {
    let key = format!("slot.{}", slot.index);
    let renewed = match kv.update(&key, slot.value.clone(), slot.rev).await {
        Ok(rev) => Ok(rev),
        Err(_) => kv.create(&key, slot.value.clone()).await.map_err(|e| e.to_string()),
    };
    match renewed {
        Ok(rev) => slot.rev = rev,
        Err(e) => tracing::warn!("cluster: cannot renew this node's id slot {}: {e}", slot.index),
    }
}

/// Re-writes every claim still held here (so it outlives the bucket's `max_age`), drops those
/// no longer held (a lost release), and re-creates one that expired meanwhile (NATS was away).
async fn heartbeat(kv: &Store, ctx: &Ctx, held: &mut HashMap<Box<str>, (Bytes, u64)>) {
    if !ctx.stats.connected.load(Ordering::Relaxed) {
        return; // each request would wait for its timeout; renew once the link is back
    }
    let mut lost = Vec::new();
    for (folded, (value, rev)) in held.iter_mut() {
        let key = wire::hex(folded);
        if ctx.local.locate(folded).is_none() {
            let _ = kv.delete(&key).await;
            lost.push(folded.clone());
            continue;
        }
        match kv.update(&key, value.clone(), *rev).await {
            Ok(r) => *rev = r,
            Err(_) => match kv.create(&key, value.clone()).await {
                Ok(r) => *rev = r,
                Err(e) if e.kind() == CreateErrorKind::AlreadyExists => {
                    // It expired while this node was cut off, and another node took it.
                    ctx.stats.names_lost.fetch_add(1, Ordering::Relaxed);
                    tracing::warn!("cluster: a local user's name was taken by another node; closing that connection");
                    if let Some(e) = ctx.local.locate(folded) {
                        ctx.local.deliver(e.shard, vec![Remote::NameLost { key: e.key, user: e.name }]);
                    }
                    lost.push(folded.clone());
                }
                Err(e) => tracing::debug!("cluster: cannot renew a name claim now (kept, retried): {e}"),
            },
        }
    }
    for folded in lost {
        held.remove(&folded);
    }
}

/// Mirrors the names bucket (other nodes' claims) into the backplane's mirror; starts again
/// after a break (a lost connection).
async fn watch(kv: Store, ctx: Arc<Ctx>) {
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
