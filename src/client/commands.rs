//! The client's command language: one typed line in, one [`Command`] out.
//!
//! Pure and I/O-free so that every alias and every mistake is unit-tested. The command set and
//! aliases are the ChatProto seed's, exactly:
//!
//! | Command                  | Aliases                     |
//! |--------------------------|-----------------------------|
//! | `/join <room>`           | `/j`                        |
//! | `/msg <user> <message>`  | `/m`, `/pm`, `/dm`, `/whisper` |
//! | `/users`                 | `/who`, `/list`             |
//! | `/rooms`                 | `/r`                        |
//! | `/help`                  | `/h`, `/?`                  |
//! | `/quit`                  | `/exit`, `/q`               |
//!
//! plus `/time` (the TIME extension), `/admin <command>` (admin sessions only), `/history`
//! (scroll back), and file sharing: `/send PATH` (`/upload`), `/files`, `/get FILE [DEST]`
//! (`/download`). A line not starting with `/` is a message to the current room; `//text` sends
//! `/text` literally. [`COMMAND_WORDS`] lists every word, for tab completion and the help test.
//!
//! A new command that is one request to the server is one entry here: its [`Command`] variant,
//! its word in [`parse_line`], its line in [`HELP`] and its message in [`Command::into_request`].

use crate::protocol::validate::{check_room, check_username, NameError};
use crate::protocol::{ClientMsg, ServerMsg};

/// Help text shown by `/help`: every command with its aliases.
pub const HELP: &str = "\
Commands (anything else you type is sent to your current room):
  /join <room>            switch to <room>, creating it if new     aliases: /j
  /msg <user> <message>   private message to <user>                aliases: /m /pm /dm /whisper
  /users                  list the users in your room              aliases: /who /list
  /rooms                  list all rooms and their sizes           aliases: /r
  /history                earlier messages of your room (a page; again for more)
  /time                   the server's clock
  /send <path>            share a file with your room              aliases: /upload
  /files                  list the files shared in your room, with #index and short id
  /get <file> [dest]      download a file: <file> is its id, short id (last digits), #index
                          or name; [dest] a file or a directory    aliases: /download
  /admin <command>        admin console (admin login only): users, rooms, alert TEXT,
                          kick USER [BAN, e.g. 5m; 0 = none], unban USER, time, stats, help
  /help                   show this help                           aliases: /h /?
  /quit                   disconnect and exit                      aliases: /exit /q
  //text                  send a message that starts with '/' (sends \"/text\")
Keys: Tab completes commands, names and rooms; Up/Down recall typed lines; Ctrl-D quits.";

/// Every command word and alias, without the `/`, in [`HELP`]'s order: what Tab completes.
pub const COMMAND_WORDS: &[&str] = &[
    "join", "j", "msg", "m", "pm", "dm", "whisper", "users", "who", "list", "rooms", "r", "history", "time", "send",
    "upload", "files", "get", "download", "admin", "help", "h", "?", "quit", "exit", "q",
];

/// What one input line asks the client to do.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Command {
    /// Send this text to the current room (a plain line, or `//text` unescaped to `/text`).
    Say(String),
    /// `/join <room>`: switch rooms.
    Join(String),
    /// `/msg <user> <message>`: a private message.
    Msg {
        /// The recipient's user name.
        to: String,
        /// The message text, with inner spacing kept.
        text: String,
    },
    /// `/users`: list the members of the current room.
    Users,
    /// `/rooms`: list every room.
    Rooms,
    /// `/time`: ask for the server's clock.
    Time,
    /// `/send PATH`: upload a file to the current room.
    Send(std::path::PathBuf),
    /// `/files`: list the files of the current room.
    Files,
    /// `/get FILE [DEST]`: download a file, to `dest` (a file or a directory) or to its name in
    /// the working directory.
    Get {
        /// How the user named the file: an id, a short id, `#index` or a name (resolved by the
        /// session, which knows the files).
        file: String,
        /// Where to save it.
        dest: Option<std::path::PathBuf>,
    },
    /// `/history`: show the page of the current room's messages before the earliest one shown.
    History,
    /// `/admin <command>`: an admin console command (the server checks the privilege).
    Admin(String),
    /// `/help`: print [`HELP`].
    Help,
    /// `/quit`: disconnect and exit.
    Quit,
    /// A blank line: nothing to do.
    Empty,
    /// The line was a mistake; the error explains how to fix it.
    Invalid(UsageError),
}

/// The request for the next page of a paged list reply (LIST_USERS, LIST_ROOMS, LIST_FILES
/// with a `next` cursor), so `/users`, `/rooms` and `/files` show the whole list; `None` for
/// the last page and for every other message.
pub fn next_page(msg: &ServerMsg<'_>) -> Option<ClientMsg<'static>> {
    let after = |next: &Option<crate::protocol::Str<'_>>| next.as_ref().map(|c| c.to_string().into());
    match msg {
        ServerMsg::ListUsers { next: next @ Some(_), .. } => Some(ClientMsg::ListUsers { after: after(next) }),
        ServerMsg::ListRooms { next: next @ Some(_), .. } => Some(ClientMsg::ListRooms { after: after(next) }),
        ServerMsg::ListFiles { next: next @ Some(_), .. } => Some(ClientMsg::ListFiles { after: after(next) }),
        _ => None,
    }
}

impl Command {
    /// The request this command sends to the server as it stands, or the command itself back for
    /// those the client carries out on its own: `Say` (checked, and shown once acknowledged),
    /// `Send` and `Get` (file transfers), `Help`, `Quit`, `Empty` and `Invalid`.
    pub fn into_request(self) -> Result<ClientMsg<'static>, Command> {
        Ok(match self {
            Command::Join(room) => ClientMsg::JoinRoom { room: room.into(), since: None },
            Command::Msg { to, text } => ClientMsg::PrivateMsg { to: to.into(), text: text.into() },
            Command::Users => ClientMsg::ListUsers { after: None },
            Command::Rooms => ClientMsg::ListRooms { after: None },
            Command::Time => ClientMsg::Time,
            Command::Files => ClientMsg::ListFiles { after: None },
            Command::Admin(command) => ClientMsg::Admin { command: command.into() },
            Command::Say(_)
            | Command::Send(_)
            | Command::Get { .. }
            | Command::History
            | Command::Help
            | Command::Quit
            | Command::Empty
            | Command::Invalid(_) => return Err(self),
        })
    }
}

/// Why a line could not be turned into a command. `Display` is the message shown to the user.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum UsageError {
    /// `/something` that is not a command.
    #[error("unknown command '/{0}'; type /help for the list (to send a line starting with '/', type '//')")]
    Unknown(String),
    /// A command was given without an argument it needs.
    #[error("missing {what}; usage: {usage}")]
    Missing {
        /// What was left out, e.g. "room name".
        what: &'static str,
        /// The command's usage line.
        usage: &'static str,
    },
    /// The room name breaks the naming rules.
    #[error("invalid room name '{name}': {reason}")]
    BadRoom {
        /// The name as typed.
        name: String,
        /// Which rule it breaks.
        reason: NameError,
    },
    /// The user name breaks the naming rules.
    #[error("invalid user name '{name}': {reason}")]
    BadUser {
        /// The name as typed.
        name: String,
        /// Which rule it breaks.
        reason: NameError,
    },
}

const JOIN_USAGE: &str = "/join <room>";
const MSG_USAGE: &str = "/msg <user> <message>";

/// Parses one line of user input (without its trailing newline) into a [`Command`].
///
/// Command words are case-insensitive (`/JOIN` works). Extra words after commands that take
/// no argument are ignored. Names are checked with the protocol's naming rules so mistakes are
/// explained locally instead of by a server error.
pub fn parse_line(line: &str) -> Command {
    let line = line.trim_end_matches(['\r', '\n']);
    if line.trim().is_empty() {
        return Command::Empty;
    }
    let Some(rest) = line.strip_prefix('/') else {
        return Command::Say(line.to_string());
    };
    if rest.starts_with('/') {
        // `//text` is an escaped slash: send "/text" as a room message.
        return Command::Say(rest.to_string());
    }
    let (word, args) = split_word(rest);
    match word.to_ascii_lowercase().as_str() {
        "join" | "j" => parse_join(args),
        "msg" | "m" | "pm" | "dm" | "whisper" => parse_msg(args),
        "users" | "who" | "list" => Command::Users,
        "rooms" | "r" => Command::Rooms,
        "time" => Command::Time,
        "history" => Command::History,
        "send" | "upload" => match args.trim() {
            "" => Command::Invalid(UsageError::Missing { what: "file path", usage: "/send <path>" }),
            path => Command::Send(path.into()),
        },
        "files" => Command::Files,
        "get" | "download" => parse_get(args),
        "admin" => Command::Admin(if args.trim().is_empty() { "help".to_string() } else { args.trim().to_string() }),
        "help" | "h" | "?" => Command::Help,
        "quit" | "exit" | "q" => Command::Quit,
        _ => Command::Invalid(UsageError::Unknown(word.to_string())),
    }
}

/// Splits off the first whitespace-delimited word; the rest has its leading whitespace removed
/// but its inner spacing kept.
fn split_word(s: &str) -> (&str, &str) {
    let s = s.trim_start();
    match s.find(char::is_whitespace) {
        Some(i) => (&s[..i], s[i..].trim_start()),
        None => (s, ""),
    }
}

fn parse_join(args: &str) -> Command {
    let room = args.trim();
    if room.is_empty() {
        return Command::Invalid(UsageError::Missing { what: "room name", usage: JOIN_USAGE });
    }
    match check_room(room) {
        Ok(()) => Command::Join(room.to_string()),
        Err(reason) => Command::Invalid(UsageError::BadRoom { name: room.to_string(), reason }),
    }
}

fn parse_get(args: &str) -> Command {
    let (file, dest) = split_word(args);
    if file.is_empty() {
        return Command::Invalid(UsageError::Missing { what: "file", usage: "/get <file> [dest]" });
    }
    let dest = dest.trim();
    Command::Get { file: file.to_string(), dest: (!dest.is_empty()).then(|| dest.into()) }
}

fn parse_msg(args: &str) -> Command {
    let (to, text) = split_word(args);
    if to.is_empty() {
        return Command::Invalid(UsageError::Missing { what: "user name", usage: MSG_USAGE });
    }
    if let Err(reason) = check_username(to) {
        return Command::Invalid(UsageError::BadUser { name: to.to_string(), reason });
    }
    let text = text.trim_end();
    if text.is_empty() {
        return Command::Invalid(UsageError::Missing { what: "message text", usage: MSG_USAGE });
    }
    Command::Msg { to: to.to_string(), text: text.to_string() }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msg(to: &str, text: &str) -> Command {
        Command::Msg { to: to.into(), text: text.into() }
    }

    #[test]
    fn file_commands() {
        assert_eq!(parse_line("/send notes.txt"), Command::Send("notes.txt".into()));
        assert_eq!(parse_line("/send  my file.pdf "), Command::Send("my file.pdf".into()));
        assert_eq!(parse_line("/upload /tmp/x"), Command::Send("/tmp/x".into()));
        assert!(matches!(parse_line("/send"), Command::Invalid(UsageError::Missing { what: "file path", .. })));
        assert_eq!(parse_line("/files"), Command::Files);
        assert_eq!(parse_line("/FILES extra"), Command::Files);
        let get = |file: &str, dest: Option<&str>| Command::Get { file: file.into(), dest: dest.map(Into::into) };
        assert_eq!(parse_line("/get 42"), get("42", None));
        assert_eq!(parse_line("/get 42 out dir/a.txt"), get("42", Some("out dir/a.txt")));
        assert_eq!(parse_line("/download 7 x"), get("7", Some("x")));
        assert_eq!(parse_line("/get #2 downloads/"), get("#2", Some("downloads/")));
        assert_eq!(parse_line("/get notes.txt"), get("notes.txt", None));
        assert!(matches!(parse_line("/get"), Command::Invalid(UsageError::Missing { what: "file", .. })));
        assert!(HELP.contains("/send <path>") && HELP.contains("/files") && HELP.contains("/get <file> [dest]"));
    }

    #[test]
    fn plain_text_is_a_room_message() {
        assert_eq!(parse_line("hello everyone!"), Command::Say("hello everyone!".into()));
        assert_eq!(parse_line("  indented"), Command::Say("  indented".into()));
        assert_eq!(parse_line("a / b"), Command::Say("a / b".into()));
        assert_eq!(parse_line("hi\r\n"), Command::Say("hi".into()));
    }

    #[test]
    fn double_slash_sends_a_literal_slash() {
        assert_eq!(parse_line("//shrug"), Command::Say("/shrug".into()));
        assert_eq!(parse_line("//join x"), Command::Say("/join x".into()));
        assert_eq!(parse_line("//"), Command::Say("/".into()));
    }

    #[test]
    fn blank_lines_do_nothing() {
        assert_eq!(parse_line(""), Command::Empty);
        assert_eq!(parse_line("   \t"), Command::Empty);
        assert_eq!(parse_line("\n"), Command::Empty);
    }

    #[test]
    fn join_and_alias() {
        for w in ["/join", "/j", "/JOIN", "/J"] {
            assert_eq!(parse_line(&format!("{w} tech-talk")), Command::Join("tech-talk".into()));
        }
        assert_eq!(parse_line("/join   spaced  "), Command::Join("spaced".into()));
    }

    #[test]
    fn join_errors() {
        let missing = Command::Invalid(UsageError::Missing { what: "room name", usage: JOIN_USAGE });
        assert_eq!(parse_line("/join"), missing);
        assert_eq!(parse_line("/j   "), missing);
        match parse_line("/join two words") {
            Command::Invalid(UsageError::BadRoom { name, reason: NameError::BadChar }) => {
                assert_eq!(name, "two words")
            }
            other => panic!("{other:?}"),
        }
        let long = "r".repeat(33);
        assert!(matches!(
            parse_line(&format!("/join {long}")),
            Command::Invalid(UsageError::BadRoom { reason: NameError::TooLong(33, 32), .. })
        ));
    }

    #[test]
    fn msg_and_every_alias() {
        for w in ["/msg", "/m", "/pm", "/dm", "/whisper", "/Msg", "/WHISPER"] {
            assert_eq!(parse_line(&format!("{w} bob Hey, are you around?")), msg("bob", "Hey, are you around?"));
        }
        assert_eq!(parse_line("/msg bob   two  spaces "), msg("bob", "two  spaces"));
        assert_eq!(parse_line("/msg\tbob\thi"), msg("bob", "hi"));
    }

    #[test]
    fn msg_errors() {
        let no_user = Command::Invalid(UsageError::Missing { what: "user name", usage: MSG_USAGE });
        let no_text = Command::Invalid(UsageError::Missing { what: "message text", usage: MSG_USAGE });
        assert_eq!(parse_line("/msg"), no_user);
        assert_eq!(parse_line("/pm  "), no_user);
        assert_eq!(parse_line("/msg bob"), no_text);
        assert_eq!(parse_line("/dm bob    "), no_text);
        assert!(matches!(
            parse_line(&format!("/msg {} hi", "x".repeat(21))),
            Command::Invalid(UsageError::BadUser { reason: NameError::TooLong(21, 20), .. })
        ));
    }

    #[test]
    fn no_argument_commands_and_aliases() {
        for w in ["/users", "/who", "/list", "/USERS"] {
            assert_eq!(parse_line(w), Command::Users, "{w}");
        }
        for w in ["/rooms", "/r", "/Rooms"] {
            assert_eq!(parse_line(w), Command::Rooms, "{w}");
        }
        for w in ["/help", "/h", "/?", "/HELP"] {
            assert_eq!(parse_line(w), Command::Help, "{w}");
        }
        for w in ["/quit", "/exit", "/q", "/Quit"] {
            assert_eq!(parse_line(w), Command::Quit, "{w}");
        }
        assert_eq!(parse_line("/time"), Command::Time);
        assert_eq!(parse_line("/history"), Command::History);
        assert_eq!(parse_line("/HISTORY more"), Command::History);
        // Trailing words are tolerated.
        assert_eq!(parse_line("/quit now"), Command::Quit);
        assert_eq!(parse_line("/users  "), Command::Users);
    }

    #[test]
    fn unknown_commands() {
        assert_eq!(parse_line("/dance"), Command::Invalid(UsageError::Unknown("dance".into())));
        assert_eq!(parse_line("/"), Command::Invalid(UsageError::Unknown(String::new())));
        assert_eq!(parse_line("/ hi"), Command::Invalid(UsageError::Unknown("hi".into())));
        assert_eq!(parse_line("/joinroom x"), Command::Invalid(UsageError::Unknown("joinroom".into())));
    }

    #[test]
    fn usage_messages_are_helpful() {
        let unknown = UsageError::Unknown("dance".into()).to_string();
        assert!(unknown.contains("/help") && unknown.contains("'//'"), "{unknown}");
        let missing = UsageError::Missing { what: "room name", usage: JOIN_USAGE }.to_string();
        assert_eq!(missing, "missing room name; usage: /join <room>");
        let bad = UsageError::BadRoom { name: "a b".into(), reason: NameError::BadChar }.to_string();
        assert!(bad.contains("'a b'") && bad.contains("space"), "{bad}");
    }

    #[test]
    fn requests_for_server_commands() {
        let req = |line: &str| parse_line(line).into_request();
        assert_eq!(req("/j tech"), Ok(ClientMsg::JoinRoom { room: "tech".into(), since: None }));
        assert_eq!(req("/pm bob hi  there"), Ok(ClientMsg::PrivateMsg { to: "bob".into(), text: "hi  there".into() }));
        assert_eq!(req("/who"), Ok(ClientMsg::ListUsers { after: None }));
        assert_eq!(req("/r"), Ok(ClientMsg::ListRooms { after: None }));
        assert_eq!(req("/time"), Ok(ClientMsg::Time));
        assert_eq!(req("/files"), Ok(ClientMsg::ListFiles { after: None }));
        assert_eq!(req("/admin"), Ok(ClientMsg::Admin { command: "help".into() }));
        assert_eq!(req("/admin kick bob"), Ok(ClientMsg::Admin { command: "kick bob".into() }));
    }

    #[test]
    fn local_commands_come_back() {
        for line in ["hello", "//x", "/send a.txt", "/get 3", "/history", "/help", "/quit", "", "/dance"] {
            assert_eq!(parse_line(line).into_request(), Err(parse_line(line)), "{line}");
        }
    }

    #[test]
    fn help_lists_every_command_and_alias() {
        for w in COMMAND_WORDS {
            let shown = HELP.contains(&format!("/{w} ")) || HELP.contains(&format!("/{w}\n"));
            assert!(shown, "HELP lacks /{w}");
            let parsed = parse_line(&format!("/{w}"));
            assert!(!matches!(parsed, Command::Invalid(UsageError::Unknown(_))), "/{w} is not parsed: {parsed:?}");
        }
        assert!(HELP.contains("//text"));
    }

    #[test]
    fn a_paged_list_reply_asks_for_the_next_page_and_the_last_asks_for_nothing() {
        let more = ServerMsg::ListRooms { rooms: vec![], next: Some("tech".into()) };
        assert_eq!(next_page(&more), Some(ClientMsg::ListRooms { after: Some("tech".into()) }));
        let more = ServerMsg::ListFiles { room: "general".into(), files: vec![], next: Some("7".into()) };
        assert_eq!(next_page(&more), Some(ClientMsg::ListFiles { after: Some("7".into()) }));
        let last = ServerMsg::ListUsers { room: "general".into(), users: vec![], next: None };
        assert_eq!(next_page(&last), None);
        assert_eq!(next_page(&ServerMsg::Time { ts_ms: 1 }), None);
    }
}
