//! Rooms and members across nodes, for lists (LIST_ROOMS, LIST_USERS, admin `users`) and the
//! presence limit: each node writes its own rooms with their local members under its name in a
//! key-value bucket, and mirrors everyone else's.
//!
//! A node writes when its rooms changed (checked every [`PUBLISH_EVERY`]) and at least every
//! `ttl / 3`; the bucket forgets a value `ttl` after it was written, and the mirror ignores one
//! older than `ttl`, so a dead node's rooms leave the lists within `ttl`. Lists are therefore
//! eventually consistent: another node's join shows within about [`PUBLISH_EVERY`] plus the
//! bus's delay.
//!
//! A node whose entry goes stale (it stopped writing: it died, or lost NATS for longer than the
//! TTL) is buried: its users who are not back anywhere are announced as having left, with one
//! PRESENCE notice per room to the local members there (each node tells only its own members).
//!
//! The entry also carries the node's client-facing address (`--advertise`, possibly empty);
//! every [`PUBLISH_EVERY`] the node rebuilds its list of live addresses (its own, then the
//! fresh entries' by node name) for `/config.json` and the WebSocket origin check.

use super::link::Ctx;
use super::Mirror;
use crate::chat::NAMES_CAP;
use crate::cluster::{Backplane, InProcess};
use crate::protocol::{encode_both, ServerMsg};
use async_nats::jetstream::kv::{Operation, Store};
use bytes::BytesMut;
use futures_util::StreamExt;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// One node's entry as written: its address for clients and its rooms.
#[derive(serde::Serialize)]
struct Entry<'a> {
    addr: &'a str,
    rooms: Vec<(&'a str, Vec<&'a str>)>,
}

/// An entry as read: the object above, or a bare room list (from a node without addresses).
#[derive(serde::Deserialize)]
#[serde(untagged)]
enum Parsed {
    Full { addr: String, rooms: Vec<(String, Vec<String>)> },
    Rooms(Vec<(String, Vec<String>)>),
}

/// How often a node checks whether its rooms changed.
pub const PUBLISH_EVERY: Duration = Duration::from_millis(250);

/// One node's rooms as last written: room -> member names there.
pub(super) type Rooms = Vec<(Arc<str>, Vec<Arc<str>>)>;

/// Another node's rooms, as last seen.
#[derive(Debug)]
pub(super) struct RemoteDir {
    /// Its rooms with their members on that node.
    pub rooms: Rooms,
    /// How clients reach it (empty: not advertised).
    pub addr: Arc<str>,
    /// When it was written (received).
    pub seen: Instant,
}

/// Writes this node's rooms when they changed, and at least every `ttl / 3`.
pub(super) async fn publish(kv: Store, ttl: Duration, ctx: Arc<Ctx>) {
    let mut tick = tokio::time::interval(PUBLISH_EVERY);
    let (mut written_gen, mut written_at) = (u64::MAX, Instant::now());
    let own = ctx.advertise.own();
    loop {
        tick.tick().await;
        refresh_addresses(&ctx, ttl);
        bury_stale(&ctx, ttl);
        let gen = ctx.stats.directory_changes.load(Ordering::Relaxed);
        if gen == written_gen && written_at.elapsed() < ttl / 3 {
            continue;
        }
        let rooms = ctx.local.users_by_room();
        let rooms: Vec<(&str, Vec<&str>)> =
            rooms.iter().map(|(r, m)| (&**r, m.iter().map(|n| &**n).collect())).collect();
        let Ok(value) = serde_json::to_vec(&Entry { addr: &own, rooms }) else { continue };
        match kv.put(&ctx.node, value.into()).await {
            Ok(_) => (written_gen, written_at) = (gen, Instant::now()),
            Err(e) => tracing::debug!("cluster: cannot write this node's rooms: {e}"),
        }
    }
}

/// Mirrors the other nodes' rooms; starts again after a break.
pub(super) async fn watch(kv: Store, ctx: Arc<Ctx>) {
    loop {
        if let Ok(mut w) = kv.watch_all().await {
            while let Some(Ok(entry)) = w.next().await {
                if entry.key == ctx.node {
                    continue;
                }
                let mut mirror = ctx.mirror.lock().unwrap_or_else(|e| e.into_inner());
                let node: Arc<str> = entry.key.as_str().into();
                match (entry.operation, serde_json::from_slice::<Parsed>(&entry.value)) {
                    (Operation::Put, Ok(parsed)) => {
                        let (addr, rooms) = match parsed {
                            Parsed::Full { addr, rooms } => (addr, rooms),
                            Parsed::Rooms(rooms) => (String::new(), rooms),
                        };
                        let rooms = rooms.into_iter().map(|(r, m)| (r.into(), m.into_iter().map(Into::into).collect()));
                        let (addr, seen) = (addr.into(), Instant::now());
                        mirror.dirs.insert(node, RemoteDir { rooms: rooms.collect(), addr, seen });
                    }
                    _ => drop(mirror.dirs.remove(&node)),
                }
            }
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

/// Takes stale entries out of the mirror and tells the local members of each of their rooms
/// that its users left (those not back on this or another live node meanwhile).
fn bury_stale(ctx: &Ctx, ttl: Duration) {
    let (dead, present) = {
        let mut mirror = ctx.mirror.lock().unwrap_or_else(|e| e.into_inner());
        let stale: Vec<Arc<str>> =
            mirror.dirs.iter().filter(|(_, d)| d.seen.elapsed() >= ttl).map(|(n, _)| n.clone()).collect();
        if stale.is_empty() {
            return;
        }
        let dead: Vec<(Arc<str>, RemoteDir)> = stale.into_iter().filter_map(|n| mirror.dirs.remove_entry(&n)).collect();
        (dead, merged(&ctx.local, &mirror, ttl))
    };
    let mut arena = BytesMut::new();
    for (node, dir) in dead {
        let users: usize = dir.rooms.iter().map(|(_, m)| m.len()).sum();
        tracing::info!(%node, users, "cluster: a node stopped renewing its entry; its users left the lists");
        for (room, members) in &dir.rooms {
            let mask = ctx.local.local_mask(room);
            let back = present.get(room);
            let gone: Vec<&str> =
                members.iter().filter(|m| !back.is_some_and(|b| b.contains(*m))).map(|m| &**m).collect();
            if mask == 0 || gone.is_empty() {
                continue;
            }
            let shown = &gone[..gone.len().min(NAMES_CAP)];
            let msg = ServerMsg::Presence {
                room: (&**room).into(),
                joined: Vec::new(),
                joined_more: 0,
                left: shown.iter().map(|&n| n.into()).collect(),
                left_more: (gone.len() - shown.len()) as u64,
            };
            ctx.local.deliver_room(room, &encode_both(&msg, &mut arena), false, None);
        }
    }
}

/// Rebuilds the live address list: this node's, then each fresh entry's, by node name.
fn refresh_addresses(ctx: &Ctx, ttl: Duration) {
    let others = {
        let mirror = ctx.mirror.lock().unwrap_or_else(|e| e.into_inner());
        live_addresses(&mirror, ttl)
    };
    ctx.advertise.set_live(others);
}

/// The other nodes' advertised addresses with a fresh entry, ordered by node name.
fn live_addresses(mirror: &Mirror, ttl: Duration) -> Vec<String> {
    let mut fresh: Vec<(&Arc<str>, &RemoteDir)> =
        mirror.dirs.iter().filter(|(_, d)| d.seen.elapsed() < ttl && !d.addr.is_empty()).collect();
    fresh.sort_by(|a, b| a.0.cmp(b.0));
    fresh.into_iter().map(|(_, d)| d.addr.to_string()).collect()
}

/// Every room of the cluster with its members (sorted, each name once): this node's live
/// ones and the fresh part of the mirror.
pub(super) fn merged(local: &InProcess, mirror: &Mirror, ttl: Duration) -> BTreeMap<Arc<str>, BTreeSet<Arc<str>>> {
    let mut all: BTreeMap<Arc<str>, BTreeSet<Arc<str>>> = BTreeMap::new();
    for (room, members) in local.users_by_room() {
        all.entry(room).or_default().extend(members);
    }
    for dir in mirror.dirs.values().filter(|d| d.seen.elapsed() < ttl) {
        for (room, members) in &dir.rooms {
            all.entry(room.clone()).or_default().extend(members.iter().cloned());
        }
    }
    all
}

/// The members of `room` across the cluster, sorted.
pub(super) fn members(local: &InProcess, mirror: &Mirror, ttl: Duration, room: &str) -> Vec<Arc<str>> {
    let mut names: BTreeSet<Arc<str>> = local.members(room).into_iter().collect();
    for dir in mirror.dirs.values().filter(|d| d.seen.elapsed() < ttl) {
        if let Some((_, m)) = dir.rooms.iter().find(|(r, _)| **r == *room) {
            names.extend(m.iter().cloned());
        }
    }
    names.into_iter().collect()
}

/// Members of `room` on other nodes.
pub(super) fn remote_size(mirror: &Mirror, ttl: Duration, room: &str) -> usize {
    let fresh = mirror.dirs.values().filter(|d| d.seen.elapsed() < ttl);
    fresh.filter_map(|d| d.rooms.iter().find(|(r, _)| **r == *room)).map(|(_, m)| m.len()).sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_merge_this_node_with_the_fresh_part_of_the_mirror() {
        let local = InProcess::new(Vec::new(), "general");
        local.join("general", 0, &"alice".into());
        let mut mirror = Mirror::default();
        let dir = |rooms: &[(&str, &[&str])], age: Duration| RemoteDir {
            rooms: rooms.iter().map(|(r, m)| ((*r).into(), m.iter().map(|n| (*n).into()).collect())).collect(),
            addr: format!("{}:1", rooms.len()).into(),
            seen: Instant::now().checked_sub(age).unwrap_or_else(Instant::now),
        };
        let ttl = Duration::from_secs(10);
        mirror.dirs.insert("b".into(), dir(&[("general", &["bob"]), ("tech", &["carol"])], Duration::ZERO));
        mirror.dirs.insert("dead".into(), dir(&[("general", &["zed"])], ttl * 2));
        let all = merged(&local, &mirror, ttl);
        let sizes: Vec<(&str, usize)> = all.iter().map(|(r, m)| (&**r, m.len())).collect();
        assert_eq!(sizes, [("general", 2), ("tech", 1)]);
        let names: Vec<Arc<str>> = members(&local, &mirror, ttl, "general");
        assert_eq!(names, ["alice".into(), "bob".into()] as [Arc<str>; 2]);
        assert_eq!(remote_size(&mirror, ttl, "general") + local.room_size("general"), 2);
        assert_eq!(remote_size(&mirror, ttl, "nowhere"), 0);
        assert_eq!(live_addresses(&mirror, ttl), ["2:1"], "the dead node's address is not listed");
    }

    #[test]
    fn entries_carry_the_address_and_old_ones_still_parse() {
        let rooms = vec![("general", vec!["alice"])];
        let written = serde_json::to_vec(&Entry { addr: "a:1", rooms }).unwrap();
        assert!(matches!(serde_json::from_slice(&written), Ok(Parsed::Full { addr, .. }) if addr == "a:1"));
        let old = br#"[["general",["bob"]]]"#;
        assert!(matches!(serde_json::from_slice(old), Ok(Parsed::Rooms(r)) if r[0].1 == ["bob"]));
    }
}
