//! [`ClientError`]: everything that can go wrong with a connection, split the way a user needs to
//! act on it, and the hint `chat-client` prints with each kind.

use super::render::code_name;
use super::{ClientTrust, TlsError};
use crate::protocol::validate::NameError;
use crate::protocol::ErrorCode;
use std::io;
use std::time::Duration;

/// Everything that can go wrong, split the way a user needs to act on it.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ClientError {
    /// The host name could not be resolved to an address.
    #[error("could not resolve host '{host}': {source}")]
    Dns {
        /// The name that failed.
        host: String,
        /// The resolver's error.
        source: io::Error,
    },
    /// Nothing listens on that address (TCP RST).
    #[error("connection refused by {addr}: is the server running on {addr}?")]
    Refused {
        /// `host:port`.
        addr: String,
    },
    /// A connect, login or write did not finish in time.
    #[error("timed out {during} {addr} (after {} s)", after.as_secs_f32())]
    Timeout {
        /// `host:port`.
        addr: String,
        /// What was being waited for, e.g. "connecting to".
        during: &'static str,
        /// The limit that passed.
        after: Duration,
    },
    /// Any other failure to connect (network unreachable, ...).
    #[error("could not connect to {addr}: {source}")]
    Connect {
        /// `host:port`.
        addr: String,
        /// The OS error.
        source: io::Error,
    },
    /// The TLS handshake failed, e.g. the certificate could not be verified.
    #[error("TLS with {host} failed: {source}")]
    Tls {
        /// The name the certificate was checked against.
        host: String,
        /// What TLS reported.
        source: TlsError,
    },
    /// The server refused the login (LOGIN_REJECT, or an ERROR_MSG in reply to LOGIN).
    #[error("login rejected ({}): {reason}", code_name(*code))]
    LoginRejected {
        /// The server's error code.
        code: ErrorCode,
        /// The server's explanation.
        reason: String,
    },
    /// The user name breaks the naming rules; checked before anything is sent.
    #[error("invalid user name '{name}': {reason}")]
    InvalidUsername {
        /// The name given.
        name: String,
        /// Which rule it breaks.
        reason: NameError,
    },
    /// The server sent bytes that are not ChatProto (framing lost).
    #[error("protocol error: {0}")]
    Protocol(String),
    /// The server closed the connection.
    #[error("the server closed the connection")]
    Closed,
    /// The connection failed after it was set up (reset, broken pipe, ...).
    #[error("connection lost: {0}")]
    Io(#[source] io::Error),
}

impl ClientError {
    /// True when trying again later may succeed: the network or the server may come back, a
    /// lingering session may time out. False for a bad certificate, a bad name or passkey.
    pub fn is_transient(&self) -> bool {
        match self {
            ClientError::LoginRejected { code, .. } => matches!(
                code,
                ErrorCode::UsernameTaken
                    | ErrorCode::ServerFull
                    | ErrorCode::ShuttingDown
                    | ErrorCode::Timeout
                    | ErrorCode::RateLimited
            ),
            ClientError::Tls { .. } | ClientError::InvalidUsername { .. } => false,
            _ => true,
        }
    }

    /// What to do about the error, in `chat-client`'s terms (it names that program's flags), in
    /// the spirit of the Python v2 client. `tls` is the trust the connection was made with:
    /// whether TLS was asked for at all changes the advice for a server that is not ChatProto.
    pub fn hint(&self, tls: Option<&ClientTrust>) -> Option<&'static str> {
        let insecure = matches!(tls, Some(ClientTrust::Insecure));
        Some(match self {
            ClientError::Dns { .. } => "check the host name, or use the server's IP address",
            ClientError::Timeout { .. } => {
                "check the host and port, that the server is up, and that no firewall blocks the port"
            }
            ClientError::Connect { .. } => "check your network connection and the server address",
            ClientError::Tls { source: TlsError::Io { .. } | TlsError::Pem { .. }, .. } => {
                "--ca must name a PEM file holding the server's certificate or its CA"
            }
            ClientError::Tls { .. } if !insecure => {
                "if the server uses a self-signed certificate, \
             pass --ca FILE with the server's certificate (e.g. --ca certs/server.crt), \
             or --insecure to skip verification (testing only); is TLS enabled on the server?"
            }
            ClientError::LoginRejected { code: ErrorCode::UsernameTaken, .. } => {
                "someone is using that name; pick another"
            }
            ClientError::LoginRejected { code: ErrorCode::Banned, .. } => {
                "an administrator banned this name for a while; try again once the ban has ended"
            }
            ClientError::LoginRejected { code: ErrorCode::AuthFailed, .. } => {
                "check the passkey or password (--passkey KEY, --password PW; --register creates an account)"
            }
            ClientError::InvalidUsername { .. } => "user names are 1-20 characters with no spaces",
            ClientError::Closed | ClientError::Protocol(_) if tls.is_some() => {
                "is this a ChatProto server on the right port?"
            }
            ClientError::Closed | ClientError::Protocol(_) => {
                "is this a ChatProto server on the right port? does it require TLS (--tls)?"
            }
            _ => return None,
        })
    }

    /// The error plus its [`hint`](Self::hint) on a second line, as `chat-client` prints it.
    pub fn describe(&self, tls: Option<&ClientTrust>) -> String {
        match self.hint(tls) {
            Some(hint) => format!("{self}\n  hint: {hint}"),
            None => self.to_string(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transient_errors() {
        let rejected = |code| ClientError::LoginRejected { code, reason: String::new() };
        assert!(rejected(ErrorCode::UsernameTaken).is_transient());
        assert!(rejected(ErrorCode::ShuttingDown).is_transient());
        assert!(!rejected(ErrorCode::AuthFailed).is_transient());
        assert!(!rejected(ErrorCode::InvalidUsername).is_transient());
        assert!(!rejected(ErrorCode::Banned).is_transient(), "a banned client does not retry");
        assert!(rejected(ErrorCode::Banned).describe(None).contains("banned this name"));
        assert!(ClientError::Closed.is_transient());
        assert!(ClientError::Refused { addr: String::new() }.is_transient());
    }

    #[test]
    fn not_chatproto_hint_depends_on_tls() {
        let plain = ClientError::Closed.describe(None);
        assert!(plain.ends_with("\n  hint: is this a ChatProto server on the right port? does it require TLS (--tls)?"));
        let tls = ClientError::Protocol("x".into()).describe(Some(&ClientTrust::SystemRoots));
        assert_eq!(tls, "protocol error: x\n  hint: is this a ChatProto server on the right port?");
        let bad_ca = ClientError::Tls {
            host: "h".into(),
            source: TlsError::Pem { path: "ca.pem".into(), what: "no certificate".into() },
        };
        assert!(bad_ca.describe(Some(&ClientTrust::Insecure)).contains("--ca must name a PEM file"));
        assert_eq!(ClientError::Io(io::ErrorKind::BrokenPipe.into()).hint(None), None);
    }
}
