//! Connection buffers: the carry-over of a partial inbound frame, the loop's shared read arena,
//! and the bounded outbound queue of shared `Bytes` flushed with vectored writes.
//!
//! Inbound bytes land in one preallocated [`ReadArena`] per event loop, and frames are decoded in
//! place from it. Only the tail of a frame that has not fully arrived is copied into the
//! connection's own [`Pending`] carry-over, so an idle connection holds no read memory at all.

use bytes::{Buf, Bytes};
use std::collections::VecDeque;
use std::io::{self, IoSlice, Write};

/// The loop's read buffer, reused by every connection in turn.
///
/// Invariant: `len <= buf.len()`; `buf[..len]` holds the connection's carry-over followed by the
/// bytes just read. `buf.len()` is at least `max_frame + header + MIN_READ`, so a carry-over
/// (always shorter than a whole frame) leaves room to read more.
pub struct ReadArena {
    /// Preallocated storage; never grows.
    buf: Box<[u8]>,
    /// Bytes of `buf` in use.
    len: usize,
}

/// Space the arena always keeps for a read after the largest carry-over.
pub const MIN_READ: usize = 16 * 1024;

impl ReadArena {
    /// An arena able to hold a frame of `max_frame` bytes plus room to read.
    pub fn new(max_frame: usize) -> Self {
        let size = max_frame + crate::protocol::HEADER_LEN + 64 * 1024;
        ReadArena { buf: vec![0; size].into_boxed_slice(), len: 0 }
    }

    /// Starts a new connection's turn: loads its carry-over (and empties it).
    pub fn load(&mut self, pending: &mut Pending) {
        let n = pending.buf.len();
        self.buf[..n].copy_from_slice(&pending.buf);
        self.len = n;
        pending.clear();
    }

    /// The unused space to read into.
    pub fn spare(&mut self) -> &mut [u8] {
        &mut self.buf[self.len..]
    }

    /// Records that `n` bytes were read into [`spare`](Self::spare).
    pub fn filled(&mut self, n: usize) {
        self.len = (self.len + n).min(self.buf.len());
    }

    /// The bytes waiting to be decoded.
    pub fn data(&self) -> &[u8] {
        &self.buf[..self.len]
    }

    /// The bytes waiting, to be rewritten in place (WebSocket unmasking).
    pub fn data_mut(&mut self) -> &mut [u8] {
        &mut self.buf[..self.len]
    }

    /// Keeps only the first `len` bytes (after an in-place rewrite made the data shorter).
    pub fn truncate(&mut self, len: usize) {
        self.len = self.len.min(len);
    }

    /// Drops the first `n` decoded bytes, moving the rest to the front (a partial frame only).
    pub fn consume(&mut self, n: usize) {
        let n = n.min(self.len);
        self.buf.copy_within(n..self.len, 0);
        self.len -= n;
    }

    /// True when less than [`MIN_READ`] bytes of space remain.
    pub fn is_full(&self) -> bool {
        self.buf.len() - self.len < MIN_READ
    }

    /// Ends the connection's turn: what is left is a partial frame, kept in its carry-over.
    pub fn stash(&mut self, pending: &mut Pending) {
        pending.store(&self.buf[..self.len]);
        self.len = 0;
    }
}

/// A connection's partial inbound frame between reads. Empty (no allocation kept beyond
/// [`Pending::KEEP`] bytes of capacity) when the connection is idle.
#[derive(Default, Debug)]
pub struct Pending {
    /// The bytes of the partial frame; always shorter than one whole frame.
    buf: Vec<u8>,
}

impl Pending {
    /// Capacity kept after a carry-over is used; larger allocations are released.
    const KEEP: usize = 512;

    fn clear(&mut self) {
        self.buf.clear();
        if self.buf.capacity() > Self::KEEP {
            self.buf = Vec::new();
        }
    }

    fn store(&mut self, bytes: &[u8]) {
        self.buf.clear();
        self.buf.extend_from_slice(bytes);
    }

    /// Bytes held.
    pub fn len(&self) -> usize {
        self.buf.len()
    }

    /// True when no partial frame is held.
    pub fn is_empty(&self) -> bool {
        self.buf.is_empty()
    }
}

/// Returned by [`OutQueue::push`] when the queue is over its cap: the peer is a slow consumer.
/// It hands the refused frame back, so callers need not clone a shared frame just in case.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueueFull(pub Bytes);

/// Outbound queue of shared, immutable frames. A room message is one `Bytes` referenced by every
/// member's queue; nothing is copied until the kernel (or TLS) takes it.
///
/// Invariant: `queued` is the sum of the lengths of the `Bytes` in `frames`, and no frame in
/// `frames` is empty. Policy when full: [`push`](Self::push) refuses (the caller disconnects the
/// slow consumer); [`push_final`](Self::push_final) may exceed the cap once, for a last error frame.
#[derive(Debug, Default)]
pub struct OutQueue {
    /// Frames in send order; the front may be partly written (already advanced).
    frames: VecDeque<Bytes>,
    /// Bytes waiting in `frames`.
    queued: usize,
    /// True when the front frame is partly written: the peer has its beginning, so it must be
    /// finished before anything else, or the stream loses its framing.
    front_started: bool,
}

/// Most slices handed to one `writev` (Linux's IOV_MAX is 1024; 64 covers a loop turn's burst).
pub const MAX_IOVECS: usize = 64;

impl OutQueue {
    /// Bytes waiting.
    pub fn queued(&self) -> usize {
        self.queued
    }

    /// True when nothing is waiting.
    pub fn is_empty(&self) -> bool {
        self.queued == 0
    }

    /// Queues a frame unless that would take the queue past `cap` bytes.
    pub fn push(&mut self, frame: Bytes, cap: usize) -> Result<(), QueueFull> {
        if self.queued + frame.len() > cap {
            return Err(QueueFull(frame));
        }
        self.push_final(frame);
        Ok(())
    }

    /// Queues a frame regardless of the cap (for the final error frame before a close).
    pub fn push_final(&mut self, frame: Bytes) {
        if frame.is_empty() {
            return;
        }
        self.queued += frame.len();
        self.frames.push_back(frame);
    }

    /// Drops everything waiting (the peer is gone).
    pub fn clear(&mut self) {
        self.frames.clear();
        self.queued = 0;
        self.front_started = false;
    }

    /// Drops the backlog but keeps a partly written front frame, so frames queued afterwards
    /// (a last ERROR_MSG to a slow consumer) still start on a frame boundary.
    pub fn drop_backlog(&mut self) {
        let keep = if self.front_started { 1 } else { 0 };
        self.frames.truncate(keep);
        self.queued = self.frames.iter().map(|f| f.len()).sum();
    }

    /// Writes as much as `w` takes with vectored writes of up to [`MAX_IOVECS`] frames, until
    /// the queue is empty or `w` would block. Returns the bytes written; `WouldBlock` is not an
    /// error here (check [`is_empty`](Self::is_empty)), other errors are returned.
    #[inline]
    pub fn write_to<W: Write + ?Sized>(&mut self, w: &mut W) -> io::Result<usize> {
        let mut total = 0;
        while !self.frames.is_empty() {
            let mut slices = [IoSlice::new(&[]); MAX_IOVECS];
            let n = self.frames.iter().zip(slices.iter_mut()).map(|(f, s)| *s = IoSlice::new(f)).count();
            match w.write_vectored(&slices[..n]) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(written) => {
                    total += written;
                    self.advance(written);
                }
                Err(e) if super::would_block(&e) => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            }
        }
        Ok(total)
    }

    /// Marks `n` bytes as written: drops whole frames, advances a partly written one.
    fn advance(&mut self, mut n: usize) {
        self.queued -= n;
        while n > 0 {
            let Some(front) = self.frames.front_mut() else { break };
            if n >= front.len() {
                n -= front.len();
                self.frames.pop_front();
                self.front_started = false;
            } else {
                front.advance(n);
                self.front_started = true;
                n = 0;
            }
        }
        if self.frames.is_empty() && self.frames.capacity() > 64 {
            self.frames = VecDeque::new();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A writer that takes at most `limit` bytes per call, then blocks after `calls` calls.
    struct Trickle {
        out: Vec<u8>,
        limit: usize,
        calls: usize,
    }

    impl Write for Trickle {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            self.write_vectored(&[IoSlice::new(buf)])
        }
        fn write_vectored(&mut self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
            if self.calls == 0 {
                return Err(io::ErrorKind::WouldBlock.into());
            }
            self.calls -= 1;
            let mut n = 0;
            for b in bufs {
                let take = (self.limit - n).min(b.len());
                self.out.extend_from_slice(&b[..take]);
                n += take;
            }
            Ok(n)
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn partial_writes_resume_in_order() {
        let mut q = OutQueue::default();
        let shared = Bytes::from_static(b"hello ");
        for _ in 0..3 {
            q.push(shared.clone(), 1024).unwrap();
        }
        q.push(Bytes::from_static(b"world"), 1024).unwrap();
        let mut w = Trickle { out: Vec::new(), limit: 4, calls: 2 };
        assert_eq!(q.write_to(&mut w).unwrap(), 8);
        assert_eq!(q.queued(), 23 - 8);
        w.calls = 100;
        q.write_to(&mut w).unwrap();
        assert!(q.is_empty());
        assert_eq!(w.out, b"hello hello hello world");
    }

    #[test]
    fn dropping_the_backlog_keeps_a_started_frame() {
        let mut q = OutQueue::default();
        q.push(Bytes::from_static(b"frame-one|"), 1024).unwrap();
        q.push(Bytes::from_static(b"frame-two|"), 1024).unwrap();
        let mut w = Trickle { out: Vec::new(), limit: 4, calls: 1 };
        q.write_to(&mut w).unwrap();
        q.drop_backlog();
        q.push_final(Bytes::from_static(b"error|"));
        w.calls = 100;
        w.limit = 1024;
        q.write_to(&mut w).unwrap();
        assert_eq!(w.out, b"frame-one|error|");
        let mut q = OutQueue::default();
        q.push(Bytes::from_static(b"unsent"), 1024).unwrap();
        q.drop_backlog();
        assert!(q.is_empty());
    }

    #[test]
    fn cap_refuses_then_final_frame_passes() {
        let mut q = OutQueue::default();
        q.push(Bytes::from(vec![0; 60]), 100).unwrap();
        assert_eq!(q.push(Bytes::from(vec![0; 41]), 100), Err(QueueFull(Bytes::from(vec![0; 41]))));
        q.push_final(Bytes::from(vec![0; 41]));
        assert_eq!(q.queued(), 101);
    }

    #[test]
    fn arena_carries_partial_frames() {
        let mut arena = ReadArena::new(1024);
        let mut pending = Pending::default();
        arena.load(&mut pending);
        arena.spare()[..5].copy_from_slice(b"abcde");
        arena.filled(5);
        arena.consume(2);
        assert_eq!(arena.data(), b"cde");
        arena.stash(&mut pending);
        assert_eq!(pending.len(), 3);
        arena.load(&mut pending);
        assert!(pending.is_empty());
        assert_eq!(arena.data(), b"cde");
    }
}
