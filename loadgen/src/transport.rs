//! The plain/TLS seam: a bot's socket plus an optional TLS session, a read buffer that frames are
//! decoded from in place, and byte counting of everything that crosses the socket.

use bytes::{Buf, BytesMut};
use chatproto::net::would_block;
use mio::net::TcpStream;
use std::io::{self, Read, Write};

use crate::tls::{TlsRead, TlsSession};

/// Bytes that crossed one socket (ciphertext when TLS is on).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct WireBytes {
    /// Read from the socket.
    pub read: u64,
    /// Written to the socket.
    pub written: u64,
}

/// A socket adapter that counts bytes, so rustls' `read_tls`/`write_tls` are counted too.
struct Counted<'a> {
    sock: &'a mut TcpStream,
    bytes: &'a mut WireBytes,
}

impl Read for Counted<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.sock.read(buf)?;
        self.bytes.read += n as u64;
        Ok(n)
    }
}

impl Write for Counted<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.sock.write(buf)?;
        self.bytes.written += n as u64;
        Ok(n)
    }
    fn write_vectored(&mut self, bufs: &[io::IoSlice<'_>]) -> io::Result<usize> {
        let n = self.sock.write_vectored(bufs)?;
        self.bytes.written += n as u64;
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// What a read produced.
#[derive(Debug, PartialEq, Eq)]
pub enum ReadOutcome {
    /// This many plaintext bytes were appended to the read buffer.
    Data(usize),
    /// Nothing more until the next readiness event.
    WouldBlock,
    /// The server closed the connection.
    Closed,
}

/// Plain TCP or TLS over TCP.
pub enum Transport {
    /// Bytes go straight to the socket.
    Plain,
    /// Bytes go through a TLS session.
    Tls(Box<TlsSession>),
}

impl Transport {
    /// True while a TLS handshake is still running.
    pub fn is_handshaking(&self) -> bool {
        match self {
            Transport::Plain => false,
            Transport::Tls(t) => t.is_handshaking(),
        }
    }

    /// Reads some plaintext into `dst` (not empty).
    pub fn read(&mut self, sock: &mut TcpStream, bytes: &mut WireBytes, dst: &mut [u8]) -> io::Result<ReadOutcome> {
        let mut io = Counted { sock, bytes };
        match self {
            Transport::Plain => loop {
                match io.read(dst) {
                    Ok(0) => return Ok(ReadOutcome::Closed),
                    Ok(n) => return Ok(ReadOutcome::Data(n)),
                    Err(e) if would_block(&e) => return Ok(ReadOutcome::WouldBlock),
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                    Err(e) => return Err(e),
                }
            },
            Transport::Tls(t) => Ok(match t.read(&mut io, dst)? {
                TlsRead::Data(n) => ReadOutcome::Data(n),
                TlsRead::WouldBlock => ReadOutcome::WouldBlock,
                TlsRead::Closed => ReadOutcome::Closed,
            }),
        }
    }

    /// Writes as much of `out` as the socket takes (consuming it), plus any TLS records pending.
    /// `Ok(true)` when nothing is left waiting.
    pub fn write(&mut self, sock: &mut TcpStream, bytes: &mut WireBytes, out: &mut BytesMut) -> io::Result<bool> {
        let mut io = Counted { sock, bytes };
        match self {
            Transport::Plain => {
                while !out.is_empty() {
                    match io.write(out) {
                        Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                        Ok(n) => out.advance(n),
                        Err(e) if would_block(&e) => return Ok(false),
                        Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                        Err(e) => return Err(e),
                    }
                }
                Ok(true)
            }
            Transport::Tls(t) => loop {
                if !out.is_empty() {
                    let n = t.write_plain(out)?;
                    out.advance(n);
                }
                if !t.flush(&mut io)? {
                    return Ok(false);
                }
                if out.is_empty() {
                    return Ok(true);
                }
            },
        }
    }
}

/// A read buffer: frames are decoded in place from `buf[start..end]`, consumed from the front,
/// and the rest is moved to the front with `copy_within` when space runs out.
///
/// Invariant: `start <= end <= buf.len() <= max`.
pub struct InBuf {
    /// Storage.
    buf: Vec<u8>,
    /// First unconsumed byte.
    start: usize,
    /// One past the last received byte.
    end: usize,
    /// Largest size the buffer may grow to (one whole maximum frame).
    max: usize,
}

impl InBuf {
    /// A buffer of `initial` bytes that may grow to `max`.
    pub fn new(initial: usize, max: usize) -> Self {
        InBuf { buf: vec![0; initial.min(max)], start: 0, end: 0, max }
    }

    /// Received, unconsumed bytes.
    pub fn data(&self) -> &[u8] {
        &self.buf[self.start..self.end]
    }

    /// Drops `n` bytes from the front.
    pub fn consume(&mut self, n: usize) {
        self.start += n;
        debug_assert!(self.start <= self.end);
        if self.start == self.end {
            self.start = 0;
            self.end = 0;
        }
    }

    /// Free space at the back, compacting or growing first if it is smaller than `min`.
    /// Empty only when the buffer is at `max` and full (a frame larger than the limit).
    pub fn spare(&mut self, min: usize) -> &mut [u8] {
        if self.buf.len() - self.end < min && self.start > 0 {
            self.buf.copy_within(self.start..self.end, 0);
            self.end -= self.start;
            self.start = 0;
        }
        if self.buf.len() - self.end < min && self.buf.len() < self.max {
            let new = (self.buf.len() * 2).max(self.end + min).min(self.max);
            self.buf.resize(new, 0);
        }
        &mut self.buf[self.end..]
    }

    /// Marks `n` bytes written into [`InBuf::spare`] as received.
    pub fn commit(&mut self, n: usize) {
        self.end += n;
        debug_assert!(self.end <= self.buf.len());
    }

    /// Current storage size.
    pub fn capacity(&self) -> usize {
        self.buf.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inbuf_compacts_then_grows() {
        let mut b = InBuf::new(8, 32);
        b.spare(1)[..6].copy_from_slice(b"abcdef");
        b.commit(6);
        b.consume(4);
        assert_eq!(b.data(), b"ef");
        // 2 free at the back, asking for 4: compaction alone is enough.
        assert!(b.spare(4).len() >= 4);
        assert_eq!(b.capacity(), 8);
        assert_eq!(b.data(), b"ef");
        b.spare(1)[..6].copy_from_slice(b"ghijkl");
        b.commit(6);
        assert_eq!(b.data(), b"efghijkl");
        assert_eq!(b.spare(4).len(), 8);
        assert_eq!(b.capacity(), 16);
        b.consume(8);
        assert_eq!(b.data(), b"");
        let s = b.spare(100).len();
        assert_eq!(s, 32);
    }
}
