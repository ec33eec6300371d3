//! The fault suite's test client and helpers. Every wait is bounded: a broken server fails a test
//! with a message, it never hangs it.
//!
//! - [`Conn`]: one blocking connection (plain or TLS, binary or JSON) with its own read buffer,
//!   decoding with the crate's codec.
//! - [`raw`]: hand-made binary frames for inputs the encoder never produces.
//! - fd limits, stats polling, raw sockets bound to a chosen loopback address, pseudo-random bytes.
//!
//! Adapted from `tests/integration/support.rs` (copied, not shared: the suites evolve apart).

#![allow(dead_code)] // Each test module uses a different subset.

use bytes::BytesMut;
use chatproto::net::tls::{client_connect, ClientStream, ClientTrust};
use chatproto::protocol::{ClientMsg, ErrorCode, Limits, ServerMsg, SystemKind, WireFormat};
use chatproto::server::RunningServer;
use chatproto::stats::StatsSnapshot;
use socket2::{Domain, SockRef, Socket, Type};
use std::io::{self, ErrorKind, Read, Write};
use std::net::{IpAddr, Shutdown, SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// The longest a single wait may take before the test fails.
pub const DEADLINE: Duration = Duration::from_secs(10);

/// Limits for decoding what the server sends.
const CLIENT_LIMITS: Limits = Limits { max_frame: 16 * 1024 * 1024, max_text: 1024 * 1024 };

/// Bytes asked of the socket per read.
const READ_CHUNK: usize = 64 * 1024;

/// A server-to-client message that owns its strings.
pub type Msg = ServerMsg<'static>;

/// True for errors that mean the peer closed or reset the connection.
pub fn is_closed(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        ErrorKind::UnexpectedEof | ErrorKind::ConnectionReset | ErrorKind::ConnectionAborted | ErrorKind::BrokenPipe
    )
}

/// True for a read timeout.
pub fn is_timeout(e: &io::Error) -> bool {
    matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut)
}

/// A TCP connection to `addr` with the usual options, from `from` when given (any 127.x.y.z
/// address works on Linux loopback, which lets a test be several "hosts").
pub fn tcp_connect_from(from: Option<IpAddr>, addr: SocketAddr) -> io::Result<TcpStream> {
    let sock = Socket::new(Domain::for_address(addr), Type::STREAM, None)?;
    if let Some(ip) = from {
        sock.bind(&SocketAddr::new(ip, 0).into())?;
    }
    sock.connect_timeout(&addr.into(), DEADLINE)?;
    let tcp: TcpStream = sock.into();
    tcp.set_nodelay(true)?;
    tcp.set_read_timeout(Some(DEADLINE))?;
    tcp.set_write_timeout(Some(DEADLINE))?;
    Ok(tcp)
}

/// A raw TCP connection to `addr` (no protocol spoken yet).
pub fn raw_connect(addr: SocketAddr) -> TcpStream {
    tcp_connect_from(None, addr).expect("connect")
}

/// A raw connection whose receive buffer is set small before connecting (so the window stays
/// small and a non-reader fills up quickly).
pub fn raw_connect_small_rcvbuf(addr: SocketAddr, bytes: usize) -> TcpStream {
    let sock = Socket::new(Domain::for_address(addr), Type::STREAM, None).expect("socket");
    sock.set_recv_buffer_size(bytes).expect("SO_RCVBUF");
    sock.connect_timeout(&addr.into(), DEADLINE).expect("connect");
    let tcp: TcpStream = sock.into();
    tcp.set_nodelay(true).expect("nodelay");
    tcp.set_read_timeout(Some(DEADLINE)).expect("timeout");
    tcp.set_write_timeout(Some(DEADLINE)).expect("timeout");
    tcp
}

/// Closes `tcp` with SO_LINGER 0, so the kernel sends RST instead of FIN.
pub fn reset(tcp: TcpStream) {
    let _ = SockRef::from(&tcp).set_linger(Some(Duration::ZERO));
    drop(tcp);
}

/// Reads raw bytes until the peer closes (EOF or reset) within [`DEADLINE`]; returns what
/// arrived first, or an error if the connection stayed open.
pub fn read_until_closed(tcp: &mut TcpStream) -> io::Result<Vec<u8>> {
    let deadline = Instant::now() + DEADLINE;
    let mut got = Vec::new();
    let mut chunk = vec![0u8; READ_CHUNK];
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

/// Decodes every whole server frame in `bytes`, in `format`.
pub fn decode_all(format: WireFormat, bytes: &[u8]) -> Vec<Msg> {
    let mut out = Vec::new();
    let mut off = 0;
    while let Ok(Some((m, used))) = format.decode_server(&bytes[off..], &CLIENT_LIMITS) {
        out.push(m.into_owned());
        off += used;
    }
    out
}

/// One blocking client connection.
pub struct Conn {
    /// Plaintext stream: the TCP socket itself, or TLS over it.
    stream: Box<dyn ClientStream>,
    /// A handle on the same socket, for timeouts and shutdown.
    tcp: TcpStream,
    /// The wire format this client speaks (and decodes).
    pub format: WireFormat,
    /// Received bytes; `buf[pos..]` is not yet decoded. Invariant: `pos <= buf.len()`.
    buf: Vec<u8>,
    pos: usize,
    /// Set once the server closed the stream.
    eof: bool,
    /// The user name after [`Conn::login`].
    pub name: String,
    /// Next PING token for [`Conn::sync`].
    next_token: u64,
}

impl Conn {
    /// Connects in plaintext, speaking `format`.
    pub fn connect(addr: SocketAddr, format: WireFormat) -> Conn {
        Conn::from_tcp(raw_connect(addr), format)
    }

    /// Connects in plaintext from the loopback address `from`.
    pub fn connect_from(from: IpAddr, addr: SocketAddr, format: WireFormat) -> Conn {
        Conn::from_tcp(tcp_connect_from(Some(from), addr).expect("connect"), format)
    }

    /// Wraps an already connected socket.
    pub fn from_tcp(tcp: TcpStream, format: WireFormat) -> Conn {
        let stream = Box::new(tcp.try_clone().expect("clone socket"));
        Conn::new(stream, tcp, format)
    }

    /// Connects with TLS, trusting only the certificate in `ca`.
    pub fn connect_tls(addr: SocketAddr, format: WireFormat, ca: &Path) -> Conn {
        let tcp = raw_connect(addr);
        let handle = tcp.try_clone().expect("clone socket");
        let stream = client_connect(tcp, "localhost", &ClientTrust::CaFile(ca.to_path_buf())).expect("TLS handshake");
        Conn::new(stream, handle, format)
    }

    fn new(stream: Box<dyn ClientStream>, tcp: TcpStream, format: WireFormat) -> Conn {
        Conn { stream, tcp, format, buf: Vec::new(), pos: 0, eof: false, name: String::new(), next_token: 1 }
    }

    /// Connects and logs in as `name`.
    pub fn login_new(addr: SocketAddr, format: WireFormat, name: &str) -> Conn {
        let mut c = Conn::connect(addr, format);
        c.login(name);
        c
    }

    /// Logs in as `name` and checks the LOGIN_ACK.
    #[track_caller]
    pub fn login(&mut self, name: &str) {
        self.name = name.to_string();
        self.send(&ClientMsg::Login { username: name.into(), credential: None });
        match self.recv_until(|m| matches!(m, ServerMsg::LoginAck { .. } | ServerMsg::LoginReject { .. })) {
            ServerMsg::LoginAck { username, .. } => assert_eq!(username, name, "LOGIN_ACK echoes the name"),
            other => panic!("login as {name:?} failed: {other:?}"),
        }
    }

    /// Joins `room` and waits for the server's confirmation.
    #[track_caller]
    pub fn join(&mut self, room: &str) {
        self.send(&ClientMsg::JoinRoom { room: room.into() });
        self.recv_until(|m| matches!(m, ServerMsg::JoinRoom { room: r } if r == room));
    }

    /// The socket handle (for timeouts, shutdown, clones).
    pub fn tcp(&self) -> &TcpStream {
        &self.tcp
    }

    /// Encodes and sends one message; the error if the server already closed.
    pub fn try_send(&mut self, msg: &ClientMsg<'_>) -> io::Result<()> {
        let mut out = BytesMut::new();
        self.format.encode_client(msg, &mut out);
        self.send_raw(&out)
    }

    /// Encodes and sends one message.
    #[track_caller]
    pub fn send(&mut self, msg: &ClientMsg<'_>) {
        if let Err(e) = self.try_send(msg) {
            panic!("{}: send: {e}", self.name);
        }
    }

    /// Sends a room message.
    #[track_caller]
    pub fn say(&mut self, text: &str) {
        self.send(&ClientMsg::RoomMsg { text: text.into() });
    }

    /// Encodes `msg` in this connection's format without sending it.
    pub fn encode(&self, msg: &ClientMsg<'_>) -> Vec<u8> {
        let mut out = BytesMut::new();
        self.format.encode_client(msg, &mut out);
        out.to_vec()
    }

    /// Sends raw bytes in one write.
    pub fn send_raw(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.stream.write_all(bytes)?;
        self.stream.flush()
    }

    /// Decodes one frame from the buffer, if a whole one is there.
    fn decode(&mut self) -> io::Result<Option<Msg>> {
        match self.format.decode_server(&self.buf[self.pos..], &CLIENT_LIMITS) {
            Ok(Some((msg, used))) => {
                let msg = msg.into_owned();
                self.pos += used;
                if self.pos > READ_CHUNK && self.pos * 2 > self.buf.len() {
                    self.buf.drain(..self.pos);
                    self.pos = 0;
                }
                Ok(Some(msg))
            }
            Ok(None) => Ok(None),
            Err(e) => Err(io::Error::new(ErrorKind::InvalidData, format!("undecodable frame from the server: {e}"))),
        }
    }

    /// Reads once, waiting until `deadline` at most. `Ok(false)` on EOF or reset, a `TimedOut`
    /// error when nothing came in time.
    fn fill(&mut self, deadline: Instant) -> io::Result<bool> {
        if self.eof {
            return Ok(false);
        }
        let mut chunk = [0u8; 16 * 1024];
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(io::Error::new(ErrorKind::TimedOut, "nothing from the server in time"));
            }
            self.tcp.set_read_timeout(Some(left))?;
            match self.stream.read(&mut chunk) {
                Ok(0) => {
                    self.eof = true;
                    return Ok(false);
                }
                Ok(n) => {
                    self.buf.extend_from_slice(&chunk[..n]);
                    return Ok(true);
                }
                Err(e) if e.kind() == ErrorKind::Interrupted || is_timeout(&e) => continue,
                Err(e) if is_closed(&e) => {
                    self.eof = true;
                    return Ok(false);
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// Every frame that arrives within `wait` (at least one read attempt). `Err(UnexpectedEof)`
    /// once the server has closed and everything before the close was returned.
    pub fn poll(&mut self, wait: Duration) -> io::Result<Vec<Msg>> {
        let mut out = Vec::new();
        while let Some(m) = self.decode()? {
            out.push(m);
        }
        if !out.is_empty() {
            return Ok(out);
        }
        match self.fill(Instant::now() + wait) {
            Ok(true) => {}
            Ok(false) => return Err(io::Error::new(ErrorKind::UnexpectedEof, "the server closed the connection")),
            Err(e) if e.kind() == ErrorKind::TimedOut => return Ok(out),
            Err(e) => return Err(e),
        }
        while let Some(m) = self.decode()? {
            out.push(m);
        }
        Ok(out)
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

    /// The first frame matching `pred` within [`DEADLINE`], dropping the others.
    #[track_caller]
    pub fn recv_until(&mut self, mut pred: impl FnMut(&Msg) -> bool) -> Msg {
        let deadline = Instant::now() + DEADLINE;
        let mut skipped = Vec::new();
        loop {
            match self.recv_by(deadline) {
                Ok(m) if pred(&m) => return m,
                Ok(m) => skipped.push(m),
                Err(e) => panic!("{}: recv_until: {e}; skipped {}", self.name, summary(&skipped)),
            }
        }
    }

    /// The next ERROR_MSG (skipping other traffic); asserts its code.
    #[track_caller]
    pub fn expect_error(&mut self, code: ErrorCode) {
        match self.recv_until(|m| matches!(m, ServerMsg::ErrorMsg { .. })) {
            ServerMsg::ErrorMsg { code: got, text } => {
                assert_eq!(got, code, "{}: expected ERROR_MSG {code:?}, got {got:?} ({text})", self.name)
            }
            _ => unreachable!(),
        }
    }

    /// A PING/PONG barrier: every frame the server sent before answering this PING. The server
    /// handles a connection's frames in order, so replies to anything sent before are included.
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
                Err(e) => panic!("{}: sync: {e} after {}", self.name, summary(&seen)),
            }
        }
    }

    /// Reads until the server closes (EOF or reset) within [`DEADLINE`]; returns the frames
    /// received first. Panics if the connection stays open.
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
                Err(e) => panic!("{}: expect_closed: {e} after {}", self.name, summary(&frames)),
            }
            match self.fill(deadline) {
                Ok(true) => {}
                Ok(false) => return frames,
                Err(e) => panic!("{}: expected the server to close: {e}; got {}", self.name, summary(&frames)),
            }
        }
    }

    /// Like [`expect_closed`](Self::expect_closed), and the last frame must be ERROR_MSG `code`.
    #[track_caller]
    pub fn expect_error_then_closed(&mut self, code: ErrorCode) {
        let frames = self.expect_closed();
        match frames.last() {
            Some(ServerMsg::ErrorMsg { code: got, .. }) if *got == code => {}
            _ => panic!("{}: expected ERROR_MSG {code:?} then close; got {}", self.name, summary(&frames)),
        }
    }

    /// Half-closes: no more bytes from us, reading still works.
    pub fn shutdown_write(&self) {
        let _ = self.tcp.shutdown(Shutdown::Write);
    }

    /// Closes both directions (the server sees EOF).
    pub fn close(self) {
        let _ = self.tcp.shutdown(Shutdown::Both);
    }

    /// Drops the connection with RST (SO_LINGER 0).
    pub fn reset(self) {
        let Conn { stream, tcp, .. } = self;
        drop(stream);
        reset(tcp);
    }
}

/// A short description of `frames` for failure messages.
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

/// True for a presence notice of `kind` about `user`.
pub fn is_notice(m: &Msg, kind: SystemKind, user: &str) -> bool {
    matches!(m, ServerMsg::SystemMsg { kind: k, user: u, .. } if *k == kind && u == user)
}

/// Waits (bounded) until `cond` holds for the server's counters; panics with the last snapshot.
#[track_caller]
pub fn wait_for_stats(
    server: &RunningServer,
    what: &str,
    mut cond: impl FnMut(&StatsSnapshot) -> bool,
) -> StatsSnapshot {
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

/// Raises this process's soft open-files limit to the hard limit (tests that open thousands of
/// sockets share the fd table with the in-process server). Returns the new soft limit.
pub fn raise_nofile_limit() -> libc::rlim_t {
    // SAFETY: getrlimit/setrlimit only read and write the struct we pass.
    unsafe {
        let mut lim = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) != 0 {
            return 0;
        }
        if lim.rlim_cur < lim.rlim_max {
            let want = libc::rlimit { rlim_cur: lim.rlim_max, rlim_max: lim.rlim_max };
            if libc::setrlimit(libc::RLIMIT_NOFILE, &want) == 0 {
                return want.rlim_cur;
            }
        }
        lim.rlim_cur
    }
}

/// Skips (returns false with a note) when fewer than `need` descriptors are available.
pub fn have_fds(need: libc::rlim_t) -> bool {
    let have = raise_nofile_limit();
    if have < need {
        eprintln!("skipped: needs {need} file descriptors, the hard limit is {have}");
        return false;
    }
    true
}

/// `n` pseudo-random bytes from `seed` (xorshift; reproducible, no extra crates).
pub fn random_bytes(seed: u64, n: usize) -> Vec<u8> {
    let mut x = seed | 1;
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect()
}

/// Hand-made binary frames, for inputs the encoder would never produce.
pub mod raw {
    /// A binary frame with an explicit header; `len` overrides the body length field.
    pub fn frame_with(magic: u16, version: u8, msg_type: u8, len: Option<u32>, body: &[u8]) -> Vec<u8> {
        let mut f = Vec::with_capacity(9 + body.len());
        f.extend_from_slice(&magic.to_be_bytes());
        f.push(version);
        f.push(msg_type);
        f.push(0);
        f.extend_from_slice(&len.unwrap_or(body.len() as u32).to_be_bytes());
        f.extend_from_slice(body);
        f
    }

    /// A well-formed header around `body`.
    pub fn frame(msg_type: u8, body: &[u8]) -> Vec<u8> {
        frame_with(0x4350, 1, msg_type, None, body)
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

    /// Type code of LOGIN.
    pub const LOGIN: u8 = 1;
    /// Type code of ROOM_MSG.
    pub const ROOM_MSG: u8 = 4;
}

/// A fresh directory under the system temp dir, removed (with its contents) on drop.
pub struct TempDir(PathBuf);

impl TempDir {
    /// Creates `chatproto-faults-<pid>-<n>-<tag>`.
    pub fn new(tag: &str) -> TempDir {
        static N: AtomicU64 = AtomicU64::new(0);
        let n = N.fetch_add(1, Ordering::Relaxed);
        let dir = std::env::temp_dir().join(format!("chatproto-faults-{}-{n}-{tag}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("create temp dir");
        TempDir(dir)
    }

    /// The directory.
    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}
