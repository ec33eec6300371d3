//! The plain/TLS seam. The event loop reads plaintext into a buffer and flushes an outbound queue
//! without knowing whether TLS is underneath; byte counters always count what crossed the socket
//! (ciphertext under TLS).

use super::buffer::OutQueue;
use super::tls::{Acceptor, TlsSession};
use super::WireCount;
use mio::net::TcpStream;
use std::io::{self, Read};

/// First byte of a TLS handshake record.
pub const TLS_HANDSHAKE: u8 = 0x16;

/// A client's byte stream: a TCP socket, with TLS on top once the first byte asked for it.
pub struct Transport {
    /// The socket, registered with the poll under the connection's token.
    pub sock: TcpStream,
    /// TLS state; `None` for plaintext connections (and before the first byte arrives).
    tls: Option<Box<TlsSession>>,
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
        Transport { sock, tls: None }
    }

    /// True once TLS was started.
    pub fn is_tls(&self) -> bool {
        self.tls.is_some()
    }

    /// True while a TLS handshake is in progress.
    pub fn is_handshaking(&self) -> bool {
        self.tls.as_ref().is_some_and(|t| t.is_handshaking())
    }

    /// Looks at (without consuming) the first byte to choose plaintext or TLS.
    pub fn peek_opening(&mut self) -> io::Result<Opening> {
        let mut b = [0u8; 1];
        loop {
            return match self.sock.peek(&mut b) {
                Ok(0) => Ok(Opening::Closed),
                Ok(_) if b[0] == TLS_HANDSHAKE => Ok(Opening::Tls),
                Ok(_) => Ok(Opening::Plain(b[0])),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok(Opening::Nothing),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => Err(e),
            };
        }
    }

    /// Starts a server-side TLS session on this connection.
    pub fn start_tls(&mut self, acceptor: &Acceptor) {
        self.tls = Some(Box::new(acceptor.session()));
    }

    /// Reads plaintext into `buf`. `Ok(0)` is end of stream; `WouldBlock` means drained.
    pub fn read(&mut self, buf: &mut [u8], wire: &mut WireCount) -> io::Result<usize> {
        match &mut self.tls {
            Some(tls) => tls.read(&mut self.sock, buf, wire),
            None => loop {
                match self.sock.read(buf) {
                    Ok(n) => {
                        wire.read += n as u64;
                        return Ok(n);
                    }
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                    Err(e) => return Err(e),
                }
            },
        }
    }

    /// Writes as much of `queue` as the socket takes. Under TLS, plaintext moves into the
    /// session only as far as its bounded buffer allows; the rest waits in `queue`.
    pub fn flush(&mut self, queue: &mut OutQueue, wire: &mut WireCount) -> io::Result<()> {
        match &mut self.tls {
            Some(tls) => tls.flush(&mut self.sock, queue, wire),
            None => {
                wire.written += queue.write_to(&mut self.sock)? as u64;
                Ok(())
            }
        }
    }

    /// True when output is waiting below our queue (TLS records not yet on the socket).
    pub fn has_pending_output(&self) -> bool {
        self.tls.as_ref().is_some_and(|t| t.wants_write())
    }

    /// Bytes buffered inside the transport (TLS), counted against the outbound cap.
    pub fn buffered(&self) -> usize {
        self.tls.as_ref().map_or(0, |t| t.buffered())
    }

    /// Starts a clean close: a TLS close_notify where TLS is up, then one last write attempt.
    pub fn close(&mut self, wire: &mut WireCount) {
        if let Some(tls) = &mut self.tls {
            tls.close(&mut self.sock, wire);
        }
        let _ = self.sock.shutdown(std::net::Shutdown::Both);
    }
}
