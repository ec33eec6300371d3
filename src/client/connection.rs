//! One blocking connection to a ChatProto server: [`ConnectOptions`] say where and how,
//! [`Client`] connects, logs in, sends and receives, decoding with the crate's codec so that
//! tests drive a real server with the real wire format.

use super::{ClientError, ClientTrust};
use crate::net::tls::{self, ClientStream};
use crate::protocol::validate::check_username;
use crate::protocol::{ClientMsg, Limits, ServerMsg, WireFormat};
use bytes::BytesMut;
use std::borrow::Cow;
use std::collections::VecDeque;
use std::io::{self, ErrorKind, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream, ToSocketAddrs};
use std::time::{Duration, Instant};

/// Largest frame the client accepts: generous, since LIST_USERS of a big room is large.
pub const CLIENT_MAX_FRAME: usize = 4 * 1024 * 1024;
/// Bytes asked of the socket per read.
const READ_CHUNK: usize = 16 * 1024;

/// Where and how to connect.
#[derive(Clone, Debug)]
pub struct ConnectOptions {
    /// Host name or IP address of the server.
    pub host: String,
    /// TCP port of the server.
    pub port: u16,
    /// Wire format to speak; the server detects it from the first byte.
    pub format: WireFormat,
    /// `Some` to wrap the connection in TLS, verifying the server as the trust says.
    pub tls: Option<ClientTrust>,
    /// Limit for the TCP connect, the TLS handshake, waiting for the login reply and each
    /// blocked write. DNS resolution is not covered (the system resolver has its own timeout).
    pub connect_timeout: Duration,
}

impl ConnectOptions {
    /// Plain binary ChatProto to `host:port`, with a 10 s timeout.
    pub fn new(host: impl Into<String>, port: u16) -> Self {
        ConnectOptions {
            host: host.into(),
            port,
            format: WireFormat::Binary,
            tls: None,
            connect_timeout: Duration::from_secs(10),
        }
    }

    /// `host:port`, with brackets around an IPv6 literal, as shown in messages.
    pub fn addr_string(&self) -> String {
        if self.host.contains(':') {
            format!("[{}]:{}", self.host, self.port)
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }

    /// How the connection is made, as shown on connecting: `binary, plaintext`,
    /// `json, TLS` or `binary, TLS, UNVERIFIED`.
    pub fn transport_name(&self) -> String {
        let tls = match &self.tls {
            None => "plaintext",
            Some(ClientTrust::Insecure) => "TLS, UNVERIFIED",
            Some(_) => "TLS",
        };
        format!("{}, {tls}", self.format.name())
    }
}

/// What LOGIN_ACK said: the name the server knows us by and the room we start in.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LoginInfo {
    /// The user name as the server registered it.
    pub username: String,
    /// The room the server put us in (normally `general`).
    pub room: String,
}

/// One connection to a ChatProto server. See the module docs for the call sequence.
pub struct Client {
    /// Plaintext side of the connection: the TCP stream itself, or the TLS stream over it.
    stream: Box<dyn ClientStream>,
    /// A second handle on the same socket, for timeouts and shutdown (TLS owns the first).
    tcp: TcpStream,
    /// Encoding spoken on this connection.
    format: WireFormat,
    /// Decoder limits: [`CLIENT_MAX_FRAME`] for frames and text.
    limits: Limits,
    /// Bytes read and not yet decoded are `rbuf[rpos..]`. Invariant: `rpos <= rbuf.len()`.
    rbuf: Vec<u8>,
    /// Start of the undecoded bytes in `rbuf`.
    rpos: usize,
    /// Scratch space for encoding one outgoing message.
    wbuf: BytesMut,
    /// Decoded messages not yet returned (e.g. frames that arrived before LOGIN_ACK).
    pending: VecDeque<ServerMsg<'static>>,
    /// Answer PING with PONG inside `recv` and hide the PING (default true).
    auto_pong: bool,
    /// The read timeout currently set on the socket, to skip redundant system calls.
    read_timeout: Option<Duration>,
    /// `host:port`, for error messages.
    addr: String,
    /// Limit for login replies, from [`ConnectOptions::connect_timeout`].
    io_timeout: Duration,
    /// Frames skipped because this client could not decode them (e.g. a newer server's types).
    skipped: u64,
}

impl Client {
    /// Resolves, connects (trying every address), sets TCP_NODELAY and, if asked, completes the
    /// TLS handshake. Errors tell DNS, refusal, timeout, TLS and other failures apart.
    pub fn connect(opts: &ConnectOptions) -> Result<Client, ClientError> {
        let addr = opts.addr_string();
        let addrs: Vec<SocketAddr> = (opts.host.as_str(), opts.port)
            .to_socket_addrs()
            .map_err(|source| ClientError::Dns { host: opts.host.clone(), source })?
            .collect();
        let tcp = connect_any(&addrs, opts, &addr)?;
        let setup = |e| ClientError::Connect { addr: addr.clone(), source: e };
        tcp.set_nodelay(true).map_err(setup)?;
        tcp.set_write_timeout(Some(opts.connect_timeout)).map_err(setup)?;
        let stream: Box<dyn ClientStream> = match &opts.tls {
            None => Box::new(tcp.try_clone().map_err(setup)?),
            Some(trust) => {
                // The handshake reads too: bound it by the connect timeout.
                tcp.set_read_timeout(Some(opts.connect_timeout)).map_err(setup)?;
                let raw = tcp.try_clone().map_err(setup)?;
                tls::client_connect(raw, &opts.host, trust)
                    .map_err(|source| ClientError::Tls { host: opts.host.clone(), source })?
            }
        };
        let read_timeout = opts.tls.as_ref().map(|_| opts.connect_timeout);
        Ok(Client {
            stream,
            tcp,
            format: opts.format,
            limits: Limits { max_frame: CLIENT_MAX_FRAME, max_text: CLIENT_MAX_FRAME },
            rbuf: Vec::with_capacity(READ_CHUNK),
            rpos: 0,
            wbuf: BytesMut::with_capacity(1024),
            pending: VecDeque::new(),
            auto_pong: true,
            read_timeout,
            addr,
            io_timeout: opts.connect_timeout,
            skipped: 0,
        })
    }

    /// Sends LOGIN and waits (up to the connect timeout) for LOGIN_ACK or LOGIN_REJECT. Other
    /// frames that arrive first are kept, in order, for later `recv` calls. After a rejection
    /// the connection stays usable for another attempt.
    pub fn login(&mut self, username: &str, credential: Option<&str>) -> Result<LoginInfo, ClientError> {
        self.login_since(username, credential, None)
    }

    /// [`login`](Self::login) resuming the room the session lands in after message id `since`:
    /// the server replays only newer messages, then REPLAY_END (see docs/PROTOCOL.md, resume).
    pub fn login_since(
        &mut self,
        username: &str,
        credential: Option<&str>,
        since: Option<u64>,
    ) -> Result<LoginInfo, ClientError> {
        check_username(username).map_err(|reason| ClientError::InvalidUsername { name: username.into(), reason })?;
        self.await_login(&ClientMsg::Login {
            username: Cow::Borrowed(username),
            credential: credential.map(Cow::Borrowed),
            since,
        })
    }

    /// Sends REGISTER (create an account on an `--auth accounts` server, and log in with it) and
    /// waits for LOGIN_ACK or LOGIN_REJECT, like [`Client::login`].
    pub fn register(&mut self, username: &str, password: &str) -> Result<LoginInfo, ClientError> {
        check_username(username).map_err(|reason| ClientError::InvalidUsername { name: username.into(), reason })?;
        self.await_login(&ClientMsg::Register { username: Cow::Borrowed(username), password: Cow::Borrowed(password) })
    }

    fn await_login(&mut self, msg: &ClientMsg<'_>) -> Result<LoginInfo, ClientError> {
        self.send(msg)?;
        let deadline = Instant::now() + self.io_timeout;
        let mut early = Vec::new();
        let result = loop {
            let Some(msg) = self.recv_until(Some(deadline))? else {
                break Err(self.timeout("waiting for the login reply from", self.io_timeout));
            };
            match msg {
                ServerMsg::LoginAck { username, room } => {
                    break Ok(LoginInfo { username: username.into(), room: room.into() })
                }
                ServerMsg::LoginReject { code, reason, .. } | ServerMsg::ErrorMsg { code, text: reason } => {
                    break Err(ClientError::LoginRejected { code, reason: reason.into() })
                }
                other => early.push(other),
            }
        };
        for msg in early.into_iter().rev() {
            self.pending.push_front(msg);
        }
        result
    }

    /// Encodes and writes one message, flushing it to the network.
    pub fn send(&mut self, msg: &ClientMsg<'_>) -> Result<(), ClientError> {
        self.wbuf.clear();
        self.format.encode_client(msg, &mut self.wbuf);
        let res = self.stream.write_all(&self.wbuf).and_then(|()| self.stream.flush());
        res.map_err(|e| self.io_error(e, "sending to"))
    }

    /// Blocks until the next server message. With auto-pong on (the default) PINGs are answered
    /// here and not returned.
    pub fn recv(&mut self) -> Result<ServerMsg<'static>, ClientError> {
        loop {
            if let Some(msg) = self.recv_until(None)? {
                return Ok(msg);
            }
        }
    }

    /// Like [`recv`](Self::recv), but gives up after `timeout` with `Ok(None)`. A partly received
    /// frame stays buffered for the next call.
    pub fn recv_timeout(&mut self, timeout: Duration) -> Result<Option<ServerMsg<'static>>, ClientError> {
        self.recv_until(Some(Instant::now() + timeout))
    }

    /// Chooses whether `recv` answers server PINGs itself (true, the default) or returns them.
    pub fn set_auto_pong(&mut self, on: bool) {
        self.auto_pong = on;
    }

    /// The wire format this connection speaks.
    pub fn format(&self) -> WireFormat {
        self.format
    }

    /// Our end of the TCP connection.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.tcp.local_addr()
    }

    /// How many frames were skipped because this client could not decode them.
    pub fn skipped_frames(&self) -> u64 {
        self.skipped
    }

    /// Closes the connection (both directions) without waiting for the server.
    pub fn close(self) {
        let _ = self.tcp.shutdown(Shutdown::Both);
    }

    /// The receive loop behind `recv`, `recv_timeout` and `login`: buffered messages first,
    /// then decoded frames, then the socket; `Ok(None)` once `deadline` has passed.
    fn recv_until(&mut self, deadline: Option<Instant>) -> Result<Option<ServerMsg<'static>>, ClientError> {
        loop {
            if let Some(msg) = self.pending.pop_front() {
                return Ok(Some(msg));
            }
            while let Some(msg) = self.decode_next()? {
                if let Some(msg) = self.answer_ping(msg)? {
                    return Ok(Some(msg));
                }
            }
            let timeout = match deadline {
                None => None,
                Some(d) => match d.checked_duration_since(Instant::now()) {
                    Some(left) if !left.is_zero() => Some(left),
                    _ => return Ok(None),
                },
            };
            self.set_read_timeout(timeout)?;
            self.fill()?;
        }
    }

    /// Answers a PING when auto-pong is on; returns the message if the caller should see it.
    fn answer_ping(&mut self, msg: ServerMsg<'static>) -> Result<Option<ServerMsg<'static>>, ClientError> {
        match msg {
            ServerMsg::Ping { token } if self.auto_pong => {
                self.send(&ClientMsg::Pong { token })?;
                Ok(None)
            }
            other => Ok(Some(other)),
        }
    }

    /// Decodes the next complete frame from the read buffer, skipping frames the codec says
    /// can be skipped (unknown types from a newer server). `Ok(None)` means "need more bytes".
    fn decode_next(&mut self) -> Result<Option<ServerMsg<'static>>, ClientError> {
        loop {
            match self.format.decode_server(&self.rbuf[self.rpos..], &self.limits) {
                Ok(Some((msg, used))) => {
                    let msg = msg.into_owned();
                    self.rpos += used;
                    return Ok(Some(msg));
                }
                Ok(None) => return Ok(None),
                Err(e) => match e.skip {
                    Some(n) => {
                        tracing::debug!(error = %e, "skipping undecodable frame");
                        self.rpos += n;
                        self.skipped += 1;
                    }
                    None => return Err(ClientError::Protocol(e.to_string())),
                },
            }
        }
    }

    /// Reads once from the socket into the buffer. A read timeout is not an error (the caller
    /// checks its deadline); end of stream is [`ClientError::Closed`].
    fn fill(&mut self) -> Result<(), ClientError> {
        if self.rpos > 0 {
            self.rbuf.copy_within(self.rpos.., 0);
            self.rbuf.truncate(self.rbuf.len() - self.rpos);
            self.rpos = 0;
        }
        let old = self.rbuf.len();
        self.rbuf.resize(old + READ_CHUNK, 0);
        let res = self.stream.read(&mut self.rbuf[old..]);
        let n = *res.as_ref().unwrap_or(&0);
        self.rbuf.truncate(old + n);
        match res {
            // A TLS peer that closes without close_notify reads as UnexpectedEof: still a close.
            Ok(0) => Err(ClientError::Closed),
            Err(e) if e.kind() == ErrorKind::UnexpectedEof => Err(ClientError::Closed),
            Ok(_) => Ok(()),
            Err(e) if is_timeout(&e) || e.kind() == ErrorKind::Interrupted => Ok(()),
            Err(e) => Err(self.io_error(e, "reading from")),
        }
    }

    fn set_read_timeout(&mut self, timeout: Option<Duration>) -> Result<(), ClientError> {
        // Round up to whole milliseconds so tiny leftovers do not cause a burst of system calls.
        let timeout = timeout.map(|t| t.max(Duration::from_millis(1)));
        if timeout != self.read_timeout {
            self.tcp.set_read_timeout(timeout).map_err(ClientError::Io)?;
            self.read_timeout = timeout;
        }
        Ok(())
    }

    fn io_error(&self, e: io::Error, during: &'static str) -> ClientError {
        if is_timeout(&e) {
            self.timeout(during, self.io_timeout)
        } else {
            ClientError::Io(e)
        }
    }

    fn timeout(&self, during: &'static str, after: Duration) -> ClientError {
        ClientError::Timeout { addr: self.addr.clone(), during, after }
    }
}

/// A socket timeout shows up as `WouldBlock` on Unix and `TimedOut` on Windows.
fn is_timeout(e: &io::Error) -> bool {
    matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut)
}

/// Tries each resolved address in turn; the error is the last address's, classified.
fn connect_any(addrs: &[SocketAddr], opts: &ConnectOptions, addr: &str) -> Result<TcpStream, ClientError> {
    let mut last = io::Error::new(ErrorKind::NotFound, "the name resolved to no addresses");
    if addrs.is_empty() {
        return Err(ClientError::Dns { host: opts.host.clone(), source: last });
    }
    for a in addrs {
        match TcpStream::connect_timeout(a, opts.connect_timeout) {
            Ok(tcp) => return Ok(tcp),
            Err(e) => last = e,
        }
    }
    Err(match last.kind() {
        ErrorKind::ConnectionRefused => ClientError::Refused { addr: addr.to_string() },
        k if k == ErrorKind::TimedOut || k == ErrorKind::WouldBlock => {
            ClientError::Timeout { addr: addr.to_string(), during: "connecting to", after: opts.connect_timeout }
        }
        _ => ClientError::Connect { addr: addr.to_string(), source: last },
    })
}
