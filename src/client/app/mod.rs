//! The interactive terminal client behind `chat-client`: typed lines become requests, server
//! messages become lines, and a dropped connection is re-established.
//!
//! - this file: the session's state, the UI loop, and what each typed line and server message does;
//! - `terminal.rs`: standard input on its own thread, and printing around what the user types;
//! - `requests.rs`: matching replies to the requests they answer;
//! - `files.rs`: `/send` and `/get`, one upload and one download at a time;
//! - `reconnect.rs`: back-off over the server list, logging in again and rejoining the room;
//! - `rooms.rs`: the ids seen per room, so replays never show a message twice.
//!
//! What the user types is parsed by [`commands`](super::commands); what the server sends is
//! shown by [`render`](super::render).

mod files;
mod reconnect;
mod requests;
mod rooms;
mod terminal;

use self::files::Upload;
use self::reconnect::{Backoff, Resume};
use self::requests::{Outstanding, Req};
use self::rooms::RoomLog;
use self::terminal::{Input, Printer};
use super::catalog::Catalog;
use super::commands::{parse_line, Command, HELP};
use super::complete::Names;
use super::render::{kind_of, not_delivered, own_message, render, welcome};
use super::servers::Server;
use super::style::{Kind, Style};
use super::transfer::Download;
use super::{Client, ClientError, ConnectOptions, Event, LoginInfo, Session};
use crate::protocol::{ClientMsg, ErrorCode, Limits, ServerMsg, SystemKind};
use std::io;
use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::{Arc, Mutex};
use std::time::Instant;

/// Who to be and where: what the interactive client needs to connect, and to connect again.
#[derive(Clone, Debug)]
pub struct Config {
    /// How to connect (format, TLS, timeout) and the first server to try.
    pub opts: ConnectOptions,
    /// Every server to try, in turn, on connecting and on each reconnection (`--server`);
    /// empty means `opts`' host and port only.
    pub servers: Vec<Server>,
    /// Colours and timestamps.
    pub style: Style,
    /// The user name to log in with.
    pub username: String,
    /// Passkey or password, for servers that require one.
    pub passkey: Option<String>,
    /// Create the account on the first connection (REGISTER, with `passkey` as the password,
    /// empty if none); reconnections log in normally.
    pub register: bool,
    /// Reconnect with back-off when the connection drops, instead of ending the session.
    pub reconnect: bool,
}

/// How an interactive session ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ending {
    /// The user quit: `/quit`, end of input, or `/quit` while reconnecting. Exit status 0.
    Quit,
    /// The connection dropped and reconnecting was off or failed for good. Exit status 1.
    Lost,
}

/// A connection made by [`connect`]: the client, what LOGIN_ACK said, and which server of
/// the list answered.
pub struct Connected {
    /// The logged-in connection.
    pub client: Client,
    /// The login's answer.
    pub info: LoginInfo,
    /// The options it was made with (the server that answered).
    pub opts: ConnectOptions,
    /// That server's place in [`Config::servers`].
    index: usize,
}

/// Connects and logs in for the first time (or registers, with [`Config::register`]), trying
/// each server in turn.
pub fn connect(config: &Config) -> Result<Connected, ClientError> {
    open(config, config.register, 0, None)
}

/// Tries the servers in turn, starting with the one at `first`, until one logs us in; a
/// permanent failure (bad password, bad certificate) stops at once. `since` resumes the room
/// the login lands in. The error is the last server's.
fn open(config: &Config, register: bool, first: usize, since: Option<u64>) -> Result<Connected, ClientError> {
    let servers = config.server_list();
    let mut last = None;
    for k in 0..servers.len() {
        let index = (first + k) % servers.len();
        match open_one(config, &servers[index], register, since) {
            Ok((client, info, opts)) => return Ok(Connected { client, info, opts, index }),
            Err(e) if !e.is_transient() => return Err(e),
            Err(e) => last = Some(e),
        }
    }
    Err(last.unwrap_or(ClientError::Closed))
}

/// One attempt at one server: connect, then log in or register.
fn open_one(
    config: &Config,
    opts: &ConnectOptions,
    register: bool,
    since: Option<u64>,
) -> Result<(Client, LoginInfo, ConnectOptions), ClientError> {
    let mut client = Client::connect(opts)?;
    let info = if register {
        client.register(&config.username, config.passkey.as_deref().unwrap_or(""))?
    } else {
        client.login_since(&config.username, config.passkey.as_deref(), since)?
    };
    Ok((client, info, opts.clone()))
}

impl Config {
    /// The connect options for every server to try, in order.
    fn server_list(&self) -> Vec<ConnectOptions> {
        if self.servers.is_empty() {
            return vec![self.opts.clone()];
        }
        let with = |s: &Server| ConnectOptions { host: s.host.clone(), port: s.port, ..self.opts.clone() };
        self.servers.iter().map(with).collect()
    }
}

/// Runs the interactive session on a connection [`connect`] made, reading standard input and
/// printing to standard output, until the user quits or the connection is lost for good.
/// Fails only if the thread reading standard input cannot be started.
pub fn run(config: Config, conn: Connected) -> io::Result<Ending> {
    let (tx, rx) = mpsc::channel();
    let names = Arc::new(Mutex::new(Names::default()));
    let out = terminal::start(tx.clone(), names.clone(), config.style)?;
    let mut app = App::new(config, conn.info, tx, rx, out);
    app.names = names;
    app.server = conn.index;
    let connected = format!("Connected to {} ({}).", conn.opts.addr_string(), conn.opts.transport_name());
    app.out.line(&connected);
    app.out.show(Kind::Notice, None, &welcome(&app.me, &app.room));
    app.names().add_room(&app.room);
    app.attach(conn.client);
    Ok(app.run())
}

/// What the UI loop does next.
#[derive(Debug, PartialEq, Eq)]
enum Flow {
    Continue,
    Quit,
}

/// The interactive session: who we are, where we are, and the live connection if any.
struct App {
    /// How to connect and log in again.
    config: Config,
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
    /// Requests awaiting their reply. Emptied whenever `session` is lost.
    outstanding: Outstanding,
    /// The upload in progress, if any.
    upload: Option<Upload>,
    /// The download in progress, if any.
    download: Option<Download>,
    /// Files seen in notifications and lists, for `/get` by short id, index or name.
    catalog: Catalog,
    /// Ids seen per room: replays show nothing twice; where resume and scroll-back start.
    rooms: RoomLog,
    /// Users, rooms and files seen, for Tab completion (shared with the line editor).
    names: Arc<Mutex<Names>>,
    /// The server of [`Config::server_list`] now (or last) connected; reconnecting starts there.
    server: usize,
    /// The reason of an ERROR_MSG that may be a kick (FORBIDDEN, BANNED): if the connection
    /// closes right after it, the session ends instead of reconnecting. Cleared by any other
    /// message.
    kicked: Option<String>,
    /// The room a login puts us in (`general`): where a reconnection lands before rejoining.
    landing: String,
    /// A reconnection going back to its room, until that room's replay has ended.
    resuming: Option<Resume>,
    /// Given to the network and worker threads, which report on it.
    tx: Sender<Input>,
    /// Everything the loop waits for: typed lines, network events, upload reports.
    rx: Receiver<Input>,
    /// Where lines are shown.
    out: Printer,
}

impl App {
    fn new(config: Config, info: LoginInfo, tx: Sender<Input>, rx: Receiver<Input>, out: Printer) -> Self {
        App {
            config,
            me: info.username,
            room: info.room.clone(),
            session: None,
            connected_at: Instant::now(),
            backoff: Backoff::new(),
            outstanding: Outstanding::default(),
            upload: None,
            download: None,
            catalog: Catalog::default(),
            rooms: RoomLog::default(),
            names: Arc::new(Mutex::new(Names::default())),
            server: 0,
            kicked: None,
            landing: info.room,
            resuming: None,
            tx,
            rx,
            out,
        }
    }

    /// Hands a logged-in connection to a network thread feeding the UI channel.
    fn attach(&mut self, client: Client) {
        let tx = self.tx.clone();
        self.session = Some(client.spawn(move |ev| tx.send(Input::Net(ev)).is_ok()));
        self.connected_at = Instant::now();
    }

    /// The UI loop: one input at a time until the session ends.
    fn run(mut self) -> Ending {
        let ending = self.run_until_done();
        if let Some(session) = self.session.take() {
            session.close();
        }
        self.out.finish();
        ending
    }

    fn run_until_done(&mut self) -> Ending {
        loop {
            let Ok(input) = self.rx.recv() else { return Ending::Quit };
            match input {
                Input::Line(line) => {
                    if self.on_line(&line) == Flow::Quit {
                        return Ending::Quit;
                    }
                }
                Input::Eof => return Ending::Quit,
                Input::Net(Event::Message(msg)) => self.on_message(msg),
                Input::Upload(ev) => self.on_upload_event(ev),
                Input::Net(Event::Closed(e)) => {
                    if let Some(ending) = self.on_closed(e) {
                        return ending;
                    }
                }
            }
        }
    }

    /// Handles one typed line.
    fn on_line(&mut self, line: &str) -> Flow {
        match parse_line(line).into_request() {
            // Back in a room seen before: only what came since, and a gap said as such.
            Ok(ClientMsg::JoinRoom { room, .. }) => {
                let since = self.rooms.newest(&room);
                self.send(ClientMsg::JoinRoom { room, since });
            }
            Ok(msg) => self.send(msg),
            Err(Command::Quit) => return Flow::Quit,
            Err(Command::Help) => self.out.line(HELP),
            Err(Command::Invalid(e)) => self.out.line(&format!("! {e}")),
            Err(Command::Say(text)) => self.say(text),
            Err(Command::Send(path)) => self.start_upload(path),
            Err(Command::Get { file, dest }) => self.start_download(&file, dest),
            Err(Command::History) => self.scroll_back(),
            // Empty; commands that are requests never come back.
            Err(_) => {}
        }
        Flow::Continue
    }

    /// A room message: refused here if over the protocol's text limit, else sent and kept until
    /// acknowledged.
    fn say(&mut self, text: String) {
        let max = Limits::default().max_text;
        if text.len() > max {
            self.out.line(&format!("! message too long ({} bytes; the limit is {max}); not sent", text.len()));
        } else {
            let req = Req::Room { text: text.clone() };
            self.send_req(ClientMsg::RoomMsg { text: text.into() }, req);
        }
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

    /// The names shared with Tab completion.
    fn names(&self) -> std::sync::MutexGuard<'_, Names> {
        self.names.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Tracks the room and the replies to our requests, and prints what the server said, with
    /// its time and colour. A replayed room message already shown is dropped.
    fn on_message(&mut self, msg: ServerMsg<'static>) {
        if self.hidden_while_resuming(&msg) {
            return;
        }
        if let ServerMsg::RoomMsg { id, room, history, .. } = &msg {
            // Only a replay can repeat a message; a live one is always shown (a server restarted
            // without its history may reuse ids).
            if !self.rooms.first_sight(room, *id) && *history {
                return;
            }
            if *history {
                self.count_replayed(room);
            }
        }
        self.kicked = match &msg {
            ServerMsg::ErrorMsg { code: ErrorCode::Forbidden | ErrorCode::Banned, text } => Some(text.to_string()),
            _ => None,
        };
        self.learn_names(&msg);
        let after = self.track(&msg);
        if let Some(more) = crate::client::commands::next_page(&msg) {
            self.send(more);
        }
        let text = match &msg {
            ServerMsg::ListFiles { .. } | ServerMsg::FileAvailable { .. } => self.render_file_message(&msg),
            _ => render(&msg, &self.me),
        };
        if let Some(text) = text {
            let ts = match &msg {
                ServerMsg::RoomMsg { ts_ms, .. } | ServerMsg::PrivateMsgDelivery { ts_ms, .. } => Some(*ts_ms),
                _ => None,
            };
            self.out.show(kind_of(&msg, &self.me), ts, &text);
        }
        if let Some(text) = after {
            self.out.line(&text);
        }
    }

    /// Keeps the names Tab completes current: senders, presence, lists, files.
    fn learn_names(&self, msg: &ServerMsg<'static>) {
        let mut names = self.names();
        match msg {
            ServerMsg::RoomMsg { from, .. } | ServerMsg::PrivateMsgDelivery { from, .. } => names.add_user(from),
            ServerMsg::ListUsers { users, .. } => users.iter().for_each(|u| names.add_user(u)),
            ServerMsg::SystemMsg { kind: SystemKind::Join, user, .. } => names.add_user(user),
            ServerMsg::SystemMsg { kind: SystemKind::Leave | SystemKind::Disconnect, user, .. } => {
                names.remove_user(user)
            }
            ServerMsg::ListRooms { rooms, .. } => names.set_rooms(rooms.iter().map(|(r, _)| r.as_ref())),
            ServerMsg::JoinRoom { room } | ServerMsg::LoginAck { room, .. } => names.add_room(room),
            ServerMsg::FileAvailable { name, .. } => names.add_file(name),
            ServerMsg::ListFiles { files, .. } => files.iter().for_each(|f| names.add_file(&f.name)),
            _ => {}
        }
    }

    /// `/history`: asks for the page of the current room's messages before the oldest one shown
    /// (the newest page when none was); each call goes one page further back.
    fn scroll_back(&mut self) {
        let before = self.rooms.oldest(&self.room).unwrap_or(0);
        self.send(ClientMsg::History { before });
    }

    /// Applies what `msg` changes (the room, the requests awaiting replies, transfers), printing
    /// what belongs before the message's own line; returns a line to print after it. Messages
    /// that answer no request and change nothing are only rendered.
    fn track(&mut self, msg: &ServerMsg<'static>) -> Option<String> {
        match msg {
            ServerMsg::RoomMsgAck { .. } => {
                // Our room message was accepted: show it as the room sees it.
                if let Some(Req::Room { text }) = self.outstanding.answered(true) {
                    let ServerMsg::RoomMsgAck { id, ts_ms } = msg else { return None };
                    self.rooms.first_sight(&self.room, *id);
                    self.out.show(Kind::Own, Some(*ts_ms), &own_message(&self.room, &self.me, &text));
                }
            }
            ServerMsg::JoinRoom { room } => {
                self.room = room.to_string();
                self.outstanding.answered(false);
            }
            ServerMsg::ReplayEnd { room, .. } => return self.replay_ended(room),
            ServerMsg::ListUsers { .. }
            | ServerMsg::HistoryEnd { .. }
            | ServerMsg::ListRooms { .. }
            | ServerMsg::Time { .. }
            | ServerMsg::Admin { .. } => {
                self.outstanding.answered(false);
            }
            ServerMsg::PrivateMsgDelivery { from, .. } if *from == self.me => {
                self.outstanding.answered(false);
            }
            ServerMsg::ErrorMsg { code: ErrorCode::FileRefused, text } => {
                self.outstanding.failed();
                self.file_refused(text);
            }
            ServerMsg::ErrorMsg { .. } => {
                if let Some(Req::Room { text }) = self.outstanding.failed() {
                    return Some(not_delivered(&text));
                }
            }
            ServerMsg::FileAccept { .. }
            | ServerMsg::ListFiles { .. }
            | ServerMsg::FileAvailable { .. }
            | ServerMsg::FileChunk { .. }
            | ServerMsg::FileDone { .. } => self.on_file_message(msg),
            _ => {}
        }
        None
    }
}

#[cfg(test)]
mod tests;
