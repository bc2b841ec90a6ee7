//! The HTTP agent of the control-plane commands (`upgate register`, `outbox`, `files`). Their
//! requests are small JSON exchanges, so ureq carries them; for an `https://` node ureq hands
//! the socket to [`Connector`], which runs the same rustls session as uploads do (`tls.rs`),
//! so both kinds of command trust the same CAs and explain a refused certificate the same way.

use std::net::TcpStream;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use url::Url;

use super::error::ClientError;
use super::tls::TlsStream;
use super::trust::Trust;

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
            // `error::from_ureq` finds the failure again behind the io::Error.
            Err(failure) => Err(failure.into_io().into()),
        }
    }
}

impl ureq::ReadWrite for TlsStream<Box<dyn ureq::ReadWrite>> {
    fn socket(&self) -> Option<&TcpStream> {
        self.get_ref().socket()
    }
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
