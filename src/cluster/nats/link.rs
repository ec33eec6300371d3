//! The NATS thread: one OS thread with its own single-threaded tokio runtime, between the
//! shards (a bounded queue in, their inboxes and wakers out) and the NATS server.
//!
//! Tasks on the runtime: the command loop (publishes, log appends, room subscriptions), the
//! names task (claims, releases and heartbeats, one at a time in queue order, so a release never
//! overtakes its claim), the bucket watcher (the mirror of names on other nodes), the log's
//! acknowledger and replay readers ([`super::log`]), and one task per subscription (this node's
//! subject, alerts, each room with local members: its notices and its log) that hands what
//! arrives to the local shards.

use super::accounts::{BookReq, ACCOUNTS_BUCKET};
use super::directory;
use super::log::{self, Log, LogLimits};
use super::names::{claim_slot, names, verdict, watch, Slot};
use super::wire::{self, Kind, DIRS_BUCKET, NAMES_BUCKET};
use super::{ClusterConfig, ClusterError, ClusterStats, Cmd, Mirror};
use crate::cluster::{Backplane, Claim, InProcess, Remote};
use crate::protocol::validate::fold_name;
use async_nats::jetstream::context::GetStreamErrorKind;
use async_nats::jetstream::kv::Store;
use async_nats::jetstream::stream;
use async_nats::jetstream::ErrorCode;
use async_nats::{Client, ConnectOptions, Event, Subscriber};
use futures_util::StreamExt;
use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::Duration;
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
    /// This node's client-facing address and the cluster's live ones (`directory.rs`).
    pub advertise: crate::config::site::Advertised,
    /// Replicas of every stream and bucket this node makes (`--cluster-replicas`).
    pub replicas: usize,
}

/// Starts the thread and waits until it is connected and has the names bucket.
/// Returns the node's id slot and the TTL the cluster runs on (the names bucket's, which the
/// first node set).
pub(super) fn spawn(
    (mut config, limits): (ClusterConfig, LogLimits),
    local: Arc<InProcess>,
    mirror: Arc<Mutex<Mirror>>,
    stats: Arc<ClusterStats>,
    (rx, book_rx): (mpsc::Receiver<Cmd>, mpsc::Receiver<BookReq>),
) -> Result<(u64, Duration), ClusterError> {
    let (ready_tx, ready_rx) = std::sync::mpsc::channel();
    let ttl = config.name_ttl;
    std::thread::Builder::new().name("chat-nats".into()).spawn(move || {
        let rt = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
            Ok(rt) => rt,
            Err(e) => return drop(ready_tx.send(Err(ClusterError::Thread(e)))),
        };
        rt.block_on(async move {
            let reconnected = tokio::sync::Notify::new();
            let advertise = config.advertise.clone();
            let ctx = Arc::new(Ctx {
                node: config.node.clone(),
                local,
                mirror,
                stats,
                reconnected,
                advertise,
                replicas: config.replicas,
            });
            match setup(&mut config, &limits, &ctx).await {
                Ok((client, [kv, dirs, accounts], slot, log)) => {
                    tokio::spawn(super::accounts::serve(accounts, book_rx));
                    let _ = ready_tx.send(Ok((slot.index, config.name_ttl)));
                    tokio::spawn(directory::publish(dirs.clone(), config.name_ttl, ctx.clone()));
                    tokio::spawn(directory::watch(dirs, ctx.clone()));
                    let js = async_nats::jetstream::new(client.clone());
                    tokio::spawn(guard_streams(
                        js,
                        (config.name_ttl, config.replicas),
                        log::stream_config(&limits, config.replicas),
                    ));
                    run(client, kv, (config.name_ttl, config.file_timeout, slot), (ctx, log), rx).await;
                }
                Err(e) => drop(ready_tx.send(Err(e))),
            }
        });
    })?;
    // (Taking back a slot may wait a third of the TTL to see whether its holder still runs.)
    ready_rx.recv_timeout(CONNECT_TIMEOUT * 3 + ttl).map_err(|_| ClusterError::Timeout)?
}

/// Connects and opens (or creates) the buckets and the room log.
async fn setup(
    config: &mut ClusterConfig,
    limits: &LogLimits,
    ctx: &Arc<Ctx>,
) -> Result<(Client, [Store; 3], Slot, Log), ClusterError> {
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
    let mut stores = Vec::with_capacity(3);
    for bucket in [NAMES_BUCKET, DIRS_BUCKET, ACCOUNTS_BUCKET] {
        let bucket_err = |e: &dyn std::fmt::Display| ClusterError::Bucket { bucket, reason: e.to_string() };
        let stream = match js.get_stream(format!("KV_{bucket}")).await {
            Ok(stream) => stream,
            // The bucket's stream as `create_key_value` would make it; made directly because
            // that call first asks for account details that nats-server 2.9's answer lacks.
            Err(_) => js
                .get_or_create_stream(bucket_stream(bucket, bucket_ttl(bucket, config.name_ttl), config.replicas))
                .await
                .map_err(|e| bucket_err(&e))?,
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
    let (Some(accounts), Some(dirs), Some(kv)) = (stores.pop(), stores.pop(), stores.pop()) else {
        unreachable!("three buckets")
    };
    let slot = claim_slot(&kv, &config.node, config.name_ttl).await.map_err(ClusterError::Node)?;
    let log = Log::open(&client, ctx.clone(), limits).await?;
    let ttl_s = config.name_ttl.as_secs();
    tracing::info!(node = %config.node, slot = slot.index, %servers, ttl_s, "cluster: joined through NATS");
    Ok((client, [kv, dirs, accounts], slot, log))
}

/// How long a bucket keeps a value: names and directories the TTL, accounts for ever (zero).
fn bucket_ttl(bucket: &str, ttl: Duration) -> Duration {
    if bucket == ACCOUNTS_BUCKET {
        Duration::ZERO
    } else {
        ttl
    }
}

/// A bucket's stream: one value per key, each expiring `ttl` after it was written.
fn bucket_stream(bucket: &str, ttl: Duration, replicas: usize) -> stream::Config {
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
        num_replicas: replicas,
        ..Default::default()
    }
}

/// Makes the buckets and the log again if NATS lost them (restarted without its store): every
/// `ttl / 3` it checks they exist. The renewals then write this node's claims and slot again,
/// and the directory is rewritten, within another `ttl / 3`. (The log starts empty: what it
/// held is gone with NATS's store.)
async fn guard_streams(js: async_nats::jetstream::Context, (ttl, replicas): (Duration, usize), log: stream::Config) {
    let mut tick = tokio::time::interval(ttl / 3);
    let buckets = [NAMES_BUCKET, DIRS_BUCKET, ACCOUNTS_BUCKET];
    let mut streams: Vec<_> = buckets.iter().map(|b| bucket_stream(b, bucket_ttl(b, ttl), replicas)).collect();
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
            tracing::warn!(
                "cluster: lost NATS; local users are still served, room messages are refused until it is back"
            );
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
                if !rooms.is_empty() {
                    tracing::info!(rooms = rooms.len(), "cluster: following rooms again from where they stopped");
                }
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
        // Presence and file notices: room messages go through the log (`log.rs`).
        Remote::Room { room, frames, .. } => {
            (wire::room_subject(&room), wire::encode(Kind::Notice, "", Some(&frames), 0))
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
            (Kind::Notice, Some(frames), Some(room)) => local.deliver_room(room, &frames, false, None),
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
