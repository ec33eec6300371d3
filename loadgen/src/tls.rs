//! Client-side TLS for the bots: the only module that names rustls (0.23, `ring` provider).
//!
//! The pump follows rustls' `tlsclient-mio` model, non-blocking: `read_tls` → `process_new_packets`
//! (an error is fatal; one last `write_tls` carries the alert) → drain `reader()`; plaintext goes in
//! through `writer()`, bounded by rustls' buffer limit, and out with `write_tls` until it would
//! block. Every socket read and write goes through the caller's counting adapter, so the byte
//! counts are ciphertext.

use chatproto::net::tls::{client_config, ClientTrust, TlsError};
use chatproto::net::would_block;
use rustls::pki_types::ServerName;
use rustls::{ClientConfig, ClientConnection};
use std::io::{self, Read, Write};
use std::sync::Arc;

use crate::scenario::{TlsOptions, TlsTrust};

/// Why TLS could not be set up.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TlsSetupError {
    #[error("cannot read CA file {path}: {msg}")]
    Ca { path: String, msg: String },
    #[error("bad TLS server name {0:?}")]
    ServerName(String),
    #[error("TLS configuration: {0}")]
    Config(String),
}

/// Shared client configuration: one per run, cloned cheaply into every session.
#[derive(Clone)]
pub struct TlsClient {
    config: Arc<ClientConfig>,
    name: ServerName<'static>,
}

impl TlsClient {
    /// Builds the configuration for `opts`, with the server crate's own client config (the same
    /// trust rules and `--insecure` verifier as `chat-client`).
    pub fn new(opts: &TlsOptions) -> Result<Self, TlsSetupError> {
        let trust = match &opts.trust {
            TlsTrust::Ca(path) => ClientTrust::CaFile(path.clone()),
            TlsTrust::Insecure => ClientTrust::Insecure,
        };
        let config = client_config(&trust).map_err(|e| match e {
            TlsError::Pem { path, what } => TlsSetupError::Ca { path: path.display().to_string(), msg: what },
            other => TlsSetupError::Config(other.to_string()),
        })?;
        let name = ServerName::try_from(opts.server_name.clone())
            .map_err(|_| TlsSetupError::ServerName(opts.server_name.clone()))?;
        Ok(TlsClient { config, name })
    }

    /// A new session (one per bot connection).
    pub fn session(&self) -> io::Result<TlsSession> {
        let conn = ClientConnection::new(self.config.clone(), self.name.clone()).map_err(io::Error::other)?;
        Ok(TlsSession { conn })
    }
}

/// One bot's TLS state.
pub struct TlsSession {
    conn: ClientConnection,
}

/// Result of pulling plaintext out of a session.
#[derive(Debug)]
pub enum TlsRead {
    /// This many plaintext bytes were copied into the buffer.
    Data(usize),
    /// Nothing more until the socket is readable again.
    WouldBlock,
    /// The peer closed (cleanly or not).
    Closed,
}

impl TlsSession {
    /// True until the handshake is done.
    pub fn is_handshaking(&self) -> bool {
        self.conn.is_handshaking()
    }

    /// Copies available plaintext into `dst`, reading and decrypting from `sock` as needed.
    /// `dst` must not be empty.
    pub fn read<S: Read + Write>(&mut self, sock: &mut S, dst: &mut [u8]) -> io::Result<TlsRead> {
        loop {
            match self.conn.reader().read(dst) {
                Ok(0) => return Ok(TlsRead::Closed),
                Ok(n) => return Ok(TlsRead::Data(n)),
                Err(e) if would_block(&e) => {}
                Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(TlsRead::Closed),
                Err(e) => return Err(e),
            }
            match self.conn.read_tls(sock) {
                Ok(0) => return Ok(TlsRead::Closed),
                Ok(_) => {}
                Err(e) if would_block(&e) => return Ok(TlsRead::WouldBlock),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            }
            if let Err(e) = self.conn.process_new_packets() {
                // Try to tell the peer why; the connection is over either way.
                let _ = self.conn.write_tls(sock);
                return Err(io::Error::new(io::ErrorKind::InvalidData, e));
            }
        }
    }

    /// Hands plaintext to rustls; returns how much it took (bounded by its buffer limit).
    pub fn write_plain(&mut self, data: &[u8]) -> io::Result<usize> {
        self.conn.writer().write(data)
    }

    /// Writes pending ciphertext to `sock`. `Ok(true)`: all written; `Ok(false)`: would block.
    pub fn flush<S: Write>(&mut self, sock: &mut S) -> io::Result<bool> {
        while self.conn.wants_write() {
            match self.conn.write_tls(sock) {
                Ok(_) => {}
                Err(e) if would_block(&e) => return Ok(false),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(true)
    }
}
