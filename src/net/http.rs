//! HTTP/1.1 on the chat port: the web app's embedded files, the WebSocket opening handshake
//! (RFC 6455 §4.2), and short, correct errors. One request per connection: every answer but
//! the upgrade ends with `Connection: close`. Sans-IO: a request head in, response bytes out.
//!
//! The files come from `web/` at build time (`build.rs` writes the table), so the server needs
//! no file system and no network to serve its app.

use base64::Engine as _;
use sha1::{Digest, Sha1};

/// One embedded file.
#[derive(Debug)]
pub struct Asset {
    /// URL path, from the root (`/index.html`).
    pub path: &'static str,
    /// The file's bytes, in the binary.
    pub body: &'static [u8],
    /// Its `Content-Type`.
    pub content_type: &'static str,
    /// Its `ETag` (a content hash, quoted).
    pub etag: &'static str,
}

include!(concat!(env!("OUT_DIR"), "/web_assets.rs"));

/// The path that upgrades to a WebSocket carrying the JSON protocol.
pub const WS_PATH: &str = "/ws";

/// The path of the server's public settings (JSON): what the web app needs before signing in.
pub const SITE_PATH: &str = "/config.json";

/// The subprotocol the server names when a client offers it (optional).
pub const SUBPROTOCOL: &str = "chatproto.json";

/// The policy every page is served under: nothing from elsewhere, no inline script or style.
pub const CSP: &str = "default-src 'self'; connect-src 'self' ws: wss:; img-src 'self' data: blob:; \
     style-src 'self'; script-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; \
     frame-ancestors 'none'";

/// Most headers parsed in one request; more is answered 431.
const MAX_HEADERS: usize = 48;

/// The GUID RFC 6455 appends to the client's key.
const WS_GUID: &str = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

/// What to do with the bytes of a request head.
#[derive(Debug, PartialEq, Eq)]
pub enum Answer {
    /// The head is not complete yet.
    Incomplete,
    /// A valid WebSocket upgrade: send `response`, then speak WebSocket; the head was `used`
    /// bytes (what follows is already WebSocket frames).
    Upgrade { response: Vec<u8>, used: usize },
    /// Send `head` and then `body`, then close. `status` for logs and counters.
    Reply { status: u16, head: Vec<u8>, body: &'static [u8] },
    /// A GET (or HEAD, `head_only`) of [`SITE_PATH`]: the caller answers with its settings
    /// (this module knows no configuration) through [`site_head`], then closes.
    Site { head_only: bool },
}

/// The head of a 200 answer to [`SITE_PATH`] with a JSON body of `len` bytes.
pub fn site_head(len: usize) -> Vec<u8> {
    head(200, &[("Content-Type", "application/json")], Some(len))
}

/// The answer to a plaintext HTTP request on a TLS-only server: use `https://`.
pub fn tls_required() -> Vec<u8> {
    match error(400, "this server accepts TLS only: use https:// (or wss://)") {
        Answer::Reply { head, .. } => head,
        _ => Vec::new(),
    }
}

/// Reads a request head from the front of `buf`; a head over `max_head` bytes is answered 431.
/// A WebSocket upgrade whose Origin is not this Host is refused unless `trusted` says yes to
/// the Origin's `HOST:PORT` (another node of this server's cluster).
pub fn answer(buf: &[u8], max_head: usize, trusted: &dyn Fn(&str) -> bool) -> Answer {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut req = httparse::Request::new(&mut headers);
    let window = &buf[..buf.len().min(max_head)];
    match req.parse(window) {
        Ok(httparse::Status::Complete(used)) => respond(&req, used, trusted),
        Ok(httparse::Status::Partial) if buf.len() > max_head => error(431, "request head too large"),
        Ok(httparse::Status::Partial) => Answer::Incomplete,
        Err(httparse::Error::TooManyHeaders) => error(431, "too many request headers"),
        Err(_) => error(400, "malformed HTTP request"),
    }
}

/// The answer to a complete, parsed request.
fn respond(req: &httparse::Request<'_, '_>, used: usize, trusted: &dyn Fn(&str) -> bool) -> Answer {
    let method = req.method.unwrap_or("");
    let target = req.path.unwrap_or("/");
    let path = target.split(['?', '#']).next().unwrap_or("/");
    let head_only = method == "HEAD";
    if method != "GET" && !head_only {
        return error(405, "only GET is served here");
    }
    if header(req, "content-length").is_some_and(|v| v.trim() != "0") || header(req, "transfer-encoding").is_some() {
        return error(413, "request bodies are not accepted");
    }
    if path == WS_PATH {
        return match upgrade(req, head_only, trusted) {
            Ok(response) => Answer::Upgrade { response, used },
            Err((status, why)) => error(status, why),
        };
    }
    if path == SITE_PATH {
        return Answer::Site { head_only };
    }
    let path = if path == "/" { "/index.html" } else { path };
    let Some(asset) = ASSETS.iter().find(|a| a.path == path) else { return error(404, "no such page") };
    if header(req, "if-none-match").is_some_and(|v| v.split(',').any(|t| t.trim() == asset.etag)) {
        return Answer::Reply { status: 304, head: head(304, &[("ETag", asset.etag)], None), body: b"" };
    }
    let extra = [("Content-Type", asset.content_type), ("ETag", asset.etag)];
    let body = if head_only { &b""[..] } else { asset.body };
    Answer::Reply { status: 200, head: head(200, &extra, Some(asset.body.len())), body }
}

/// Checks a WebSocket upgrade request and builds the 101 response.
fn upgrade(
    req: &httparse::Request<'_, '_>,
    head_only: bool,
    trusted: &dyn Fn(&str) -> bool,
) -> Result<Vec<u8>, (u16, &'static str)> {
    let bad = |why| Err((400, why));
    if head_only || req.version != Some(1) {
        return bad("a WebSocket upgrade is a GET over HTTP/1.1");
    }
    if !header(req, "upgrade").is_some_and(|v| has_token(v, "websocket")) {
        return bad("this path only accepts a WebSocket upgrade (Upgrade: websocket)");
    }
    if !header(req, "connection").is_some_and(|v| has_token(v, "upgrade")) {
        return bad("missing Connection: Upgrade");
    }
    if header(req, "sec-websocket-version").map(str::trim) != Some("13") {
        return bad("Sec-WebSocket-Version must be 13");
    }
    let key = header(req, "sec-websocket-key").map(str::trim).unwrap_or("");
    let decoded = base64::engine::general_purpose::STANDARD.decode(key).unwrap_or_default();
    if decoded.len() != 16 {
        return bad("Sec-WebSocket-Key must be 16 bytes in base64");
    }
    if let Some(origin) = header(req, "origin") {
        let host = header(req, "host").unwrap_or("");
        if !same_host(origin, host) && !trusted(authority(origin)) {
            return Err((
                403,
                "cross-origin WebSocket refused (Origin is neither this Host nor a node of its cluster)",
            ));
        }
    }
    let mut out = format!(
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: {}\r\n",
        accept_key(key)
    );
    if header(req, "sec-websocket-protocol").is_some_and(|v| has_token(v, SUBPROTOCOL)) {
        out.push_str(&format!("Sec-WebSocket-Protocol: {SUBPROTOCOL}\r\n"));
    }
    out.push_str("\r\n");
    Ok(out.into_bytes())
}

/// `Sec-WebSocket-Accept` for a client's key: base64(SHA-1(key + GUID)).
pub fn accept_key(key: &str) -> String {
    let mut sha = Sha1::new();
    sha.update(key.as_bytes());
    sha.update(WS_GUID.as_bytes());
    base64::engine::general_purpose::STANDARD.encode(sha.finalize())
}

/// True when `origin` (`scheme://host[:port]`) names the same authority as `host`.
fn same_host(origin: &str, host: &str) -> bool {
    !host.is_empty() && authority(origin).eq_ignore_ascii_case(host.trim())
}

/// The `host[:port]` of an Origin (`scheme://host[:port]`).
fn authority(origin: &str) -> &str {
    origin.trim().split_once("://").map_or(origin, |(_, a)| a).trim_end_matches('/')
}

/// The first header named `name` (case-insensitive), as text.
fn header<'a>(req: &'a httparse::Request<'_, '_>, name: &str) -> Option<&'a str> {
    let h = req.headers.iter().find(|h| h.name.eq_ignore_ascii_case(name))?;
    std::str::from_utf8(h.value).ok()
}

/// True when the comma-separated header value lists `token` (case-insensitive).
fn has_token(value: &str, token: &str) -> bool {
    value.split(',').any(|t| t.trim().eq_ignore_ascii_case(token))
}

/// An error reply with a one-line text body.
fn error(status: u16, why: &'static str) -> Answer {
    let mut extra = vec![("Content-Type", "text/plain; charset=utf-8")];
    match status {
        405 => extra.push(("Allow", "GET, HEAD")),
        400 => extra.push(("Sec-WebSocket-Version", "13")),
        _ => {}
    }
    let mut head = head(status, &extra, Some(why.len() + 1));
    head.extend_from_slice(why.as_bytes());
    head.push(b'\n');
    Answer::Reply { status, head, body: b"" }
}

/// A response head with the security headers every answer carries.
fn head(status: u16, extra: &[(&str, &str)], len: Option<usize>) -> Vec<u8> {
    let mut s = format!("HTTP/1.1 {status} {}\r\n", reason(status));
    for (name, value) in extra {
        s.push_str(&format!("{name}: {value}\r\n"));
    }
    if let Some(len) = len {
        s.push_str(&format!("Content-Length: {len}\r\n"));
    }
    s.push_str("Cache-Control: no-cache\r\n");
    s.push_str(&format!("Content-Security-Policy: {CSP}\r\n"));
    s.push_str("X-Content-Type-Options: nosniff\r\nX-Frame-Options: DENY\r\nReferrer-Policy: no-referrer\r\n");
    s.push_str("Connection: close\r\n\r\n");
    s.into_bytes()
}

/// The reason phrase for the statuses this module sends.
fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        304 => "Not Modified",
        400 => "Bad Request",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        413 => "Content Too Large",
        431 => "Request Header Fields Too Large",
        _ => "Error",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// No cluster: only same-origin upgrades.
    fn none(_: &str) -> bool {
        false
    }
    const NONE: fn(&str) -> bool = none;

    #[test]
    fn accept_key_matches_the_rfc_example() {
        assert_eq!(accept_key("dGhlIHNhbXBsZSBub25jZQ=="), "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
    }

    #[test]
    fn an_upgrade_is_answered_101_and_reports_the_head_length() {
        let req = b"GET /ws HTTP/1.1\r\nHost: a:1\r\nOrigin: http://a:1\r\nUpgrade: websocket\r\n\
            Connection: keep-alive, Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
            Sec-WebSocket-Version: 13\r\n\r\nNEXT";
        let Answer::Upgrade { response, used } = answer(req, 8192, &NONE) else { panic!("not an upgrade") };
        assert_eq!(used, req.len() - 4);
        let text = String::from_utf8(response).unwrap();
        assert!(text.starts_with("HTTP/1.1 101 "), "{text}");
        assert!(text.contains("Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n"), "{text}");
    }

    #[test]
    fn bad_requests_get_their_status() {
        let status = |req: &[u8], max| match answer(req, max, &NONE) {
            Answer::Reply { status, .. } => status,
            other => panic!("{other:?}"),
        };
        assert_eq!(status(b"GET /nope HTTP/1.1\r\n\r\n", 8192), 404);
        assert_eq!(status(b"POST / HTTP/1.1\r\n\r\n", 8192), 405);
        assert_eq!(status(b"GET /ws HTTP/1.1\r\nUpgrade: websocket\r\n\r\n", 8192), 400);
        assert_eq!(status(b"GET / HTTP/1.1\r\nContent-Length: 5\r\n\r\n", 8192), 413);
        assert_eq!(status(b"G\x01T / HTTP/1.1\r\n\r\n", 8192), 400);
        let long = [b"GET / HTTP/1.1\r\nX: ".as_slice(), &[b'a'; 600]].concat();
        assert_eq!(status(&long, 512), 431);
        assert_eq!(answer(b"GET / HTTP/1.1\r\nHost: x\r\n", 8192, &NONE), Answer::Incomplete);
        assert_eq!(answer(b"GET /config.json HTTP/1.1\r\n\r\n", 8192, &NONE), Answer::Site { head_only: false });
        assert_eq!(answer(b"HEAD /config.json?x HTTP/1.1\r\n\r\n", 8192, &NONE), Answer::Site { head_only: true });
        let cross = b"GET /ws HTTP/1.1\r\nHost: a:1\r\nOrigin: http://evil:1\r\nUpgrade: websocket\r\n\
            Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n";
        assert_eq!(status(cross, 8192), 403);
    }

    #[test]
    fn an_origin_of_another_cluster_node_is_trusted_and_only_that() {
        let upgrade_from = |origin: &str| {
            format!(
                "GET /ws HTTP/1.1\r\nHost: b:2\r\nOrigin: {origin}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
                 Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
            )
        };
        // What a cluster node's list says (config::site::Advertised::knows): node a is ours.
        let trusted = |authority: &str| authority.eq_ignore_ascii_case("a:1");
        let status =
            |origin: &str, trusted: &dyn Fn(&str) -> bool| match answer(upgrade_from(origin).as_bytes(), 8192, trusted)
            {
                Answer::Upgrade { .. } => 101,
                Answer::Reply { status, .. } => status,
                other => panic!("{other:?}"),
            };
        assert_eq!(status("http://a:1", &trusted), 101, "a page served by node a");
        assert_eq!(status("https://A:1/", &trusted), 101);
        assert_eq!(status("http://b:2", &NONE), 101, "same origin needs no list");
        assert_eq!(status("http://a:1", &NONE), 403, "not a cluster node here");
        assert_eq!(status("http://evil:1", &trusted), 403);
        assert_eq!(status("http://a:10", &trusted), 403);
        assert_eq!(status("http://a:1.evil", &trusted), 403);
    }

    #[test]
    fn the_index_is_embedded_and_served_with_the_policy() {
        let Answer::Reply { status, head, body } = answer(b"GET / HTTP/1.1\r\n\r\n", 8192, &NONE) else { panic!() };
        assert_eq!(status, 200);
        let head = String::from_utf8(head).unwrap();
        assert!(head.contains("Content-Type: text/html; charset=utf-8\r\n"), "{head}");
        assert!(head.contains("Content-Security-Policy: default-src 'self'"), "{head}");
        assert!(!body.is_empty());
    }
}
