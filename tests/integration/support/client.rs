//! [`Client`]: one blocking connection (plain or TLS, binary or JSON) with its own read buffer,
//! decoding with the crate's codec. [`Client::recv`] waits at most [`DEADLINE`];
//! [`Client::recv_until`] skips unrelated frames; [`Client::sync`] is a PING/PONG barrier that
//! returns everything the server sent before the PONG, which lets tests count deliveries exactly
//! without sleeping.

use super::frames::{summary, CLIENT_LIMITS};
use super::net::{is_closed, is_timeout, raw_connect, reset, tcp_connect_from, READ_CHUNK};
use super::{
    client_connect, ClientMsg, ClientStream, ClientTrust, DecodeError, ErrorCode, Msg, ServerMsg, WireFormat, DEADLINE,
};
use bytes::BytesMut;
use std::io::{self, ErrorKind, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::path::Path;
use std::time::{Duration, Instant};

/// One blocking client connection.
pub struct Client {
    /// Plaintext stream: the TCP socket itself, or TLS over it.
    stream: Box<dyn ClientStream>,
    /// A handle on the same socket, for timeouts and shutdown (shared with `stream`).
    tcp: TcpStream,
    /// The wire format this client speaks (and decodes).
    pub format: WireFormat,
    /// Received bytes; `buf[pos..]` is not yet decoded. Invariant: `pos <= buf.len()`.
    buf: Vec<u8>,
    pos: usize,
    /// Set once the server closed the stream.
    eof: bool,
    /// The user name after [`Client::login`] (or set by the test, for failure messages).
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

impl Client {
    /// Connects in plaintext, speaking `format`.
    #[track_caller]
    pub fn connect(addr: SocketAddr, format: WireFormat) -> Client {
        Client::from_tcp(raw_connect(addr), format)
    }

    /// Wraps an already connected socket.
    pub fn from_tcp(tcp: TcpStream, format: WireFormat) -> Client {
        let stream = Box::new(tcp.try_clone().expect("clone socket"));
        Client::new(stream, tcp, format)
    }

    /// Connects with TLS, trusting only the certificate in `ca`.
    #[track_caller]
    pub fn connect_tls(addr: SocketAddr, format: WireFormat, ca: &Path) -> Client {
        Client::try_connect_tls(addr, format, ca).unwrap_or_else(|e| panic!("TLS connect: {e}"))
    }

    /// Connects with TLS, trusting only the certificate in `ca`; the handshake error if any.
    pub fn try_connect_tls(addr: SocketAddr, format: WireFormat, ca: &Path) -> Result<Client, String> {
        let tcp = tcp_connect_from(None, addr).map_err(|e| e.to_string())?;
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

    /// Connects and logs in as `name`.
    #[track_caller]
    pub fn login_new(addr: SocketAddr, format: WireFormat, name: &str) -> Client {
        let mut c = Client::connect(addr, format);
        c.login(name);
        c
    }

    /// Logs in as `name` and checks the LOGIN_ACK (the name echoed, the room "general").
    #[track_caller]
    pub fn login(&mut self, name: &str) {
        self.name = name.to_string();
        self.send(&ClientMsg::Login { username: name.into(), credential: None, since: None });
        match self.recv_until(|m| matches!(m, ServerMsg::LoginAck { .. } | ServerMsg::LoginReject { .. })) {
            ServerMsg::LoginAck { username, room } => {
                assert_eq!(username, name, "LOGIN_ACK echoes the name");
                assert_eq!(room, "general", "everyone starts in general");
            }
            other => panic!("login as {name:?} failed: {other:?}"),
        }
    }

    /// Joins `room` and waits for the server's confirmation.
    #[track_caller]
    pub fn join(&mut self, room: &str) {
        self.send(&ClientMsg::JoinRoom { room: room.into(), since: None });
        self.recv_until(|m| matches!(m, ServerMsg::JoinRoom { room: r } if r == room));
    }

    /// Runs an admin command and returns the answer text (panics on an ERROR_MSG).
    #[track_caller]
    pub fn admin(&mut self, command: &str) -> String {
        self.send(&ClientMsg::Admin { command: command.into() });
        match self.recv_until(|m| matches!(m, ServerMsg::Admin { .. } | ServerMsg::ErrorMsg { .. })) {
            ServerMsg::Admin { text } => text.to_string(),
            other => panic!("admin {command:?}: {other:?}"),
        }
    }

    /// The socket's local address (distinguishes clients in failure messages).
    pub fn local_addr(&self) -> SocketAddr {
        self.tcp.local_addr().expect("local addr")
    }

    /// The socket handle (for timeouts and clones).
    pub fn tcp(&self) -> &TcpStream {
        &self.tcp
    }

    /// A second handle on a plaintext client's socket, for writing from another thread.
    pub fn writer_clone(&self) -> TcpStream {
        self.tcp.try_clone().expect("clone socket")
    }

    /// Encodes `msg` in this client's format without sending it.
    pub fn encode(&self, msg: &ClientMsg<'_>) -> Vec<u8> {
        let mut out = BytesMut::new();
        self.format.encode_client(msg, &mut out);
        out.to_vec()
    }

    /// Encodes and sends one message; the error if the server already closed.
    pub fn try_send(&mut self, msg: &ClientMsg<'_>) -> io::Result<()> {
        let bytes = self.encode(msg);
        self.try_send_raw(&bytes)?;
        self.frames_sent += 1;
        Ok(())
    }

    /// Encodes and sends one message.
    #[track_caller]
    pub fn send(&mut self, msg: &ClientMsg<'_>) {
        if let Err(e) = self.try_send(msg) {
            panic!("{} ({}): send: {e}", self.name, self.local_addr());
        }
    }

    /// Sends a room message.
    #[track_caller]
    pub fn say(&mut self, text: &str) {
        self.send(&ClientMsg::RoomMsg { text: text.into() });
    }

    /// Sends raw bytes in one write.
    #[track_caller]
    pub fn send_raw(&mut self, bytes: &[u8]) {
        if let Err(e) = self.try_send_raw(bytes) {
            panic!("{} ({}): send: {e}", self.name, self.local_addr());
        }
    }

    /// Sends raw bytes, reporting the error (a server that already closed may reset us).
    pub fn try_send_raw(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.stream.write_all(bytes)?;
        self.stream.flush()?;
        self.bytes_sent += bytes.len() as u64;
        Ok(())
    }

    /// Sends raw bytes one byte per write (TCP_NODELAY is on, so mostly one segment each).
    #[track_caller]
    pub fn send_bytewise(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.send_raw(std::slice::from_ref(b));
        }
    }

    /// Sends an HTTP request `head` and reads the response head (bounded by [`DEADLINE`]);
    /// after a `101 Switching Protocols` the client speaks JSON over WebSocket. Returns the
    /// response head; bytes after it stay buffered as frames.
    pub fn upgrade(&mut self, head: &[u8]) -> io::Result<String> {
        self.try_send_raw(head)?;
        let deadline = Instant::now() + DEADLINE;
        let end = loop {
            if let Some(i) = self.buf[self.pos..].windows(4).position(|w| w == b"\r\n\r\n") {
                break self.pos + i + 4;
            }
            if !self.fill(deadline)? {
                return Err(io::Error::new(ErrorKind::UnexpectedEof, "closed before the response head ended"));
            }
        };
        let response = String::from_utf8_lossy(&self.buf[self.pos..end]).into_owned();
        self.pos = end;
        if response.starts_with("HTTP/1.1 101 ") {
            self.format = WireFormat::WebSocket;
        }
        Ok(response)
    }

    /// Decodes one frame from the buffer, if a whole one is there. Over WebSocket, frames that
    /// are not text messages (the server's close frame) are skipped.
    fn decode(&mut self) -> io::Result<Option<Msg>> {
        loop {
            let r = self.format.decode_server(&self.buf[self.pos..], &CLIENT_LIMITS);
            match r.map(|o| o.map(|(m, used)| (m.into_owned(), used))) {
                Err(e) if self.format == WireFormat::WebSocket && !e.is_fatal() => {
                    self.pos += e.skip.unwrap_or(0);
                }
                other => return self.decoded(other),
            }
        }
    }

    /// Takes a decoded frame off the buffer.
    fn decoded(&mut self, r: Result<Option<(Msg, usize)>, DecodeError>) -> io::Result<Option<Msg>> {
        match r {
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
            Err(e) => Err(io::Error::new(ErrorKind::InvalidData, format!("undecodable frame from the server: {e}"))),
        }
    }

    /// Reads once, waiting until `deadline` at most. `Ok(false)` on EOF or reset, a `TimedOut`
    /// error when nothing came in time.
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
        let mut skipped = Vec::new();
        loop {
            match self.recv_by(deadline) {
                Ok(m) if pred(&m) => return m,
                Ok(m) => skipped.push(m),
                Err(e) => {
                    panic!("{} ({}): recv_until: {e}; skipped {}", self.name, self.local_addr(), summary(&skipped))
                }
            }
        }
    }

    /// The next ERROR_MSG's code, skipping presence notices and other traffic.
    #[track_caller]
    pub fn recv_error(&mut self) -> ErrorCode {
        self.recv_error_msg().0
    }

    /// The next ERROR_MSG's code and text, skipping other traffic (a LOGIN_REJECT fails).
    #[track_caller]
    fn recv_error_msg(&mut self) -> (ErrorCode, String) {
        match self.recv_until(|m| matches!(m, ServerMsg::ErrorMsg { .. } | ServerMsg::LoginReject { .. })) {
            ServerMsg::ErrorMsg { code, text } => (code, text.to_string()),
            other => panic!("{}: expected ERROR_MSG, got {other:?}", self.name),
        }
    }

    /// The next ERROR_MSG (skipping other traffic); asserts its code.
    #[track_caller]
    pub fn expect_error(&mut self, code: ErrorCode) {
        let (got, text) = self.recv_error_msg();
        assert_eq!(got, code, "{}: expected ERROR_MSG {code:?}, got {got:?} ({text})", self.name);
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
                Err(e) => {
                    panic!("{} ({}): expect_closed: {e} after {}", self.name, self.local_addr(), summary(&frames))
                }
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

    /// Closes our side abruptly in both directions (the server sees EOF).
    pub fn shutdown(&self) {
        let _ = self.tcp.shutdown(Shutdown::Both);
    }

    /// Half-closes: no more bytes from us, reading still works.
    pub fn shutdown_write(&self) {
        let _ = self.tcp.shutdown(Shutdown::Write);
    }

    /// Closes both directions and drops the connection.
    pub fn close(self) {
        self.shutdown();
    }

    /// Drops the connection with RST (SO_LINGER 0).
    pub fn reset(self) {
        let Client { stream, tcp, .. } = self;
        drop(stream);
        reset(tcp);
    }
}
