//! The interactive terminal client behind `chat-client`: typed lines become requests, server
//! messages become lines, and a dropped connection is re-established.
//!
//! - this file: the session's state, the UI loop, and what each typed line and server message does;
//! - `terminal.rs`: standard input on its own thread, and printing around what the user types;
//! - `requests.rs`: matching replies to the requests they answer;
//! - `files.rs`: `/send` and `/get`, one upload and one download at a time;
//! - `reconnect.rs`: back-off, logging in again and rejoining the room.
//!
//! What the user types is parsed by [`commands`](super::commands); what the server sends is
//! shown by [`render`](super::render).

mod files;
mod reconnect;
mod requests;
mod terminal;

use self::files::Upload;
use self::reconnect::Backoff;
use self::requests::{Outstanding, Req};
use self::terminal::{Input, Printer};
use super::commands::{parse_line, Command, HELP};
use super::render::{not_delivered, own_message, render, welcome};
use super::transfer::Download;
use super::{Client, ClientError, ConnectOptions, Event, LoginInfo, Session};
use crate::protocol::{ClientMsg, ErrorCode, Limits, ServerMsg};
use std::collections::HashMap;
use std::io;
use std::sync::mpsc::{self, Receiver, Sender};
use std::time::Instant;

/// Who to be and where: what the interactive client needs to connect, and to connect again.
#[derive(Clone, Debug)]
pub struct Config {
    /// Where and how to connect, the first time and on every reconnection.
    pub opts: ConnectOptions,
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

/// Connects and logs in for the first time (or registers, with [`Config::register`]).
pub fn connect(config: &Config) -> Result<(Client, LoginInfo), ClientError> {
    open(config, config.register)
}

/// Connects and logs in, or registers (which also logs in): what every attempt does.
fn open(config: &Config, register: bool) -> Result<(Client, LoginInfo), ClientError> {
    let mut client = Client::connect(&config.opts)?;
    let info = if register {
        client.register(&config.username, config.passkey.as_deref().unwrap_or(""))?
    } else {
        client.login(&config.username, config.passkey.as_deref())?
    };
    Ok((client, info))
}

/// Runs the interactive session on a connection [`connect`] logged in, reading standard input
/// and printing to standard output, until the user quits or the connection is lost for good.
/// Fails only if the thread reading standard input cannot be started.
pub fn run(config: Config, client: Client, info: LoginInfo) -> io::Result<Ending> {
    let (tx, rx) = mpsc::channel();
    terminal::spawn_stdin_reader(tx.clone())?;
    let mut app = App::new(config, info, tx, rx, Printer::stdout());
    let opts = &app.config.opts;
    let connected = format!("Connected to {} ({}).", opts.addr_string(), opts.transport_name());
    app.out.line(&connected);
    app.out.line(&welcome(&app.me, &app.room));
    app.attach(client);
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
    /// Names and sizes of files seen in notifications and lists, by id.
    known_files: HashMap<u64, (String, u64)>,
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
        loop {
            let Ok(input) = self.rx.recv() else { return Ending::Quit };
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
                    if let Some(ending) = self.on_closed(e) {
                        return ending;
                    }
                }
            }
        }
    }

    fn quit(mut self) -> Ending {
        if let Some(session) = self.session.take() {
            session.close();
        }
        self.out.finish();
        Ending::Quit
    }

    /// Handles one typed line.
    fn on_line(&mut self, line: &str) -> Flow {
        match parse_line(line).into_request() {
            Ok(msg) => self.send(msg),
            Err(Command::Quit) => return Flow::Quit,
            Err(Command::Help) => self.out.line(HELP),
            Err(Command::Invalid(e)) => self.out.line(&format!("! {e}")),
            Err(Command::Say(text)) => self.say(text),
            Err(Command::Send(path)) => self.start_upload(path),
            Err(Command::Get { id, dest }) => self.start_download(id, dest),
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

    /// Tracks the room and the replies to our requests, and prints what the server said.
    fn on_message(&mut self, msg: ServerMsg<'static>) {
        let after = self.track(&msg);
        if let Some(more) = crate::client::commands::next_page(&msg) {
            self.send(more);
        }
        if let Some(text) = render(&msg, &self.me) {
            self.out.line(&text);
        }
        if let Some(text) = after {
            self.out.line(&text);
        }
    }

    /// Applies what `msg` changes (the room, the requests awaiting replies, transfers), printing
    /// what belongs before the message's own line; returns a line to print after it. Messages
    /// that answer no request and change nothing are only rendered.
    fn track(&mut self, msg: &ServerMsg<'static>) -> Option<String> {
        match msg {
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
