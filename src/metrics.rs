//! Prometheus metrics over HTTP, served by an event loop: a tiny non-blocking responder and the
//! text exposition format (version 0.0.4).
//!
//! [`MetricsEndpoint`] owns a listener and at most [`MAX_SCRAPES`] connections. Each connection
//! carries one request: read the head (at most [`MAX_REQUEST`] bytes), answer, shut our side,
//! discard whatever the client still sends until it closes, close. `GET /metrics` gets 200 and the
//! text from [`render`]; other paths 404, other methods 405, garbage 400, an oversized head 431.
//! The loop calls [`MetricsEndpoint::ready`] for every event whose token the endpoint
//! [owns](MetricsEndpoint::owns); the endpoint never blocks and never asks for a timer: a scrape
//! that hangs is closed when a new connection needs its slot.
//!
//! ```text
//! Reading ──head complete──▶ Writing ──all sent, shutdown(Write)──▶ Draining ──EOF──▶ closed
//! ```

use crate::net::{is_transient_accept_error, would_block};
use crate::stats::StatsSnapshot;
use mio::net::{TcpListener, TcpStream};
use mio::{Interest, Registry, Token};
use slab::Slab;
use std::fmt::Write as _;
use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr};
use std::time::{Duration, Instant};

/// Token of the metrics listener (the server's own listener and waker are `MAX - 1` and `MAX - 2`).
pub const METRICS_LISTENER: Token = Token(usize::MAX - 3);
/// Metrics connection `k` has token `METRICS_CONN_BASE + k`, far above any client connection's.
pub const METRICS_CONN_BASE: usize = usize::MAX / 2;
/// Most metrics connections at once; more are closed on accept.
pub const MAX_SCRAPES: usize = 16;
/// Largest request head read; a longer one is answered with 431.
pub const MAX_REQUEST: usize = 8 * 1024;
/// When all slots are taken, the oldest connection is closed for a new one if it is this old.
const STALE_AFTER: Duration = Duration::from_secs(10);
/// Bytes discarded after the response before the connection is closed anyway.
const MAX_DRAIN: usize = 64 * 1024;
/// The exposition format's content type.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

mod cluster;
pub use cluster::ClusterFigures;

/// Serves `GET /metrics` from an event loop. See the module documentation.
pub struct MetricsEndpoint {
    listener: TcpListener,
    addr: SocketAddr,
    /// Open scrapes; the slab key `k` is token `METRICS_CONN_BASE + k`.
    scrapes: Slab<Scrape>,
}

/// One metrics connection.
struct Scrape {
    sock: TcpStream,
    /// When it was accepted (for reclaiming slots from hung clients).
    opened: Instant,
    phase: Phase,
}

/// Where a metrics connection is in its single request.
enum Phase {
    /// Reading the request head; holds the bytes so far (`len() <= MAX_REQUEST`).
    Reading(Vec<u8>),
    /// Writing the response; `out[..sent]` is gone.
    Writing { out: Vec<u8>, sent: usize },
    /// Response sent and our side shut: reading and discarding until the client closes, so that
    /// closing with unread input does not reset the connection before the client read the answer.
    Draining { discarded: usize },
}

/// What to do with a connection after driving it.
#[derive(Debug, PartialEq, Eq)]
enum Next {
    /// Wait for the next readiness event.
    Wait,
    /// Deregister and close.
    Close,
}

impl MetricsEndpoint {
    /// Binds a non-blocking listener on `addr` (port 0 picks a free port).
    pub fn bind(addr: SocketAddr) -> io::Result<MetricsEndpoint> {
        let listener = TcpListener::bind(addr)?;
        let addr = listener.local_addr()?;
        Ok(MetricsEndpoint { listener, addr, scrapes: Slab::with_capacity(MAX_SCRAPES) })
    }

    /// The address actually bound.
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Registers the listener with the loop's registry under [`METRICS_LISTENER`]; connection
    /// tokens are [`METRICS_CONN_BASE`] and up.
    pub fn register(&mut self, registry: &Registry) -> io::Result<()> {
        registry.register(&mut self.listener, METRICS_LISTENER, Interest::READABLE)
    }

    /// Whether `token` is the endpoint's (its listener or one of its connections).
    pub fn owns(&self, token: Token) -> bool {
        token == METRICS_LISTENER || (METRICS_CONN_BASE..METRICS_CONN_BASE + MAX_SCRAPES).contains(&token.0)
    }

    /// Handles readiness for one of its tokens: accepts, reads, answers, closes. `render` is
    /// called only when a `GET`/`HEAD /metrics` is answered. Spurious events are harmless.
    pub fn ready(&mut self, registry: &Registry, event: &mio::event::Event, render: &mut dyn FnMut() -> String) {
        match event.token() {
            METRICS_LISTENER => self.accept(registry),
            Token(t) if self.owns(Token(t)) => {
                let key = t - METRICS_CONN_BASE;
                let next = match self.scrapes.get_mut(key) {
                    Some(scrape) => scrape.drive(render),
                    None => return,
                };
                if next == Next::Close {
                    self.close(registry, key);
                }
            }
            Token(_) => {}
        }
    }

    /// Number of metrics connections open now.
    pub fn open_connections(&self) -> usize {
        self.scrapes.len()
    }

    /// Accepts until the queue is empty (edge-triggered).
    fn accept(&mut self, registry: &Registry) {
        loop {
            let mut sock = match self.listener.accept() {
                Ok((sock, _)) => sock,
                Err(e) if would_block(&e) => return,
                Err(e) if is_transient_accept_error(&e) => continue,
                Err(e) => {
                    // Most likely out of descriptors: what is left waits for the next event.
                    tracing::debug!("metrics accept failed: {e}");
                    return;
                }
            };
            if self.scrapes.len() >= MAX_SCRAPES && !self.reclaim_stale(registry) {
                tracing::debug!("metrics: {MAX_SCRAPES} connections open; refusing one");
                continue; // dropping `sock` closes it
            }
            let entry = self.scrapes.vacant_entry();
            let token = Token(METRICS_CONN_BASE + entry.key());
            if let Err(e) = registry.register(&mut sock, token, Interest::READABLE | Interest::WRITABLE) {
                tracing::debug!("metrics register failed: {e}");
                continue;
            }
            entry.insert(Scrape { sock, opened: Instant::now(), phase: Phase::Reading(Vec::new()) });
        }
    }

    /// Closes the oldest connection if it has been open for [`STALE_AFTER`]; true if it did.
    fn reclaim_stale(&mut self, registry: &Registry) -> bool {
        let oldest = self.scrapes.iter().min_by_key(|(_, s)| s.opened).map(|(k, s)| (k, s.opened));
        match oldest {
            Some((key, opened)) if opened.elapsed() >= STALE_AFTER => {
                self.close(registry, key);
                true
            }
            _ => false,
        }
    }

    fn close(&mut self, registry: &Registry, key: usize) {
        let mut scrape = self.scrapes.remove(key);
        let _ = registry.deregister(&mut scrape.sock);
    }
}

impl Scrape {
    /// Makes all the progress the socket allows.
    fn drive(&mut self, render: &mut dyn FnMut() -> String) -> Next {
        loop {
            match &mut self.phase {
                Phase::Reading(head) => match read_head(&mut self.sock, head) {
                    Ok(Some(complete)) => {
                        let out = respond(head, complete, render);
                        self.phase = Phase::Writing { out, sent: 0 };
                    }
                    Ok(None) => return Next::Wait,
                    Err(_) => return Next::Close,
                },
                Phase::Writing { out, sent } => {
                    while *sent < out.len() {
                        match self.sock.write(&out[*sent..]) {
                            Ok(0) => return Next::Close,
                            Ok(n) => *sent += n,
                            Err(e) if would_block(&e) => return Next::Wait,
                            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                            Err(_) => return Next::Close,
                        }
                    }
                    if self.sock.shutdown(Shutdown::Write).is_err() {
                        return Next::Close;
                    }
                    self.phase = Phase::Draining { discarded: 0 };
                }
                Phase::Draining { discarded } => {
                    let mut sink = [0u8; 1024];
                    loop {
                        match self.sock.read(&mut sink) {
                            Ok(0) => return Next::Close,
                            Ok(n) => {
                                *discarded += n;
                                if *discarded > MAX_DRAIN {
                                    return Next::Close;
                                }
                            }
                            Err(e) if would_block(&e) => return Next::Wait,
                            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                            Err(_) => return Next::Close,
                        }
                    }
                }
            }
        }
    }
}

/// How a request head ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Complete {
    /// A blank line ended it.
    Head,
    /// It passed [`MAX_REQUEST`] without a blank line.
    TooLarge,
}

/// Reads until the head is complete (`Ok(Some)`), the socket is drained (`Ok(None)`), or the
/// client went away before finishing it (`Err`).
fn read_head(sock: &mut impl Read, head: &mut Vec<u8>) -> io::Result<Option<Complete>> {
    let mut chunk = [0u8; 2048];
    loop {
        let room = (MAX_REQUEST - head.len()).min(chunk.len());
        if room == 0 {
            return Ok(Some(Complete::TooLarge));
        }
        match sock.read(&mut chunk[..room]) {
            Ok(0) => return Err(io::ErrorKind::UnexpectedEof.into()),
            Ok(n) => {
                let from = head.len().saturating_sub(3);
                head.extend_from_slice(&chunk[..n]);
                if head_ends(&head[from..]) {
                    return Ok(Some(Complete::Head));
                }
            }
            Err(e) if would_block(&e) => return Ok(None),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
}

/// Whether `bytes` contain the blank line that ends a request head (`\r\n\r\n`, or a bare `\n\n`).
fn head_ends(bytes: &[u8]) -> bool {
    bytes.windows(4).any(|w| w == b"\r\n\r\n") || bytes.windows(2).any(|w| w == b"\n\n")
}

/// The whole response to a request head.
fn respond(head: &[u8], complete: Complete, render: &mut dyn FnMut() -> String) -> Vec<u8> {
    if complete == Complete::TooLarge {
        return response(431, "Request Header Fields Too Large", "", "request head too large\n", true);
    }
    let line = head.split(|&b| b == b'\n').next().unwrap_or_default();
    let line = std::str::from_utf8(line).unwrap_or("").trim_end_matches('\r');
    let mut parts = line.split(' ');
    let (method, target, version) = match (parts.next(), parts.next(), parts.next(), parts.next()) {
        (Some(m), Some(t), Some(v), None) if !m.is_empty() && t.starts_with('/') && v.starts_with("HTTP/1.") => {
            (m, t, v)
        }
        _ => return response(400, "Bad Request", "", "bad request\n", true),
    };
    let _ = version;
    let with_body = match method {
        "GET" => true,
        "HEAD" => false,
        _ => return response(405, "Method Not Allowed", "Allow: GET, HEAD\r\n", "only GET and HEAD\n", true),
    };
    let path = target.split('?').next().unwrap_or(target);
    if path != "/metrics" {
        return response(404, "Not Found", "", "not found; metrics are at /metrics\n", with_body);
    }
    let mut out = response(200, "OK", "", &render(), with_body);
    out.shrink_to_fit();
    out
}

/// Status line, headers (`extra` ends in CRLF or is empty), and `body` unless `with_body` is
/// false (HEAD), with the body's length either way.
fn response(code: u16, reason: &str, extra: &str, body: &str, with_body: bool) -> Vec<u8> {
    let content_type = if code == 200 { CONTENT_TYPE } else { "text/plain; charset=utf-8" };
    let mut out = format!(
        "HTTP/1.1 {code} {reason}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\n\
         Cache-Control: no-store\r\nConnection: close\r\n{extra}\r\n",
        body.len()
    )
    .into_bytes();
    if with_body {
        out.extend_from_slice(body.as_bytes());
    }
    out
}

/// Figures that are not in [`StatsSnapshot`].
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Extra {
    /// History (message database) writes: how many, and their total duration in seconds. The
    /// summary is emitted only when `Some`.
    pub history_write_latency_seconds: Option<(u64, f64)>,
    /// Seconds since the server started.
    pub uptime_seconds: f64,
    /// The cluster link's figures, on a cluster node.
    pub cluster: Option<ClusterFigures>,
}

/// Prometheus metric types used here.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Counter,
    Gauge,
}

impl Kind {
    fn as_str(self) -> &'static str {
        match self {
            Kind::Counter => "counter",
            Kind::Gauge => "gauge",
        }
    }
}

/// One unlabelled metric taken from a [`StatsSnapshot`] field.
struct Field {
    name: &'static str,
    kind: Kind,
    help: &'static str,
    get: fn(&StatsSnapshot) -> u64,
}

/// Totals over all shards, one metric per [`StatsSnapshot`] field (the per-protocol gauges
/// `open_binary`, `open_json` and `open_websocket` are one labelled metric, written separately).
const TOTALS: &[Field] = &[
    Field {
        name: "chatproto_connections_open",
        kind: Kind::Gauge,
        help: "Connections open now.",
        get: |s| s.connections_open,
    },
    Field {
        name: "chatproto_connections_tls",
        kind: Kind::Gauge,
        help: "Open connections using TLS.",
        get: |s| s.open_tls,
    },
    Field {
        name: "chatproto_http_requests_total",
        kind: Kind::Counter,
        help: "HTTP requests answered on the chat port (web app files, errors, WebSocket upgrades).",
        get: |s| s.http_requests,
    },
    Field {
        name: "chatproto_connections_accepted_total",
        kind: Kind::Counter,
        help: "Connections accepted (including those refused right after accept).",
        get: |s| s.connections_total,
    },
    Field {
        name: "chatproto_tls_connections_total",
        kind: Kind::Counter,
        help: "Connections that started a TLS handshake.",
        get: |s| s.tls_connections,
    },
    Field {
        name: "chatproto_accept_refusals_total",
        kind: Kind::Counter,
        help: "Connections refused or accepts postponed: server full, per-address cap, out of descriptors.",
        get: |s| s.accept_refusals,
    },
    Field { name: "chatproto_logins_total", kind: Kind::Counter, help: "Successful logins.", get: |s| s.logins },
    Field {
        name: "chatproto_received_bytes_total",
        kind: Kind::Counter,
        help: "Bytes read from client sockets (ciphertext under TLS).",
        get: |s| s.bytes_in,
    },
    Field {
        name: "chatproto_sent_bytes_total",
        kind: Kind::Counter,
        help: "Bytes written to client sockets (ciphertext under TLS).",
        get: |s| s.bytes_out,
    },
    Field {
        name: "chatproto_frames_received_total",
        kind: Kind::Counter,
        help: "Frames (binary frames or JSON lines) decoded from clients.",
        get: |s| s.frames_in,
    },
    Field {
        name: "chatproto_frames_sent_total",
        kind: Kind::Counter,
        help: "Frames queued to clients.",
        get: |s| s.frames_out,
    },
    Field {
        name: "chatproto_room_messages_total",
        kind: Kind::Counter,
        help: "Room messages accepted.",
        get: |s| s.room_msgs,
    },
    Field {
        name: "chatproto_fanout_deliveries_total",
        kind: Kind::Counter,
        help: "Room-message deliveries (one per recipient).",
        get: |s| s.deliveries,
    },
    Field {
        name: "chatproto_private_messages_total",
        kind: Kind::Counter,
        help: "Private messages delivered.",
        get: |s| s.private_msgs,
    },
    Field {
        name: "chatproto_slow_consumer_disconnects_total",
        kind: Kind::Counter,
        help: "Connections closed because their outbound backlog passed the limit.",
        get: |s| s.slow_consumer_disconnects,
    },
    Field {
        name: "chatproto_rate_limited_total",
        kind: Kind::Counter,
        help: "Frames refused by the per-connection rate limit (refused, or the one that disconnected a flooder).",
        get: |s| s.rate_limited,
    },
    Field {
        name: "chatproto_protocol_errors_total",
        kind: Kind::Counter,
        help: "Bad frames answered with ERROR_MSG.",
        get: |s| s.protocol_errors,
    },
    Field {
        name: "chatproto_queued_bytes",
        kind: Kind::Gauge,
        help: "Bytes waiting in outbound queues now.",
        get: |s| s.queued_bytes,
    },
];

/// Per-shard series, labelled `shard="N"`.
const PER_SHARD: &[Field] = &[
    Field {
        name: "chatproto_shard_connections_open",
        kind: Kind::Gauge,
        help: "Connections open now, per event-loop shard.",
        get: |s| s.connections_open,
    },
    Field {
        name: "chatproto_shard_queued_bytes",
        kind: Kind::Gauge,
        help: "Bytes waiting in outbound queues now, per event-loop shard.",
        get: |s| s.queued_bytes,
    },
    Field {
        name: "chatproto_shard_frames_received_total",
        kind: Kind::Counter,
        help: "Frames decoded from clients, per event-loop shard.",
        get: |s| s.frames_in,
    },
];

/// The Prometheus text exposition (format 0.0.4) of the server's counters: `total` over all
/// shards, `shards` one by one, and `extra`.
pub fn render(total: &StatsSnapshot, shards: &[StatsSnapshot], extra: &Extra) -> String {
    let mut out = String::with_capacity(4096 + shards.len() * 256);
    for f in TOTALS {
        family(&mut out, f.name, f.kind.as_str(), f.help);
        sample(&mut out, f.name, "", &(f.get)(total).to_string());
    }
    let name = "chatproto_connections";
    family(&mut out, name, "gauge", "Open connections by wire format, once the first byte has told it.");
    sample(&mut out, name, "protocol=\"binary\"", &total.open_binary.to_string());
    sample(&mut out, name, "protocol=\"json\"", &total.open_json.to_string());
    let ws_plain = total.open_websocket.saturating_sub(total.open_websocket_tls);
    sample(&mut out, name, "protocol=\"websocket\",tls=\"false\"", &ws_plain.to_string());
    sample(&mut out, name, "protocol=\"websocket\",tls=\"true\"", &total.open_websocket_tls.to_string());
    for f in PER_SHARD {
        family(&mut out, f.name, f.kind.as_str(), f.help);
        for (i, s) in shards.iter().enumerate() {
            sample(&mut out, f.name, &format!("shard=\"{i}\""), &(f.get)(s).to_string());
        }
    }
    let name = "chatproto_shards";
    family(&mut out, name, "gauge", "Event-loop shards running.");
    sample(&mut out, name, "", &shards.len().to_string());
    let name = "chatproto_uptime_seconds";
    family(&mut out, name, "gauge", "Seconds since the server started.");
    sample(&mut out, name, "", &float(extra.uptime_seconds));
    if let Some((count, sum)) = extra.history_write_latency_seconds {
        let name = "chatproto_history_write_latency_seconds";
        family(&mut out, name, "summary", "Time taken by history (message database) writes.");
        sample(&mut out, &format!("{name}_count"), "", &count.to_string());
        sample(&mut out, &format!("{name}_sum"), "", &float(sum));
    }
    if let Some(c) = &extra.cluster {
        cluster::render(&mut out, c);
    }
    let name = "chatproto_build_info";
    family(&mut out, name, "gauge", "Always 1; the version is in the label.");
    sample(&mut out, name, &format!("version=\"{}\"", env!("CARGO_PKG_VERSION")), "1");
    out
}

/// `# HELP` and `# TYPE` lines.
fn family(out: &mut String, name: &str, kind: &str, help: &str) {
    let help = help.replace('\\', "\\\\").replace('\n', "\\n");
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
}

/// One sample line; `labels` is `k="v",...` (already escaped) or empty.
fn sample(out: &mut String, name: &str, labels: &str, value: &str) {
    if labels.is_empty() {
        let _ = writeln!(out, "{name} {value}");
    } else {
        let _ = writeln!(out, "{name}{{{labels}}} {value}");
    }
}

/// A float as the exposition format spells it.
fn float(v: f64) -> String {
    if v.is_nan() {
        "NaN".into()
    } else if v.is_infinite() {
        if v > 0.0 { "+Inf" } else { "-Inf" }.into()
    } else {
        format!("{v}")
    }
}

#[cfg(test)]
mod tests;
