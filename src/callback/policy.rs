//! The SSRF policy for client-carried callback URLs (`callback_url_pre` / `callback_url_post`
//! request headers): pure decisions on the URL text. The connect-time half is
//! [`Guard`](super::Guard).
//!
//! A URL may be called when all of these hold:
//! 1. it parses as an absolute URL with scheme `http` or `https`;
//! 2. it carries no userinfo (`http://user:pw@host/`);
//! 3. its host matches an entry of the node's `callback_allow` or the app's `callback_hosts`
//!    (entry `host` matches any port, `host:port` only that port; names compare
//!    case-insensitively, after IDNA, ignoring one trailing dot; IPv6 entries are bracketed);
//! 4. when the host is an IP literal, it is not [restricted](super::is_restricted) unless that
//!    exact address (and port, when the entry names one) is listed.
//!
//! The URL is parsed with the WHATWG rules of the `url` crate, which turn every IPv4 spelling
//! (`2130706433`, `0x7f.1`, `0177.0.0.1`, `127.1`) into the dotted address before it is
//! compared, so no spelling slips past rule 4; ureq then dials the same normalised URL.

use std::net::{IpAddr, Ipv6Addr};
use std::str::FromStr;

use url::{Host, Url};

use super::addr::is_restricted;
use super::guard::{Guard, ListedAddr};

/// Why a client-carried callback URL may not be called. Every variant answers 403
/// `callback_not_allowed`; the variants only change the message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PolicyError {
    /// Not an absolute URL.
    Malformed { detail: String },
    /// A scheme other than `http`/`https`.
    Scheme { scheme: String },
    /// `user[:password]@` in the URL.
    Userinfo,
    /// The URL names no host (cannot happen for http/https once parsed, kept for completeness).
    NoHost,
    /// The host (with its port) matches no entry of either list.
    NotListed { host: String, port: u16 },
    /// An IP literal in a restricted range that is not listed explicitly.
    Restricted { ip: IpAddr },
}

impl std::fmt::Display for PolicyError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PolicyError::Malformed { detail } => write!(f, "callback URL is not valid: {detail}"),
            PolicyError::Scheme { scheme } => {
                write!(f, "callback URL scheme {scheme:?} is not http or https")
            }
            PolicyError::Userinfo => f.write_str("callback URL must not carry user information"),
            PolicyError::NoHost => f.write_str("callback URL has no host"),
            PolicyError::NotListed { host, port } => write!(
                f,
                "callback host {host} (port {port}) is not in callback_allow or the app's callback_hosts"
            ),
            PolicyError::Restricted { ip } => write!(
                f,
                "callback address {ip} is loopback, private or reserved and is not listed explicitly"
            ),
        }
    }
}

impl std::error::Error for PolicyError {}

/// An entry of `callback_allow` or `callback_hosts` that cannot be understood.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EntryError {
    pub entry: String,
    pub detail: &'static str,
}

impl std::fmt::Display for EntryError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "callback host entry {:?}: {}", self.entry, self.detail)
    }
}

impl std::error::Error for EntryError {}

/// One parsed entry: `host`, `host:port`, `1.2.3.4`, `1.2.3.4:80`, `[::1]`, `[::1]:80` (a bare
/// IPv6 address without a port is accepted too).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AllowEntry {
    host: Host<String>,
    port: Option<u16>,
}

impl AllowEntry {
    fn matches(&self, host: &Host<String>, port: u16) -> bool {
        self.host == *host && self.port.is_none_or(|p| p == port)
    }

    fn listed_addr(&self) -> Option<ListedAddr> {
        let ip = match self.host {
            Host::Ipv4(v4) => IpAddr::V4(v4),
            Host::Ipv6(v6) => IpAddr::V6(v6),
            Host::Domain(_) => return None,
        };
        Some(ListedAddr {
            ip,
            port: self.port,
        })
    }
}

impl FromStr for AllowEntry {
    type Err = EntryError;

    fn from_str(entry: &str) -> Result<AllowEntry, EntryError> {
        let err = |detail| EntryError {
            entry: entry.to_owned(),
            detail,
        };
        let s = entry.trim();
        if s.is_empty() {
            return Err(err("empty"));
        }
        if s.contains(['/', '@', '?', '#', '*']) || s.chars().any(char::is_whitespace) {
            return Err(err("expected host or host:port, not a URL or pattern"));
        }
        if let Ok(v6) = s.parse::<Ipv6Addr>() {
            return Ok(AllowEntry {
                host: Host::Ipv6(v6),
                port: None,
            });
        }
        let (host, port) = if s.starts_with('[') {
            let end = s.find(']').ok_or_else(|| err("unclosed '['"))?;
            match &s[end + 1..] {
                "" => (&s[..=end], None),
                rest => (
                    &s[..=end],
                    Some(
                        rest.strip_prefix(':')
                            .ok_or_else(|| err("junk after ']'"))?,
                    ),
                ),
            }
        } else {
            match s.rsplit_once(':') {
                Some((h, p)) => (h, Some(p)),
                None => (s, None),
            }
        };
        let port = match port {
            Some(p) => Some(p.parse::<u16>().map_err(|_| err("bad port"))?),
            None => None,
        };
        let host = Host::parse(host).map_err(|_| err("bad host"))?;
        Ok(AllowEntry {
            host: normalize(host),
            port,
        })
    }
}

/// Lower-cases nothing (the `url` host parser already did) but drops one trailing dot of a name,
/// so `example.com.` and `example.com` compare equal.
fn normalize(host: Host<String>) -> Host<String> {
    match host {
        Host::Domain(mut name) => {
            if name.len() > 1 && name.ends_with('.') {
                name.pop();
            }
            Host::Domain(name)
        }
        other => other,
    }
}

/// A client-carried callback URL that passed [`CallbackPolicy::check`], with the [`Guard`] its
/// connection must go through.
#[derive(Debug, Clone)]
pub struct CheckedUrl {
    url: Url,
    guard: Guard,
}

impl CheckedUrl {
    pub fn url(&self) -> &Url {
        &self.url
    }

    pub fn as_str(&self) -> &str {
        self.url.as_str()
    }

    pub fn guard(&self) -> &Guard {
        &self.guard
    }

    pub fn into_parts(self) -> (Url, Guard) {
        (self.url, self.guard)
    }
}

/// The node's half of the policy (`callback_allow`); the app's half (`callback_hosts`) is passed
/// to each [`check`](CallbackPolicy::check).
#[derive(Debug, Clone, Default)]
pub struct CallbackPolicy {
    node_allow: Vec<AllowEntry>,
}

impl CallbackPolicy {
    /// Builds the policy from `callback_allow`; entries that cannot be parsed are skipped with a
    /// warning (use [`CallbackPolicy::try_new`] to refuse them at config load).
    pub fn new(node_allow: Vec<String>) -> CallbackPolicy {
        let node_allow = node_allow
            .iter()
            .filter_map(|e| match e.parse::<AllowEntry>() {
                Ok(entry) => Some(entry),
                Err(err) => {
                    tracing::warn!(%err, "ignoring callback_allow entry");
                    None
                }
            })
            .collect();
        CallbackPolicy { node_allow }
    }

    /// Like [`CallbackPolicy::new`], but fails on the first entry that cannot be parsed.
    pub fn try_new(node_allow: &[String]) -> Result<CallbackPolicy, EntryError> {
        let node_allow = node_allow
            .iter()
            .map(|e| e.parse())
            .collect::<Result<_, _>>()?;
        Ok(CallbackPolicy { node_allow })
    }

    /// Whether `entry` is a valid `callback_allow` / `callback_hosts` entry (for registration).
    pub fn validate_entry(entry: &str) -> Result<(), EntryError> {
        entry.parse::<AllowEntry>().map(drop)
    }

    /// Decides whether the client-carried `url` may be called for an app whose registered
    /// `callback_hosts` are `app_hosts` (unparsable app entries never match).
    pub fn check(&self, url: &str, app_hosts: &[String]) -> Result<CheckedUrl, PolicyError> {
        let url = Url::parse(url).map_err(|e| PolicyError::Malformed {
            detail: e.to_string(),
        })?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(PolicyError::Scheme {
                scheme: url.scheme().to_owned(),
            });
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err(PolicyError::Userinfo);
        }
        let host = normalize(url.host().ok_or(PolicyError::NoHost)?.to_owned());
        let port = url.port_or_known_default().ok_or(PolicyError::NoHost)?;

        let app_allow: Vec<AllowEntry> = app_hosts.iter().filter_map(|e| e.parse().ok()).collect();
        let entries = || self.node_allow.iter().chain(app_allow.iter());

        let literal = match host {
            Host::Ipv4(v4) => Some(IpAddr::V4(v4)),
            Host::Ipv6(v6) => Some(IpAddr::V6(v6)),
            Host::Domain(_) => None,
        };
        if let Some(ip) = literal {
            // An IP literal matches only an entry naming that very address, so a restricted
            // literal that matches is, by construction, listed explicitly.
            if is_restricted(ip) && !entries().any(|e| e.matches(&host, port)) {
                return Err(PolicyError::Restricted { ip });
            }
        }
        if !entries().any(|e| e.matches(&host, port)) {
            return Err(PolicyError::NotListed {
                host: host.to_string(),
                port,
            });
        }
        let guard = Guard::new(entries().filter_map(AllowEntry::listed_addr).collect());
        Ok(CheckedUrl { url, guard })
    }
}
