//! Every rustls call lives here: the server's certificate and config, the non-blocking
//! server-side TLS pump the event loop drives, and the blocking client stream of `chat-client`.
//!
//! The pump follows rustls's mio example: `read_tls` → `process_new_packets` (an error is fatal:
//! one last `write_tls` carries the alert) → drain `reader()`; plaintext enters `writer()` only as
//! far as the session's buffer limit allows, and `write_tls` runs whenever the socket is writable.

use super::buffer::OutQueue;
use super::{would_block, WireCount};
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{ring, CryptoProvider};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, SignatureScheme};
use std::io::{self, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Plaintext the session may hold beyond our queue; counted against the outbound cap.
pub const SESSION_BUFFER_LIMIT: usize = 64 * 1024;

/// Errors setting up TLS.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TlsError {
    #[error("reading {path}: {source}")]
    Io { path: PathBuf, source: io::Error },
    #[error("{path}: {what}")]
    Pem { path: PathBuf, what: String },
    #[error("generating a self-signed certificate: {0}")]
    Generate(String),
    #[error("TLS configuration: {0}")]
    Config(#[from] rustls::Error),
    #[error("invalid server name {0:?} for TLS")]
    ServerName(String),
    #[error("TLS handshake failed: {0}")]
    Handshake(io::Error),
}

fn provider() -> Arc<CryptoProvider> {
    Arc::new(ring::default_provider())
}

const VERSIONS: &[&rustls::SupportedProtocolVersion] = &[&rustls::version::TLS13, &rustls::version::TLS12];

/// What a server needs to start TLS sessions: the shared config.
#[derive(Clone)]
pub struct Acceptor {
    config: Arc<rustls::ServerConfig>,
}

/// Whether [`Acceptor::load_or_generate`] found the files or wrote new ones.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CertSource {
    /// Loaded from the given files.
    Loaded,
    /// Generated (self-signed for localhost and this host) and written to the given files.
    Generated,
}

impl Acceptor {
    /// Loads the PEM certificate chain and key. When both files are missing, generates a
    /// self-signed certificate for `localhost`, `127.0.0.1`, `::1` and the machine's host name,
    /// and writes it there (the key with mode 0600).
    pub fn load_or_generate(cert: &Path, key: &Path) -> Result<(Acceptor, CertSource), TlsError> {
        let mut source = CertSource::Loaded;
        if !cert.exists() && !key.exists() {
            generate_self_signed(cert, key)?;
            source = CertSource::Generated;
        }
        Ok((Acceptor::load(cert, key)?, source))
    }

    /// Loads the PEM certificate chain and private key.
    pub fn load(cert: &Path, key: &Path) -> Result<Acceptor, TlsError> {
        let pem_err = |path: &Path, what: String| TlsError::Pem { path: path.into(), what };
        let certs = CertificateDer::pem_file_iter(cert)
            .map_err(|e| pem_err(cert, e.to_string()))?
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| pem_err(cert, e.to_string()))?;
        if certs.is_empty() {
            return Err(pem_err(cert, "no certificate found".into()));
        }
        let key_der = PrivateKeyDer::from_pem_file(key).map_err(|e| pem_err(key, e.to_string()))?;
        let mut config = rustls::ServerConfig::builder_with_provider(provider())
            .with_protocol_versions(VERSIONS)?
            .with_no_client_auth()
            .with_single_cert(certs, key_der)?;
        config.max_early_data_size = 0;
        Ok(Acceptor { config: Arc::new(config) })
    }

    /// A new server session for one connection.
    pub fn session(&self) -> TlsSession {
        // Creating a server session cannot fail with a valid config: rustls only errors for
        // QUIC or early-data misconfiguration, neither of which this config has.
        let mut conn = rustls::ServerConnection::new(self.config.clone()).expect("valid server config");
        conn.set_buffer_limit(Some(SESSION_BUFFER_LIMIT));
        TlsSession { conn }
    }
}

fn generate_self_signed(cert: &Path, key: &Path) -> Result<(), TlsError> {
    let mut names = vec!["localhost".to_string(), "127.0.0.1".to_string(), "::1".to_string()];
    if let Some(host) = hostname() {
        names.push(host);
    }
    let ck = rcgen::generate_simple_self_signed(names).map_err(|e| TlsError::Generate(e.to_string()))?;
    fn io_err(path: &Path) -> impl FnOnce(io::Error) -> TlsError + '_ {
        move |source| TlsError::Io { path: path.into(), source }
    }
    for p in [cert, key] {
        if let Some(dir) = p.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(io_err(dir))?;
        }
    }
    std::fs::write(cert, ck.cert.pem()).map_err(io_err(cert))?;
    write_private(key, ck.key_pair.serialize_pem().as_bytes()).map_err(io_err(key))?;
    Ok(())
}

fn write_private(path: &Path, data: &[u8]) -> io::Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new().write(true).create(true).truncate(true).mode(0o600).open(path)?;
    f.write_all(data)
}

fn hostname() -> Option<String> {
    let h = std::fs::read_to_string("/proc/sys/kernel/hostname").ok()?;
    let h = h.trim();
    (!h.is_empty()).then(|| h.to_string())
}

/// One server-side TLS session, driven by the event loop over a non-blocking socket.
pub struct TlsSession {
    conn: rustls::ServerConnection,
}

/// Adapts rustls's bounded plaintext writer: "accepted nothing" means "full", i.e. `WouldBlock`.
struct Bounded<'a>(rustls::Writer<'a>);

impl Write for Bounded<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self.0.write(buf)? {
            0 if !buf.is_empty() => Err(io::ErrorKind::WouldBlock.into()),
            n => Ok(n),
        }
    }
    fn write_vectored(&mut self, bufs: &[io::IoSlice<'_>]) -> io::Result<usize> {
        let total: usize = bufs.iter().map(|b| b.len()).sum();
        match self.0.write_vectored(bufs)? {
            0 if total > 0 => Err(io::ErrorKind::WouldBlock.into()),
            n => Ok(n),
        }
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl TlsSession {
    /// True until the handshake completes.
    pub fn is_handshaking(&self) -> bool {
        self.conn.is_handshaking()
    }

    /// True when TLS records wait to be written.
    pub fn wants_write(&self) -> bool {
        self.conn.wants_write()
    }

    /// Plaintext and records held by the session (an approximation rustls allows us to see:
    /// whether anything waits). Counted as the full buffer limit while anything waits.
    pub fn buffered(&self) -> usize {
        if self.conn.wants_write() {
            SESSION_BUFFER_LIMIT
        } else {
            0
        }
    }

    /// Reads plaintext into `buf`, pulling and decrypting records from `sock` as needed.
    /// `Ok(0)` is a clean end (close_notify or EOF); `WouldBlock` means the socket is drained.
    pub fn read<S: Read + Write>(&mut self, sock: &mut S, buf: &mut [u8], wire: &mut WireCount) -> io::Result<usize> {
        loop {
            match self.conn.reader().read(buf) {
                Ok(n) => return Ok(n),
                Err(e) if would_block(&e) => {}
                Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(0),
                Err(e) => return Err(e),
            }
            let n = match self.conn.read_tls(sock) {
                Ok(0) => return Ok(0),
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            };
            wire.read += n as u64;
            if let Err(err) = self.conn.process_new_packets() {
                // Fatal: rustls queued an alert; one best-effort write carries it to the peer.
                if let Ok(n) = self.conn.write_tls(sock) {
                    wire.written += n as u64;
                }
                return Err(io::Error::new(io::ErrorKind::InvalidData, err));
            }
            if self.conn.wants_write() {
                self.write_records(sock, wire)?;
            }
        }
    }

    /// Moves plaintext from `queue` into the session (bounded) and records onto the socket,
    /// until both are empty or the socket would block.
    pub fn flush<S: Write>(&mut self, sock: &mut S, queue: &mut OutQueue, wire: &mut WireCount) -> io::Result<()> {
        loop {
            if !self.conn.is_handshaking() && !queue.is_empty() {
                queue.write_to(&mut Bounded(self.conn.writer()))?;
            }
            if !self.conn.wants_write() {
                return Ok(());
            }
            if !self.write_records(sock, wire)? {
                return Ok(());
            }
        }
    }

    /// Writes pending records. Returns false when the socket would block.
    fn write_records<S: Write>(&mut self, sock: &mut S, wire: &mut WireCount) -> io::Result<bool> {
        while self.conn.wants_write() {
            match self.conn.write_tls(sock) {
                Ok(n) => wire.written += n as u64,
                Err(e) if would_block(&e) => return Ok(false),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            }
        }
        Ok(true)
    }

    /// Sends close_notify, best effort.
    pub fn close<S: Write>(&mut self, sock: &mut S, wire: &mut WireCount) {
        self.conn.send_close_notify();
        let _ = self.write_records(sock, wire);
    }
}

/// How a client decides to trust the server's certificate.
#[derive(Clone, Debug)]
pub enum ClientTrust {
    /// Trust only certificates issued by the CA (or the self-signed certificate) in this PEM file.
    CaFile(PathBuf),
    /// Trust the public web roots (webpki-roots).
    SystemRoots,
    /// Skip verification entirely (self-signed test servers). Callers must warn the user.
    Insecure,
}

/// A blocking TLS client stream: reads and writes plaintext, encrypts on the wire.
pub trait ClientStream: Read + Write + Send {}
impl<T: Read + Write + Send> ClientStream for T {}

/// Builds a client config for `trust`.
pub fn client_config(trust: &ClientTrust) -> Result<Arc<rustls::ClientConfig>, TlsError> {
    let builder = rustls::ClientConfig::builder_with_provider(provider()).with_protocol_versions(VERSIONS)?;
    let config = match trust {
        ClientTrust::Insecure => builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(NoVerification(provider())))
            .with_no_client_auth(),
        ClientTrust::SystemRoots => {
            let roots = rustls::RootCertStore { roots: webpki_roots::TLS_SERVER_ROOTS.to_vec() };
            builder.with_root_certificates(roots).with_no_client_auth()
        }
        ClientTrust::CaFile(path) => {
            let pem_err = |what: String| TlsError::Pem { path: path.clone(), what };
            let mut roots = rustls::RootCertStore::empty();
            for cert in CertificateDer::pem_file_iter(path).map_err(|e| pem_err(e.to_string()))? {
                roots.add(cert.map_err(|e| pem_err(e.to_string()))?)?;
            }
            if roots.is_empty() {
                return Err(pem_err("no certificate found".into()));
            }
            builder.with_root_certificates(roots).with_no_client_auth()
        }
    };
    Ok(Arc::new(config))
}

/// Wraps a connected TCP stream in TLS and completes the handshake, verifying `server_name`
/// according to `trust`. The stream's read/write timeouts apply to the handshake too.
pub fn client_connect(
    tcp: TcpStream,
    server_name: &str,
    trust: &ClientTrust,
) -> Result<Box<dyn ClientStream>, TlsError> {
    let config = client_config(trust)?;
    let name = ServerName::try_from(server_name.to_string()).map_err(|_| TlsError::ServerName(server_name.into()))?;
    let conn = rustls::ClientConnection::new(config, name)?;
    let mut stream = rustls::StreamOwned::new(conn, tcp);
    while stream.conn.is_handshaking() {
        stream.conn.complete_io(&mut stream.sock).map_err(TlsError::Handshake)?;
    }
    Ok(Box::new(stream))
}

/// Accepts any certificate but still checks the handshake signatures. For `--insecure` only.
#[derive(Debug)]
struct NoVerification(Arc<CryptoProvider>);

impl ServerCertVerifier for NoVerification {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp: &[u8],
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
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.0.signature_verification_algorithms)
    }
    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.0.signature_verification_algorithms)
    }
    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}
