//! One server shard: a mio `Poll`, a listener, a slab of connections, and the hub.
//!
//! A loop turn: poll → for each event, accept (listener) or read and dispatch (connection) →
//! flush every connection that got output this turn, once, with vectored writes → close the
//! connections marked for closing (their presence notices are flushed in the same turn) →
//! timers → publish counters. The loop never parses bytes: decoding is the protocol module's,
//! semantics the hub's.

mod accept;
mod io;
mod shards;

pub use shards::{Shards, ShardsHandle};

use crate::chat::Hub;
use crate::cluster::{Backplane, Remote, ShardLink};
use crate::config::ServerConfig;
use crate::conn::limits::PerAddress;
use crate::conn::Peers;
use crate::net::buffer::ReadArena;
use crate::net::tls::{Acceptor, CertSource, TlsError};
use crate::services::Services;
use crate::stats::{Stats, StatsSnapshot};
use mio::net::TcpListener;
use mio::{Events, Interest, Poll, Token, Waker};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{channel, Receiver};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// Token of the listening socket. Connection tokens are slab keys, far below these.
const LISTENER: Token = Token(usize::MAX - 1);
/// Token of the waker that other threads use to reach the loop.
const WAKER: Token = Token(usize::MAX - 2);
/// How often deadlines are checked.
const TICK: Duration = Duration::from_millis(250);

/// Errors that stop a server.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ServerError {
    #[error("cannot listen on {addr}: {source}")]
    Bind { addr: SocketAddr, source: std::io::Error },
    #[error("event loop: {0}")]
    Poll(#[from] std::io::Error),
    #[error("TLS: {0}")]
    Tls(#[from] TlsError),
    #[error(transparent)]
    Services(#[from] crate::services::ServiceError),
    #[error(transparent)]
    Cluster(#[from] crate::cluster::nats::ClusterError),
    #[error("the server thread panicked")]
    Panicked,
}

/// A cheap, cloneable handle to a running server: stop it, read its counters.
#[derive(Clone)]
pub struct ServerHandle {
    waker: Arc<Waker>,
    stop: Arc<AtomicBool>,
    stats: Arc<Stats>,
}

impl ServerHandle {
    /// Asks the server to shut down gracefully: tell clients, flush, close, return from `run`.
    pub fn shutdown(&self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = self.waker.wake();
    }

    /// The server's counters now.
    pub fn stats(&self) -> StatsSnapshot {
        self.stats.snapshot()
    }
}

/// The cluster link's counters as the metrics endpoint shows them.
fn cluster_figures(c: &crate::cluster::nats::ClusterStats) -> crate::metrics::ClusterFigures {
    let get = |n: &std::sync::atomic::AtomicU64| n.load(Ordering::Relaxed);
    crate::metrics::ClusterFigures {
        connected: c.connected.load(Ordering::Relaxed),
        disconnects: get(&c.disconnects),
        dropped: get(&c.dropped),
        published: get(&c.published),
        received: get(&c.received),
        names_lost: get(&c.names_lost),
        logged: get(&c.logged),
        log_refused: get(&c.log_refused),
        log_gaps: get(&c.log_gaps),
        file_chunks_fetched: get(&c.file_chunks_fetched),
        file_fetches_failed: get(&c.file_fetches_failed),
        file_chunks_served: get(&c.file_chunks_served),
    }
}

/// One event-loop shard and everything it owns.
pub struct Server {
    poll: Poll,
    listener: TcpListener,
    addr: SocketAddr,
    config: ServerConfig,
    /// TLS sessions are started from this; `None` when TLS is off.
    acceptor: Option<Acceptor>,
    peers: Peers,
    hub: Hub,
    /// Work from other shards (room messages and private messages for local members).
    inbox: Receiver<Vec<Remote>>,
    /// The shared read buffer frames are decoded from in place.
    arena: ReadArena,
    /// Connections whose read was cut short by the per-turn budget; read again next turn.
    retry_reads: Vec<usize>,
    /// This turn's flush list, swapped with the connections' (capacity reused every turn).
    flushing: Vec<usize>,
    /// Closing connections that just started lingering: the chat core forgets them now.
    leaving: Vec<usize>,
    /// Connections to close after this turn's flush.
    closing: Vec<usize>,
    /// Accepting is paused until then (fd exhaustion back-off).
    accept_paused_until: Option<Instant>,
    /// When fd exhaustion was last logged (one line per interval, not per retry).
    last_fd_warning: Option<Instant>,
    /// When deadlines were last checked.
    last_tick: Instant,
    /// The time of this loop turn (one clock read per turn, not per message).
    now: Instant,
    /// Open connections per source address.
    per_address: PerAddress,
    /// When the last summary line was logged, and the totals then.
    last_summary: (Instant, StatsSnapshot),
    /// Totals published to `stats` each turn.
    totals: StatsSnapshot,
    /// The Prometheus endpoint and every shard's handle (shard 0 only, when `config.metrics`).
    metrics: Option<(crate::metrics::MetricsEndpoint, Vec<ServerHandle>)>,
    /// The cluster link's counters, for the metrics endpoint (shard 0 of a cluster node only).
    cluster: Option<Arc<crate::cluster::nats::ClusterStats>>,
    /// When the shard was built (for `chatproto_uptime_seconds`).
    started: Instant,
    /// `GET /config.json` ([`ServerConfig::site_json`], rendered once, with the cluster's live
    /// addresses) and the origins trusted for WebSocket upgrades.
    site: crate::config::site::Site,
    handle: ServerHandle,
}

impl Server {
    /// The address actually bound (useful with port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// A handle to stop the server and read its counters.
    pub fn handle(&self) -> ServerHandle {
        self.handle.clone()
    }

    /// Runs the loop until [`ServerHandle::shutdown`].
    pub fn run(mut self) -> Result<(), ServerError> {
        let mut events = Events::with_capacity(1024);
        tracing::info!(addr = %self.addr, tls = self.acceptor.is_some(), "listening on {}", self.addr);
        loop {
            let timeout = self.poll_timeout();
            if let Err(e) = self.poll.poll(&mut events, Some(timeout)) {
                if e.kind() == std::io::ErrorKind::Interrupted {
                    continue;
                }
                return Err(e.into());
            }
            self.now = Instant::now();
            self.hub.set_now(now_ms());
            while let Ok(batch) = self.inbox.try_recv() {
                batch.into_iter().for_each(|work| self.hub.remote(&mut self.peers, work));
            }
            for key in std::mem::take(&mut self.retry_reads) {
                self.read_ready(key);
            }
            for event in events.iter() {
                match event.token() {
                    LISTENER => self.accept_ready(),
                    WAKER => {}
                    t if self.metrics.as_ref().is_some_and(|(m, _)| m.owns(t)) => self.metrics_ready(event),
                    Token(key) => self.conn_ready(key, event),
                }
            }
            self.hub.on_turn(&mut self.peers);
            if self.handle.stop.load(Ordering::SeqCst) {
                self.shutdown();
                return Ok(());
            }
            self.flush_and_close();
            self.tick();
            self.hub.send_remote();
            self.publish();
        }
    }

    fn poll_timeout(&self) -> Duration {
        if !self.retry_reads.is_empty() {
            return Duration::ZERO;
        }
        let mut t = TICK.saturating_sub(self.last_tick.elapsed());
        if let Some(ms) = self.hub.next_timer_ms() {
            t = t.min(Duration::from_millis(ms));
        }
        if let Some(at) = self.accept_paused_until {
            t = t.min(at.saturating_duration_since(Instant::now()));
        }
        t
    }

    /// Serves the metrics endpoint's event; renders every shard's latest published counters.
    fn metrics_ready(&mut self, event: &mio::event::Event) {
        let Some((endpoint, shards)) = self.metrics.as_mut() else { return };
        let started = self.started;
        let cluster = self.cluster.clone();
        endpoint.ready(self.poll.registry(), event, &mut || {
            let per: Vec<StatsSnapshot> = shards.iter().map(ServerHandle::stats).collect();
            let mut total = StatsSnapshot::default();
            per.iter().for_each(|s| total.add(s));
            let extra = crate::metrics::Extra {
                uptime_seconds: started.elapsed().as_secs_f64(),
                cluster: cluster.as_deref().map(cluster_figures),
                ..Default::default()
            };
            crate::metrics::render(&total, &per, &extra)
        });
    }

    /// Copies the loop's totals into the shared counters.
    fn publish(&mut self) {
        let t = &mut self.totals;
        let (hub, peers) = (&self.hub.counters, &self.peers.counters);
        t.connections_open = self.peers.conns.len() as u64;
        t.logins = hub.logins;
        t.room_msgs = hub.room_msgs;
        t.deliveries = hub.deliveries;
        t.private_msgs = hub.private_msgs;
        t.bytes_in = self.peers.wire.read;
        t.bytes_out = self.peers.wire.written;
        t.frames_out = peers.frames_queued;
        t.frames_in = peers.frames_in;
        t.protocol_errors = peers.protocol_errors;
        t.rate_limited = peers.rate_limited;
        t.open_binary = peers.open_binary;
        t.open_json = peers.open_json;
        t.open_websocket = peers.open_websocket;
        t.open_websocket_tls = peers.open_websocket_tls;
        t.http_requests = peers.http_requests;
        t.slow_consumer_disconnects = peers.slow_consumers;
        self.handle.stats.publish(t);
    }
}

/// A shard before it knows its siblings: everything but the hub.
pub(crate) struct Parts {
    poll: Poll,
    listener: TcpListener,
    addr: SocketAddr,
    waker: Arc<Waker>,
    inbox: Receiver<Vec<Remote>>,
    acceptor: Option<Acceptor>,
}

impl Parts {
    /// Registers the listener with a new poll; returns the parts and the link siblings use.
    pub(crate) fn new(
        listener: std::net::TcpListener,
        acceptor: Option<Acceptor>,
    ) -> Result<(Parts, ShardLink), ServerError> {
        listener.set_nonblocking(true)?;
        let addr = listener.local_addr()?;
        let mut listener = TcpListener::from_std(listener);
        let poll = Poll::new()?;
        poll.registry().register(&mut listener, LISTENER, Interest::READABLE)?;
        let waker = Arc::new(Waker::new(poll.registry(), WAKER)?);
        let (tx, inbox) = channel();
        let link = ShardLink { tx, waker: waker.clone() };
        Ok((Parts { poll, listener, addr, waker, inbox, acceptor }, link))
    }

    /// Completes shard `shard` of the server joined by `backplane`.
    pub(crate) fn finish(
        self,
        shard: usize,
        backplane: Arc<dyn Backplane>,
        services: Arc<Services>,
        config: ServerConfig,
    ) -> Server {
        let handle = ServerHandle {
            waker: self.waker.clone(),
            stop: Arc::new(AtomicBool::new(false)),
            stats: Arc::new(Stats::default()),
        };
        Server {
            poll: self.poll,
            listener: self.listener,
            addr: self.addr,
            acceptor: self.acceptor,
            peers: Peers::new(config.max_outbound_bytes).with_slow_policy(config.outbound_burst, config.slow_grace),
            hub: Hub::new(shard, backplane, services, config.presence_limit)
                .with_presence_interval(config.presence_interval),
            inbox: self.inbox,
            arena: ReadArena::new(config.limits.max_frame),
            retry_reads: Vec::new(),
            flushing: Vec::with_capacity(1024),
            leaving: Vec::new(),
            closing: Vec::new(),
            accept_paused_until: None,
            last_fd_warning: None,
            last_tick: Instant::now(),
            now: Instant::now(),
            per_address: PerAddress::default(),
            last_summary: (Instant::now(), StatsSnapshot::default()),
            totals: StatsSnapshot::default(),
            metrics: None,
            cluster: None,
            started: Instant::now(),
            site: crate::config::site::Site::new(
                config.site_json(),
                config.cluster.as_ref().map(|c| c.advertise.clone()),
            ),
            handle,
            config,
        }
    }
}

pub(crate) fn load_tls(config: &ServerConfig) -> Result<Acceptor, ServerError> {
    let (acceptor, source) = Acceptor::load_or_generate(&config.tls.cert, &config.tls.key)?;
    if source == CertSource::Generated {
        tracing::warn!(
            cert = %config.tls.cert.display(),
            key = %config.tls.key.display(),
            "no certificate found: generated a self-signed one for localhost and this host (testing only, see certs/README.md)"
        );
    }
    Ok(acceptor)
}

fn now_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64)
}

/// A server (all its shards) running on background threads, for tests, benches and the load
/// generator.
pub struct RunningServer {
    /// The address it listens on.
    pub addr: SocketAddr,
    /// Handle to stop it and read counters (summed over shards).
    pub handle: ShardsHandle,
    /// The shared services (for the admin console).
    pub services: Arc<Services>,
    thread: Option<JoinHandle<Result<(), ServerError>>>,
}

impl RunningServer {
    /// Shuts the server down and waits for its thread.
    pub fn stop(mut self) -> Result<(), ServerError> {
        self.stop_inner()
    }

    fn stop_inner(&mut self) -> Result<(), ServerError> {
        self.handle.shutdown();
        match self.thread.take() {
            Some(t) => t.join().map_err(|_| ServerError::Panicked)?,
            None => Ok(()),
        }
    }
}

impl Drop for RunningServer {
    fn drop(&mut self) {
        let _ = self.stop_inner();
    }
}

/// Binds per `config` (with `config.shards` shards; [`ServerConfig::loopback`] has one) and runs
/// the server on background threads.
pub fn spawn(config: ServerConfig) -> Result<RunningServer, ServerError> {
    let shards = Shards::bind(config)?;
    let (addr, handle, services) = (shards.local_addr(), shards.handle(), shards.services());
    let thread = std::thread::Builder::new().name("chat-shard-0".into()).spawn(move || shards.run())?;
    Ok(RunningServer { addr, handle, services, thread: Some(thread) })
}
