//! The transport seam: a connection's byte stream over one of several layers (plain TCP, TLS).
//! WebSocket framing sits above it, in `conn::web`, because it rewrites bytes in the shard's
//! read arena. The event loop reads plaintext into a buffer and flushes an outbound queue
//! without knowing which layer is underneath, and learns how each call went as an [`Outcome`]
//! instead of decoding `io::Error` kinds. Byte counters always count what crossed the socket
//! (ciphertext under TLS). A new layer is one arm of [`Layer`] and one file beside this one.

use super::buffer::OutQueue;
use super::tls::{Acceptor, TlsSession};
use super::{would_block, WireCount};
use mio::net::TcpStream;
use std::io::{self, Read};

/// First byte of a TLS handshake record.
pub const TLS_HANDSHAKE: u8 = 0x16;

/// Most unread input discarded when closing, so that the close is a FIN and not a reset.
pub const CLOSE_DRAIN: usize = 256 * 1024;

/// How one read or flush went.
#[derive(Debug)]
pub enum Outcome {
    /// This many bytes moved (plaintext read, or bytes written to the socket); more may follow.
    Progress(usize),
    /// Nothing more can move until the next readiness event.
    WouldBlock,
    /// The peer ended the stream cleanly (EOF, or TLS close_notify).
    Fin,
    /// The socket failed (reset, broken pipe): the connection is gone.
    Reset(io::Error),
    /// The layer above TCP failed (a bad TLS record or handshake): close, after the alert.
    Fatal(io::Error),
}

impl Outcome {
    /// Classifies a read's result: `Ok(0)` is the end of the stream; `InvalidData` is the
    /// layer's own protocol failing.
    fn of_read(r: io::Result<usize>) -> Outcome {
        match r {
            Ok(0) => Outcome::Fin,
            Ok(n) => Outcome::Progress(n),
            Err(e) if would_block(&e) => Outcome::WouldBlock,
            Err(e) if e.kind() == io::ErrorKind::InvalidData => Outcome::Fatal(e),
            Err(e) => Outcome::Reset(e),
        }
    }
}

/// The layer over the TCP socket.
enum Layer {
    /// Plain TCP (and every connection before its first byte arrives).
    Plain,
    /// TLS, once the first byte was a handshake record.
    Tls(Box<TlsSession>),
}

/// A client's byte stream: a TCP socket, with a layer on top once the first byte asked for it.
pub struct Transport {
    /// The socket, registered with the poll under the connection's token.
    pub sock: TcpStream,
    /// What runs over the socket.
    layer: Layer,
}

/// What the first byte on a fresh connection asks for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Opening {
    /// Nothing has arrived yet.
    Nothing,
    /// The peer closed before sending anything.
    Closed,
    /// A TLS ClientHello.
    Tls,
    /// Plaintext starting with this byte (binary or JSON, decided by the decoder layer).
    Plain(u8),
}

impl Transport {
    /// A plaintext transport over `sock`.
    pub fn new(sock: TcpStream) -> Self {
        Transport { sock, layer: Layer::Plain }
    }

    /// The TLS session, once started.
    fn tls(&self) -> Option<&TlsSession> {
        match &self.layer {
            Layer::Tls(t) => Some(t),
            Layer::Plain => None,
        }
    }

    /// True once TLS was started.
    pub fn is_tls(&self) -> bool {
        self.tls().is_some()
    }

    /// True while a TLS handshake is in progress.
    pub fn is_handshaking(&self) -> bool {
        self.tls().is_some_and(|t| t.is_handshaking())
    }

    /// Looks at (without consuming) the first byte to choose plaintext or TLS.
    pub fn peek_opening(&mut self) -> io::Result<Opening> {
        let mut b = [0u8; 1];
        loop {
            return match self.sock.peek(&mut b) {
                Ok(0) => Ok(Opening::Closed),
                Ok(_) if b[0] == TLS_HANDSHAKE => Ok(Opening::Tls),
                Ok(_) => Ok(Opening::Plain(b[0])),
                Err(e) if would_block(&e) => Ok(Opening::Nothing),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => Err(e),
            };
        }
    }

    /// Starts a server-side TLS session on this connection.
    pub fn start_tls(&mut self, acceptor: &Acceptor) {
        self.layer = Layer::Tls(Box::new(acceptor.session()));
    }

    /// Reads plaintext into `buf`.
    pub fn read(&mut self, buf: &mut [u8], wire: &mut WireCount) -> Outcome {
        let r = match &mut self.layer {
            Layer::Tls(tls) => tls.read(&mut self.sock, buf, wire),
            Layer::Plain => loop {
                match self.sock.read(buf) {
                    Ok(n) => {
                        wire.read += n as u64;
                        break Ok(n);
                    }
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                    Err(e) => break Err(e),
                }
            },
        };
        Outcome::of_read(r)
    }

    /// Writes as much of `queue` as the socket takes; `Progress` counts the bytes that reached
    /// the socket (possibly 0: then the queue is empty or waits for a writable edge). Under TLS,
    /// plaintext moves into the session only as far as its bounded buffer allows; the rest
    /// waits in `queue`.
    #[inline]
    pub fn flush(&mut self, queue: &mut OutQueue, wire: &mut WireCount) -> Outcome {
        let before = wire.written;
        let r = match &mut self.layer {
            Layer::Tls(tls) => tls.flush(&mut self.sock, queue, wire),
            Layer::Plain => queue.write_to(&mut self.sock).map(|n| wire.written += n as u64),
        };
        match r {
            Ok(()) => Outcome::Progress((wire.written - before) as usize),
            Err(e) if would_block(&e) => Outcome::WouldBlock,
            Err(e) => Outcome::Reset(e),
        }
    }

    /// True when output is waiting below our queue (TLS records not yet on the socket).
    pub fn has_pending_output(&self) -> bool {
        self.tls().is_some_and(|t| t.wants_write())
    }

    /// Bytes buffered inside the transport (TLS), counted against the outbound cap.
    pub fn buffered(&self) -> usize {
        self.tls().map_or(0, |t| t.buffered())
    }

    /// Starts a clean close: a TLS close_notify where TLS is up, then FIN after what the kernel
    /// still has to send. Input nobody will read is drained first (at most [`CLOSE_DRAIN`]
    /// bytes): closing a socket with unread input makes the kernel send a reset and drop what
    /// it has not delivered yet, such as the last ERROR_MSG of a slow consumer.
    pub fn close(&mut self, wire: &mut WireCount) {
        if let Layer::Tls(tls) = &mut self.layer {
            tls.close(&mut self.sock, wire);
        }
        let _ = self.sock.shutdown(std::net::Shutdown::Write);
        let mut sink = [0u8; 4096];
        let mut drained = 0;
        while drained < CLOSE_DRAIN {
            match self.sock.read(&mut sink) {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    drained += n;
                    wire.read += n as u64;
                }
            }
        }
    }
}

#[cfg(test)]
#[path = "transport_tests.rs"]
mod tests;
