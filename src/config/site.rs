//! What the HTTP side of the chat port says about the server beyond its files: the public
//! settings at `GET /config.json`, and, on a cluster node, the addresses clients reach the
//! cluster's nodes at ([`Advertised`]) — listed there as `"servers"` for the web app to fail
//! over to, and trusted as the Origin of a WebSocket upgrade (a page served by another node of
//! the cluster is our own app).

use bytes::Bytes;
use std::sync::{Arc, RwLock, RwLockReadGuard, RwLockWriteGuard};

/// Most addresses remembered as trusted origins (one per node seen, normally); past it the
/// oldest is forgotten.
pub const MAX_KNOWN: usize = 256;

/// The client-facing addresses (`HOST:PORT`) of a cluster's nodes, shared between the link
/// thread, which writes them, and the shards, which read them when a client asks (rare:
/// `/config.json` and WebSocket upgrades, never per message). Clones share one list.
#[derive(Clone, Debug, Default)]
pub struct Advertised(Arc<RwLock<Addresses>>);

#[derive(Debug, Default, PartialEq, Eq)]
struct Addresses {
    /// This node's own (`--advertise`), or empty: not listed.
    own: String,
    /// This node's (first, if set) and the other live nodes', as clients should try them.
    live: Vec<String>,
    /// Every address a node of the cluster advertised since this node started, oldest first,
    /// at most [`MAX_KNOWN`]: a page loaded from a node that has died since is still ours.
    known: Vec<String>,
}

impl PartialEq for Advertised {
    /// Equal when they list the same addresses now.
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.0, &other.0) || *self.read() == *other.read()
    }
}

impl Eq for Advertised {}

impl Advertised {
    /// A list holding only this node's own address (`own`, may be empty).
    pub fn new(own: &str) -> Advertised {
        let list = Advertised::default();
        list.write().own = own.to_string();
        list.set_live(Vec::new());
        list
    }

    fn read(&self) -> RwLockReadGuard<'_, Addresses> {
        self.0.read().unwrap_or_else(|e| e.into_inner())
    }

    fn write(&self) -> RwLockWriteGuard<'_, Addresses> {
        self.0.write().unwrap_or_else(|e| e.into_inner())
    }

    /// This node's own address, or empty.
    pub fn own(&self) -> String {
        self.read().own.clone()
    }

    /// Gives a `HOST` without a port the port this node listens on (known only once bound).
    pub fn complete_port(&self, port: u16) {
        let own = self.own();
        if !own.is_empty() && !has_port(&own) {
            self.write().own = format!("{own}:{port}");
            self.set_live(Vec::new());
        }
    }

    /// The other nodes' live addresses changed: the list is now this node's, then `others`
    /// (each once); all of them are remembered as trusted origins.
    pub fn set_live(&self, others: Vec<String>) {
        let mut a = self.write();
        let mut live = Vec::with_capacity(others.len() + 1);
        for addr in std::iter::once(a.own.clone()).chain(others) {
            if !addr.is_empty() && !live.iter().any(|l: &String| l.eq_ignore_ascii_case(&addr)) {
                live.push(addr);
            }
        }
        for addr in &live {
            if !a.known.iter().any(|k| k.eq_ignore_ascii_case(addr)) {
                if a.known.len() >= MAX_KNOWN {
                    a.known.remove(0);
                }
                a.known.push(addr.clone());
            }
        }
        a.live = live;
    }

    /// The live addresses, this node's first.
    pub fn live(&self) -> Vec<String> {
        self.read().live.clone()
    }

    /// True when `authority` (`HOST:PORT`) is, or was, a node's advertised address.
    pub fn knows(&self, authority: &str) -> bool {
        self.read().known.iter().any(|k| k.eq_ignore_ascii_case(authority))
    }
}

/// True when `addr` ends in `:PORT` (`host:1`, `[::1]:1`; not a bare IPv6 literal).
fn has_port(addr: &str) -> bool {
    match addr.rsplit_once(':') {
        Some((host, port)) => {
            !port.is_empty() && port.bytes().all(|b| b.is_ascii_digit()) && (!host.contains(':') || host.ends_with(']'))
        }
        None => false,
    }
}

/// Checks an `--advertise` value: `HOST` or `HOST:PORT` (`[v6]:PORT`), no scheme or path.
pub fn check_advertise(addr: &str) -> Result<(), String> {
    let bad = |why: &str| Err(format!("{addr:?} {why} (expected HOST:PORT, e.g. chat1.lan:5555)"));
    if addr.len() > 255 || addr.bytes().any(|b| b.is_ascii_whitespace() || b",/@?#\"'<>\\".contains(&b)) {
        return bad("is not a host and port");
    }
    if has_port(addr) {
        let port = addr.rsplit_once(':').map_or("", |(_, p)| p);
        if !port.parse::<u16>().is_ok_and(|p| p != 0) {
            return bad("has a port outside 1 to 65535");
        }
        if addr.rsplit_once(':').is_some_and(|(h, _)| h.is_empty() || h == "[]") {
            return bad("has no host");
        }
    } else if addr.contains(':') && !addr.starts_with('[') {
        return bad("has an empty port, or is an IPv6 address without brackets");
    }
    Ok(())
}

/// The body of `GET /config.json`, and the origins a WebSocket upgrade may come from.
#[derive(Debug)]
pub struct Site {
    /// The settings object, rendered; ends with `}`.
    settings: Bytes,
    /// The cluster's addresses, on a cluster node.
    cluster: Option<Advertised>,
}

impl Site {
    /// The settings (a JSON object, rendered once) and, on a cluster node, its addresses.
    pub fn new(settings: serde_json::Value, cluster: Option<Advertised>) -> Site {
        let mut settings = settings;
        if let Some(obj) = settings.as_object_mut() {
            obj.remove("servers");
        }
        Site { settings: Bytes::from(settings.to_string()), cluster }
    }

    /// A fixed body with no cluster (tests).
    pub const fn fixed(body: Bytes) -> Site {
        Site { settings: body, cluster: None }
    }

    /// The body: the settings with `"servers": [...]`, the cluster's live addresses (this
    /// node's first; empty outside a cluster or when no node advertises one).
    pub fn body(&self) -> Bytes {
        let Some(obj) = self.settings.strip_suffix(b"}") else { return self.settings.clone() };
        let live = self.cluster.as_ref().map(Advertised::live).unwrap_or_default();
        let list = serde_json::to_string(&live).unwrap_or_else(|_| "[]".into());
        let sep = if obj.ends_with(b"{") { "" } else { "," };
        let mut out = Vec::with_capacity(self.settings.len() + list.len() + 16);
        out.extend_from_slice(obj);
        out.extend_from_slice(format!("{sep}\"servers\":{list}}}").as_bytes());
        Bytes::from(out)
    }

    /// True when a WebSocket upgrade from a page at `authority` (`HOST:PORT`, from its Origin)
    /// may be accepted although it is not this node's Host: it is one of the cluster's nodes.
    pub fn trusts_origin(&self, authority: &str) -> bool {
        self.cluster.as_ref().is_some_and(|c| c.knows(authority))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_list_is_this_node_then_the_others_and_remembers_the_dead() {
        let a = Advertised::new("a.lan");
        a.complete_port(5555);
        assert_eq!(a.own(), "a.lan:5555");
        a.set_live(vec!["b.lan:5556".into(), "A.LAN:5555".into(), "c.lan:1".into()]);
        assert_eq!(a.live(), ["a.lan:5555", "b.lan:5556", "c.lan:1"]);
        a.set_live(vec!["c.lan:1".into()]);
        assert_eq!(a.live(), ["a.lan:5555", "c.lan:1"]);
        assert!(a.knows("B.lan:5556"), "a node that left is still trusted");
        assert!(!a.knows("evil:5556") && !a.knows("b.lan:5557"));
        let quiet = Advertised::new("");
        quiet.set_live(vec!["b:1".into()]);
        assert_eq!(quiet.live(), ["b:1"]);
        let v6 = Advertised::new("[::1]:7");
        v6.complete_port(9);
        assert_eq!(v6.own(), "[::1]:7");
    }

    #[test]
    fn config_json_gains_the_live_list() {
        let settings = serde_json::json!({"server": "chatproto", "servers": ["stale"]});
        assert_eq!(Site::new(settings.clone(), None).body(), r#"{"server":"chatproto","servers":[]}"#);
        let list = Advertised::new("a:1");
        let site = Site::new(settings, Some(list.clone()));
        list.set_live(vec!["b:2".into()]);
        assert_eq!(site.body(), r#"{"server":"chatproto","servers":["a:1","b:2"]}"#);
        assert_eq!(Site::new(serde_json::json!({}), None).body(), r#"{"servers":[]}"#);
        assert!(site.trusts_origin("b:2") && !site.trusts_origin("c:3"));
        assert!(!Site::new(serde_json::json!({}), None).trusts_origin("a:1"));
    }

    #[test]
    fn advertise_values_are_checked() {
        for ok in ["a", "a:1", "chat1.lan:5555", "10.0.0.1:5555", "[::1]:5555", "[fe80::1]"] {
            assert_eq!(check_advertise(ok), Ok(()), "{ok}");
        }
        for bad in ["http://a:1", "a:0", "a:99999", "a b:1", ":1", "a:", "a:1,b:2", "a/x", "::1"] {
            assert!(check_advertise(bad).is_err(), "{bad}");
        }
    }
}
