//! CORS for browser uploads and downloads (contract "Browser uploads", CORS): an origin in the
//! app's `cors_origins` may upload (raw, form, tus) and download; `*` there allows downloads
//! from any origin, never uploads. Preflights are answered here; every response to an allowed
//! origin is decorated here; everything else about a request is its route's business.

use crate::http::{RequestHead, Response};
use crate::registry::AppRecord;

/// How long a browser may cache a preflight's answer (seconds).
pub const MAX_AGE_SECS: u32 = 600;

/// Request headers a browser may send to the node (lower case): the appid, the body's type,
/// credentials and tokens, the tus and IETF resumable-upload fields.
pub const ALLOWED_HEADERS: &[&str] = &[
    "appid",
    "authorization",
    "content-type",
    "x-requested-with",
    "tus-resumable",
    "upload-length",
    "upload-offset",
    "upload-metadata",
    "upload-defer-length",
    "upload-concat",
    "upload-checksum",
    "x-http-method-override",
    "upload-complete",
    "upload-draft-interop-version",
    "content-digest",
];

/// Response headers a browser's script may read.
pub const EXPOSED_HEADERS: &str =
    "Location, Upload-Offset, Upload-Length, Tus-Resumable, Upload-Expires, ETag";

/// What a path is, for CORS.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A file's address: downloads, and raw uploads.
    File,
    /// `/upload/form/{appid}`.
    Form,
    /// `/upload/tus/{appid}/…`.
    Tus,
}

impl Kind {
    fn methods(self) -> &'static str {
        match self {
            Kind::File => "GET, HEAD, POST, PUT, DELETE, OPTIONS",
            Kind::Form => "POST, OPTIONS",
            Kind::Tus => "POST, HEAD, PATCH, DELETE, OPTIONS",
        }
    }
}

/// The request's `Origin`, when it names one (a browser's cross-origin or POST request).
pub fn origin(head: &RequestHead) -> Option<&str> {
    let o = std::str::from_utf8(head.value("origin")?).ok()?.trim();
    (!o.is_empty() && o != "null").then_some(o)
}

/// Whether `app` lets `origin` make this request: uploads need the origin listed; downloads
/// also accept `*`.
pub fn allows(app: Option<&AppRecord>, origin: &str, upload: bool) -> bool {
    let Some(app) = app else { return false };
    app.cors_origins
        .iter()
        .any(|o| o.eq_ignore_ascii_case(origin) || (!upload && o == "*"))
}

/// The answer to a preflight (`OPTIONS` with `Origin`) from an allowed origin: 204 with the
/// methods of the path, the requested headers the node accepts, and a 10-minute cache.
pub fn preflight(head: &RequestHead, origin: &str, kind: Kind) -> Response {
    let asked = head
        .value("access-control-request-headers")
        .and_then(|v| std::str::from_utf8(v).ok())
        .unwrap_or("");
    let allowed: Vec<String> = asked
        .split(',')
        .map(|h| h.trim().to_ascii_lowercase())
        .filter(|h| ALLOWED_HEADERS.contains(&h.as_str()))
        .collect();
    let mut resp = Response::new(204)
        .header("Access-Control-Allow-Origin", origin)
        .header("Access-Control-Allow-Methods", kind.methods())
        .header("Access-Control-Max-Age", MAX_AGE_SECS.to_string())
        .header("Vary", "Origin");
    if !allowed.is_empty() {
        resp = resp.header("Access-Control-Allow-Headers", allowed.join(", "));
    }
    resp
}

/// `OPTIONS` without `Origin` (not a preflight): which methods the path takes.
pub fn options(kind: Kind) -> Response {
    Response::new(204).header("Allow", kind.methods())
}

/// Adds the CORS fields an allowed origin's script needs to read `resp`.
pub fn decorate(resp: &mut Response, origin: &str) {
    if resp
        .headers
        .iter()
        .any(|(n, _)| n.eq_ignore_ascii_case("access-control-allow-origin"))
    {
        return;
    }
    resp.headers
        .push(("Access-Control-Allow-Origin", origin.to_owned()));
    resp.headers
        .push(("Access-Control-Expose-Headers", EXPOSED_HEADERS.to_owned()));
    resp.headers.push(("Vary", "Origin".to_owned()));
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::{parse_head, Limits};

    fn app(origins: &[&str]) -> AppRecord {
        let reg = crate::registry::Registration {
            appid: "app1".into(),
            cors_origins: crate::registry::Change::Set(
                origins.iter().map(|s| s.to_string()).collect(),
            ),
            ..Default::default()
        };
        AppRecord::create(&reg, 0, "whsec_x".into())
    }

    #[test]
    fn listed_origins_upload_and_download_star_only_downloads() {
        let a = app(&["https://app.example.com", "*"]);
        assert!(allows(Some(&a), "https://app.example.com", true));
        assert!(!allows(Some(&a), "https://evil.example", true));
        assert!(allows(Some(&a), "https://evil.example", false));
        assert!(!allows(None, "https://app.example.com", false));
        let b = app(&["https://app.example.com"]);
        assert!(!allows(Some(&b), "https://other.example", false));
    }

    #[test]
    fn preflight_answers_only_accepted_headers() {
        let h = parse_head(
            bytes::Bytes::from_static(
                b"OPTIONS /upload/form/app1 HTTP/1.1\r\nHost: x\r\nOrigin: https://a.example\r\n\
                  Access-Control-Request-Method: POST\r\n\
                  Access-Control-Request-Headers: Authorization, X-Evil, content-type\r\n\r\n",
            ),
            &Limits::default(),
        )
        .unwrap();
        let r = preflight(&h, "https://a.example", Kind::Form);
        assert_eq!(r.status, 204);
        let get = |n: &str| {
            r.headers
                .iter()
                .find(|(k, _)| k.eq_ignore_ascii_case(n))
                .map(|(_, v)| v.as_str())
        };
        assert_eq!(
            get("access-control-allow-origin"),
            Some("https://a.example")
        );
        assert_eq!(
            get("access-control-allow-headers"),
            Some("authorization, content-type")
        );
        assert_eq!(get("access-control-max-age"), Some("600"));
        assert_eq!(get("vary"), Some("Origin"));
    }
}
