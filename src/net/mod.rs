//! Sockets and bytes: listeners with the options a busy chat server wants (socket2), the
//! predicates for non-blocking results, the process's open-files limit, byte counters, and the
//! layers a connection's bytes pass through:
//! - [`buffer`]: the shared read arena, a connection's partial frame, the bounded outbound queue.
//! - [`transport`]: the seam over plain TCP and TLS: read plaintext, flush a queue, report how.
//! - [`tls`]: every rustls call (server sessions, certificates, the blocking client stream).
//! - [`http`]: HTTP/1.1 on the chat port: the embedded web app, the WebSocket handshake.

pub mod buffer;
pub mod http;
pub mod tls;
pub mod transport;

use socket2::{Domain, Protocol, Socket, Type};
use std::io;
use std::net::{SocketAddr, TcpListener};

/// Accept backlog: deep enough that a connection storm (thousands of bots connecting at once)
/// waits in the kernel rather than being refused. The kernel caps it at `net.core.somaxconn`.
pub const BACKLOG: i32 = 4096;

/// Binds a non-blocking listener on `addr`. With `reuse_port`, several listeners (one per shard)
/// can bind the same address and the kernel spreads connections over them.
pub fn listen(addr: SocketAddr, reuse_port: bool) -> io::Result<TcpListener> {
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    socket.set_reuse_address(true)?;
    if reuse_port {
        socket.set_reuse_port(true)?;
    }
    if addr.is_ipv6() {
        // Accept IPv4 too on a wildcard IPv6 bind, as users expect from "::".
        let _ = socket.set_only_v6(false);
    }
    socket.set_nonblocking(true)?;
    socket.bind(&addr.into())?;
    socket.listen(BACKLOG)?;
    Ok(socket.into())
}

/// True for errors that mean "out of file descriptors" (EMFILE, ENFILE): accept must back off.
pub fn is_fd_exhaustion(e: &io::Error) -> bool {
    matches!(e.raw_os_error(), Some(libc::EMFILE) | Some(libc::ENFILE))
}

/// True for `WouldBlock`: the non-blocking call has nothing more to do now.
pub fn would_block(e: &io::Error) -> bool {
    e.kind() == io::ErrorKind::WouldBlock
}

/// True for errors that concern only the connection being accepted (it was reset or aborted
/// before we got to it); accepting carries on.
pub fn is_transient_accept_error(e: &io::Error) -> bool {
    matches!(e.kind(), io::ErrorKind::ConnectionAborted | io::ErrorKind::ConnectionReset | io::ErrorKind::Interrupted)
        || matches!(e.raw_os_error(), Some(libc::EPROTO) | Some(libc::ENOBUFS) | Some(libc::ENOMEM))
}

/// Bytes that crossed a socket, per direction (ciphertext under TLS).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct WireCount {
    /// Bytes read from sockets.
    pub read: u64,
    /// Bytes written to sockets.
    pub written: u64,
}

/// Lifts the soft open-files limit to the hard one: every connection is a descriptor, and the
/// usual soft limit is 1,024. Returns the soft limit in force afterwards (0 if it is unknown).
pub fn raise_fd_limit() -> u64 {
    // SAFETY: getrlimit/setrlimit only read and write the struct we pass.
    unsafe {
        let mut lim = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) != 0 {
            return 0;
        }
        if lim.rlim_cur < lim.rlim_max {
            let want = libc::rlimit { rlim_cur: lim.rlim_max, rlim_max: lim.rlim_max };
            if libc::setrlimit(libc::RLIMIT_NOFILE, &want) == 0 {
                return want.rlim_cur;
            }
        }
        lim.rlim_cur
    }
}
