//! Why a TLS handshake failed, told as what the user can do about it: trust the right CA
//! (`--cacert`), use the name the certificate carries, or use `http://` for a plain port.
//! rustls's own error text stays in the message, in parentheses, for a search engine.

use std::fmt;
use std::io;
use std::path::PathBuf;

use rustls::{AlertDescription, CertificateError};

/// Where the trusted CAs came from: named in every certificate error, so the user knows which
/// list the node's certificate was checked against.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TrustSource {
    /// `--cacert FILE`.
    CaFile(PathBuf),
    /// The system's store (`SSL_CERT_FILE` / `SSL_CERT_DIR` override where it is looked for).
    System,
}

impl fmt::Display for TrustSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TrustSource::CaFile(p) => write!(f, "--cacert {}", p.display()),
            TrustSource::System => f.write_str("the system's trust store"),
        }
    }
}

/// A failed handshake with an `https://` node.
#[derive(Debug, Clone)]
pub enum TlsFailure {
    /// The certificate does not chain to a CA of `trusted`.
    Untrusted {
        trusted: TrustSource,
        detail: String,
    },
    /// The certificate is valid, but not for the host of the URL.
    WrongName { host: String, detail: String },
    /// The certificate is expired or not valid yet (or the clock is wrong).
    OutOfDate { detail: String },
    /// The node presents a CA certificate as its own: what `openssl req -x509` makes by
    /// default (`CA:TRUE`), which curl accepts and rustls refuses.
    CaAsLeaf { detail: String },
    /// Any other defect of the certificate (bad signature, bad encoding, wrong usage…).
    BadCertificate { detail: String },
    /// The server answered with bytes that are not TLS: a plain-HTTP port, most likely.
    NotTls { first_bytes: String },
    /// The server refused the handshake with an alert (no common version or cipher…).
    Refused { alert: AlertDescription },
    /// The server closed the connection before the handshake completed.
    Closed,
    /// No handshake progress within the connect timeout.
    Timeout { waited_ms: u128 },
    /// Anything else rustls or the socket reported.
    Other(String),
}

impl TlsFailure {
    /// Classifies a rustls error met during the handshake.
    pub(crate) fn from_rustls(e: &rustls::Error, host: &str, trusted: &TrustSource) -> TlsFailure {
        let detail = e.to_string();
        match e {
            rustls::Error::InvalidCertificate(c) => match c {
                CertificateError::UnknownIssuer => TlsFailure::Untrusted {
                    trusted: trusted.clone(),
                    detail,
                },
                CertificateError::NotValidForName
                | CertificateError::NotValidForNameContext { .. } => TlsFailure::WrongName {
                    host: host.to_owned(),
                    detail,
                },
                CertificateError::Expired
                | CertificateError::ExpiredContext { .. }
                | CertificateError::NotValidYet
                | CertificateError::NotValidYetContext { .. } => TlsFailure::OutOfDate { detail },
                CertificateError::Other(other)
                    if matches!(
                        other.0.downcast_ref::<webpki::Error>(),
                        Some(webpki::Error::CaUsedAsEndEntity)
                    ) =>
                {
                    TlsFailure::CaAsLeaf { detail }
                }
                _ => TlsFailure::BadCertificate { detail },
            },
            rustls::Error::AlertReceived(alert) => TlsFailure::Refused { alert: *alert },
            _ => TlsFailure::Other(detail),
        }
    }
}

impl fmt::Display for TlsFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TlsFailure::Untrusted { trusted, detail } => match trusted {
                TrustSource::CaFile(_) => write!(
                    f,
                    "the node's certificate is not issued by a CA in {trusted} ({detail}); \
                     pass the PEM file of the CA that signed it with --cacert"
                ),
                TrustSource::System => write!(
                    f,
                    "the node's certificate is not issued by a CA in {trusted} ({detail}); \
                     for a private or self-signed certificate, pass its CA's PEM file with \
                     --cacert FILE"
                ),
            },
            TlsFailure::WrongName { host, detail } => write!(
                f,
                "the node's certificate is not valid for {host:?} ({detail}); use a host name \
                 the certificate names in the URL"
            ),
            TlsFailure::OutOfDate { detail } => write!(
                f,
                "the node's certificate is out of date ({detail}); check the node's \
                 certificate and this machine's clock"
            ),
            TlsFailure::CaAsLeaf { detail } => write!(
                f,
                "the node's certificate is a CA certificate (basicConstraints CA:TRUE), which \
                 cannot also be the server's own ({detail}); make the node's certificate with \
                 CA:FALSE (openssl req -x509 … -addext basicConstraints=critical,CA:FALSE), or \
                 sign it with a CA and pass that CA with --cacert"
            ),
            TlsFailure::BadCertificate { detail } => {
                write!(f, "the node's certificate was refused ({detail})")
            }
            TlsFailure::NotTls { first_bytes } => write!(
                f,
                "the server did not answer with TLS (it sent {first_bytes}); is this a \
                 plain-HTTP port? use an http:// URL for it"
            ),
            TlsFailure::Refused { alert } => write!(
                f,
                "the server refused the TLS handshake (alert {alert:?}); it shares no TLS \
                 version or cipher suite with this client (TLS 1.2 or 1.3)"
            ),
            TlsFailure::Closed => f.write_str(
                "the server closed the connection during the TLS handshake; is this an \
                 HTTPS port?",
            ),
            TlsFailure::Timeout { waited_ms } => {
                write!(f, "no TLS handshake answer within {waited_ms} ms")
            }
            TlsFailure::Other(m) => write!(f, "TLS handshake failed: {m}"),
        }
    }
}

impl std::error::Error for TlsFailure {}

impl TlsFailure {
    /// Whether trying again may help: the connection broke or stalled, rather than the node
    /// presenting something this client refuses.
    pub fn is_transient(&self) -> bool {
        matches!(self, TlsFailure::Closed | TlsFailure::Timeout { .. })
    }

    /// The failure carried through an `io::Error` (the form ureq's connector must return), and
    /// back: how `upgate register` keeps the actionable message.
    pub(crate) fn into_io(self) -> io::Error {
        io::Error::other(self)
    }

    pub(crate) fn from_io(e: &io::Error) -> Option<&TlsFailure> {
        e.get_ref().and_then(|inner| inner.downcast_ref())
    }
}

/// The first (at most 16) bytes a server sent, printable: `"HTTP/1.1 400 Bad"`.
pub(crate) fn show_bytes(bytes: &[u8]) -> String {
    let shown: String = bytes
        .iter()
        .take(16)
        .map(|&b| match b {
            b' '..=b'~' => (b as char).to_string(),
            b'\r' => "\\r".into(),
            b'\n' => "\\n".into(),
            _ => format!("\\x{b:02x}"),
        })
        .collect();
    format!("\"{shown}\"")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_certificate_problem_names_what_to_do() {
        let ca = TrustSource::CaFile(PathBuf::from("ca.pem"));
        let unknown = rustls::Error::InvalidCertificate(CertificateError::UnknownIssuer);
        let m = TlsFailure::from_rustls(&unknown, "127.0.0.1", &ca).to_string();
        assert!(
            m.contains("--cacert ca.pem") && m.contains("UnknownIssuer"),
            "{m}"
        );
        let m = TlsFailure::from_rustls(&unknown, "h", &TrustSource::System).to_string();
        assert!(
            m.contains("system's trust store") && m.contains("--cacert FILE"),
            "{m}"
        );
        let name = rustls::Error::InvalidCertificate(CertificateError::NotValidForName);
        let m = TlsFailure::from_rustls(&name, "127.0.0.1", &ca).to_string();
        assert!(m.contains("not valid for \"127.0.0.1\""), "{m}");
        let ca_leaf = rustls::Error::InvalidCertificate(CertificateError::Other(
            rustls::OtherError(std::sync::Arc::new(webpki::Error::CaUsedAsEndEntity)),
        ));
        let m = TlsFailure::from_rustls(&ca_leaf, "h", &TrustSource::System).to_string();
        assert!(m.contains("CA:FALSE"), "{m}");
        let expired = rustls::Error::InvalidCertificate(CertificateError::Expired);
        assert!(matches!(
            TlsFailure::from_rustls(&expired, "h", &ca),
            TlsFailure::OutOfDate { .. }
        ));
    }

    #[test]
    fn a_failure_survives_the_trip_through_io_error() {
        let e = TlsFailure::Closed.into_io();
        assert!(matches!(TlsFailure::from_io(&e), Some(TlsFailure::Closed)));
        assert!(TlsFailure::from_io(&io::Error::other("x")).is_none());
    }

    #[test]
    fn bytes_are_shown_printable() {
        assert_eq!(
            show_bytes(b"HTTP/1.1 400 Bad Request\r\n"),
            "\"HTTP/1.1 400 Bad\""
        );
        assert_eq!(show_bytes(&[0x15, 0x03, b'a']), "\"\\x15\\x03a\"");
    }
}
