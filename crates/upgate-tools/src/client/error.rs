//! Why an upload or a registration failed, and the process exit code of each cause.

use std::fmt;
use std::io;
use std::path::PathBuf;
use std::time::Duration;

use super::tls_error::TlsFailure;

/// Process exit codes of `upgate upload` and `upgate register` (also in `docs/client.md` and
/// `upgate upload --help`).
pub mod exit {
    /// The file was stored (or the app registered).
    pub const OK: u8 = 0;
    /// An answer the client does not understand as success or failure (a 1xx or 3xx final
    /// status).
    pub const UNEXPECTED: u8 = 1;
    /// Bad arguments or URL (clap's own usage errors are 2 as well).
    pub const USAGE: u8 = 2;
    /// 403: the application vetoed the upload (`vetoed`) or the node refused its callback URL
    /// (`callback_not_allowed`).
    pub const VETOED: u8 = 3;
    /// Any other 4xx: the node rejected the request (unknown appid, bad path, too large, exists…).
    pub const REJECTED: u8 = 4;
    /// 5xx: the node or the application's callback failed (502, 503, 504, 507, 500).
    pub const NODE_ERROR: u8 = 5;
    /// No response head within the 100-continue timeout (the body was not sent), or no final
    /// response within the response timeout after the body.
    pub const NO_RESPONSE: u8 = 6;
    /// The node could not be reached, the TLS handshake failed (a certificate the client does
    /// not trust, the wrong name, a plain-HTTP port), or the connection broke, stalled or
    /// carried something that is not HTTP.
    pub const NETWORK: u8 = 7;
    /// The local file could not be opened or read, or is not a regular file.
    pub const FILE: u8 = 8;
}

/// A final response that is not a success, as the node (or any server) sent it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    pub status: u16,
    /// The contract's JSON `error` code, when the body carries one.
    pub code: Option<String>,
    /// The JSON `message` (for a veto: the application's reason), when the body carries one.
    pub message: Option<String>,
    /// The response body as received (the contract's JSON error for upgate).
    pub body: String,
    /// Whether any body byte had been sent when the answer came.
    pub body_sent: bool,
}

/// Why an upload (or a registration) did not succeed.
#[derive(Debug)]
pub enum ClientError {
    /// The URL or an argument is unusable (not `http://` or `https://`, no host, no appid
    /// segment, a `--cacert` without certificates…).
    Usage(String),
    /// The local file could not be opened, stat'ed or read.
    File { path: PathBuf, source: io::Error },
    /// No address of the host accepted a connection (refused, unreachable, DNS failure).
    Connect { target: String, source: io::Error },
    /// The TLS handshake with an `https://` node failed; `failure` says what to do about it.
    Tls { target: String, failure: TlsFailure },
    /// No response head arrived within `waited` after the request head: the body was not sent.
    NoContinue { waited: Duration },
    /// The body was sent but no final response came within `waited`.
    NoFinalResponse { waited: Duration },
    /// The connection closed, reset or stalled mid-exchange.
    Network {
        during: &'static str,
        source: io::Error,
    },
    /// The answer is not HTTP/1.x (or exceeds the client's limits).
    Protocol(String),
    /// A final status that is not 2xx.
    Refused(Refusal),
}

impl ClientError {
    /// The process exit code for this failure (see [`exit`]).
    pub fn exit_code(&self) -> u8 {
        match self {
            ClientError::Usage(_) => exit::USAGE,
            ClientError::File { .. } => exit::FILE,
            ClientError::Connect { .. }
            | ClientError::Tls { .. }
            | ClientError::Network { .. }
            | ClientError::Protocol(_) => exit::NETWORK,
            ClientError::NoContinue { .. } | ClientError::NoFinalResponse { .. } => {
                exit::NO_RESPONSE
            }
            ClientError::Refused(r) => match r.status {
                403 => exit::VETOED,
                400..=499 => exit::REJECTED,
                500..=599 => exit::NODE_ERROR,
                _ => exit::UNEXPECTED,
            },
        }
    }

    /// The server's JSON answer, when the failure is a final status.
    pub fn refusal(&self) -> Option<&Refusal> {
        match self {
            ClientError::Refused(r) => Some(r),
            _ => None,
        }
    }
}

impl fmt::Display for ClientError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ClientError::Usage(m) => f.write_str(m),
            ClientError::File { path, source } => write!(f, "{}: {source}", path.display()),
            ClientError::Connect { target, source } => {
                write!(f, "cannot connect to {target}: {source}")
            }
            ClientError::Tls { target, failure } => {
                write!(f, "no TLS connection with {target}: {failure}")
            }
            ClientError::NoContinue { waited } => write!(
                f,
                "no response from the node within {} ms of the request head; the body was not sent",
                waited.as_millis()
            ),
            ClientError::NoFinalResponse { waited } => write!(
                f,
                "the body was sent but no final response came within {} ms",
                waited.as_millis()
            ),
            ClientError::Network { during, source } => {
                write!(f, "connection failed while {during}: {source}")
            }
            ClientError::Protocol(m) => write!(f, "not a valid HTTP answer: {m}"),
            ClientError::Refused(r) => {
                let what = match r.status {
                    403 if r.code.as_deref() == Some("vetoed") => "vetoed by the application",
                    403 => "refused",
                    400..=499 => "rejected by the node",
                    500..=599 => "node error",
                    _ => "unexpected answer",
                };
                write!(f, "{what}: {}", r.status)?;
                if let Some(code) = &r.code {
                    write!(f, " {code}")?;
                }
                match (&r.message, r.body.is_empty()) {
                    (Some(m), _) => write!(f, ": {m}")?,
                    (None, false) => write!(f, ": {}", r.body.trim())?,
                    (None, true) => {}
                }
                if !r.body_sent {
                    f.write_str(" (the body was not sent)")?;
                }
                Ok(())
            }
        }
    }
}

impl std::error::Error for ClientError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            ClientError::File { source, .. }
            | ClientError::Connect { source, .. }
            | ClientError::Network { source, .. } => Some(source),
            ClientError::Tls { failure, .. } => Some(failure),
            _ => None,
        }
    }
}

impl Refusal {
    /// Reads the contract's `{"success":"false","error":…,"message":…}` out of `body` when it is
    /// there; any body is kept as text.
    pub fn from_answer(status: u16, body: &[u8], body_sent: bool) -> Refusal {
        let json: Option<serde_json::Value> = serde_json::from_slice(body).ok();
        let field = |name: &str| {
            json.as_ref()
                .and_then(|v| v.get(name))
                .and_then(|v| v.as_str())
                .map(str::to_owned)
        };
        Refusal {
            status,
            code: field("error"),
            message: field("message").or_else(|| field("reason")),
            body: String::from_utf8_lossy(body).into_owned(),
            body_sent,
        }
    }
}
