//! `chat-server`: the ChatProto server. Binary and JSON clients, plain or TLS, on one port.
//!
//! Settings come from the command line and an optional TOML file (see `chatproto::config::settings`).
//! SIGINT or SIGTERM shuts down gracefully (clients are told, queues flushed, exit 0); if that
//! takes longer than [`GRACE`], or a second signal arrives, the process exits at once.

use anyhow::Context;
use chatproto::config::settings::Settings;
use chatproto::logging::LogSink;
use chatproto::server::{Shards, ShardsHandle};
use signal_hook::consts::{SIGINT, SIGTERM};
use signal_hook::iterator::Signals;
use std::io::{IsTerminal, Write};
use std::process::ExitCode;
use std::time::{Duration, Instant};

/// How long a graceful shutdown may take before the process exits anyway.
const GRACE: Duration = Duration::from_secs(5);
/// Exit status for a configuration error (as in sysexits' EX_CONFIG).
const EXIT_CONFIG: u8 = 78;

fn main() -> ExitCode {
    let settings = match Settings::from_env() {
        Ok(s) => s,
        Err(e) => {
            // Best effort: a broken stderr must not turn a config error into a panic.
            let _ = writeln!(std::io::stderr(), "chat-server: {e}");
            return ExitCode::from(EXIT_CONFIG);
        }
    };
    // Log lines go through a bounded queue to a writer thread: a stuck or broken stderr costs
    // log lines, never a blocked loop or a panic (and so never the signal thread).
    let sink = match LogSink::start(std::io::stderr(), settings.log_queue.max(1)) {
        Ok(sink) => sink,
        Err(e) => {
            let _ = writeln!(std::io::stderr(), "chat-server: cannot start the log writer: {e}");
            return ExitCode::FAILURE;
        }
    };
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::new(&settings.log_level))
        .with_writer(sink)
        .with_ansi(std::io::stderr().is_terminal())
        .log_internal_errors(false)
        .init();
    match serve(&settings) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            // Straight to stderr, not through the log queue: the process ends now, before the
            // log writer thread would get to the line.
            let _ = writeln!(std::io::stderr(), "chat-server: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn serve(settings: &Settings) -> anyhow::Result<()> {
    if let Some(path) = &settings.config {
        tracing::info!(config = %path.display(), "settings read from {}", path.display());
    }
    let fds = chatproto::net::raise_fd_limit();
    tracing::debug!("open-files limit: {fds}");
    let shards = Shards::bind(settings.server_config())?;
    let services = shards.services();
    if let Some(key) = services.generated_passkey() {
        // Printed, not logged: the admin hands it to the users (the usk2003 seed's behaviour).
        // Best effort: with stdout gone there is nobody to show it to.
        let _ = writeln!(std::io::stdout(), "passkey: {key}");
    }
    if settings.console {
        chatproto::services::console::spawn_console(services).context("starting the admin console")?;
    }
    let signals = Signals::new([SIGINT, SIGTERM]).context("installing signal handlers")?;
    let handle = shards.handle();
    std::thread::Builder::new()
        .name("signals".into())
        .spawn(move || on_signals(signals, handle))
        .context("starting the signal thread")?;
    shards.run()?;
    tracing::info!("stopped");
    Ok(())
}

/// Waits for SIGINT or SIGTERM and asks every shard to shut down; then exits the process if a
/// second signal comes or the shutdown overruns [`GRACE`].
fn on_signals(mut signals: Signals, shards: ShardsHandle) {
    let Some(first) = signals.forever().next() else { return };
    tracing::info!(signal = signal_name(first), "shutting down (a second signal exits at once)");
    shards.shutdown();
    let deadline = Instant::now() + GRACE;
    while Instant::now() < deadline {
        if let Some(second) = signals.pending().next() {
            tracing::warn!(signal = signal_name(second), "second signal: exiting without finishing the shutdown");
            std::process::exit(128 + second);
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    tracing::warn!("shutdown took longer than {} s: exiting anyway", GRACE.as_secs());
    std::process::exit(0);
}

fn signal_name(sig: i32) -> &'static str {
    match sig {
        SIGINT => "SIGINT",
        SIGTERM => "SIGTERM",
        _ => "signal",
    }
}
