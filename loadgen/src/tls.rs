//! Client-side TLS for the bots: the only module that names rustls (0.23, `ring` provider).
//!
//! The pump follows rustls' `tlsclient-mio` model, non-blocking: `read_tls` → `process_new_packets`
//! (an error is fatal; one last `write_tls` carries the alert) → drain `reader()`; plaintext goes in
//! through `writer()`, bounded by rustls' buffer limit, and out with `write_tls` until it would
//! block. Every socket read and write goes through the caller's counting adapter, so the byte
//! counts are ciphertext.

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{verify_tls12_signature, verify_tls13_signature, CryptoProvider};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{ClientConfig, ClientConnection, DigitallySignedStruct, RootCertStore, SignatureScheme};
use std::io::{self, Read, Write};
use std::sync::Arc;

use crate::scenario::{TlsOptions, TlsTrust};

/// Why TLS could not be set up.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TlsSetupError {
    #[error("cannot read CA file {path}: {msg}")]
    Ca { path: String, msg: String },
    #[error("CA file {0} holds no usable certificate")]
    NoCa(String),
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
    /// Builds the configuration for `opts`.
    pub fn new(opts: &TlsOptions) -> Result<Self, TlsSetupError> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let builder = ClientConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .map_err(|e| TlsSetupError::Config(e.to_string()))?;
        let config = match &opts.trust {
            TlsTrust::Ca(path) => {
                let shown = path.display().to_string();
                let mut roots = RootCertStore::empty();
                for cert in CertificateDer::pem_file_iter(path)
                    .map_err(|e| TlsSetupError::Ca { path: shown.clone(), msg: e.to_string() })?
                {
                    let cert = cert.map_err(|e| TlsSetupError::Ca { path: shown.clone(), msg: e.to_string() })?;
                    roots.add(cert).map_err(|e| TlsSetupError::Ca { path: shown.clone(), msg: e.to_string() })?;
                }
                if roots.is_empty() {
                    return Err(TlsSetupError::NoCa(shown));
                }
                builder.with_root_certificates(roots).with_no_client_auth()
            }
            TlsTrust::Insecure => builder
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(AcceptAnyCert(provider)))
                .with_no_client_auth(),
        };
        let name = ServerName::try_from(opts.server_name.clone())
            .map_err(|_| TlsSetupError::ServerName(opts.server_name.clone()))?;
        Ok(TlsClient { config: Arc::new(config), name })
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
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(TlsRead::Closed),
                Err(e) => return Err(e),
            }
            match self.conn.read_tls(sock) {
                Ok(0) => return Ok(TlsRead::Closed),
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(TlsRead::WouldBlock),
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
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(false),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(true)
    }
}

/// `--insecure`: any certificate is accepted, but handshake signatures are still verified, so
/// the handshake costs what a verified one costs minus the chain check.
#[derive(Debug)]
struct AcceptAnyCert(Arc<CryptoProvider>);

impl ServerCertVerifier for AcceptAnyCert {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(message, cert, dss, &self.0.signature_verification_algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(message, cert, dss, &self.0.signature_verification_algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}
