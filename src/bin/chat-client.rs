//! `chat-client`: a terminal client for ChatProto servers.
//!
//! ```text
//! chat-client <username> [host] [port] [--server host:port,host:port] [--json] [--tls] [--ca FILE]
//!             [--insecure] [--passkey KEY] [--register] [--no-reconnect] [--no-timestamps]
//! ```
//!
//! Lines typed go to the current room; `/help` lists the commands. Incoming messages print
//! above the line being typed, with their time, in colour (not under `NO_COLOR` or when output
//! is not a terminal). A dropped connection is re-established with back-off (1 s, doubling to
//! 30 s), trying each `--server` in turn, logging in again and rejoining the room; a kick ends
//! the session. Exit status: 0 after `/quit` or end of input, 1 when connecting or logging in
//! fails or the connection is lost for good.
//!
//! This file is the command line only; the client is [`chatproto::client::app`].

use chatproto::client::app::{self, Config, Ending};
use chatproto::client::servers::{parse_servers, Server};
use chatproto::client::style::{color_from_env, Style};
use chatproto::client::{ClientTrust, ConnectOptions};
use chatproto::protocol::WireFormat;
use clap::Parser;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

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
    /// Servers to try in turn, on connecting and on every reconnection: `host:port,host:port`
    /// (`[::1]:5555` for IPv6; a missing port is the PORT argument). Replaces HOST and PORT.
    /// On a cluster, list its nodes: when yours dies the client moves to the next one; until the
    /// dead node's hold on your name expires (the servers' --cluster-name-ttl, 10 s by default)
    /// the name is refused as taken, and the client keeps retrying.
    #[arg(long, value_name = "LIST", value_parser = server_list)]
    server: Option<ServerList>,
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
    /// Create the account (servers with `--auth accounts`) with the --password given (at least
    /// 8 bytes), then log in; reconnects log in normally.
    #[arg(long, requires = "passkey")]
    register: bool,
    /// Seconds allowed for connecting, the TLS handshake and the login reply.
    #[arg(long, value_name = "SECS", default_value_t = 10)]
    timeout: u64,
    /// Exit instead of reconnecting when the connection drops.
    #[arg(long)]
    no_reconnect: bool,
    /// Print lines without the HH:MM time in front.
    #[arg(long)]
    no_timestamps: bool,
}

/// `--server`'s value: one argument holding the whole list.
#[derive(Clone, Debug)]
struct ServerList(Vec<Server>);

/// `--server`'s parser; a missing port is 0 here and PORT in [`Args::servers`].
fn server_list(s: &str) -> Result<ServerList, String> {
    parse_servers(s, 0).map(ServerList).map_err(|e| e.to_string())
}

impl Args {
    /// The `--server` list, with PORT for entries that gave none.
    fn servers(&self) -> Vec<Server> {
        let list = self.server.clone().map(|l| l.0).unwrap_or_default();
        list.into_iter().map(|s| Server { port: if s.port == 0 { self.port } else { s.port }, ..s }).collect()
    }

    fn connect_options(&self) -> ConnectOptions {
        let (host, port) = match self.servers().first() {
            Some(s) => (s.host.clone(), s.port),
            None => (self.host.clone(), self.port),
        };
        let mut opts = ConnectOptions::new(host, port);
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

    fn config(&self) -> Config {
        Config {
            opts: self.connect_options(),
            servers: self.servers(),
            style: Style { color: color_from_env(), timestamps: !self.no_timestamps },
            username: self.username.clone(),
            passkey: self.passkey.clone(),
            register: self.register,
            reconnect: !self.no_reconnect,
        }
    }
}

/// The shortest password the server accepts on REGISTER (its rule, checked here first so the
/// mistake is explained before connecting).
const MIN_PASSWORD: usize = 8;

fn main() -> ExitCode {
    let args = Args::parse();
    if args.register && args.passkey.as_ref().is_some_and(|p| p.len() < MIN_PASSWORD) {
        eprintln!("error: the password must be at least {MIN_PASSWORD} bytes");
        return ExitCode::FAILURE;
    }
    if args.insecure {
        eprintln!("WARNING: --insecure: the server's identity is NOT verified.");
        eprintln!("WARNING: anyone on the network path can impersonate the server and read your");
        eprintln!("WARNING: messages. Use --ca FILE with the server's certificate instead.");
    }
    match run(args.config()) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// Connects (a failure is explained, with a hint, and is exit status 1), then runs the session.
fn run(config: Config) -> anyhow::Result<ExitCode> {
    let conn = match app::connect(&config) {
        Ok(ok) => ok,
        Err(e) => {
            eprintln!("error: {}", e.describe(config.opts.tls.as_ref()));
            return Ok(ExitCode::FAILURE);
        }
    };
    Ok(match app::run(config, conn)? {
        Ending::Quit => ExitCode::SUCCESS,
        Ending::Lost => ExitCode::FAILURE,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use chatproto::client::{ClientError, TlsError};
    use chatproto::protocol::ErrorCode;

    fn args(extra: &[&str]) -> Args {
        Args::parse_from(["chat-client", "alice"].iter().chain(extra))
    }

    /// The error and its hint as printed for these arguments.
    fn describe(e: &ClientError, args: &Args) -> String {
        e.describe(args.connect_options().tls.as_ref())
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
    fn session_config() {
        let c = args(&["--password", "pw", "--register", "--no-reconnect", "--timeout", "0"]).config();
        assert_eq!((c.username.as_str(), c.passkey.as_deref()), ("alice", Some("pw")));
        assert!(c.register && !c.reconnect);
        assert_eq!(c.opts.connect_timeout, Duration::from_secs(1));
        let c = args(&[]).config();
        assert!(!c.register && c.reconnect && c.passkey.is_none());
        assert!(Args::try_parse_from(["chat-client", "a", "--register"]).is_err(), "--register needs a password");
    }

    #[test]
    fn server_lists() {
        let a = args(&["--server", "a:1,b", "127.0.0.1", "7000"]);
        let names: Vec<(String, u16)> = a.servers().into_iter().map(|s| (s.host, s.port)).collect();
        assert_eq!(names, [("a".to_string(), 1), ("b".to_string(), 7000)], "a missing port is PORT");
        let o = a.connect_options();
        assert_eq!((o.host.as_str(), o.port), ("a", 1));
        assert!(args(&[]).servers().is_empty());
        let err = Args::try_parse_from(["chat-client", "a", "--server", "x:port"]).expect_err("bad port");
        assert!(err.to_string().contains("bad port"), "{err}");
        assert!(!args(&["--no-timestamps"]).config().style.timestamps);
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
