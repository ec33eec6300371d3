//! Presence coalescing (issue 15): a join storm costs O(n) frames, a quiet room still hears each
//! change at once, and members on every shard hear the same notices. Time is the hubs' clock,
//! moved by [`World::turn_at`]; nothing here waits.

use super::*;

/// The coalescing interval of these tests, ms.
const INTERVAL: u64 = 250;

/// What one member learned from its frames: joins and departures named or counted, and how many
/// presence frames (SYSTEM_MSG or PRESENCE) it took.
#[derive(Debug, Default, PartialEq, Eq)]
struct Heard {
    joins: u64,
    departures: u64,
    frames: u64,
}

fn heard(msgs: &[Msg]) -> Heard {
    let mut h = Heard::default();
    for m in msgs {
        match m {
            ServerMsg::SystemMsg { kind: SystemKind::Join, .. } => h.joins += 1,
            ServerMsg::SystemMsg { kind: SystemKind::Leave | SystemKind::Disconnect, .. } => h.departures += 1,
            ServerMsg::Presence { joined, joined_more, left, left_more, .. } => {
                h.joins += joined.len() as u64 + joined_more;
                h.departures += left.len() as u64 + left_more;
            }
            _ => continue,
        }
        h.frames += 1;
    }
    h
}

/// Logs `n` users in on `shards` shards (round robin), one every `gap` ms from `start`, playing a
/// loop turn before each; then plays turns until every window has ended. Returns the time after.
fn storm(w: &mut World, n: usize, start: u64, gap: u64) -> u64 {
    let shards = w.hubs.len();
    let mut now = start;
    for i in 0..n {
        w.turn_at(now);
        let (shard, key) = (i % shards, i / shards + 1);
        w.connect(shard, key, if i % 2 == 0 { BIN } else { JSON });
        w.send(shard, key, login(&format!("u{i}")));
        now += gap;
    }
    for _ in 0..3 {
        w.turn_at(now);
        now += INTERVAL;
    }
    now
}

#[test]
fn a_join_storm_costs_frames_linear_in_the_joins() {
    let n = 400;
    let mut w = World::coalescing(1, INTERVAL);
    // 400 joins over 2 s: 8 intervals.
    storm(&mut w, n, NOW, 5);
    let intervals = (n as u64 * 5).div_ceil(INTERVAL);
    let mut total = 0;
    for key in 1..=n {
        let h = heard(&w.take(0, key));
        if key == 1 {
            assert_eq!(h.joins, n as u64 - 1, "the first member hears every join exactly once");
        }
        // Everyone hears of everyone who joined after them; a notice may also name the joiners
        // of its window who came just before (and the recipient itself).
        let later = (n - key) as u64;
        assert!(h.joins >= later && h.joins <= later + INTERVAL / 5 + 1, "u{} heard {h:?}, {later} later", key - 1);
        assert!(h.frames <= 1 + intervals + 1, "u{} got {} presence frames", key - 1, h.frames);
        total += h.frames;
    }
    // Without coalescing this would be n(n-1)/2 = 79,800 frames.
    assert!(total <= n as u64 * (2 + intervals), "{total} presence frames for {n} joins");
    // One LOGIN_ACK each, then one encoding per format per notice, not one per recipient.
    let encodes = w.outs[0].encodes(WireFormat::Binary) + w.outs[0].encodes(WireFormat::Json);
    assert!(encodes <= n + 2 * (2 + intervals as usize), "{encodes} encodings");
}

#[test]
fn every_member_shares_one_encoding_of_a_notice() {
    let mut w = World::coalescing(1, INTERVAL);
    storm(&mut w, 10, NOW, 1);
    let frames: Vec<Vec<Bytes>> = (1..=10).map(|k| w.outs[0].frames(k)).collect();
    // u0's join opened the window (nobody to tell); u1..u9 are in its one notice.
    let notice_of = |k: usize| frames[k].last().expect("a notice").clone();
    let binary: Vec<Bytes> = (0..10).step_by(2).map(notice_of).collect();
    let json: Vec<Bytes> = (1..10).step_by(2).map(notice_of).collect();
    assert!(shared(&binary.iter().collect::<Vec<_>>()), "binary members share one frame");
    assert!(shared(&json.iter().collect::<Vec<_>>()), "JSON members share one frame");
    let names: Vec<String> = (1..10).map(|i| format!("u{i}")).collect();
    let expected = ServerMsg::Presence {
        room: "general".into(),
        joined: names.into_iter().map(Into::into).collect(),
        joined_more: 0,
        left: vec![],
        left_more: 0,
    };
    assert_eq!(decode(WireFormat::Json, &json[0]), expected);
}

#[test]
fn a_quiet_room_hears_each_change_at_once() {
    let mut w = World::coalescing(1, INTERVAL);
    w.enter(0, 1, "alice", BIN);
    w.turn_at(NOW + 1_000);
    w.connect(0, 2, JSON);
    w.send(0, 2, login("bob"));
    assert_eq!(w.take(0, 1), [notice(SystemKind::Join, "general", "bob", "bob joined general")], "at once");
    assert_eq!(w.take(0, 2), [login_ack("bob", "general")]);
    // Inside bob's window: carol waits for the window's end.
    w.turn_at(NOW + 1_100);
    w.connect(0, 3, BIN);
    w.send(0, 3, login("carol"));
    assert_eq!(w.take(0, 1), []);
    w.turn_at(NOW + 1_249);
    assert_eq!(w.take(0, 1), [], "the window has not ended");
    w.turn_at(NOW + 1_250);
    let carol = ServerMsg::Presence {
        room: "general".into(),
        joined: vec!["carol".into()],
        joined_more: 0,
        left: vec![],
        left_more: 0,
    };
    for key in 1..=2 {
        assert_eq!(w.take(0, key), std::slice::from_ref(&carol));
    }
    assert_eq!(w.take(0, 3), [login_ack("carol", "general"), carol]);
    // A window that ends empty closes: the room is quiet again.
    w.turn_at(NOW + 1_500);
    w.turn_at(NOW + 2_000);
    w.leave(0, 3);
    assert_eq!(w.take(0, 1), [notice(SystemKind::Disconnect, "general", "carol", "carol disconnected from general")]);
    assert_eq!(w.hubs[0].next_timer_ms(), Some(INTERVAL), "the departure opened a window");
}

#[test]
fn a_leave_storm_is_coalesced_too() {
    let n = 100;
    let mut w = World::coalescing(1, INTERVAL);
    let mut now = storm(&mut w, n, NOW, 1);
    w.outs[0].clear();
    now += 10 * INTERVAL;
    // u0 stays; u1..u99 leave within one interval: one SYSTEM_MSG, then one notice.
    for key in 2..=n {
        w.turn_at(now);
        w.leave(0, key);
        now += 1;
    }
    w.turn_at(now + INTERVAL);
    let h = heard(&w.take(0, 1));
    assert_eq!(h, Heard { joins: 0, departures: n as u64 - 1, frames: 2 });
}

#[test]
fn members_on_every_shard_hear_the_same_notices() {
    let n = 300;
    let mut w = World::coalescing(2, INTERVAL);
    storm(&mut w, n, NOW, 3);
    let intervals = (n as u64 * 3).div_ceil(INTERVAL);
    // The first member of each shard was in before almost everyone: both hear every later join,
    // in the same PRESENCE notices (each shard gathers its own joiners and tells every shard).
    let presence = |w: &mut World, shard| {
        let mut notices: Vec<Msg> =
            w.take(shard, 1).into_iter().filter(|m| matches!(m, ServerMsg::Presence { .. })).collect();
        notices.sort_by_key(|m| format!("{m:?}"));
        notices
    };
    let (a, b) = (presence(&mut w, 0), presence(&mut w, 1));
    assert!(!a.is_empty());
    assert_eq!(a, b, "shard 0's first member and shard 1's heard the same notices");
    // u0 and u1 opened their shards' windows; every other join is in a notice.
    assert_eq!(heard(&a).joins, n as u64 - 2);
    // Frames per member: a constant plus the intervals, per shard that gathers.
    for shard in 0..2 {
        for key in 2..=n / 2 {
            let h = heard(&w.take(shard, key));
            assert!(h.frames <= 2 * (1 + intervals + 1), "shard {shard} key {key}: {h:?}");
        }
    }
}

#[test]
fn shutdown_drops_gathered_changes() {
    let mut w = World::coalescing(1, INTERVAL);
    w.enter(0, 1, "alice", BIN);
    w.enter(0, 2, "bob", BIN);
    w.connect(0, 3, BIN);
    w.send(0, 3, login("carol"));
    w.outs[0].clear();
    w.hubs[0].set_quiet();
    w.turn_at(NOW + INTERVAL);
    w.assert_quiet();
    assert_eq!(w.hubs[0].next_timer_ms(), None);
}
