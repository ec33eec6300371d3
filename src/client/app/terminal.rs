//! Terminal I/O: standard input read on its own thread, and lines printed around what the user
//! is typing.

use super::files::UploadEvent;
use crate::client::Event;
use std::io::{self, BufRead, IsTerminal, Write};
use std::sync::mpsc::Sender;
use std::thread;

/// Everything the UI loop waits for, on one channel: typed lines and network events.
pub(super) enum Input {
    /// A line typed by the user, without its newline.
    Line(String),
    /// Standard input ended (Ctrl-D or end of a piped file).
    Eof,
    /// Something from the network thread.
    Net(Event),
    /// Something from an upload's worker thread.
    Upload(UploadEvent),
}

/// Reads standard input on its own thread so typing never blocks incoming messages.
pub(super) fn spawn_stdin_reader(tx: Sender<Input>) -> io::Result<()> {
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

/// Prints lines without garbling what the user is typing: on a terminal each line first clears
/// the current (partly typed) line and the prompt is redrawn after it.
pub(super) struct Printer {
    /// Both stdin and stdout are terminals: use the prompt and the line-clearing escape.
    tty: bool,
    /// Lines kept instead of printed, for tests; `None` prints to standard output.
    captured: Option<Vec<String>>,
}

impl Printer {
    /// Prints to standard output, with the prompt when both ends are a terminal.
    pub(super) fn stdout() -> Self {
        Printer { tty: io::stdin().is_terminal() && io::stdout().is_terminal(), captured: None }
    }

    /// Keeps the lines for [`take`](Self::take) instead of printing them.
    #[cfg(test)]
    pub(super) fn capture() -> Self {
        Printer { tty: false, captured: Some(Vec::new()) }
    }

    /// The lines printed since the last call (capturing printers only).
    #[cfg(test)]
    pub(super) fn take(&mut self) -> Vec<String> {
        self.captured.as_mut().map(std::mem::take).unwrap_or_default()
    }

    /// Prints one line (which may contain `\n`) above the prompt.
    pub(super) fn line(&mut self, text: &str) {
        if let Some(lines) = &mut self.captured {
            lines.push(text.to_string());
            return;
        }
        let mut out = io::stdout().lock();
        let _ = out.write_all(framed(text, self.tty).as_bytes()).and_then(|()| out.flush());
    }

    /// On exit, ends the prompt's line so the shell's prompt starts on a fresh one.
    pub(super) fn finish(&mut self) {
        if self.tty && self.captured.is_none() {
            println!();
        }
    }
}

/// What is written for `text`: on a terminal, clear the line, print, redraw the `> ` prompt.
fn framed(text: &str, tty: bool) -> String {
    if tty {
        format!("\r\x1b[2K{text}\n> ")
    } else {
        format!("{text}\n")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_are_framed_for_a_terminal_only() {
        assert_eq!(framed("hi", false), "hi\n");
        assert_eq!(framed("hi", true), "\r\x1b[2Khi\n> ");
    }

    #[test]
    fn typed_lines_lose_their_ending() {
        assert_eq!(typed_line(b"hello\r\n"), "hello");
        assert_eq!(typed_line(b"last line"), "last line");
        assert_eq!(typed_line(b"caf\xe9\n"), "caf\u{fffd}");
    }
}
