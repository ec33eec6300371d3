//! `--server a:5555,b:5555`: the servers the client tries in turn, on connecting and on every
//! reconnection (a cluster's nodes, or a primary and a standby).

/// One server to try: host (name, IPv4 or IPv6 literal without brackets) and port.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Server {
    /// Host name or address.
    pub host: String,
    /// TCP port.
    pub port: u16,
}

/// Why a server list could not be read. `Display` is the message shown.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ServerListError {
    /// Nothing between two commas, or an empty list.
    #[error("empty entry in the server list '{0}' (expected host:port,host:port)")]
    Empty(String),
    /// A port that is not a number from 1 to 65535.
    #[error("bad port in '{0}' (expected a number from 1 to 65535)")]
    Port(String),
    /// An IPv6 literal without its closing bracket, or text after it that is not `:port`.
    #[error("bad address '{0}' (write IPv6 addresses as [::1]:5555)")]
    Address(String),
}

/// Parses `host[:port],host[:port],...`; entries without a port get `default_port`. IPv6
/// literals are written in brackets (`[::1]:5555`); a bare literal with several colons
/// (`::1`) is taken as a host without a port. Whitespace around entries is ignored.
pub fn parse_servers(spec: &str, default_port: u16) -> Result<Vec<Server>, ServerListError> {
    spec.split(',').map(|entry| parse_one(entry.trim(), spec, default_port)).collect()
}

fn parse_one(entry: &str, spec: &str, default_port: u16) -> Result<Server, ServerListError> {
    if entry.is_empty() {
        return Err(ServerListError::Empty(spec.to_string()));
    }
    let (host, port) = if let Some(rest) = entry.strip_prefix('[') {
        let (host, after) = rest.split_once(']').ok_or_else(|| ServerListError::Address(entry.to_string()))?;
        match after {
            "" => (host, None),
            _ => (host, Some(after.strip_prefix(':').ok_or_else(|| ServerListError::Address(entry.to_string()))?)),
        }
    } else if entry.matches(':').count() == 1 {
        let (host, port) = entry.split_once(':').unwrap_or((entry, ""));
        (host, Some(port))
    } else {
        (entry, None)
    };
    if host.is_empty() {
        return Err(ServerListError::Empty(spec.to_string()));
    }
    let port = match port {
        None => default_port,
        Some(p) => p.parse::<u16>().ok().filter(|p| *p != 0).ok_or_else(|| ServerListError::Port(entry.to_string()))?,
    };
    Ok(Server { host: host.to_string(), port })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(host: &str, port: u16) -> Server {
        Server { host: host.into(), port }
    }

    #[test]
    fn lists_with_and_without_ports() {
        assert_eq!(parse_servers("a:5555,b:6666", 1), Ok(vec![s("a", 5555), s("b", 6666)]));
        assert_eq!(parse_servers(" a , b:7 ", 5555), Ok(vec![s("a", 5555), s("b", 7)]));
        assert_eq!(parse_servers("10.0.0.1", 5555), Ok(vec![s("10.0.0.1", 5555)]));
    }

    #[test]
    fn ipv6_literals() {
        assert_eq!(parse_servers("[::1]:5555,[fe80::2]", 9), Ok(vec![s("::1", 5555), s("fe80::2", 9)]));
        assert_eq!(parse_servers("::1", 9), Ok(vec![s("::1", 9)]));
        assert!(matches!(parse_servers("[::1", 9), Err(ServerListError::Address(_))));
        assert!(matches!(parse_servers("[::1]5555", 9), Err(ServerListError::Address(_))));
    }

    #[test]
    fn mistakes_are_explained() {
        assert!(matches!(parse_servers("", 1), Err(ServerListError::Empty(_))));
        assert!(matches!(parse_servers("a:1,,b:2", 1), Err(ServerListError::Empty(_))));
        assert!(matches!(parse_servers(":5555", 1), Err(ServerListError::Empty(_))));
        assert_eq!(parse_servers("a:http", 1), Err(ServerListError::Port("a:http".into())));
        assert!(matches!(parse_servers("a:0", 1), Err(ServerListError::Port(_))));
        assert!(matches!(parse_servers("a:70000", 1), Err(ServerListError::Port(_))));
        assert!(ServerListError::Port("a:x".into()).to_string().contains("1 to 65535"));
    }
}
