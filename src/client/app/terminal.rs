//! Terminal I/O: typed lines read on their own thread, and lines printed without disturbing
//! what the user is typing.
//!
//! On a terminal (standard input and output both), a line editor (rustyline) reads input with
//! history and Tab completion, and incoming lines go through its external printer, which prints
//! them above the prompt and redraws the half-typed line. Otherwise (piped input or output)
//! lines are read plainly and printed plainly: no prompt, no escape codes.

use super::files::UploadEvent;
use crate::client::complete::{complete, Names};
use crate::client::style::{clock, now_ms, Kind, Style};
use crate::client::Event;
use rustyline::completion::Completer;
use rustyline::error::ReadlineError;
use rustyline::highlight::Highlighter;
use rustyline::hint::Hinter;
use rustyline::history::DefaultHistory;
use rustyline::validate::Validator;
use rustyline::{CompletionType, Context, Editor, ExternalPrinter, Helper};
use std::io::{self, BufRead, IsTerminal, Write};
use std::sync::mpsc::{self, Sender};
use std::sync::{Arc, Mutex};
use std::thread;

/// Everything the UI loop waits for, on one channel: typed lines and network events.
pub(super) enum Input {
    /// A line typed by the user, without its newline.
    Line(String),
    /// Standard input ended (Ctrl-D, Ctrl-C at the prompt, or the end of a piped file).
    Eof,
    /// Something from the network thread.
    Net(Event),
    /// Something from an upload's worker thread.
    Upload(UploadEvent),
}

/// Starts reading typed lines into `tx` and returns the printer to show lines with: the line
/// editor when both ends are a terminal, plain lines otherwise. `names` feeds Tab completion.
pub(super) fn start(tx: Sender<Input>, names: Arc<Mutex<Names>>, style: Style) -> io::Result<Printer> {
    if io::stdin().is_terminal() && io::stdout().is_terminal() {
        // Saved before the editor thread can switch the terminal to raw mode.
        let restore = TermRestore::save();
        if let Some(printer) = spawn_editor(tx.clone(), names)? {
            return Ok(Printer { sink: Sink::Editor(printer, restore), style });
        }
    }
    spawn_plain_reader(tx)?;
    Ok(Printer { sink: Sink::Stdout, style })
}

/// Runs the line editor on its own thread; returns its external printer, or `None` if the
/// editor could not be set up (then the caller falls back to plain lines).
fn spawn_editor(tx: Sender<Input>, names: Arc<Mutex<Names>>) -> io::Result<Option<Box<dyn ExternalPrinter + Send>>> {
    let (ready_tx, ready_rx) = mpsc::channel();
    thread::Builder::new().name("editor".into()).spawn(move || {
        let config = rustyline::Config::builder()
            .completion_type(CompletionType::List)
            .auto_add_history(true)
            .max_history_size(1000)
            .and_then(|b| b.history_ignore_dups(true))
            .map(|b| b.build());
        let editor = config.map_err(|e| e.to_string()).and_then(|c| {
            let mut ed = Editor::<ChatHelper, DefaultHistory>::with_config(c).map_err(|e| e.to_string())?;
            ed.set_helper(Some(ChatHelper { names }));
            let printer = ed.create_external_printer().map_err(|e| e.to_string())?;
            Ok((ed, printer))
        });
        let mut ed = match editor {
            Ok((ed, printer)) => {
                let _ = ready_tx.send(Some(Box::new(printer) as Box<dyn ExternalPrinter + Send>));
                ed
            }
            Err(_) => {
                let _ = ready_tx.send(None);
                return;
            }
        };
        loop {
            let input = match ed.readline("> ") {
                Ok(line) => Input::Line(line),
                Err(ReadlineError::Interrupted | ReadlineError::Eof) | Err(_) => Input::Eof,
            };
            let eof = matches!(input, Input::Eof);
            if tx.send(input).is_err() || eof {
                return;
            }
        }
    })?;
    Ok(ready_rx.recv().ok().flatten())
}

/// Reads standard input line by line on its own thread (piped input, scripts, tests).
fn spawn_plain_reader(tx: Sender<Input>) -> io::Result<()> {
    thread::Builder::new().name("stdin".into()).spawn(move || {
        let mut stdin = io::stdin().lock();
        let mut buf = Vec::new();
        loop {
            buf.clear();
            let input = match stdin.read_until(b'\n', &mut buf) {
                Ok(0) | Err(_) => Input::Eof,
                Ok(_) => Input::Line(typed_line(&buf)),
            };
            let eof = matches!(input, Input::Eof);
            if tx.send(input).is_err() || eof {
                return;
            }
        }
    })?;
    Ok(())
}

/// One line as read from standard input, without its line ending; invalid UTF-8 is replaced.
fn typed_line(raw: &[u8]) -> String {
    String::from_utf8_lossy(raw).trim_end_matches(['\r', '\n']).to_string()
}

/// The line editor's helper: Tab completion from the session's [`Names`]; no hints, no
/// highlighting, every line complete.
struct ChatHelper {
    /// Shared with the session, which keeps it current.
    names: Arc<Mutex<Names>>,
}

impl Completer for ChatHelper {
    type Candidate = String;

    fn complete(&self, line: &str, pos: usize, _: &Context<'_>) -> rustyline::Result<(usize, Vec<String>)> {
        let names = self.names.lock().unwrap_or_else(|e| e.into_inner());
        Ok(complete(line, pos, &names))
    }
}

impl Hinter for ChatHelper {
    type Hint = String;
}
impl Highlighter for ChatHelper {}
impl Validator for ChatHelper {}
impl Helper for ChatHelper {}

/// The terminal's settings before the editor changed them, put back on exit: the session can
/// end (connection lost, kicked) while the editor has the terminal in raw mode.
struct TermRestore(Option<libc::termios>);

impl TermRestore {
    fn save() -> Self {
        // SAFETY: tcgetattr fills the zeroed termios for descriptor 0; the result is checked.
        let mut t: libc::termios = unsafe { std::mem::zeroed() };
        TermRestore((unsafe { libc::tcgetattr(0, &mut t) } == 0).then_some(t))
    }

    /// Puts the settings back and leaves the prompt's line; only the first call does anything.
    fn restore(&mut self) {
        let Some(t) = self.0.take() else { return };
        // SAFETY: `t` came from tcgetattr on the same descriptor.
        unsafe { libc::tcsetattr(0, libc::TCSANOW, &t) };
        // Bracketed paste off, as the editor would on leaving; a newline after the prompt.
        let _ = io::stdout().write_all(b"\x1b[?2004l\r\n").and_then(|()| io::stdout().flush());
    }
}

/// Where lines go.
enum Sink {
    /// Plain standard output.
    Stdout,
    /// Through the line editor, above the prompt.
    Editor(Box<dyn ExternalPrinter + Send>, TermRestore),
    /// Kept for tests, undecorated.
    #[cfg(test)]
    Captured(Vec<String>),
}

/// Prints lines, each with its time and colour (see [`Style`]), around what the user types.
pub(super) struct Printer {
    /// Where they go.
    sink: Sink,
    /// Colours and timestamps, decided at start-up.
    style: Style,
}

impl Printer {
    /// Keeps the lines (undecorated) for [`take`](Self::take) instead of printing them.
    #[cfg(test)]
    pub(super) fn capture() -> Self {
        Printer { sink: Sink::Captured(Vec::new()), style: Style::BARE }
    }

    /// The lines printed since the last call (capturing printers only).
    #[cfg(test)]
    pub(super) fn take(&mut self) -> Vec<String> {
        match &mut self.sink {
            Sink::Captured(lines) => std::mem::take(lines),
            _ => Vec::new(),
        }
    }

    /// Prints a line the client writes itself, stamped now; its kind comes from its first
    /// character (see [`Kind::of_local`]).
    pub(super) fn line(&mut self, text: &str) {
        self.show(Kind::of_local(text), None, text);
    }

    /// Prints one entry (which may contain `\n`) of kind `kind`, stamped with `ts_ms` (the
    /// message's time) or now.
    pub(super) fn show(&mut self, kind: Kind, ts_ms: Option<u64>, text: &str) {
        let clock = if self.style.timestamps { clock(ts_ms.unwrap_or_else(now_ms)) } else { String::new() };
        let mut out = self.style.format(kind, &clock, text);
        out.push('\n');
        match &mut self.sink {
            #[cfg(test)]
            Sink::Captured(lines) => lines.push(text.to_string()),
            Sink::Editor(printer, _) => {
                if let Err(e) = printer.print(out.clone()) {
                    tracing::debug!(error = %e, "external printer failed; printing directly");
                    print_stdout(&out);
                }
            }
            Sink::Stdout => print_stdout(&out),
        }
    }

    /// On exit: gives the terminal back as it was found and prints what follows directly, so
    /// the last lines cannot be lost in the editor's queue when the process ends. Call it
    /// before printing the lines that end a session; dropping the printer does it too.
    pub(super) fn finish(&mut self) {
        if let Sink::Editor(_, restore) = &mut self.sink {
            restore.restore();
            self.sink = Sink::Stdout;
        }
    }
}

impl Drop for Printer {
    fn drop(&mut self) {
        self.finish();
    }
}

fn print_stdout(text: &str) {
    let mut out = io::stdout().lock();
    let _ = out.write_all(text.as_bytes()).and_then(|()| out.flush());
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn typed_lines_lose_their_ending() {
        assert_eq!(typed_line(b"hello\r\n"), "hello");
        assert_eq!(typed_line(b"last line"), "last line");
        assert_eq!(typed_line(b"caf\xe9\n"), "caf\u{fffd}");
    }

    #[test]
    fn captured_lines_are_undecorated() {
        let mut p = Printer::capture();
        p.line("! x");
        p.show(Kind::Own, Some(0), "[general] me: hi");
        assert_eq!(p.take(), ["! x", "[general] me: hi"]);
    }
}
