//! The log sink: log lines go through a bounded queue to one writer thread, so that logging never
//! blocks an event loop (a terminal or pipe that stops reading) and never panics (a pipe whose
//! reader is gone: `chat-server 2>&1 | tee log`, then Ctrl-C).
//!
//! A line that finds the queue full is dropped and counted; the writer reports how many were
//! dropped with the next line it writes. Write errors are ignored: there is nowhere left to
//! report them.

use std::io::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender, TrySendError};
use std::sync::Arc;
use tracing_subscriber::fmt::MakeWriter;

/// Hands formatted log lines to the writer thread without waiting.
#[derive(Clone, Debug)]
pub struct LogSink {
    /// The writer thread's queue.
    tx: SyncSender<Vec<u8>>,
    /// Lines dropped because the queue was full, not yet reported.
    dropped: Arc<AtomicU64>,
}

impl LogSink {
    /// Starts a writer thread that writes every line to `out`, and returns the sink feeding it.
    /// The thread ends when every sink is dropped.
    pub fn start(out: impl Write + Send + 'static, queue_lines: usize) -> std::io::Result<LogSink> {
        let (tx, rx) = sync_channel(queue_lines);
        let dropped = Arc::new(AtomicU64::new(0));
        let d = dropped.clone();
        std::thread::Builder::new().name("log-writer".into()).spawn(move || write_lines(out, &rx, &d))?;
        Ok(LogSink { tx, dropped })
    }

    /// Lines dropped so far and not yet reported.
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }
}

/// The writer thread: one line at a time, errors ignored, drops reported.
fn write_lines(mut out: impl Write, rx: &Receiver<Vec<u8>>, dropped: &AtomicU64) {
    for line in rx {
        let lost = dropped.swap(0, Ordering::Relaxed);
        if lost > 0 {
            let _ = writeln!(out, "[log] {lost} lines dropped: the log output was not keeping up");
        }
        let _ = out.write_all(&line);
        let _ = out.flush();
    }
}

/// One log line being formatted; queued (or dropped) when the formatter is done with it.
#[derive(Debug)]
pub struct LineWriter {
    /// The line so far.
    buf: Vec<u8>,
    /// Where it goes.
    sink: LogSink,
}

impl Write for LineWriter {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.buf.extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Drop for LineWriter {
    fn drop(&mut self) {
        if self.buf.is_empty() {
            return;
        }
        match self.sink.tx.try_send(std::mem::take(&mut self.buf)) {
            Ok(()) | Err(TrySendError::Disconnected(_)) => {}
            Err(TrySendError::Full(_)) => {
                self.sink.dropped.fetch_add(1, Ordering::Relaxed);
            }
        }
    }
}

impl<'a> MakeWriter<'a> for LogSink {
    type Writer = LineWriter;

    fn make_writer(&'a self) -> LineWriter {
        LineWriter { buf: Vec::with_capacity(256), sink: self.clone() }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    /// An output that blocks until released, then records what it got; `entered` says a write
    /// has begun.
    struct Gate {
        open: Arc<Mutex<()>>,
        got: Arc<Mutex<Vec<u8>>>,
        entered: Arc<std::sync::atomic::AtomicBool>,
    }

    impl Write for Gate {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            self.entered.store(true, Ordering::SeqCst);
            let _open = self.open.lock().unwrap_or_else(|e| e.into_inner());
            self.got.lock().unwrap().extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    fn line(sink: &LogSink, text: &str) {
        let mut w = sink.make_writer();
        w.write_all(text.as_bytes()).unwrap();
    }

    #[test]
    fn a_stuck_output_drops_lines_instead_of_blocking_and_says_so_later() {
        let open = Arc::new(Mutex::new(()));
        let got = Arc::new(Mutex::new(Vec::new()));
        let entered = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let gate = open.lock().unwrap();
        let sink = LogSink::start(Gate { open: open.clone(), got: got.clone(), entered: entered.clone() }, 4).unwrap();
        // The writer takes the first line and blocks on it (waited for, bounded: otherwise it
        // might take it, and reset the drop count, only after the flood)...
        line(&sink, "line 0\n");
        let taken = (0..1000).any(|_| {
            std::thread::sleep(std::time::Duration::from_millis(5));
            entered.load(Ordering::SeqCst)
        });
        assert!(taken, "the writer never took the first line");
        // ...then 4 more fill the queue and the rest drop.
        for i in 1..100 {
            line(&sink, &format!("line {i}\n"));
        }
        assert_eq!(sink.dropped(), 100 - 5);
        drop(gate);
        // Once the writer catches up, a new line gets through (bounded wait), after the report.
        let text = (0..500)
            .find_map(|_| {
                line(&sink, "after\n");
                std::thread::sleep(std::time::Duration::from_millis(10));
                let text = String::from_utf8(got.lock().unwrap().clone()).unwrap();
                text.contains("after\n").then_some(text)
            })
            .expect("the writer caught up");
        assert!(text.contains("line 0\n") && !text.contains("line 99\n"), "{text}");
        let report = text.find("lines dropped: the log output was not keeping up").expect("drops reported");
        assert!(report < text.find("after\n").unwrap(), "{text}");
    }

    #[test]
    fn a_failing_output_is_ignored() {
        struct Broken;
        impl Write for Broken {
            fn write(&mut self, _: &[u8]) -> std::io::Result<usize> {
                Err(std::io::ErrorKind::BrokenPipe.into())
            }
            fn flush(&mut self) -> std::io::Result<()> {
                Err(std::io::ErrorKind::BrokenPipe.into())
            }
        }
        let sink = LogSink::start(Broken, 4).unwrap();
        for i in 0..10 {
            line(&sink, &format!("line {i}\n"));
        }
        drop(sink);
    }
}
