//! Raw sockets with the suite's options: every connect and read is bounded by [`DEADLINE`].

use super::DEADLINE;
use socket2::{Domain, SockRef, Socket, Type};
use std::io::{self, ErrorKind, Read};
use std::net::{IpAddr, SocketAddr, TcpStream};
use std::time::{Duration, Instant};

/// Bytes asked of the socket per read.
pub(super) const READ_CHUNK: usize = 64 * 1024;

/// True for errors that mean the peer closed or reset the connection.
pub(super) fn is_closed(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        ErrorKind::UnexpectedEof | ErrorKind::ConnectionReset | ErrorKind::ConnectionAborted | ErrorKind::BrokenPipe
    )
}

/// True for a read timeout.
pub(super) fn is_timeout(e: &io::Error) -> bool {
    matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut)
}

/// A TCP connection to `addr` with the usual options, from `from` when given (any 127.x.y.z
/// address works on Linux loopback, which lets a test be several "hosts").
pub fn tcp_connect_from(from: Option<IpAddr>, addr: SocketAddr) -> io::Result<TcpStream> {
    connect_socket(from, None, addr)
}

/// A raw TCP connection to `addr` (no protocol spoken yet).
#[track_caller]
pub fn raw_connect(addr: SocketAddr) -> TcpStream {
    tcp_connect_from(None, addr).unwrap_or_else(|e| panic!("connect to {addr}: {e}"))
}

/// A raw connection whose receive buffer is set small before connecting (so the window stays
/// small and a non-reader fills up quickly).
#[track_caller]
pub fn raw_connect_small_rcvbuf(addr: SocketAddr, bytes: usize) -> TcpStream {
    connect_socket(None, Some(bytes), addr).unwrap_or_else(|e| panic!("connect to {addr}: {e}"))
}

fn connect_socket(from: Option<IpAddr>, rcvbuf: Option<usize>, addr: SocketAddr) -> io::Result<TcpStream> {
    let sock = Socket::new(Domain::for_address(addr), Type::STREAM, None)?;
    if let Some(bytes) = rcvbuf {
        sock.set_recv_buffer_size(bytes)?;
    }
    if let Some(ip) = from {
        sock.bind(&SocketAddr::new(ip, 0).into())?;
    }
    sock.connect_timeout(&addr.into(), DEADLINE)?;
    let tcp: TcpStream = sock.into();
    tcp.set_nodelay(true)?;
    tcp.set_read_timeout(Some(DEADLINE))?;
    tcp.set_write_timeout(Some(DEADLINE))?;
    Ok(tcp)
}

/// Closes `tcp` with SO_LINGER 0, so the kernel sends RST instead of FIN.
pub fn reset(tcp: TcpStream) {
    let _ = SockRef::from(&tcp).set_linger(Some(Duration::ZERO));
    drop(tcp);
}

/// Reads raw bytes until the peer closes (EOF or reset) within [`DEADLINE`]; returns what
/// arrived first, or an error if the connection stayed open.
pub fn read_until_closed(tcp: &mut TcpStream) -> io::Result<Vec<u8>> {
    let deadline = Instant::now() + DEADLINE;
    let mut got = Vec::new();
    let mut chunk = vec![0u8; READ_CHUNK];
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(io::Error::new(ErrorKind::TimedOut, format!("still open after {} bytes", got.len())));
        }
        tcp.set_read_timeout(Some(left))?;
        match tcp.read(&mut chunk) {
            Ok(0) => return Ok(got),
            Ok(n) => got.extend_from_slice(&chunk[..n]),
            Err(e) if e.kind() == ErrorKind::Interrupted || is_timeout(&e) => continue,
            Err(e) if is_closed(&e) => return Ok(got),
            Err(e) => return Err(e),
        }
    }
}
