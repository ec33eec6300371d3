//! Scenario knobs: who connects where, how bots spread over rooms, how fast they talk.
//!
//! A [`Scenario`] is plain data. The CLI builds one from flags, tests build one by hand, and
//! `compare` clones one per mode. Everything derived from it (room of a bot, thread of a bot,
//! source address of a bot) is a pure function here so that the schedule and the expected-delivery
//! accounting agree with what the driver actually does.

use serde::Serialize;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

pub use chatproto::protocol::WireFormat;

/// How bots are spread over rooms.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Spread {
    /// Round-robin: bot `b` is in room `b % rooms`. Rooms differ in size by at most one.
    Even,
    /// Contiguous blocks: bots `0..n/rooms` in room 0, and so on. Same sizes as `even`.
    Block,
    /// Zipf-like: room `k` gets a share proportional to `1/(k+1)`, so room 0 is the crowd and the
    /// tail rooms are small. Every room keeps at least one bot while bots last.
    Skewed,
}

/// How the bots trust the server's certificate when `tls` is on.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum TlsTrust {
    /// Trust only the CA (or self-signed certificate) in this PEM file.
    Ca(PathBuf),
    /// Accept any certificate (signatures on the handshake are still checked). For test servers.
    Insecure,
}

/// TLS settings for the bots.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct TlsOptions {
    /// Which certificates to trust.
    pub trust: TlsTrust,
    /// Name sent in SNI and checked against the certificate.
    pub server_name: String,
}

/// The message rate, per bot or for the whole run.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Rate {
    /// Each bot sends this many messages per second.
    PerBot(f64),
    /// All bots together send this many messages per second.
    Total(f64),
}

/// Which server address each bot starts on, when there are several.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Placement {
    /// Round-robin room by room (bots taken in room order, each room's members in turn): every
    /// room has members on every node (rooms as large as the node count), and the nodes' shares
    /// differ by at most one.
    #[default]
    Spread,
    /// Publishers (bots `0..publishers`) on the first address, each room's listening bots
    /// round-robin over the others: every room message crosses from the first node to another
    /// (cross-node latency).
    Split,
}

/// Fail-over: a bot whose connection drops moves to the next address and resumes its room.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct Failover {
    /// Longest a bot keeps trying (reconnects, logins refused while the dead node's names
    /// expire) from the moment its connection dropped; then it gives up (counted).
    #[serde(with = "secs")]
    pub timeout: Duration,
    /// Room message ids each bot remembers to drop replayed or repeated messages (at least the
    /// server's `--history-len`, which bounds a replay).
    pub dedupe_ids: usize,
}

impl Default for Failover {
    fn default() -> Self {
        Failover { timeout: Duration::from_secs(30), dedupe_ids: 256 }
    }
}

fn is_default<T: Default + PartialEq>(v: &T) -> bool {
    *v == T::default()
}

/// Everything one run needs to know.
#[derive(Clone, Debug, Serialize)]
pub struct Scenario {
    /// Server address (loopback for tests and for the runs in `results/`); the first of `addrs`
    /// when there are several.
    pub addr: SocketAddr,
    /// Every server address (nodes of a cluster), when there are several; empty means `addr`
    /// alone. See [`Scenario::addr_list`].
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub addrs: Vec<SocketAddr>,
    /// Which address each bot starts on.
    #[serde(skip_serializing_if = "is_default")]
    pub placement: Placement,
    /// Bots that send (bots `0..publishers`); the others only listen. `None`: every bot sends.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub publishers: Option<u32>,
    /// Fail-over to the next address on a dropped connection; `None`: a drop ends the bot.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub failover: Option<Failover>,
    /// Number of bots (connections).
    pub bots: u32,
    /// Number of rooms. Room 0 is `general`, where every bot lands at login; the others are
    /// `room1`, `room2`, ...
    pub rooms: u32,
    /// How bots spread over the rooms.
    pub spread: Spread,
    /// Message rate.
    pub rate: Rate,
    /// Chat text length in bytes (the stamp is padded to it; never shorter than the stamp).
    pub payload: usize,
    /// Share of messages that are private messages (0.0..=1.0); the rest are room messages.
    pub private_share: f64,
    /// Measured part of the run (after warm-up).
    #[serde(with = "secs")]
    pub duration: Duration,
    /// Sending before measuring: latencies not recorded, deliveries still checked.
    #[serde(with = "secs")]
    pub warmup: Duration,
    /// After the last scheduled send, how long to wait for outstanding deliveries.
    #[serde(with = "secs")]
    pub drain: Duration,
    /// Wire format.
    #[serde(serialize_with = "ser_format")]
    pub format: WireFormat,
    /// TLS, if on.
    pub tls: Option<TlsOptions>,
    /// New connections per second over all threads (0 = as fast as the pending cap allows).
    pub connect_rate: f64,
    /// Most bots per thread between connect() and "joined its room" at once.
    pub max_pending: u32,
    /// Give up waiting for bots to connect and join after this long.
    #[serde(with = "secs")]
    pub connect_timeout: Duration,
    /// Event-loop threads.
    pub threads: u32,
    /// Local addresses bots bind to before connecting, round-robin. Empty: let the kernel pick.
    pub sources: Vec<IpAddr>,
    /// User names are `<prefix><bot id>`.
    pub name_prefix: String,
    /// Server process to watch in /proc for CPU and memory.
    pub server_pid: Option<u32>,
    /// Print a progress line every second.
    pub progress: bool,
}

fn ser_format<S: serde::Serializer>(f: &WireFormat, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(f.name())
}

mod secs {
    use std::time::Duration;
    pub fn serialize<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_f64(d.as_secs_f64())
    }
}

/// A scenario that makes no sense.
#[derive(Debug, thiserror::Error, PartialEq)]
#[non_exhaustive]
pub enum ScenarioError {
    #[error("--bots must be at least 1")]
    NoBots,
    #[error("--rooms must be between 1 and --bots ({bots})")]
    Rooms { bots: u32 },
    #[error("the message rate must be positive and finite")]
    Rate,
    #[error("--private-share must be between 0 and 1")]
    PrivateShare,
    #[error("--threads must be at least 1")]
    Threads,
    #[error("--payload {0} is over the protocol's 8 KiB text limit")]
    Payload(usize),
    #[error("--name-prefix {0:?} leaves no room for the bot number in 20 characters")]
    Prefix(String),
    #[error("bad source address list {0:?}: use a.b.c.d, a.b.c.d-a.b.c.e or a comma list")]
    Sources(String),
    #[error("bad server address list {0:?}: use host:port or a comma list of them")]
    Addrs(String),
    #[error("--publishers must be between 1 and --bots ({bots})")]
    Publishers { bots: u32 },
    #[error("--placement split needs at least two addresses and fewer --publishers than --bots")]
    Split,
    #[error("--failover-timeout must be positive and --dedupe-ids at least 1")]
    Failover,
}

impl Scenario {
    /// A small loopback scenario; every knob at a sensible default.
    pub fn new(addr: SocketAddr) -> Self {
        Scenario {
            addr,
            addrs: Vec::new(),
            placement: Placement::Spread,
            publishers: None,
            failover: None,
            bots: 100,
            rooms: 5,
            spread: Spread::Even,
            rate: Rate::PerBot(1.0),
            payload: 64,
            private_share: 0.1,
            duration: Duration::from_secs(10),
            warmup: Duration::from_secs(2),
            drain: Duration::from_secs(5),
            format: WireFormat::Binary,
            tls: None,
            connect_rate: 0.0,
            max_pending: 256,
            connect_timeout: Duration::from_secs(60),
            threads: 1,
            sources: Vec::new(),
            name_prefix: "b".into(),
            server_pid: None,
            progress: false,
        }
    }

    /// Checks the knobs against each other.
    pub fn validate(&self) -> Result<(), ScenarioError> {
        if self.bots == 0 {
            return Err(ScenarioError::NoBots);
        }
        if self.rooms == 0 || self.rooms > self.bots {
            return Err(ScenarioError::Rooms { bots: self.bots });
        }
        let r = self.per_bot_rate();
        if !(r.is_finite() && r > 0.0) {
            return Err(ScenarioError::Rate);
        }
        if !(0.0..=1.0).contains(&self.private_share) {
            return Err(ScenarioError::PrivateShare);
        }
        if self.threads == 0 {
            return Err(ScenarioError::Threads);
        }
        if self.payload > chatproto::protocol::Limits::default().max_text {
            return Err(ScenarioError::Payload(self.payload));
        }
        let digits = (self.bots - 1).max(1).ilog10() as usize + 1;
        if self.name_prefix.is_empty()
            || self.name_prefix.chars().count() + digits > 20
            || self.name_prefix.chars().any(|c| c.is_whitespace() || c.is_control())
        {
            return Err(ScenarioError::Prefix(self.name_prefix.clone()));
        }
        self.validate_cluster()
    }

    /// The knobs for several addresses, publishers and fail-over.
    fn validate_cluster(&self) -> Result<(), ScenarioError> {
        if self.publishers.is_some_and(|p| p == 0 || p > self.bots) {
            return Err(ScenarioError::Publishers { bots: self.bots });
        }
        if self.placement == Placement::Split && (self.addr_list().len() < 2 || self.publishers() >= self.bots) {
            return Err(ScenarioError::Split);
        }
        if self.failover.is_some_and(|f| f.timeout.is_zero() || f.dedupe_ids == 0) {
            return Err(ScenarioError::Failover);
        }
        Ok(())
    }

    /// Every server address, in order (at least one).
    pub fn addr_list(&self) -> &[SocketAddr] {
        if self.addrs.is_empty() {
            std::slice::from_ref(&self.addr)
        } else {
            &self.addrs
        }
    }

    /// For every bot (index = bot id), the index in [`addr_list`](Self::addr_list) of the
    /// address it starts on. Placed room by room, so that no room sits on one node by accident
    /// of the room and address counts.
    pub fn homes(&self) -> Vec<usize> {
        let n = self.addr_list().len();
        let split = self.placement == Placement::Split && n > 1;
        let placed = |b: u32| !(split && b < self.publishers());
        let rooms = self.room_assignment();
        // next[r]: the round-robin position of room r's next placed bot; rooms start where the
        // previous room's members end.
        let mut next = vec![0usize; self.rooms as usize];
        for (b, &r) in rooms.iter().enumerate() {
            if placed(b as u32) && (r as usize) + 1 < next.len() {
                next[r as usize + 1] += 1;
            }
        }
        for r in 1..next.len() {
            next[r] += next[r - 1];
        }
        (0..self.bots)
            .map(|b| {
                if !placed(b) {
                    return 0;
                }
                let k = &mut next[rooms[b as usize] as usize];
                *k += 1;
                if split {
                    1 + (*k - 1) % (n - 1)
                } else {
                    (*k - 1) % n
                }
            })
            .collect()
    }

    /// Bots that send: `0..publishers()`.
    pub fn publishers(&self) -> u32 {
        self.publishers.unwrap_or(self.bots)
    }

    /// Messages per second per sending bot.
    pub fn per_bot_rate(&self) -> f64 {
        match self.rate {
            Rate::PerBot(r) => r,
            Rate::Total(r) => r / self.publishers().max(1) as f64,
        }
    }

    /// Messages per second over all bots.
    pub fn total_rate(&self) -> f64 {
        self.per_bot_rate() * self.publishers() as f64
    }

    /// The thread that drives bot `bot`.
    pub fn thread_of(&self, bot: u32) -> u32 {
        bot % self.threads
    }

    /// The source address bot `bot` binds to, if sources are given.
    pub fn source_of(&self, bot: u32) -> Option<IpAddr> {
        if self.sources.is_empty() {
            None
        } else {
            Some(self.sources[bot as usize % self.sources.len()])
        }
    }

    /// User name of bot `bot`.
    pub fn username(&self, bot: u32) -> String {
        format!("{}{}", self.name_prefix, bot)
    }

    /// Room assignment for every bot (index = bot id).
    pub fn room_assignment(&self) -> Vec<u32> {
        assign_rooms(self.bots, self.rooms, self.spread)
    }

    /// Short label of the transport: `binary`, `json`, `binary+tls`, `json+tls`.
    pub fn mode_label(&self) -> String {
        let f = self.format.name();
        if self.tls.is_some() {
            format!("{f}+tls")
        } else {
            f.to_string()
        }
    }
}

/// Parses `127.0.0.1:5555` or `127.0.0.1:5561,127.0.0.1:5562` (host names are resolved; the
/// first address of each is used).
pub fn parse_addrs(s: &str) -> Result<Vec<SocketAddr>, ScenarioError> {
    use std::net::ToSocketAddrs;
    let bad = || ScenarioError::Addrs(s.to_string());
    let mut out = Vec::new();
    for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let addr = part.to_socket_addrs().map_err(|_| bad())?.next().ok_or_else(bad)?;
        out.push(addr);
    }
    if out.is_empty() {
        return Err(bad());
    }
    Ok(out)
}

/// Name of room `k` on the server.
pub fn room_name(k: u32) -> String {
    if k == 0 {
        chatproto::protocol::validate::DEFAULT_ROOM.to_string()
    } else {
        format!("room{k}")
    }
}

/// Room of every bot for `bots` bots over `rooms` rooms.
pub fn assign_rooms(bots: u32, rooms: u32, spread: Spread) -> Vec<u32> {
    let rooms = rooms.clamp(1, bots.max(1));
    match spread {
        Spread::Even => (0..bots).map(|b| b % rooms).collect(),
        Spread::Block => {
            let sizes: Vec<u32> = (0..rooms).map(|k| bots / rooms + u32::from(k < bots % rooms)).collect();
            expand(&sizes)
        }
        Spread::Skewed => {
            // Largest-remainder apportionment of 1/(k+1) weights, after one bot per room.
            let spare = bots - rooms;
            let w: Vec<f64> = (0..rooms).map(|k| 1.0 / (k as f64 + 1.0)).collect();
            let total: f64 = w.iter().sum();
            let quotas: Vec<f64> = w.iter().map(|x| x / total * spare as f64).collect();
            let mut sizes: Vec<u32> = quotas.iter().map(|q| 1 + q.floor() as u32).collect();
            let mut left = bots - sizes.iter().sum::<u32>();
            let mut order: Vec<usize> = (0..rooms as usize).collect();
            order.sort_by(|&a, &b| {
                let (ra, rb) = (quotas[a] - quotas[a].floor(), quotas[b] - quotas[b].floor());
                rb.partial_cmp(&ra).unwrap_or(std::cmp::Ordering::Equal).then(a.cmp(&b))
            });
            for k in order {
                if left == 0 {
                    break;
                }
                sizes[k] += 1;
                left -= 1;
            }
            expand(&sizes)
        }
    }
}

fn expand(sizes: &[u32]) -> Vec<u32> {
    sizes.iter().enumerate().flat_map(|(k, &n)| std::iter::repeat_n(k as u32, n as usize)).collect()
}

/// Parses `127.0.0.1`, `127.0.0.1-127.0.0.8` or `127.0.0.1,127.0.0.2`.
pub fn parse_sources(s: &str) -> Result<Vec<IpAddr>, ScenarioError> {
    let bad = || ScenarioError::Sources(s.to_string());
    let mut out = Vec::new();
    for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        if let Some((a, b)) = part.split_once('-') {
            let a: Ipv4Addr = a.trim().parse().map_err(|_| bad())?;
            let b: Ipv4Addr = b.trim().parse().map_err(|_| bad())?;
            let (a, b) = (u32::from(a), u32::from(b));
            if b < a || b - a > 1 << 16 {
                return Err(bad());
            }
            out.extend((a..=b).map(|x| IpAddr::V4(Ipv4Addr::from(x))));
        } else {
            out.push(part.parse().map_err(|_| bad())?);
        }
    }
    if out.is_empty() {
        return Err(bad());
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sizes(a: &[u32], rooms: u32) -> Vec<u32> {
        let mut s = vec![0; rooms as usize];
        a.iter().for_each(|&r| s[r as usize] += 1);
        s
    }

    #[test]
    fn spreads_cover_every_bot_and_room() {
        for spread in [Spread::Even, Spread::Block, Spread::Skewed] {
            for (bots, rooms) in [(1, 1), (10, 3), (100, 7), (6000, 300), (5, 5)] {
                let a = assign_rooms(bots, rooms, spread);
                assert_eq!(a.len(), bots as usize);
                let s = sizes(&a, rooms);
                assert!(s.iter().all(|&n| n >= 1), "{spread:?} {bots}/{rooms}: {s:?}");
                assert_eq!(s.iter().sum::<u32>(), bots);
            }
        }
        assert_eq!(sizes(&assign_rooms(10, 3, Spread::Even), 3), vec![4, 3, 3]);
        assert_eq!(assign_rooms(5, 2, Spread::Block), vec![0, 0, 0, 1, 1]);
        let skew = sizes(&assign_rooms(100, 4, Spread::Skewed), 4);
        assert!(skew[0] > skew[1] && skew[1] > skew[2] && skew[2] > skew[3], "{skew:?}");
    }

    #[test]
    fn sources_parse() {
        let v = parse_sources("127.0.0.1-127.0.0.3").unwrap();
        assert_eq!(v.len(), 3);
        assert_eq!(v[2], "127.0.0.3".parse::<IpAddr>().unwrap());
        assert_eq!(parse_sources("127.0.0.1, 127.0.0.9").unwrap().len(), 2);
        assert!(parse_sources("127.0.0.5-127.0.0.1").is_err());
        assert!(parse_sources("nope").is_err());
    }

    #[test]
    fn addresses_parse_and_bots_are_placed() {
        let a = parse_addrs("127.0.0.1:1, 127.0.0.1:2,127.0.0.1:3").unwrap();
        assert_eq!(a.len(), 3);
        assert!(parse_addrs("").is_err() && parse_addrs("nope").is_err());
        let mut s = Scenario::new(a[0]);
        s.bots = 10;
        s.rooms = 2;
        assert_eq!(s.addr_list(), &a[..1], "one address by default");
        s.addrs = a;
        // Room 0 (even bots) takes positions 0..5, room 1 (odd bots) 5..10.
        assert_eq!(s.homes(), [0, 2, 1, 0, 2, 1, 0, 2, 1, 0], "each room over every address, even shares");
        s.placement = Placement::Split;
        assert_eq!(s.validate(), Err(ScenarioError::Split), "split needs listeners");
        s.publishers = Some(4);
        assert_eq!(s.validate(), Ok(()));
        // Listeners: room 0 has 4, 6, 8 (positions 0..3), room 1 has 5, 7, 9 (positions 3..6).
        assert_eq!(s.homes(), [0, 0, 0, 0, 1, 2, 2, 1, 1, 2], "publishers on the first, listeners on the rest");
        s.rate = Rate::Total(40.0);
        assert_eq!((s.per_bot_rate(), s.total_rate()), (10.0, 40.0), "only publishers send");
        s.publishers = Some(11);
        assert!(s.validate().is_err());
    }

    #[test]
    fn validate_catches_nonsense() {
        let mut s = Scenario::new("127.0.0.1:1".parse().unwrap());
        assert_eq!(s.validate(), Ok(()));
        s.rooms = 1000;
        assert!(s.validate().is_err());
        s.rooms = 1;
        s.name_prefix = "x".repeat(19);
        assert!(s.validate().is_err());
    }
}
