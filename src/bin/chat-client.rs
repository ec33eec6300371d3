//! `chat-client`: a terminal client for ChatProto servers.
//!
//! ```text
//! chat-client <username> [host] [port] [--json] [--tls] [--ca FILE] [--insecure] [--passkey KEY] [--register]
//! ```
//!
//! Lines typed go to the current room; `/help` lists the commands. Incoming messages print on
//! their own line while you type. A dropped connection is re-established with back-off (1 s,
//! doubling to 30 s), logging in again and rejoining the room. Exit status: 0 after `/quit` or
//! end of input, 1 when connecting or logging in fails.

use chatproto::client::commands::{parse_line, Command, HELP};
use chatproto::client::render::{human_size, own_message, render};
use chatproto::client::transfer::{self, default_dest, offer_name, progress_line, Download, Progress};
use chatproto::client::{Client, ClientError, ConnectOptions, Event, LoginInfo, Session};
use chatproto::net::tls::{ClientTrust, TlsError};
use chatproto::protocol::{ClientMsg, ErrorCode, Limits, ServerMsg, WireFormat};
use clap::Parser;
use std::collections::{HashMap, VecDeque};
use std::io::{self, BufRead, IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// Command-line arguments; positional ones match the Python clients.
#[derive(Parser, Debug)]
#[command(version, about = "Terminal client for ChatProto chat servers")]
struct Args {
    /// Your user name (1-20 characters, no spaces).
    username: String,
    /// Server host name or IP address.
    #[arg(default_value = "127.0.0.1")]
    host: String,
    /// Server port.
    #[arg(default_value_t = 5555)]
    port: u16,
    /// Speak newline-delimited JSON instead of binary ChatProto.
    #[arg(long)]
    json: bool,
    /// Use TLS, verifying the server against the public web roots (see --ca, --insecure).
    #[arg(long)]
    tls: bool,
    /// Use TLS, trusting the CA or self-signed certificate in this PEM file.
    #[arg(long, value_name = "FILE", conflicts_with = "insecure")]
    ca: Option<PathBuf>,
    /// Use TLS WITHOUT verifying the server's certificate (testing only).
    #[arg(long)]
    insecure: bool,
    /// Passkey (or password) for servers that require one.
    #[arg(long, visible_alias = "password", value_name = "KEY")]
    passkey: Option<String>,
    /// Create the account (servers with `--auth accounts`) with the --password given, then log
    /// in; reconnects log in normally.
    #[arg(long, requires = "passkey")]
    register: bool,
    /// Seconds allowed for connecting, the TLS handshake and the login reply.
    #[arg(long, value_name = "SECS", default_value_t = 10)]
    timeout: u64,
    /// Exit instead of reconnecting when the connection drops.
    #[arg(long)]
    no_reconnect: bool,
}

impl Args {
    fn connect_options(&self) -> ConnectOptions {
        let mut opts = ConnectOptions::new(self.host.clone(), self.port);
        opts.format = if self.json { WireFormat::Json } else { WireFormat::Binary };
        opts.connect_timeout = Duration::from_secs(self.timeout.max(1));
        opts.tls = if self.insecure {
            Some(ClientTrust::Insecure)
        } else if let Some(ca) = &self.ca {
            Some(ClientTrust::CaFile(ca.clone()))
        } else if self.tls {
            Some(ClientTrust::SystemRoots)
        } else {
            None
        };
        opts
    }
}

fn main() -> ExitCode {
    let args = Args::parse();
    if args.insecure {
        eprintln!("WARNING: --insecure: the server's identity is NOT verified.");
        eprintln!("WARNING: anyone on the network path can impersonate the server and read your");
        eprintln!("WARNING: messages. Use --ca FILE with the server's certificate instead.");
    }
    match run(&args) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(args: &Args) -> anyhow::Result<ExitCode> {
    let opts = args.connect_options();
    let first = if args.register {
        register(&opts, &args.username, args.passkey.as_deref().unwrap_or(""))
    } else {
        connect_and_login(&opts, &args.username, args.passkey.as_deref())
    };
    let (client, info) = match first {
        Ok(ok) => ok,
        Err(e) => {
            eprintln!("error: {}", describe(&e, args));
            return Ok(ExitCode::FAILURE);
        }
    };
    let (tx, rx) = mpsc::channel();
    spawn_stdin_reader(tx.clone())?;
    let mut app = App::new(args, opts, info, tx, rx);
    app.out.line(&format!("Connected to {} ({}).", app.opts.addr_string(), transport_name(&app.opts)));
    app.out.line(&welcome(&app.me, &app.room));
    app.attach(client);
    Ok(app.run())
}

/// Connects and logs in: the whole of what a (re)connection attempt does.
fn connect_and_login(
    opts: &ConnectOptions,
    username: &str,
    passkey: Option<&str>,
) -> Result<(Client, LoginInfo), ClientError> {
    let mut client = Client::connect(opts)?;
    let info = client.login(username, passkey)?;
    Ok((client, info))
}

/// Connects and creates an account, which also logs in.
fn register(opts: &ConnectOptions, username: &str, password: &str) -> Result<(Client, LoginInfo), ClientError> {
    let mut client = Client::connect(opts)?;
    let info = client.register(username, password)?;
    Ok((client, info))
}

fn transport_name(opts: &ConnectOptions) -> String {
    let tls = match &opts.tls {
        None => "plaintext",
        Some(ClientTrust::Insecure) => "TLS, UNVERIFIED",
        Some(_) => "TLS",
    };
    format!("{}, {tls}", opts.format.name())
}

fn welcome(me: &str, room: &str) -> String {
    let ack = ServerMsg::LoginAck { username: me.into(), room: room.into() };
    render(&ack, me).unwrap_or_default()
}

/// The error plus what to do about it, in the spirit of the Python v2 client.
fn describe(e: &ClientError, args: &Args) -> String {
    let hint = match e {
        ClientError::Dns { .. } => "check the host name, or use the server's IP address".to_string(),
        ClientError::Timeout { .. } => {
            "check the host and port, that the server is up, and that no firewall blocks the port".into()
        }
        ClientError::Connect { .. } => "check your network connection and the server address".into(),
        ClientError::Tls { source: TlsError::Io { .. } | TlsError::Pem { .. }, .. } => {
            "--ca must name a PEM file holding the server's certificate or its CA".into()
        }
        ClientError::Tls { .. } if !args.insecure => "if the server uses a self-signed certificate, \
             pass --ca FILE with the server's certificate (e.g. --ca certs/server.crt), \
             or --insecure to skip verification (testing only); is TLS enabled on the server?"
            .into(),
        ClientError::LoginRejected { code: ErrorCode::UsernameTaken, .. } => {
            "someone is using that name; pick another".into()
        }
        ClientError::LoginRejected { code: ErrorCode::AuthFailed, .. } => {
            "check the passkey or password (--passkey KEY, --password PW; --register creates an account)".into()
        }
        ClientError::InvalidUsername { .. } => "user names are 1-20 characters with no spaces".into(),
        ClientError::Closed | ClientError::Protocol(_) if args.tls || args.ca.is_some() || args.insecure => {
            "is this a ChatProto server on the right port?".into()
        }
        ClientError::Closed | ClientError::Protocol(_) => {
            "is this a ChatProto server on the right port? does it require TLS (--tls)?".into()
        }
        _ => String::new(),
    };
    if hint.is_empty() {
        e.to_string()
    } else {
        format!("{e}\n  hint: {hint}")
    }
}

/// The start of a long message, for notices about it.
fn preview(text: &str) -> String {
    const MAX: usize = 40;
    match text.char_indices().nth(MAX) {
        Some((i, _)) => format!("{}...", &text[..i]),
        None => text.to_string(),
    }
}

/// Everything the UI loop waits for, on one channel: typed lines and network events.
enum Input {
    /// A line typed by the user, without its newline.
    Line(String),
    /// Standard input ended (Ctrl-D or end of a piped file).
    Eof,
    /// Something from the network thread.
    Net(Event),
    /// Something from an upload's worker thread.
    Upload(UploadEvent),
}

/// What an upload's worker thread reports.
enum UploadEvent {
    /// The file was read and hashed: offer it.
    Hashed { size: u64, sha256: [u8; 32] },
    /// A chunk (or the final FILE_DONE) to send.
    Send(ClientMsg<'static>),
    /// Bytes sent so far.
    Sent(u64),
    /// Reading the file failed.
    Failed(String),
}

/// The upload in progress (one at a time).
struct Upload {
    /// The file being sent.
    path: PathBuf,
    /// The name it is offered under.
    name: String,
    /// Size and digest, once hashed.
    hashed: Option<(u64, [u8; 32])>,
    /// The server's id, once accepted.
    id: Option<u64>,
    /// Tells the sending thread to stop.
    cancel: Arc<AtomicBool>,
    /// Percentages already shown.
    progress: Progress,
}

/// Reads standard input on its own thread so typing never blocks incoming messages.
fn spawn_stdin_reader(tx: Sender<Input>) -> io::Result<()> {
    thread::Builder::new().name("stdin".into()).spawn(move || {
        let mut stdin = io::stdin().lock();
        let mut buf = Vec::new();
        loop {
            buf.clear();
            let input = match stdin.read_until(b'\n', &mut buf) {
                Ok(0) | Err(_) => Input::Eof,
                Ok(_) => Input::Line(String::from_utf8_lossy(&buf).trim_end_matches(['\r', '\n']).to_string()),
            };
            let eof = matches!(input, Input::Eof);
            if tx.send(input).is_err() || eof {
                return;
            }
        }
    })?;
    Ok(())
}

/// Prints lines without garbling what the user is typing: on a terminal each line first clears
/// the current (partly typed) line and the prompt is redrawn after it.
struct Printer {
    /// Both stdin and stdout are terminals: use the prompt and the line-clearing escape.
    tty: bool,
}

impl Printer {
    fn line(&mut self, text: &str) {
        let mut out = io::stdout().lock();
        let res = if self.tty { write!(out, "\r\x1b[2K{text}\n> ") } else { writeln!(out, "{text}") };
        let _ = res.and_then(|()| out.flush());
    }
}

/// What the UI loop does next.
#[derive(PartialEq, Eq)]
enum Flow {
    Continue,
    Quit,
}

/// Back-off between reconnection attempts: 1 s, doubling, at most 30 s.
struct Backoff {
    next: Duration,
}

impl Backoff {
    const FIRST: Duration = Duration::from_secs(1);
    const MAX: Duration = Duration::from_secs(30);

    fn new() -> Self {
        Backoff { next: Self::FIRST }
    }

    /// The un-jittered delay sequence: 1, 2, 4, 8, 16, 30, 30, ... seconds.
    fn next_base(&mut self) -> Duration {
        let base = self.next;
        self.next = (self.next * 2).min(Self::MAX);
        base
    }

    /// The delay before the next attempt, shortened by up to 10% of jitter so that many
    /// clients dropped together by a server restart do not all return in the same instant.
    fn next_delay(&mut self) -> Duration {
        let base = self.next_base();
        let nanos = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.subsec_nanos()).unwrap_or(0);
        base - base / 10 * (nanos % 1000) / 1000
    }
}

/// A request sent and not yet answered.
#[derive(Debug, PartialEq, Eq)]
enum Req {
    /// A room message, kept so it can be shown once acknowledged. (Its room is the current
    /// room when the ack arrives: replies come in order, so any earlier join is done by then.)
    Room { text: String },
    /// Any other request (join, private message, lists).
    Other,
}

/// Requests sent and not yet answered, oldest first. The server answers every request, in order,
/// with one reply or one ERROR_MSG; matching them up lets the client show its own room messages
/// once accepted and say which message an error dropped.
#[derive(Default)]
struct Outstanding {
    queue: VecDeque<Req>,
}

impl Outstanding {
    /// Bound on remembered requests, so a server that does not answer cannot grow it forever.
    const MAX: usize = 1024;

    fn push(&mut self, req: Req) {
        if self.queue.len() >= Self::MAX {
            self.queue.pop_front();
        }
        self.queue.push_back(req);
    }

    /// A reply arrived: returns the oldest request of its kind (`room` for ROOM_MSG_ACK),
    /// dropping older requests of the other kind, which can then never be answered.
    fn answered(&mut self, room: bool) -> Option<Req> {
        while let Some(req) = self.queue.pop_front() {
            if matches!(req, Req::Room { .. }) == room {
                return Some(req);
            }
        }
        None
    }

    /// An ERROR_MSG arrived: it answers the oldest request.
    fn failed(&mut self) -> Option<Req> {
        self.queue.pop_front()
    }

    fn clear(&mut self) {
        self.queue.clear();
    }
}

/// The interactive session: who we are, where we are, and the live connection if any.
struct App {
    opts: ConnectOptions,
    username: String,
    passkey: Option<String>,
    reconnect: bool,
    /// Our name as the server registered it.
    me: String,
    /// The room we are in, per the server's last LOGIN_ACK or JOIN_ROOM.
    room: String,
    /// The connection's network thread; `None` while reconnecting.
    session: Option<Session>,
    /// When the current connection was made, to decide whether back-off starts over.
    connected_at: Instant,
    /// Delay before the next reconnection attempt; kept across flapping connections.
    backoff: Backoff,
    /// Requests awaiting their reply.
    outstanding: Outstanding,
    /// The upload in progress, if any.
    upload: Option<Upload>,
    /// The download in progress, if any.
    download: Option<Download>,
    /// Names and sizes of files seen in notifications and lists, by id.
    known_files: HashMap<u64, (String, u64)>,
    tx: Sender<Input>,
    rx: Receiver<Input>,
    out: Printer,
}

impl App {
    fn new(args: &Args, opts: ConnectOptions, info: LoginInfo, tx: Sender<Input>, rx: Receiver<Input>) -> Self {
        App {
            opts,
            username: args.username.clone(),
            passkey: args.passkey.clone(),
            reconnect: !args.no_reconnect,
            me: info.username,
            room: info.room,
            session: None,
            connected_at: Instant::now(),
            backoff: Backoff::new(),
            outstanding: Outstanding::default(),
            upload: None,
            download: None,
            known_files: HashMap::new(),
            tx,
            rx,
            out: Printer { tty: io::stdin().is_terminal() && io::stdout().is_terminal() },
        }
    }

    /// Hands a logged-in connection to a network thread feeding the UI channel.
    fn attach(&mut self, client: Client) {
        let tx = self.tx.clone();
        self.session = Some(client.spawn(move |ev| tx.send(Input::Net(ev)).is_ok()));
        self.connected_at = Instant::now();
    }

    /// The UI loop; returns the process exit status.
    fn run(mut self) -> ExitCode {
        loop {
            let Ok(input) = self.rx.recv() else { return ExitCode::SUCCESS };
            match input {
                Input::Line(line) => {
                    if self.on_line(&line) == Flow::Quit {
                        return self.quit();
                    }
                }
                Input::Eof => return self.quit(),
                Input::Net(Event::Message(msg)) => self.on_message(msg),
                Input::Upload(ev) => self.on_upload_event(ev),
                Input::Net(Event::Closed(e)) => {
                    if let Some(code) = self.on_closed(e) {
                        return code;
                    }
                }
            }
        }
    }

    fn quit(mut self) -> ExitCode {
        if let Some(session) = self.session.take() {
            session.close();
        }
        if self.out.tty {
            println!();
        }
        ExitCode::SUCCESS
    }

    /// Handles one typed line.
    fn on_line(&mut self, line: &str) -> Flow {
        let msg = match parse_line(line) {
            Command::Empty => return Flow::Continue,
            Command::Quit => return Flow::Quit,
            Command::Help => {
                self.out.line(HELP);
                return Flow::Continue;
            }
            Command::Time => ClientMsg::Time,
            Command::Admin(command) => ClientMsg::Admin { command: command.into() },
            Command::Invalid(e) => {
                self.out.line(&format!("! {e}"));
                return Flow::Continue;
            }
            Command::Say(text) => return self.say(text),
            Command::Join(room) => ClientMsg::JoinRoom { room: room.into() },
            Command::Msg { to, text } => ClientMsg::PrivateMsg { to: to.into(), text: text.into() },
            Command::Users => ClientMsg::ListUsers,
            Command::Rooms => ClientMsg::ListRooms,
            Command::Files => ClientMsg::ListFiles,
            Command::Send(path) => return self.start_upload(path),
            Command::Get { id, dest } => return self.start_download(id, dest),
        };
        self.send(msg);
        Flow::Continue
    }

    fn say(&mut self, text: String) -> Flow {
        let max = Limits::default().max_text;
        if text.len() > max {
            self.out.line(&format!("! message too long ({} bytes; the limit is {max}); not sent", text.len()));
        } else {
            let req = Req::Room { text: text.clone() };
            self.send_req(ClientMsg::RoomMsg { text: text.into() }, req);
        }
        Flow::Continue
    }

    /// Queues a request on the live connection; says so if there is none.
    fn send(&mut self, msg: ClientMsg<'static>) {
        self.send_req(msg, Req::Other);
    }

    fn send_req(&mut self, msg: ClientMsg<'static>, req: Req) {
        if self.session.as_ref().is_some_and(|s| s.send(msg)) {
            self.outstanding.push(req);
        } else {
            self.out.line("! not connected (reconnecting); not sent");
        }
    }

    /// Tracks the room and the replies to our requests, and prints what the server said.
    fn on_message(&mut self, msg: ServerMsg<'static>) {
        let mut extra = None;
        match &msg {
            ServerMsg::RoomMsgAck { .. } => {
                // Our room message was accepted: show it as the room sees it.
                if let Some(Req::Room { text }) = self.outstanding.answered(true) {
                    self.out.line(&own_message(&self.room, &self.me, &text));
                }
            }
            ServerMsg::JoinRoom { room } => {
                self.room = room.to_string();
                self.outstanding.answered(false);
            }
            ServerMsg::ListUsers { .. }
            | ServerMsg::ListRooms { .. }
            | ServerMsg::Time { .. }
            | ServerMsg::Admin { .. } => {
                self.outstanding.answered(false);
            }
            ServerMsg::PrivateMsgDelivery { from, .. } if *from == self.me => {
                self.outstanding.answered(false);
            }
            ServerMsg::FileAccept { id } => {
                self.outstanding.answered(false);
                self.upload_accepted(*id);
            }
            ServerMsg::ListFiles { files, .. } => {
                self.outstanding.answered(false);
                for f in files {
                    self.known_files.insert(f.id, (f.name.to_string(), f.size));
                }
            }
            ServerMsg::FileAvailable { id, name, size, from, .. } => {
                self.known_files.insert(*id, (name.to_string(), *size));
                if *from == self.me && self.upload.as_ref().is_some_and(|u| u.id == Some(*id)) {
                    self.outstanding.answered(false);
                    if let Some(u) = self.upload.take() {
                        self.out.line(&format!("↑ {}: 100%, shared as file {id}", u.name));
                    }
                }
            }
            ServerMsg::FileChunk { id, offset, data } => return self.download_chunk(*id, *offset, data),
            ServerMsg::FileDone { id, sha256 } => {
                if let Some(d) = self.download.take_if(|d| d.id == *id) {
                    self.outstanding.answered(false);
                    match d.finish(sha256) {
                        Ok(line) => self.out.line(&line),
                        Err(e) => self.out.line(&format!("! download failed: {e}")),
                    }
                }
            }
            ServerMsg::ErrorMsg { code: ErrorCode::FileRefused, text } => {
                self.outstanding.failed();
                self.file_refused(text);
            }
            ServerMsg::ErrorMsg { .. } => {
                if let Some(Req::Room { text }) = self.outstanding.failed() {
                    extra = Some(format!("  (your message \"{}\" was not delivered)", preview(&text)));
                }
            }
            _ => {}
        }
        if let Some(text) = render(&msg, &self.me) {
            self.out.line(&text);
        }
        if let Some(text) = extra {
            self.out.line(&text);
        }
    }

    /// `/send PATH`: hash the file on a worker thread, then offer it.
    fn start_upload(&mut self, path: PathBuf) -> Flow {
        if self.upload.is_some() {
            self.out.line("! an upload is already running; wait for it to finish");
            return Flow::Continue;
        }
        let name = offer_name(&path);
        let cancel = Arc::new(AtomicBool::new(false));
        let tx = self.tx.clone();
        let p = path.clone();
        let spawned = thread::Builder::new().name("upload-hash".into()).spawn(move || {
            let ev = match transfer::hash_file(&p) {
                Ok((size, sha256)) => UploadEvent::Hashed { size, sha256 },
                Err(e) => UploadEvent::Failed(format!("cannot read {}: {e}", p.display())),
            };
            let _ = tx.send(Input::Upload(ev));
        });
        if let Err(e) = spawned {
            self.out.line(&format!("! cannot start the upload: {e}"));
            return Flow::Continue;
        }
        self.out.line(&format!("↑ {name}: reading {}", path.display()));
        self.upload = Some(Upload { path, name, hashed: None, id: None, cancel, progress: Progress::default() });
        Flow::Continue
    }

    fn on_upload_event(&mut self, ev: UploadEvent) {
        match ev {
            UploadEvent::Hashed { size, sha256 } => {
                let Some(u) = self.upload.as_mut() else { return };
                u.hashed = Some((size, sha256));
                let line = format!("↑ {}: offering {} to the room", u.name, human_size(size));
                let offer = ClientMsg::FileOffer { name: u.name.clone().into(), size, sha256 };
                self.out.line(&line);
                self.send(offer);
            }
            UploadEvent::Send(msg) => {
                let done = matches!(msg, ClientMsg::FileDone { .. });
                if !self.session.as_ref().is_some_and(|s| s.send(msg)) {
                    if let Some(u) = self.upload.take() {
                        u.cancel.store(true, Ordering::Relaxed);
                    }
                } else if done {
                    self.outstanding.push(Req::Other);
                }
            }
            UploadEvent::Sent(n) => {
                let Some(u) = self.upload.as_mut() else { return };
                let Some((size, _)) = u.hashed else { return };
                if let Some(pct) = u.progress.update(n, size).filter(|p| *p < 100) {
                    let line = progress_line("↑", &u.name, pct, n, size);
                    self.out.line(&line);
                }
            }
            UploadEvent::Failed(e) => {
                if let Some(u) = self.upload.take() {
                    u.cancel.store(true, Ordering::Relaxed);
                }
                self.out.line(&format!("! upload failed: {e}"));
            }
        }
    }

    /// FILE_ACCEPT: start the thread that reads and sends the chunks (paced for the rate limit).
    fn upload_accepted(&mut self, id: u64) {
        let Some(u) = self.upload.as_mut().filter(|u| u.id.is_none()) else { return };
        let Some(hashed) = u.hashed else { return };
        u.id = Some(id);
        let (tx, path, cancel) = (self.tx.clone(), u.path.clone(), u.cancel.clone());
        let spawned = thread::Builder::new().name("upload".into()).spawn(move || {
            let send = |m| tx.send(Input::Upload(UploadEvent::Send(m))).is_ok();
            let progress = |n| {
                let _ = tx.send(Input::Upload(UploadEvent::Sent(n)));
            };
            if let Err(e) = transfer::send_file(&path, id, hashed, &cancel, send, progress) {
                let _ = tx.send(Input::Upload(UploadEvent::Failed(format!("reading {}: {e}", path.display()))));
            }
        });
        if let Err(e) = spawned {
            self.upload = None;
            self.out.line(&format!("! cannot start the upload: {e}"));
        }
    }

    /// `/get ID [DEST]`: create the destination, then ask for the file.
    fn start_download(&mut self, id: u64, dest: Option<PathBuf>) -> Flow {
        if self.download.is_some() {
            self.out.line("! a download is already running; wait for it to finish");
            return Flow::Continue;
        }
        let known = self.known_files.get(&id).cloned();
        let dest = dest.unwrap_or_else(|| default_dest(known.as_ref().map(|k| k.0.as_str()), id, |p| p.exists()));
        let name = known.as_ref().map_or_else(|| format!("file {id}"), |k| k.0.clone());
        match Download::create(id, dest.clone(), name, known.map(|k| k.1)) {
            Ok(d) => {
                self.out.line(&format!("↓ file {id}: downloading to {}", dest.display()));
                self.download = Some(d);
                self.send(ClientMsg::FileGet { id });
            }
            Err(e) => self.out.line(&format!("! cannot create {}: {e}", dest.display())),
        }
        Flow::Continue
    }

    fn download_chunk(&mut self, id: u64, offset: u64, data: &[u8]) {
        let Some(d) = self.download.as_mut().filter(|d| d.id == id) else { return };
        match d.chunk(offset, data) {
            Ok(Some(line)) => self.out.line(&line),
            Ok(None) => {}
            Err(e) => {
                if let Some(d) = self.download.take() {
                    d.discard();
                }
                self.out.line(&format!("! download failed: {e}"));
            }
        }
    }

    /// ERROR_MSG FILE_REFUSED: ends the transfer it is about (the upload, unless only a download
    /// is running or the text names a file rather than an upload).
    fn file_refused(&mut self, text: &str) {
        let about_upload = self.upload.is_some() && (self.download.is_none() || !text.starts_with("no file"));
        if about_upload {
            if let Some(u) = self.upload.take() {
                u.cancel.store(true, Ordering::Relaxed);
            }
        } else if let Some(d) = self.download.take() {
            d.discard();
        }
    }

    /// Abandons transfers when the connection is gone.
    fn drop_transfers(&mut self) {
        if let Some(u) = self.upload.take() {
            u.cancel.store(true, Ordering::Relaxed);
            self.out.line(&format!("! upload of {} abandoned", u.name));
        }
        if let Some(d) = self.download.take() {
            self.out.line(&format!("! download of {} abandoned", d.name));
            d.discard();
        }
    }

    /// The connection ended unexpectedly. Returns the exit status if the client should stop.
    fn on_closed(&mut self, e: ClientError) -> Option<ExitCode> {
        self.session = None;
        self.outstanding.clear();
        self.drop_transfers();
        self.out.line(&format!("! disconnected: {e}"));
        if !self.reconnect {
            return Some(ExitCode::FAILURE);
        }
        // A connection that stayed up a while starts the back-off over; one that drops right
        // after each login keeps doubling it.
        if self.connected_at.elapsed() >= Backoff::MAX {
            self.backoff = Backoff::new();
        }
        self.reconnect_loop()
    }

    /// Reconnects with back-off until it works, the user quits, or the failure is permanent.
    fn reconnect_loop(&mut self) -> Option<ExitCode> {
        loop {
            let delay = self.backoff.next_delay();
            self.out.line(&format!("* reconnecting in {:.1} s (type /quit to give up)", delay.as_secs_f32()));
            if self.wait(delay) == Flow::Quit {
                return Some(ExitCode::SUCCESS);
            }
            match connect_and_login(&self.opts, &self.username, self.passkey.as_deref()) {
                Ok((client, info)) => {
                    self.resume(client, info);
                    return None;
                }
                Err(e) if e.is_transient() => self.out.line(&format!("! reconnect failed: {e}")),
                Err(e) => {
                    self.out.line(&format!("! giving up: {e}"));
                    return Some(ExitCode::FAILURE);
                }
            }
        }
    }

    /// Waits `delay` while still answering typed lines (so /quit works while offline).
    fn wait(&mut self, delay: Duration) -> Flow {
        let until = Instant::now() + delay;
        loop {
            let left = until.saturating_duration_since(Instant::now());
            match self.rx.recv_timeout(left) {
                Err(RecvTimeoutError::Timeout) => return Flow::Continue,
                Err(RecvTimeoutError::Disconnected) | Ok(Input::Eof) => return Flow::Quit,
                Ok(Input::Line(line)) => {
                    if self.on_line(&line) == Flow::Quit {
                        return Flow::Quit;
                    }
                }
                Ok(Input::Net(_)) | Ok(Input::Upload(_)) => {}
            }
        }
    }

    /// Logged in again: rejoin the room we were in and resume.
    fn resume(&mut self, client: Client, info: LoginInfo) {
        let room = std::mem::replace(&mut self.room, info.room);
        self.me = info.username;
        self.out.line(&format!("* reconnected to {} as {}", self.opts.addr_string(), self.me));
        self.attach(client);
        if room != self.room {
            self.send(ClientMsg::JoinRoom { room: room.into() });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(extra: &[&str]) -> Args {
        Args::parse_from(["chat-client", "alice"].iter().chain(extra))
    }

    #[test]
    fn defaults_and_flags() {
        let a = args(&[]);
        let o = a.connect_options();
        assert_eq!((o.host.as_str(), o.port, o.format), ("127.0.0.1", 5555, WireFormat::Binary));
        assert!(o.tls.is_none());
        let o = args(&["10.0.0.2", "8888", "--json", "--tls"]).connect_options();
        assert_eq!((o.host.as_str(), o.port, o.format), ("10.0.0.2", 8888, WireFormat::Json));
        assert!(matches!(o.tls, Some(ClientTrust::SystemRoots)));
        let o = args(&["--ca", "certs/server.crt"]).connect_options();
        assert!(matches!(o.tls, Some(ClientTrust::CaFile(_))));
        assert!(matches!(args(&["--insecure"]).connect_options().tls, Some(ClientTrust::Insecure)));
        assert!(Args::try_parse_from(["chat-client", "a", "--ca", "x", "--insecure"]).is_err());
        assert!(Args::try_parse_from(["chat-client"]).is_err());
    }

    #[test]
    fn backoff_doubles_to_thirty_seconds() {
        let mut b = Backoff::new();
        let secs: Vec<u64> = (0..8).map(|_| b.next_base().as_secs()).collect();
        assert_eq!(secs, [1, 2, 4, 8, 16, 30, 30, 30]);
        let mut b = Backoff::new();
        let d = b.next_delay();
        assert!(d <= Duration::from_secs(1) && d >= Duration::from_millis(900), "{d:?}");
    }

    #[test]
    fn replies_match_requests_in_order() {
        let room = |t: &str| Req::Room { text: t.into() };
        let mut o = Outstanding::default();
        o.push(room("a"));
        o.push(Req::Other);
        o.push(room("b"));
        o.push(room("c"));
        assert_eq!(o.answered(true), Some(room("a")));
        assert_eq!(o.answered(false), Some(Req::Other));
        assert_eq!(o.failed(), Some(room("b")));
        assert_eq!(o.answered(true), Some(room("c")));
        assert_eq!(o.answered(true), None);
        // A reply of the other kind skips requests that can no longer be answered.
        o.push(Req::Other);
        o.push(room("d"));
        assert_eq!(o.answered(true), Some(room("d")));
        assert_eq!(preview("short"), "short");
        assert_eq!(preview(&"é".repeat(50)), format!("{}...", "é".repeat(40)));
    }

    #[test]
    fn hints() {
        let a = args(&[]);
        let tls = ClientError::Tls { host: "h".into(), source: TlsError::ServerName("h".into()) };
        assert!(describe(&tls, &a).contains("--ca FILE"), "{}", describe(&tls, &a));
        assert!(!describe(&tls, &args(&["--insecure"])).contains("hint"));
        let refused = ClientError::Refused { addr: "127.0.0.1:5555".into() };
        assert!(describe(&refused, &a).contains("is the server running on 127.0.0.1:5555?"));
        let taken = ClientError::LoginRejected { code: ErrorCode::UsernameTaken, reason: "taken".into() };
        assert!(describe(&taken, &a).contains("pick another"));
    }
}
