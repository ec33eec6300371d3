//! A small blocking test client and helpers: every wait is bounded, so a broken server makes a
//! test fail with a message instead of hanging.
//!
//! - [`Client`]: one connection (plain or TLS, binary or JSON) with its own read buffer, decoding
//!   with the crate's codec. [`Client::recv`] waits at most [`DEADLINE`]; [`Client::recv_until`]
//!   skips unrelated frames; [`Client::sync`] is a PING/PONG barrier that returns everything the
//!   server sent before the PONG, which lets tests count deliveries exactly without sleeping.
//! - [`raw`]: builders for hand-made binary frames (bad magic, bad flags, ...).
//! - [`TempDir`]: a unique directory under the system temp dir, removed on drop.

use bytes::BytesMut;
use chatproto::net::tls::{client_connect, ClientStream, ClientTrust};
use chatproto::protocol::{ClientMsg, ErrorCode, Limits, ServerMsg, SystemKind, WireFormat};
use chatproto::server::{spawn, RunningServer};
use chatproto::ServerConfig;
use std::io::{self, ErrorKind, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// The longest any single wait may take before the test fails.
pub const DEADLINE: Duration = Duration::from_secs(5);

/// Limits for decoding what the server sends: generous, a LIST_USERS of a big room is large.
const CLIENT_LIMITS: Limits = Limits { max_frame: 16 * 1024 * 1024, max_text: 64 * 1024 };

/// Bytes asked of the socket per read.
const READ_CHUNK: usize = 64 * 1024;

/// A server-to-client message that owns its strings.
pub type Msg = ServerMsg<'static>;

/// Spawns a plaintext loopback server on an OS-chosen port.
pub fn server() -> RunningServer {
    server_with(ServerConfig::loopback())
}

/// Spawns a server with `cfg`.
pub fn server_with(cfg: ServerConfig) -> RunningServer {
    spawn(cfg).expect("spawn server")
}

/// A plaintext loopback config without the message rate limit (for floods and big batches).
pub fn unlimited_config() -> ServerConfig {
    let mut cfg = ServerConfig::loopback();
    cfg.rate_limit.rate = 0.0;
    cfg
}

/// A loopback config with TLS on, generating a self-signed certificate into `dir`.
pub fn tls_config(dir: &TempDir) -> ServerConfig {
    let mut cfg = ServerConfig::loopback();
    cfg.tls.enabled = true;
    cfg.tls.cert = dir.path().join("server.crt");
    cfg.tls.key = dir.path().join("server.key");
    cfg
}

/// One blocking client connection.
pub struct Client {
    /// Plaintext stream: the TCP socket itself, or TLS over it.
    stream: Box<dyn ClientStream>,
    /// A handle on the same socket, for timeouts and shutdown (shared with `stream`).
    tcp: TcpStream,
    /// The wire format this client speaks.
    pub format: WireFormat,
    /// Received bytes; `buf[pos..]` is not yet decoded. Invariant: `pos <= buf.len()`.
    buf: Vec<u8>,
    pos: usize,
    /// Set once the server closed the stream.
    eof: bool,
    /// The user name after [`Client::login`].
    pub name: String,
    /// Next PING token for [`Client::sync`].
    next_token: u64,
    /// Bytes written to the stream (plaintext, i.e. what a plain server reads).
    pub bytes_sent: u64,
    /// Bytes read from the stream (plaintext).
    pub bytes_received: u64,
    /// Frames decoded so far.
    pub frames_received: u64,
    /// Well-formed frames sent with [`Client::send`] (raw bytes are not counted).
    pub frames_sent: u64,
}

fn tcp_connect(addr: SocketAddr) -> io::Result<TcpStream> {
    let tcp = TcpStream::connect_timeout(&addr, DEADLINE)?;
    tcp.set_nodelay(true)?;
    tcp.set_read_timeout(Some(DEADLINE))?;
    tcp.set_write_timeout(Some(DEADLINE))?;
    Ok(tcp)
}

/// True for errors that mean the peer closed or reset the connection.
pub fn is_closed(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        ErrorKind::UnexpectedEof | ErrorKind::ConnectionReset | ErrorKind::ConnectionAborted | ErrorKind::BrokenPipe
    )
}

fn is_timeout(e: &io::Error) -> bool {
    matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut)
}

impl Client {
    /// Connects in plaintext, speaking `format`.
    pub fn connect(addr: SocketAddr, format: WireFormat) -> Client {
        let tcp = tcp_connect(addr).expect("connect");
        let stream = Box::new(tcp.try_clone().expect("clone socket"));
        Client::new(stream, tcp, format)
    }

    /// Connects with TLS, trusting only the certificate in `ca`.
    pub fn connect_tls(addr: SocketAddr, format: WireFormat, ca: &Path) -> Client {
        Client::try_connect_tls(addr, format, ca).expect("TLS connect")
    }

    /// Connects with TLS, trusting only the certificate in `ca`; the handshake error if any.
    pub fn try_connect_tls(addr: SocketAddr, format: WireFormat, ca: &Path) -> Result<Client, String> {
        let tcp = tcp_connect(addr).map_err(|e| e.to_string())?;
        let handle = tcp.try_clone().map_err(|e| e.to_string())?;
        let stream =
            client_connect(tcp, "localhost", &ClientTrust::CaFile(ca.to_path_buf())).map_err(|e| e.to_string())?;
        Ok(Client::new(stream, handle, format))
    }

    fn new(stream: Box<dyn ClientStream>, tcp: TcpStream, format: WireFormat) -> Client {
        Client {
            stream,
            tcp,
            format,
            buf: Vec::new(),
            pos: 0,
            eof: false,
            name: String::new(),
            next_token: 1,
            bytes_sent: 0,
            bytes_received: 0,
            frames_received: 0,
            frames_sent: 0,
        }
    }

    /// Connects and logs in as `name`, skipping nothing: the first reply must be LOGIN_ACK.
    pub fn login_new(addr: SocketAddr, format: WireFormat, name: &str) -> Client {
        let mut c = Client::connect(addr, format);
        c.login(name);
        c
    }

    /// Logs in as `name` and checks the LOGIN_ACK.
    pub fn login(&mut self, name: &str) {
        self.send(&ClientMsg::Login { username: name.into(), credential: None });
        match self.recv_until(|m| matches!(m, ServerMsg::LoginAck { .. } | ServerMsg::LoginReject { .. })) {
            ServerMsg::LoginAck { username, room } => {
                assert_eq!(username, name, "LOGIN_ACK echoes the name");
                assert_eq!(room, "general", "everyone starts in general");
            }
            other => panic!("login as {name:?} failed: {other:?}"),
        }
        self.name = name.to_string();
    }

    /// The socket's local address (distinguishes clients in failure messages).
    pub fn local_addr(&self) -> SocketAddr {
        self.tcp.local_addr().expect("local addr")
    }

    /// Encodes and sends one message in this client's format.
    pub fn send(&mut self, msg: &ClientMsg<'_>) {
        let mut out = BytesMut::new();
        self.format.encode_client(msg, &mut out);
        self.send_raw(&out);
        self.frames_sent += 1;
    }

    /// Sends a room message.
    pub fn say(&mut self, text: &str) {
        self.send(&ClientMsg::RoomMsg { text: text.into() });
    }

    /// Encodes `msg` without sending it.
    pub fn encode(&self, msg: &ClientMsg<'_>) -> Vec<u8> {
        let mut out = BytesMut::new();
        self.format.encode_client(msg, &mut out);
        out.to_vec()
    }

    /// Sends raw bytes in one write.
    pub fn send_raw(&mut self, bytes: &[u8]) {
        self.try_send_raw(bytes).expect("send");
    }

    /// Sends raw bytes, reporting the error (a server that already closed may reset us).
    pub fn try_send_raw(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.stream.write_all(bytes)?;
        self.stream.flush()?;
        self.bytes_sent += bytes.len() as u64;
        Ok(())
    }

    /// Sends raw bytes one byte per write (TCP_NODELAY is on, so mostly one segment each).
    pub fn send_bytewise(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.send_raw(std::slice::from_ref(b));
        }
    }

    /// Decodes one frame from the buffer, if a whole one is there.
    fn decode(&mut self) -> io::Result<Option<Msg>> {
        let data = &self.buf[self.pos..];
        match self.format.decode_server(data, &CLIENT_LIMITS) {
            Ok(Some((msg, used))) => {
                let msg = msg.into_owned();
                self.pos += used;
                self.frames_received += 1;
                if self.pos > READ_CHUNK && self.pos * 2 > self.buf.len() {
                    self.buf.drain(..self.pos);
                    self.pos = 0;
                }
                Ok(Some(msg))
            }
            Ok(None) => Ok(None),
            Err(e) => Err(io::Error::new(ErrorKind::InvalidData, format!("undecodable frame from server: {e}"))),
        }
    }

    /// Reads once (waiting until `deadline` at most). `Ok(false)` on EOF.
    fn fill(&mut self, deadline: Instant) -> io::Result<bool> {
        if self.eof {
            return Ok(false);
        }
        let mut chunk = [0u8; READ_CHUNK];
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(io::Error::new(ErrorKind::TimedOut, "no frame from the server in time"));
            }
            self.tcp.set_read_timeout(Some(left))?;
            match self.stream.read(&mut chunk) {
                Ok(0) => {
                    self.eof = true;
                    return Ok(false);
                }
                Ok(n) => {
                    self.bytes_received += n as u64;
                    self.buf.extend_from_slice(&chunk[..n]);
                    return Ok(true);
                }
                Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                Err(e) if is_timeout(&e) => continue,
                Err(e) if is_closed(&e) => {
                    self.eof = true;
                    return Ok(false);
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// Next frame before `deadline`. Errors: `TimedOut`, `UnexpectedEof` (closed), `InvalidData`.
    pub fn recv_by(&mut self, deadline: Instant) -> io::Result<Msg> {
        loop {
            if let Some(m) = self.decode()? {
                return Ok(m);
            }
            if !self.fill(deadline)? {
                return Err(io::Error::new(ErrorKind::UnexpectedEof, "the server closed the connection"));
            }
        }
    }

    /// Next frame within [`DEADLINE`].
    pub fn try_recv(&mut self) -> io::Result<Msg> {
        self.recv_by(Instant::now() + DEADLINE)
    }

    /// Next frame within [`DEADLINE`]; panics on timeout or close.
    #[track_caller]
    pub fn recv(&mut self) -> Msg {
        match self.try_recv() {
            Ok(m) => m,
            Err(e) => panic!("{} ({}): recv: {e}", self.name, self.local_addr()),
        }
    }

    /// The first frame matching `pred` within [`DEADLINE`], skipping (dropping) the others.
    #[track_caller]
    pub fn recv_until(&mut self, mut pred: impl FnMut(&Msg) -> bool) -> Msg {
        let deadline = Instant::now() + DEADLINE;
        let mut skipped = 0usize;
        loop {
            match self.recv_by(deadline) {
                Ok(m) if pred(&m) => return m,
                Ok(_) => skipped += 1,
                Err(e) => panic!("{} ({}): recv_until: {e} (skipped {skipped} frames)", self.name, self.local_addr()),
            }
        }
    }

    /// The next ERROR_MSG's code, skipping presence notices and other traffic.
    #[track_caller]
    pub fn recv_error(&mut self) -> ErrorCode {
        match self.recv_until(|m| matches!(m, ServerMsg::ErrorMsg { .. } | ServerMsg::LoginReject { .. })) {
            ServerMsg::ErrorMsg { code, .. } => code,
            other => panic!("expected ERROR_MSG, got {other:?}"),
        }
    }

    /// A PING/PONG barrier: returns every frame the server sent before answering the PING.
    /// Since the server handles one connection's frames in order and queues replies in order,
    /// anything caused by earlier actions (that the server had processed) is in the result.
    #[track_caller]
    pub fn sync(&mut self) -> Vec<Msg> {
        let token = 0x5EED_0000 + self.next_token;
        self.next_token += 1;
        self.send(&ClientMsg::Ping { token });
        let deadline = Instant::now() + DEADLINE;
        let mut seen = Vec::new();
        loop {
            match self.recv_by(deadline) {
                Ok(ServerMsg::Pong { token: t }) if t == token => return seen,
                Ok(m) => seen.push(m),
                Err(e) => panic!("{} ({}): sync: {e} after {}", self.name, self.local_addr(), summary(&seen)),
            }
        }
    }

    /// Reads until the server closes the connection (EOF or reset) within [`DEADLINE`], and
    /// returns the frames received first. Panics if the connection stays open.
    #[track_caller]
    pub fn expect_closed(&mut self) -> Vec<Msg> {
        let deadline = Instant::now() + DEADLINE;
        let mut frames = Vec::new();
        loop {
            match self.decode() {
                Ok(Some(m)) => {
                    frames.push(m);
                    continue;
                }
                Ok(None) => {}
                Err(e) => panic!("{}: expect_closed: {e} after {}", self.local_addr(), summary(&frames)),
            }
            match self.fill(deadline) {
                Ok(true) => {}
                Ok(false) => return frames,
                Err(e) => {
                    panic!("{}: expected the server to close: {e}; got {}", self.local_addr(), summary(&frames))
                }
            }
        }
    }

    /// Closes our side abruptly (the server sees EOF).
    pub fn shutdown(&self) {
        let _ = self.tcp.shutdown(Shutdown::Both);
    }

    /// A second handle on a plaintext client's socket, for writing from another thread.
    pub fn writer_clone(&self) -> TcpStream {
        self.tcp.try_clone().expect("clone socket")
    }
}

/// A short description of `frames` for failure messages: the count, the first and last few,
/// each cut to a readable length.
pub fn summary(frames: &[Msg]) -> String {
    let show = |m: &Msg| {
        let s = format!("{m:?}");
        match s.char_indices().nth(160) {
            Some((i, _)) => format!("{}…", &s[..i]),
            None => s,
        }
    };
    let n = frames.len();
    let mut parts: Vec<String> = frames.iter().take(3).map(show).collect();
    if n > 6 {
        parts.push(format!("… {} more …", n - 6));
    }
    parts.extend(frames.iter().skip(3.max(n.saturating_sub(3))).map(show));
    format!("{n} frames [{}]", parts.join(", "))
}

/// The text of a ROOM_MSG, for matching.
pub fn is_room_msg(m: &Msg, text: &str) -> bool {
    matches!(m, ServerMsg::RoomMsg { text: t, .. } if t == text)
}

/// True for a presence notice of `kind` about `user`.
pub fn is_notice(m: &Msg, kind: SystemKind, user: &str) -> bool {
    matches!(m, ServerMsg::SystemMsg { kind: k, user: u, .. } if *k == kind && u == user)
}

/// Only the room messages of `frames`, as (from, text).
pub fn room_msgs(frames: &[Msg]) -> Vec<(String, String)> {
    frames
        .iter()
        .filter_map(|m| match m {
            ServerMsg::RoomMsg { from, text, .. } => Some((from.to_string(), text.to_string())),
            _ => None,
        })
        .collect()
}

/// Waits (bounded) until `cond` holds for the server's stats; panics with the last snapshot.
#[track_caller]
pub fn wait_for_stats(
    server: &RunningServer,
    what: &str,
    mut cond: impl FnMut(&chatproto::stats::StatsSnapshot) -> bool,
) -> chatproto::stats::StatsSnapshot {
    let deadline = Instant::now() + DEADLINE;
    loop {
        let s = server.handle.stats();
        if cond(&s) {
            return s;
        }
        if Instant::now() >= deadline {
            panic!("stats never showed {what}: {s:?}");
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Hand-made binary frames, for inputs the encoder would never produce.
pub mod raw {
    /// A binary frame with an explicit header.
    pub fn frame_with(magic: u16, version: u8, msg_type: u8, flags: u8, body: &[u8]) -> Vec<u8> {
        let mut f = Vec::with_capacity(9 + body.len());
        f.extend_from_slice(&magic.to_be_bytes());
        f.push(version);
        f.push(msg_type);
        f.push(flags);
        f.extend_from_slice(&(body.len() as u32).to_be_bytes());
        f.extend_from_slice(body);
        f
    }

    /// A well-formed header around `body`.
    pub fn frame(msg_type: u8, flags: u8, body: &[u8]) -> Vec<u8> {
        frame_with(0x4350, 1, msg_type, flags, body)
    }

    /// A u16-length-prefixed field with the given raw bytes.
    pub fn text16(bytes: &[u8]) -> Vec<u8> {
        let mut v = (bytes.len() as u16).to_be_bytes().to_vec();
        v.extend_from_slice(bytes);
        v
    }

    /// A u8-length-prefixed field.
    pub fn name8(bytes: &[u8]) -> Vec<u8> {
        let mut v = vec![bytes.len() as u8];
        v.extend_from_slice(bytes);
        v
    }
}

/// A fresh directory under the system temp dir, removed (with its contents) on drop.
pub struct TempDir(PathBuf);

impl TempDir {
    /// Creates `chatproto-it-<pid>-<n>-<tag>`.
    pub fn new(tag: &str) -> TempDir {
        static N: AtomicU64 = AtomicU64::new(0);
        let n = N.fetch_add(1, Ordering::Relaxed);
        let dir = std::env::temp_dir().join(format!("chatproto-it-{}-{n}-{tag}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("create temp dir");
        TempDir(dir)
    }

    /// The directory.
    pub fn path(&self) -> &Path {
        &self.0
    }

    /// The server certificate path used by [`tls_config`].
    pub fn cert(&self) -> PathBuf {
        self.0.join("server.crt")
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Reads raw bytes from `tcp` until the peer closes (EOF or reset) within [`DEADLINE`].
/// Returns what arrived first, or an error if the connection stayed open.
pub fn read_until_closed(tcp: &mut TcpStream) -> io::Result<Vec<u8>> {
    let deadline = Instant::now() + DEADLINE;
    let mut got = Vec::new();
    let mut chunk = [0u8; READ_CHUNK];
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(io::Error::new(ErrorKind::TimedOut, format!("still open after {} bytes", got.len())));
        }
        tcp.set_read_timeout(Some(left))?;
        match tcp.read(&mut chunk) {
            Ok(0) => return Ok(got),
            Ok(n) => got.extend_from_slice(&chunk[..n]),
            Err(e) if e.kind() == ErrorKind::Interrupted || is_timeout(&e) => continue,
            Err(e) if is_closed(&e) => return Ok(got),
            Err(e) => return Err(e),
        }
    }
}

/// A raw TCP connection to `addr` (no protocol), with the usual timeouts.
pub fn raw_connect(addr: SocketAddr) -> TcpStream {
    tcp_connect(addr).expect("connect")
}

/// `n` pseudo-random bytes (xorshift, seeded from the clock: no extra crates needed).
pub fn random_bytes(n: usize) -> Vec<u8> {
    let mut x =
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(1, |d| d.as_nanos() as u64) | 1;
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect()
}
