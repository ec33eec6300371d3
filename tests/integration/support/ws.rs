//! The WebSocket side of the suite: upgrade requests, [`Client`]s over `ws://` and `wss://`
//! (the same blocking client, speaking [`WireFormat::WebSocket`]), masked frames built by hand,
//! the server's frames read back until it closes, and plain HTTP requests.

use super::net::{raw_connect, read_until_closed};
use super::{wsframe, Client, WireFormat};
use bytes::BytesMut;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;

/// A valid upgrade request for `/ws` on `host`, with `extra` header lines (each ending `\r\n`).
pub fn upgrade_request(host: &str, extra: &str) -> Vec<u8> {
    format!(
        "GET /ws HTTP/1.1\r\nHost: {host}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n{extra}\r\n"
    )
    .into_bytes()
}

/// Upgrades a connected client; panics unless the server answers 101.
#[track_caller]
fn upgraded(mut c: Client, addr: SocketAddr) -> Client {
    let head = c.upgrade(&upgrade_request(&addr.to_string(), "")).expect("upgrade");
    assert!(head.starts_with("HTTP/1.1 101 "), "not upgraded: {head}");
    assert!(head.contains("Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n"), "{head}");
    assert_eq!(c.format, WireFormat::WebSocket);
    c
}

/// A client speaking JSON over `ws://addr/ws`.
#[track_caller]
pub fn ws_connect(addr: SocketAddr) -> Client {
    upgraded(Client::connect(addr, WireFormat::Json), addr)
}

/// A client speaking JSON over `wss://addr/ws`, trusting only `ca`.
#[track_caller]
pub fn ws_connect_tls(addr: SocketAddr, ca: &Path) -> Client {
    upgraded(Client::connect_tls(addr, WireFormat::Json, ca), addr)
}

/// A raw socket already upgraded (the 101 head read and checked), for frame-level tests.
#[track_caller]
pub fn ws_raw(addr: SocketAddr) -> TcpStream {
    let mut tcp = raw_connect(addr);
    tcp.write_all(&upgrade_request(&addr.to_string(), "")).expect("send upgrade");
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") && head.len() < 4096 {
        assert_eq!(tcp.read(&mut byte).expect("read the 101"), 1, "closed during the handshake");
        head.push(byte[0]);
    }
    assert!(head.starts_with(b"HTTP/1.1 101 "), "{}", String::from_utf8_lossy(&head));
    tcp
}

/// A masked client frame (the key varies with the payload, as a browser's would).
pub fn masked(fin: bool, opcode: u8, payload: &[u8]) -> Vec<u8> {
    let key = [0x5a, payload.len() as u8, 0xc3, 0x17];
    let mut out = BytesMut::new();
    wsframe::write_header(&mut out, fin, opcode, payload.len(), Some(key));
    let at = out.len();
    out.extend_from_slice(payload);
    wsframe::apply_mask(&mut out[at..], key, 0);
    out.to_vec()
}

/// A server frame as read back.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WsFrame {
    /// Its opcode.
    pub opcode: u8,
    /// Its payload.
    pub payload: Vec<u8>,
}

impl WsFrame {
    /// A close frame's status code.
    pub fn close_code(&self) -> Option<u16> {
        (self.opcode == wsframe::OP_CLOSE && self.payload.len() >= 2)
            .then(|| u16::from_be_bytes([self.payload[0], self.payload[1]]))
    }
}

/// Every frame the server sends until it closes the connection (bounded by the deadline).
#[track_caller]
pub fn frames_until_closed(tcp: &mut TcpStream) -> Vec<WsFrame> {
    let bytes = read_until_closed(tcp).expect("the server closes");
    let mut rest = &bytes[..];
    let mut frames = Vec::new();
    while !rest.is_empty() {
        let (h, payload) = wsframe::server_frame(rest).expect("a valid server frame").expect("a whole frame");
        frames.push(WsFrame { opcode: h.opcode, payload: rest[payload.clone()].to_vec() });
        rest = &rest[payload.end..];
    }
    frames
}

/// Sends `request` on a new connection and returns the whole response (status, head, body),
/// read until the server closes.
#[track_caller]
pub fn http_get(addr: SocketAddr, request: &[u8]) -> (u16, String, Vec<u8>) {
    let mut tcp = raw_connect(addr);
    tcp.write_all(request).expect("send request");
    let all = read_until_closed(&mut tcp).expect("the server answers and closes");
    let end = all.windows(4).position(|w| w == b"\r\n\r\n").expect("a response head") + 4;
    let head = String::from_utf8_lossy(&all[..end]).into_owned();
    let status = head.get(9..12).and_then(|s| s.parse().ok()).expect("a status code");
    (status, head, all[end..].to_vec())
}
