//! The connect-time half of the SSRF policy: a ureq [`Resolver`](ureq::Resolver) for
//! client-carried callbacks that drops every restricted address a host resolves to, unless that
//! address is listed explicitly.
//!
//! The policy ([`super::policy`]) decides on the URL text; a host allowed by name could still
//! resolve to `127.0.0.1` or `10.0.0.5` (or be re-pointed there later). This resolver runs on the
//! addresses ureq is about to connect to, so what is checked is what is dialled.

use std::io;
use std::net::{IpAddr, SocketAddr, ToSocketAddrs};
use std::sync::Arc;

use super::addr::is_restricted;

/// An address listed explicitly in `callback_allow` or an app's `callback_hosts`: any port, or
/// only `port`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ListedAddr {
    pub ip: IpAddr,
    pub port: Option<u16>,
}

impl ListedAddr {
    fn covers(&self, addr: SocketAddr) -> bool {
        self.ip == addr.ip() && self.port.is_none_or(|p| p == addr.port())
    }
}

/// What a guarded (client-carried) call may connect to: any unrestricted address, plus the
/// restricted addresses listed explicitly. Cheap to clone. Obtained from
/// [`CallbackPolicy::check`](super::CallbackPolicy::check); [`Guard::none`] lists nothing.
#[derive(Debug, Clone, Default)]
pub struct Guard {
    listed: Arc<[ListedAddr]>,
}

/// The error a [`Guard`] returns (inside an `io::Error`) when a name resolved only to
/// restricted addresses; the worker reports it as [`Outcome::Refused`](super::Outcome::Refused).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GuardRefusal {
    pub netloc: String,
    pub refused: Vec<SocketAddr>,
}

impl std::fmt::Display for GuardRefusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} resolves only to restricted addresses that are not listed (",
            self.netloc
        )?;
        for (i, addr) in self.refused.iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            write!(f, "{addr}")?;
        }
        f.write_str(")")
    }
}

impl std::error::Error for GuardRefusal {}

impl Guard {
    /// A guard that lists nothing: only unrestricted addresses pass.
    pub fn none() -> Guard {
        Guard::default()
    }

    pub(crate) fn new(listed: Vec<ListedAddr>) -> Guard {
        Guard {
            listed: listed.into(),
        }
    }

    /// The addresses listed explicitly.
    pub fn listed(&self) -> &[ListedAddr] {
        &self.listed
    }

    /// Whether a connection to `addr` is allowed: it is unrestricted, or listed.
    pub fn permits(&self, addr: SocketAddr) -> bool {
        !is_restricted(addr.ip()) || self.listed.iter().any(|l| l.covers(addr))
    }

    /// Keeps the permitted addresses; fails with a [`GuardRefusal`] when addresses were found but
    /// none is permitted.
    pub fn filter(&self, netloc: &str, addrs: Vec<SocketAddr>) -> io::Result<Vec<SocketAddr>> {
        let (kept, refused): (Vec<_>, Vec<_>) = addrs.into_iter().partition(|a| self.permits(*a));
        if kept.is_empty() && !refused.is_empty() {
            tracing::warn!(%netloc, ?refused, "guarded callback refused: restricted addresses");
            return Err(io::Error::new(
                io::ErrorKind::PermissionDenied,
                GuardRefusal {
                    netloc: netloc.to_owned(),
                    refused,
                },
            ));
        }
        Ok(kept)
    }
}

impl ureq::Resolver for Guard {
    /// `netloc` is `host:port` (`[v6]:port` for IPv6). IP literals are checked as they are;
    /// names go through the system resolver first.
    fn resolve(&self, netloc: &str) -> io::Result<Vec<SocketAddr>> {
        let addrs = match netloc.parse::<SocketAddr>() {
            Ok(addr) => vec![addr],
            Err(_) => netloc.to_socket_addrs()?.collect(),
        };
        self.filter(netloc, addrs)
    }
}
