//! `chat-server`: the ChatProto server. Binary and JSON clients, plain or TLS, on one port.

use anyhow::Context;
use chatproto::config::ServerConfig;
use chatproto::server::Cluster;
use clap::Parser;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

/// A LAN chat server speaking ChatProto v1.0 binary and JSON lines, plain or TLS, on one port.
#[derive(Parser, Debug)]
#[command(version, about)]
struct Args {
    /// TCP port to listen on.
    #[arg(long, short, default_value_t = 5555)]
    port: u16,
    /// Address to bind (0.0.0.0 serves the whole LAN; 127.0.0.1 this machine only).
    #[arg(long, short, default_value = "0.0.0.0")]
    bind: IpAddr,
    /// Certificate chain (PEM). Generated, self-signed, if it and the key are missing.
    #[arg(long, default_value = "certs/server.crt")]
    cert: PathBuf,
    /// Private key (PEM).
    #[arg(long, default_value = "certs/server.key")]
    key: PathBuf,
    /// Refuse plaintext connections.
    #[arg(long, conflicts_with = "no_tls")]
    tls_only: bool,
    /// Do not offer TLS (no certificate needed).
    #[arg(long)]
    no_tls: bool,
    /// Largest frame or JSON line accepted, in bytes.
    #[arg(long, default_value_t = 64 * 1024)]
    max_frame: usize,
    /// Per-connection outbound backlog, in bytes, before a slow reader is disconnected.
    #[arg(long, default_value_t = 1024 * 1024)]
    max_outbound: usize,
    /// Most connections at once.
    #[arg(long, default_value_t = 100_000)]
    max_connections: usize,
    /// Most connections from one address (loopback is exempt unless --limit-loopback).
    #[arg(long, default_value_t = 1024)]
    max_per_address: u32,
    /// Apply --max-per-address to loopback clients too.
    #[arg(long)]
    limit_loopback: bool,
    /// Seconds a connection may take to log in.
    #[arg(long, default_value_t = 30)]
    login_timeout: u64,
    /// Seconds of client silence before the server sends PING; it closes after twice that.
    #[arg(long, default_value_t = 60)]
    idle_ping: u64,
    /// Sustained messages per second per connection (0 = unlimited).
    #[arg(long, default_value_t = 100.0)]
    msg_rate: f64,
    /// Messages a connection may send in a burst.
    #[arg(long, default_value_t = 200.0)]
    msg_burst: f64,
    /// Log filter (error, warn, info, debug, trace, or a RUST_LOG-style directive).
    #[arg(long, default_value = "info", env = "RUST_LOG")]
    log_level: String,
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::try_new(&args.log_level).context("invalid --log-level")?)
        .with_writer(std::io::stderr)
        .init();
    let mut config = ServerConfig { bind: SocketAddr::new(args.bind, args.port), ..ServerConfig::default() };
    config.limits.max_frame = args.max_frame;
    config.max_outbound_bytes = args.max_outbound;
    config.max_connections = args.max_connections;
    config.max_per_address = args.max_per_address;
    config.exempt_loopback = !args.limit_loopback;
    config.login_timeout = Duration::from_secs(args.login_timeout);
    config.idle_ping = Duration::from_secs(args.idle_ping.max(1));
    config.idle_timeout = config.idle_ping * 2;
    config.rate_limit.rate = args.msg_rate;
    config.rate_limit.burst = args.msg_burst.max(1.0);
    config.tls.enabled = !args.no_tls;
    config.tls.tls_only = args.tls_only;
    config.tls.cert = args.cert;
    config.tls.key = args.key;
    raise_fd_limit();
    let cluster = Cluster::bind(config)?;
    cluster.run()?;
    Ok(())
}

/// Raises the soft open-files limit to the hard limit: 6,000+ clients need more than the usual
/// 1,024 descriptors.
fn raise_fd_limit() {
    // SAFETY: getrlimit/setrlimit only read and write the struct we pass.
    unsafe {
        let mut lim = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) == 0 && lim.rlim_cur < lim.rlim_max {
            let old = lim.rlim_cur;
            lim.rlim_cur = lim.rlim_max;
            if libc::setrlimit(libc::RLIMIT_NOFILE, &lim) == 0 {
                tracing::debug!("open-files limit raised from {old} to {}", lim.rlim_max);
            }
        }
    }
}
