//! The HTTP agent of the control-plane commands (`upgate register`, `outbox`, `files`). Their
//! requests are small JSON exchanges, so ureq carries them; for an `https://` node ureq hands
//! the socket to [`Connector`], which runs the same rustls session as uploads do (`tls.rs`),
//! so both kinds of command trust the same CAs and explain a refused certificate the same way.
//! A failed call becomes a [`ClientError`] here too ([`from_ureq`]).

use std::io;
use std::net::TcpStream;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use url::Url;

use super::error::{ClientError, Refusal};
use super::tls::TlsStream;
use super::tls_error::TlsFailure;
use super::trust::Trust;
use super::wire::MAX_BODY;

/// `server` as a node's URL: `http://host[:port]` or `https://…` (any path is the caller's to
/// replace). `flag` names the argument in the error (`--server`).
pub fn node_url(server: &str, flag: &str) -> Result<Url, ClientError> {
    let bad = |why: &str| ClientError::Usage(format!("bad {flag} {server:?}: {why}"));
    let url = Url::parse(server).map_err(|e| bad(&e.to_string()))?;
    match url.scheme() {
        "http" | "https" if url.host_str().is_some_and(|h| !h.is_empty()) => Ok(url),
        "http" | "https" => Err(bad("no host")),
        _ => Err(bad("the scheme must be http or https")),
    }
}

/// An agent for requests to the node at `url`: no redirects, `timeout` for each whole call,
/// and for `https://` the CAs of `cacert` (or the system's) behind the certificate check.
pub fn agent(
    url: &Url,
    timeout: Duration,
    cacert: Option<&Path>,
) -> Result<ureq::Agent, ClientError> {
    let mut builder = ureq::AgentBuilder::new()
        .timeout(timeout)
        .redirects(0)
        .user_agent(concat!("upgate/", env!("CARGO_PKG_VERSION")));
    if url.scheme() == "https" {
        let trust = Trust::load(cacert)?;
        builder = builder.tls_connector(Arc::new(Connector { trust }));
    }
    Ok(builder.build())
}

/// ureq's TLS hook, on our rustls session.
struct Connector {
    trust: Trust,
}

impl ureq::TlsConnector for Connector {
    fn connect(
        &self,
        dns_name: &str,
        io: Box<dyn ureq::ReadWrite>,
    ) -> Result<Box<dyn ureq::ReadWrite>, ureq::Error> {
        // ureq names an IPv6 literal with its brackets; ureq already bounded the socket's
        // reads and writes by the call's timeout.
        let host = dns_name.trim_start_matches('[').trim_end_matches(']');
        match TlsStream::handshake(&self.trust, host, io, None) {
            Ok(tls) => Ok(Box::new(tls)),
            // `from_ureq` below finds the failure again behind the io::Error.
            Err(failure) => Err(failure.into_io().into()),
        }
    }
}

impl ureq::ReadWrite for TlsStream<Box<dyn ureq::ReadWrite>> {
    fn socket(&self) -> Option<&TcpStream> {
        self.get_ref().socket()
    }
}

/// A failed ureq call of the control-plane clients (`register`, `outbox`) as a [`ClientError`]:
/// the node's refusal with its JSON, or the connection's failure (`during` says what the call
/// was doing).
pub(super) fn from_ureq(e: ureq::Error, target: String, during: &'static str) -> ClientError {
    match e {
        ureq::Error::Status(status, resp) => {
            let body = read_body(resp).unwrap_or_default();
            ClientError::Refused(Refusal::from_answer(status, body.as_bytes(), true))
        }
        ureq::Error::Transport(t) => {
            // A failed handshake of our connector (`agent.rs`): keep its actionable message.
            let tls = std::error::Error::source(&t)
                .and_then(|s| s.downcast_ref::<io::Error>())
                .and_then(TlsFailure::from_io);
            if let Some(failure) = tls {
                return ClientError::Tls {
                    target,
                    failure: failure.clone(),
                };
            }
            let source = io::Error::other(t.to_string());
            match t.kind() {
                ureq::ErrorKind::Dns | ureq::ErrorKind::ConnectionFailed => {
                    ClientError::Connect { target, source }
                }
                _ => ClientError::Network { during, source },
            }
        }
    }
}

/// An answer's body, at most [`MAX_BODY`] bytes of it.
pub(super) fn read_body(resp: ureq::Response) -> io::Result<String> {
    use std::io::Read;
    let mut body = String::new();
    resp.into_reader()
        .take(MAX_BODY as u64)
        .read_to_string(&mut body)?;
    Ok(body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn node_urls_are_http_or_https_with_a_host() {
        assert!(node_url("http://127.0.0.1:8080", "--server").is_ok());
        assert!(node_url("https://uploads.example.com", "--server").is_ok());
        for bad in ["ftp://x", "not a url", "https://"] {
            let e = node_url(bad, "--server").unwrap_err();
            assert!(e.to_string().starts_with("bad --server"), "{e}");
        }
    }
}
