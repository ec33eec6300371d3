//! The pair: two normal clients (one binary, one JSON) in a room of their own, chatting in the
//! background while a test injects a fault, and checking afterwards that nothing was lost.
//!
//! Each member runs on its own thread: it sends a numbered ROOM_MSG every [`INTERVAL`] (well
//! under the default rate limit), reads with short timeouts, answers PINGs, and records the
//! partner's numbers, its own ROOM_MSG_ACKs, any ERROR_MSG and any other room traffic. At
//! [`Pair::finish`] both stop sending, say how many they sent, and keep reading until they have
//! the partner's last message (bounded by [`FINISH_DEADLINE`]). The check: each member got
//! exactly `0..partner_sent`, in order, an ACK for each of its own messages, no error, no close.

use crate::support::{summary, Client, ClientMsg, Msg, ServerMsg, WireFormat, DEADLINE};
use std::net::SocketAddr;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// Time between two messages of one member (50/s: under the default 100/s rate limit).
pub const INTERVAL: Duration = Duration::from_millis(20);
/// How long a member may take, after stopping, to receive the partner's last message.
const FINISH_DEADLINE: Duration = Duration::from_secs(20);
/// "Not known yet" in the shared sent counters.
const UNKNOWN: u64 = u64::MAX;
/// The pair's own room.
pub const ROOM: &str = "pairroom";
/// Partner messages each member must receive after [`Pair::finish`] starts: proof that the
/// server still serves the pair after the fault.
const AFTER_FAULT: u64 = 5;

/// What one member saw.
#[derive(Debug)]
struct Report {
    name: String,
    sent: u64,
    /// Partner message numbers in arrival order.
    received: Vec<u64>,
    acks: u64,
    /// ROOM_MSGs in the room from anyone but the partner.
    others: u64,
    errors: Vec<Msg>,
    /// Why the member stopped early (closed, undecodable frame, send error).
    failure: Option<String>,
}

/// State shared between the test and the two member threads.
struct Shared {
    stop: AtomicBool,
    /// Messages each member sent, once it stopped ([`UNKNOWN`] before).
    sent: [AtomicU64; 2],
    /// Partner messages each member has received so far.
    progress: [AtomicU64; 2],
}

/// Two chatting clients. Drop without [`finish`](Pair::finish) just stops them.
pub struct Pair {
    shared: Arc<Shared>,
    threads: Vec<JoinHandle<Report>>,
}

impl Pair {
    /// A binary and a JSON client over plaintext.
    pub fn start(addr: SocketAddr) -> Pair {
        Pair::start_with(Client::connect(addr, WireFormat::Binary), Client::connect(addr, WireFormat::Json))
    }

    /// A binary client over TLS (trusting `ca`) and a JSON client over plaintext.
    pub fn start_tls(addr: SocketAddr, ca: &Path) -> Pair {
        Pair::start_with(Client::connect_tls(addr, WireFormat::Binary, ca), Client::connect(addr, WireFormat::Json))
    }

    /// Logs `a` and `b` in as `pair-a` and `pair-b`, puts them in [`ROOM`], starts chatting.
    pub fn start_with(mut a: Client, mut b: Client) -> Pair {
        a.login("pair-a");
        b.login("pair-b");
        a.join(ROOM);
        b.join(ROOM);
        let shared = Arc::new(Shared {
            stop: AtomicBool::new(false),
            sent: [AtomicU64::new(UNKNOWN), AtomicU64::new(UNKNOWN)],
            progress: [AtomicU64::new(0), AtomicU64::new(0)],
        });
        let threads = [a, b]
            .into_iter()
            .enumerate()
            .map(|(me, conn)| {
                let shared = shared.clone();
                std::thread::Builder::new()
                    .name(format!("pair-{me}"))
                    .spawn(move || chatter(conn, me, &shared))
                    .expect("spawn pair thread")
            })
            .collect();
        let pair = Pair { shared, threads };
        pair.wait_progress(AFTER_FAULT);
        pair
    }

    /// Partner messages received so far by each member.
    fn progress(&self) -> [u64; 2] {
        [0, 1].map(|i| self.shared.progress[i].load(Ordering::Relaxed))
    }

    /// Waits (bounded) until each member has received at least `n` partner messages.
    #[track_caller]
    pub fn wait_progress(&self, n: u64) {
        let deadline = Instant::now() + DEADLINE;
        while self.progress().iter().any(|&p| p < n) {
            if self.threads.iter().any(|t| t.is_finished()) || Instant::now() >= deadline {
                panic!("the pair stopped chatting: progress {:?}, wanted {n} each", self.progress());
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    /// Waits (bounded) until each member has received a few more partner messages than now:
    /// the server is serving the pair at this point of the fault.
    #[track_caller]
    pub fn still_chatting(&self) {
        let now = self.progress();
        self.wait_progress(now[0].max(now[1]) + 2);
    }

    /// Checks the pair still chats after the fault, stops it, and asserts nothing was lost.
    #[track_caller]
    pub fn finish(self) {
        self.finish_with_others(None);
    }

    /// [`finish`](Self::finish), also asserting that each member received exactly `others` room
    /// messages from third parties (when the fault was a flood into the pair's room).
    #[track_caller]
    pub fn finish_with_others(mut self, others: Option<u64>) {
        let now = self.progress();
        self.wait_progress(now[0].max(now[1]) + AFTER_FAULT);
        let reports = self.stop();
        for r in &reports {
            eprintln!(
                "pair: {} sent {}, received {} from the partner, {} acks, {} others",
                r.name,
                r.sent,
                r.received.len(),
                r.acks,
                r.others
            );
        }
        for (me, r) in reports.iter().enumerate() {
            let partner = &reports[1 - me];
            let who = &r.name;
            assert!(r.failure.is_none(), "{who} failed: {}", r.failure.as_deref().unwrap_or(""));
            assert!(r.errors.is_empty(), "{who} got errors: {}", summary(&r.errors));
            let expected: Vec<u64> = (0..partner.sent).collect();
            if r.received != expected {
                panic!("{who} lost, duplicated or reordered messages: {}", describe(&r.received, partner.sent));
            }
            assert_eq!(r.acks, r.sent, "{who}: one ROOM_MSG_ACK per message sent");
            if let Some(n) = others {
                assert_eq!(r.others, n, "{who}: room messages from third parties");
            }
        }
    }

    /// Stops both members and collects their reports.
    fn stop(&mut self) -> Vec<Report> {
        self.shared.stop.store(true, Ordering::SeqCst);
        self.threads.drain(..).map(|t| t.join().expect("pair thread panicked")).collect()
    }
}

impl Drop for Pair {
    fn drop(&mut self) {
        if !self.threads.is_empty() {
            self.shared.stop.store(true, Ordering::SeqCst);
            // Unblock a member waiting for the partner's count: the partner is stopping too.
        }
    }
}

/// Where `received` first departs from `0..sent`.
fn describe(received: &[u64], sent: u64) -> String {
    let first_bad = received.iter().enumerate().find(|(i, &n)| *i as u64 != n).map(|(i, &n)| (i, n));
    match first_bad {
        Some((i, n)) => format!("{} of {sent} received; position {i} holds #{n}", received.len()),
        None => format!("{} of {sent} received; the first {} are in order", received.len(), received.len()),
    }
}

/// The member loop: see the module docs.
fn chatter(mut conn: Client, me: usize, shared: &Shared) -> Report {
    let partner_name = if me == 0 { "pair-b" } else { "pair-a" };
    let mut r = Report {
        name: conn.name.clone(),
        sent: 0,
        received: Vec::new(),
        acks: 0,
        others: 0,
        errors: Vec::new(),
        failure: None,
    };
    let mut next_send = Instant::now();
    let mut stopped_at: Option<Instant> = None;
    loop {
        let now = Instant::now();
        match stopped_at {
            None if shared.stop.load(Ordering::SeqCst) => {
                shared.sent[me].store(r.sent, Ordering::SeqCst);
                stopped_at = Some(now);
            }
            None if now >= next_send => {
                let text = format!("{}#{}", r.name, r.sent);
                if let Err(e) = conn.try_send(&ClientMsg::RoomMsg { text: text.into() }) {
                    r.failure = Some(format!("send: {e}"));
                    shared.sent[me].store(r.sent, Ordering::SeqCst);
                    return r;
                }
                r.sent += 1;
                // No catching up after a stall: bursts could trip the rate limit.
                next_send = Instant::now() + INTERVAL;
            }
            None => {}
            Some(at) => {
                let partner_sent = shared.sent[1 - me].load(Ordering::SeqCst);
                if partner_sent != UNKNOWN && r.received.len() as u64 >= partner_sent && r.acks >= r.sent {
                    return r;
                }
                if now.duration_since(at) > FINISH_DEADLINE {
                    r.failure = Some(format!(
                        "gave up waiting for the partner's last message: {} of {} received, {} of {} acks",
                        r.received.len(),
                        if partner_sent == UNKNOWN { "?".to_string() } else { partner_sent.to_string() },
                        r.acks,
                        r.sent
                    ));
                    return r;
                }
            }
        }
        let wait = next_send.saturating_duration_since(Instant::now()).clamp(Duration::from_millis(1), INTERVAL);
        let frames = match conn.poll(wait) {
            Ok(f) => f,
            Err(e) => {
                r.failure = Some(format!("read: {e}"));
                shared.sent[me].store(r.sent, Ordering::SeqCst);
                return r;
            }
        };
        for m in frames {
            match m {
                ServerMsg::RoomMsg { from, text, .. } if from == partner_name => {
                    let n = text.rsplit_once('#').and_then(|(_, n)| n.parse().ok());
                    match n {
                        Some(n) => r.received.push(n),
                        None => r.failure = Some(format!("unexpected text from the partner: {text:?}")),
                    }
                    shared.progress[me].store(r.received.len() as u64, Ordering::Relaxed);
                }
                ServerMsg::RoomMsg { .. } => r.others += 1,
                ServerMsg::RoomMsgAck { .. } => r.acks += 1,
                ServerMsg::Ping { token } => {
                    let _ = conn.try_send(&ClientMsg::Pong { token });
                }
                m @ ServerMsg::ErrorMsg { .. } => r.errors.push(m),
                _ => {} // presence notices
            }
        }
    }
}
