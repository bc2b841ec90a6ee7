//! Who is uploading (contract "Who is uploading"): the request behind an upload as the
//! pre-callback's `request` object, so the app can decide whether *this user* may upload *this
//! file*. Only the headers the app names in `forward_headers` leave the node.

use std::collections::BTreeMap;

use crate::callback::RequestInfo;
use crate::http::RequestHead;

/// The upload protocol a request came by (`request.protocol`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    Raw,
    Form,
    /// tus 1.0 (`/upload/tus/…`).
    Tus,
    /// IETF resumable uploads.
    Resumable,
}

impl Protocol {
    pub fn as_str(self) -> &'static str {
        match self {
            Protocol::Raw => "raw",
            Protocol::Form => "form",
            Protocol::Tus => "tus",
            Protocol::Resumable => "resumable",
        }
    }
}

/// The uploading client's address: see [`super::forwarded`].
/// `client_ip` for an exchange, under the node's
/// `trusted_proxies` (parsed per upload: a handful of entries; none by default).
pub fn client_ip_of(ex: &crate::server::Exchange<'_>) -> String {
    let peer = ex.peer().ip();
    if ex.config().trusted_proxies.is_empty() {
        return super::forwarded::canonical(peer).to_string();
    }
    super::forwarded::client_ip(ex.head(), peer, &ex.config().trusted_proxies()).to_string()
}

/// The `request` object of the first file info for `head`, forwarding the headers `forward`
/// names (lower case; a trailing `*` is a prefix).
pub fn request_info(head: &RequestHead, forward: &[String], protocol: Protocol) -> RequestInfo {
    let path = head.path();
    let (path, query) = match memchr::memchr(b'?', path) {
        Some(q) => (head.path_only(), Some(&path[q + 1..])),
        None => (path, None),
    };
    RequestInfo {
        method: head.method_str().to_owned(),
        path: String::from_utf8_lossy(path).into_owned(),
        query: query.map(|q| String::from_utf8_lossy(q).into_owned()),
        headers: forwarded(head, forward),
        protocol: protocol.as_str().to_owned(),
        fields: None,
    }
}

/// The headers named by `forward`, lower-case names, repeated ones joined with `, ` in the
/// order sent.
pub fn forwarded(head: &RequestHead, forward: &[String]) -> BTreeMap<String, String> {
    let mut out: BTreeMap<String, String> = BTreeMap::new();
    if forward.is_empty() {
        return out;
    }
    for (name, value) in head.fields() {
        let name = String::from_utf8_lossy(name).to_ascii_lowercase();
        if !forward.iter().any(|f| matches(f, &name)) {
            continue;
        }
        let value = String::from_utf8_lossy(value);
        out.entry(name)
            .and_modify(|v| {
                v.push_str(", ");
                v.push_str(&value);
            })
            .or_insert_with(|| value.into_owned());
    }
    out
}

/// `pattern` is a lower-case name, or a prefix ending in `*`.
fn matches(pattern: &str, name: &str) -> bool {
    match pattern.strip_suffix('*') {
        Some(prefix) => name.starts_with(prefix),
        None => pattern == name,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::{parse_head, Limits};

    fn head(raw: &str) -> RequestHead {
        parse_head(bytes::Bytes::from(raw.to_owned()), &Limits::default()).unwrap()
    }

    #[test]
    fn forwards_named_headers_prefixes_and_joins_repeats() {
        let h = head(
            "POST /app1/a.txt?token=abc&user=7 HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer t\r\n\
             Cookie: a=1\r\nX-User-Id: 7\r\nX-User-Role: admin\r\nX-User-Role: dev\r\n\r\n",
        );
        let names = vec!["authorization".to_owned(), "x-user-*".to_owned()];
        let info = request_info(&h, &names, Protocol::Raw);
        assert_eq!(info.method, "POST");
        assert_eq!(info.path, "/app1/a.txt");
        assert_eq!(info.query.as_deref(), Some("token=abc&user=7"));
        assert_eq!(info.protocol, "raw");
        assert_eq!(info.headers["authorization"], "Bearer t");
        assert_eq!(info.headers["x-user-id"], "7");
        assert_eq!(info.headers["x-user-role"], "admin, dev");
        assert!(
            !info.headers.contains_key("cookie"),
            "cookies are not named"
        );
        assert!(!info.headers.contains_key("host"));
    }

    #[test]
    fn no_query_is_null_and_nothing_named_forwards_nothing() {
        let h = head("PUT /app1/a.txt HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer t\r\n\r\n");
        let info = request_info(&h, &[], Protocol::Form);
        assert_eq!(info.query, None);
        assert!(info.headers.is_empty());
        assert_eq!(info.protocol, "form");
    }
}
