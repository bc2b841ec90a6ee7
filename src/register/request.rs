//! A registration body (form or JSON) → a validated [`Registration`]. Pure: no I/O, no clock.
//!
//! Field semantics, the same for both encodings: a field that is absent keeps the stored value;
//! a field sent empty (or JSON `null`) clears it; unknown or repeated fields are refused.

use std::net::{Ipv4Addr, Ipv6Addr};

use serde_json::Value;
use url::{Host, Url};

use super::form::{self, FormError};
use crate::config::ExpectPolicy;
use crate::registry::{valid_appid, Change, Registration};

/// Longest callback URL accepted.
pub const MAX_URL_LEN: usize = 2048;
/// Most entries in `callback_hosts`.
pub const MAX_HOSTS: usize = 64;
/// Most entries in `forward_headers`, `cors_origins` and `inline_types`.
pub const MAX_LIST: usize = 32;
/// appids the node's own routes use (`/upload/…`, `/healthz`, …): never an app's.
pub const RESERVED_APPIDS: [&str; 4] = ["upload", "healthz", "readyz", "metrics"];

/// The body's encoding, from `Content-Type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyKind {
    Form,
    Json,
}

impl BodyKind {
    /// `application/x-www-form-urlencoded` or `application/json`, parameters (charset) ignored.
    pub fn from_content_type(value: &[u8]) -> Option<BodyKind> {
        let value = std::str::from_utf8(value).ok()?;
        let essence = value.split(';').next().unwrap_or("").trim();
        if essence.eq_ignore_ascii_case("application/x-www-form-urlencoded") {
            Some(BodyKind::Form)
        } else if essence.eq_ignore_ascii_case("application/json") {
            Some(BodyKind::Json)
        } else {
            None
        }
    }
}

/// Why a registration body was refused; each maps to a 400 code of the contract.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RequestError {
    /// The form body is malformed (`bad_form`).
    BadForm(FormError),
    /// The JSON body is malformed or not an object (`bad_json`).
    BadJson(String),
    /// appid missing, invalid, or different from the one in the path/header (`bad_appid`).
    BadAppid(String),
    /// A callback URL is not an absolute http(s) URL (`bad_callback_url`).
    BadCallbackUrl { field: &'static str, reason: String },
    /// Any other field is wrong, unknown or repeated (`bad_field`).
    BadField { field: String, reason: String },
    /// The app would name no callback at all (`missing_callbacks`).
    MissingCallbacks,
}

impl RequestError {
    pub fn code(&self) -> &'static str {
        match self {
            RequestError::BadForm(_) => "bad_form",
            RequestError::BadJson(_) => "bad_json",
            RequestError::BadAppid(_) => "bad_appid",
            RequestError::BadCallbackUrl { .. } => "bad_callback_url",
            RequestError::BadField { .. } => "bad_field",
            RequestError::MissingCallbacks => "missing_callbacks",
        }
    }

    pub fn message(&self) -> String {
        match self {
            RequestError::BadForm(e) => e.to_string(),
            RequestError::BadJson(e) => format!("body is not a JSON object: {e}"),
            RequestError::BadAppid(why) => why.clone(),
            RequestError::BadCallbackUrl { field, reason } => format!("{field}: {reason}"),
            RequestError::BadField { field, reason } => format!("{field}: {reason}"),
            RequestError::MissingCallbacks => "register callback_url_pre, callback_url_post or \
                 callback_hosts (for callbacks the app's clients carry)"
                .into(),
        }
    }
}

fn bad_field(field: &str, reason: impl Into<String>) -> RequestError {
    RequestError::BadField {
        field: field.to_string(),
        reason: reason.into(),
    }
}

/// One field's raw value, whichever the encoding.
enum Raw {
    Null,
    Text(String),
    Bool(bool),
    Number(serde_json::Number),
    List(Vec<Value>),
    Object,
}

/// Parses and validates a body. `head_appid` is the appid named by the request path or an
/// `appid` header; when both it and the body name one, they must agree.
pub fn parse(
    kind: BodyKind,
    body: &[u8],
    head_appid: Option<&str>,
) -> Result<Registration, RequestError> {
    let fields = match kind {
        BodyKind::Form => form::parse_form(body)
            .map_err(RequestError::BadForm)?
            .into_iter()
            .map(|(k, v)| (k, Raw::Text(v)))
            .collect::<Vec<_>>(),
        BodyKind::Json => json_fields(body)?,
    };
    let mut reg = Registration::default();
    let mut seen: Vec<String> = Vec::new();
    let mut body_appid = None;
    for (name, raw) in fields {
        if seen.contains(&name) {
            return Err(bad_field(&name, "repeated"));
        }
        match name.as_str() {
            "appid" => match raw {
                Raw::Text(s) => body_appid = Some(s),
                _ => return Err(RequestError::BadAppid("appid must be a string".into())),
            },
            "callback_url_pre" => reg.callback_url_pre = callback_url("callback_url_pre", raw)?,
            "callback_url_post" => reg.callback_url_post = callback_url("callback_url_post", raw)?,
            "callback_hosts" => reg.callback_hosts = callback_hosts(raw)?,
            "max_body_bytes" => reg.max_body_bytes = max_body_bytes(raw)?,
            "rotate_secret" => reg.rotate_secret = flag("rotate_secret", raw)?,
            "forward_headers" => reg.forward_headers = list(&name, raw, forward_header, MAX_LIST)?,
            "cors_origins" => reg.cors_origins = list(&name, raw, cors_origin, MAX_LIST)?,
            "inline_types" => reg.inline_types = list(&name, raw, media_type, MAX_LIST)?,
            "expect" => reg.expect = expect(raw)?,
            "downloads" => reg.downloads = downloads(raw)?,
            "quota_bytes" => reg.quota_bytes = bytes_field("quota_bytes", raw)?,
            "max_concurrent_uploads" => {
                reg.max_concurrent_uploads = count_field("max_concurrent_uploads", raw)?
            }
            "rate_per_s" => reg.rate_per_s = rate(raw)?,
            _ => return Err(bad_field(&name, "unknown field")),
        }
        seen.push(name);
    }
    reg.appid = match (body_appid, head_appid) {
        (Some(b), Some(h)) if b != h => {
            return Err(RequestError::BadAppid(format!(
                "appid {b:?} in the body differs from {h:?} in the request"
            )))
        }
        (Some(b), _) => b,
        (None, Some(h)) => h.to_string(),
        (None, None) => return Err(RequestError::BadAppid("appid is required".into())),
    };
    if !valid_appid(&reg.appid) {
        return Err(RequestError::BadAppid(
            "appid must be 1-64 of [A-Za-z0-9_-]".into(),
        ));
    }
    if RESERVED_APPIDS.contains(&reg.appid.as_str()) {
        return Err(RequestError::BadAppid(format!(
            "the appid {:?} is reserved for the node's own routes",
            reg.appid
        )));
    }
    Ok(reg)
}

fn json_fields(body: &[u8]) -> Result<Vec<(String, Raw)>, RequestError> {
    let value: Value =
        serde_json::from_slice(body).map_err(|e| RequestError::BadJson(e.to_string()))?;
    let Value::Object(map) = value else {
        return Err(RequestError::BadJson("expected an object".into()));
    };
    Ok(map
        .into_iter()
        .map(|(k, v)| {
            let raw = match v {
                Value::Null => Raw::Null,
                Value::String(s) => Raw::Text(s),
                Value::Bool(b) => Raw::Bool(b),
                Value::Number(n) => Raw::Number(n),
                Value::Array(a) => Raw::List(a),
                Value::Object(_) => Raw::Object,
            };
            (k, raw)
        })
        .collect())
}

fn callback_url(field: &'static str, raw: Raw) -> Result<Change<String>, RequestError> {
    let text = match raw {
        Raw::Null => return Ok(Change::Clear),
        Raw::Text(s) if s.trim().is_empty() => return Ok(Change::Clear),
        Raw::Text(s) => s,
        _ => {
            return Err(RequestError::BadCallbackUrl {
                field,
                reason: "must be a string".into(),
            })
        }
    };
    validate_callback_url(text.trim())
        .map(Change::Set)
        .map_err(|reason| RequestError::BadCallbackUrl { field, reason })
}

/// An absolute `http`/`https` URL with a host, at most [`MAX_URL_LEN`] bytes; returned in its
/// normalised form.
pub fn validate_callback_url(text: &str) -> Result<String, String> {
    if text.len() > MAX_URL_LEN {
        return Err(format!("longer than {MAX_URL_LEN} bytes"));
    }
    let url = Url::parse(text).map_err(|e| format!("not a URL ({e})"))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err("only http and https URLs are allowed".into());
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err("the URL has no host".into());
    }
    Ok(url.to_string())
}

fn callback_hosts(raw: Raw) -> Result<Change<Vec<String>>, RequestError> {
    list("callback_hosts", raw, normalize_host, MAX_HOSTS)
}

/// `host` or `host:port` → its normalised form (lower case, IDNA, IPv6 in brackets), keeping an
/// explicit port even when it is a scheme's default.
pub fn normalize_host(item: &str) -> Result<String, String> {
    if item.len() > 262 {
        return Err("too long".into());
    }
    let parse =
        |scheme: &str| Url::parse(&format!("{scheme}://{item}/")).map_err(|e| e.to_string());
    let http = parse("http")?;
    let https = parse("https")?;
    let plain = http.username().is_empty()
        && http.password().is_none()
        && http.path() == "/"
        && http.query().is_none()
        && http.fragment().is_none();
    let host = match http.host_str() {
        Some(h) if plain && !h.is_empty() => h,
        _ => return Err("expected host or host:port".into()),
    };
    Ok(match http.port().or(https.port()) {
        Some(port) => format!("{host}:{port}"),
        None => host.to_string(),
    })
}

fn max_body_bytes(raw: Raw) -> Result<Change<u64>, RequestError> {
    bytes_field("max_body_bytes", raw)
}

/// A size in bytes: a whole number, or in a text field one with a `K`/`M`/`G`/`T` suffix
/// (powers of 1024, as in the config file); empty or `null` clears it.
fn bytes_field(field: &str, raw: Raw) -> Result<Change<u64>, RequestError> {
    let n = match raw {
        Raw::Null => return Ok(Change::Clear),
        Raw::Text(s) if s.trim().is_empty() => return Ok(Change::Clear),
        Raw::Text(s) => upgate_contract::parse_size(s.trim()).ok(),
        Raw::Number(n) => n.as_u64(),
        _ => None,
    };
    match n {
        Some(0) => Err(bad_field(field, "must be at least 1")),
        Some(n) => Ok(Change::Set(n)),
        None => Err(bad_field(
            field,
            "must be a whole number of bytes (a K, M, G or T suffix may follow)",
        )),
    }
}

/// A positive whole count; empty or `null` clears it.
fn count_field(field: &str, raw: Raw) -> Result<Change<u32>, RequestError> {
    let n = match raw {
        Raw::Null => return Ok(Change::Clear),
        Raw::Text(s) if s.trim().is_empty() => return Ok(Change::Clear),
        Raw::Text(s) => s.trim().parse::<u32>().ok(),
        Raw::Number(n) => n.as_u64().and_then(|n| u32::try_from(n).ok()),
        _ => None,
    };
    match n {
        Some(0) => Err(bad_field(field, "must be at least 1")),
        Some(n) => Ok(Change::Set(n)),
        None => Err(bad_field(field, "must be a whole number")),
    }
}

/// `rate_per_s`: a positive number of uploads per second (fractions allowed: 0.5 is one every
/// two seconds); empty or `null` clears it.
fn rate(raw: Raw) -> Result<Change<f64>, RequestError> {
    const F: &str = "rate_per_s";
    let n = match raw {
        Raw::Null => return Ok(Change::Clear),
        Raw::Text(s) if s.trim().is_empty() => return Ok(Change::Clear),
        Raw::Text(s) => s.trim().parse::<f64>().ok(),
        Raw::Number(n) => n.as_f64(),
        _ => None,
    };
    match n {
        Some(r) if r.is_finite() && r > 0.0 && r <= 1e9 => Ok(Change::Set(r)),
        _ => Err(bad_field(
            F,
            "must be a number of uploads per second above 0",
        )),
    }
}

fn downloads(raw: Raw) -> Result<Change<crate::registry::Downloads>, RequestError> {
    use crate::registry::Downloads;
    match raw {
        Raw::Null => Ok(Change::Clear),
        Raw::Text(s) => match s.trim() {
            "" => Ok(Change::Clear),
            "public" => Ok(Change::Set(Downloads::Public)),
            "signed" => Ok(Change::Set(Downloads::Signed)),
            _ => Err(bad_field("downloads", "must be public or signed")),
        },
        _ => Err(bad_field("downloads", "must be public or signed")),
    }
}

/// A list field: comma-separated text or a JSON list of strings, each item checked and
/// normalised by `item`, duplicates dropped; empty (or `null`) clears the stored list.
fn list(
    field: &str,
    raw: Raw,
    item: fn(&str) -> Result<String, String>,
    most: usize,
) -> Result<Change<Vec<String>>, RequestError> {
    let items: Vec<String> = match raw {
        Raw::Null => return Ok(Change::Clear),
        Raw::Text(s) => s.split(',').map(str::to_string).collect(),
        Raw::List(values) => values
            .into_iter()
            .map(|v| match v {
                Value::String(s) => Ok(s),
                _ => Err(bad_field(field, "must be a list of strings")),
            })
            .collect::<Result<_, _>>()?,
        _ => {
            return Err(bad_field(
                field,
                "must be a comma-separated string or a list of strings",
            ))
        }
    };
    let mut out: Vec<String> = Vec::new();
    for raw_item in items.iter().map(|s| s.trim()).filter(|s| !s.is_empty()) {
        let v = item(raw_item).map_err(|why| bad_field(field, format!("{raw_item:?}: {why}")))?;
        if !out.contains(&v) {
            out.push(v);
        }
        if out.len() > most {
            return Err(bad_field(field, format!("more than {most} entries")));
        }
    }
    Ok(if out.is_empty() {
        Change::Clear
    } else {
        Change::Set(out)
    })
}

/// A header name (RFC 9110 token), lower-cased, optionally ending in `*` (a prefix).
fn forward_header(item: &str) -> Result<String, String> {
    let name = item.strip_suffix('*').unwrap_or(item);
    if name.is_empty() {
        return Err("name a header or a prefix before `*`".into());
    }
    if name.len() > 64 || !name.bytes().all(is_tchar) {
        return Err("not a header name".into());
    }
    Ok(item.to_ascii_lowercase())
}

fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

/// `*`, or an origin: `http(s)://host[:port]`, nothing after it, normalised (lower case, no
/// default port) as browsers send it in `Origin`.
fn cors_origin(item: &str) -> Result<String, String> {
    if item == "*" {
        return Ok(item.into());
    }
    let url = Url::parse(item).map_err(|e| format!("not an origin ({e})"))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err("an origin is http:// or https://".into());
    }
    let plain = url.username().is_empty()
        && url.password().is_none()
        && url.path() == "/"
        && url.query().is_none()
        && url.fragment().is_none();
    if !plain {
        return Err("an origin has no path, query or user (https://app.example.com)".into());
    }
    let origin = url.origin().ascii_serialization();
    if origin == "null" {
        return Err("not an origin".into());
    }
    Ok(origin)
}

/// `type/subtype`, lower case, no parameters.
fn media_type(item: &str) -> Result<String, String> {
    let t = item.to_ascii_lowercase();
    match t.split_once('/') {
        Some((a, b))
            if !a.is_empty()
                && !b.is_empty()
                && a.bytes().all(is_tchar)
                && b.bytes().all(is_tchar)
                && t.len() <= 127 =>
        {
            Ok(t)
        }
        _ => Err("expected a media type such as text/html".into()),
    }
}

fn expect(raw: Raw) -> Result<Change<ExpectPolicy>, RequestError> {
    match raw {
        Raw::Null => Ok(Change::Clear),
        Raw::Text(s) => match s.trim() {
            "" => Ok(Change::Clear),
            "require" => Ok(Change::Set(ExpectPolicy::Require)),
            "optional" => Ok(Change::Set(ExpectPolicy::Optional)),
            _ => Err(bad_field("expect", "must be require or optional")),
        },
        _ => Err(bad_field("expect", "must be require or optional")),
    }
}

fn flag(field: &str, raw: Raw) -> Result<bool, RequestError> {
    match raw {
        Raw::Bool(b) => Ok(b),
        Raw::Null => Ok(false),
        Raw::Text(s) => match s.trim() {
            "true" | "1" => Ok(true),
            "false" | "0" | "" => Ok(false),
            _ => Err(bad_field(field, "must be true or false")),
        },
        _ => Err(bad_field(field, "must be true or false")),
    }
}

/// Whether a URL or a `host[:port]` entry names this machine or a private network by a literal
/// address, or as `localhost`. Apps managing their own record may not point callbacks there; the
/// operator may. (Names that merely resolve to such addresses are the callback client's concern.)
pub fn names_internal_host(url_or_host: &str) -> bool {
    let url = if url_or_host.contains("://") {
        Url::parse(url_or_host)
    } else {
        Url::parse(&format!("http://{url_or_host}/"))
    };
    match url.ok().as_ref().and_then(|u| u.host()) {
        Some(Host::Ipv4(ip)) => internal_v4(ip),
        Some(Host::Ipv6(ip)) => internal_v6(ip),
        Some(Host::Domain(d)) => {
            let d = d.trim_end_matches('.');
            d == "localhost" || d.ends_with(".localhost")
        }
        None => false,
    }
}

fn internal_v4(ip: Ipv4Addr) -> bool {
    let [a, b, ..] = ip.octets();
    ip.is_loopback()
        || ip.is_private()
        || ip.is_link_local()
        || ip.is_unspecified()
        || ip.is_broadcast()
        || (a == 100 && (64..128).contains(&b)) // shared address space (RFC 6598)
}

fn internal_v6(ip: Ipv6Addr) -> bool {
    if let Some(v4) = ip.to_ipv4_mapped() {
        return internal_v4(v4);
    }
    let first = ip.segments()[0];
    ip.is_loopback()
        || ip.is_unspecified()
        || (first & 0xfe00) == 0xfc00 // unique local
        || (first & 0xffc0) == 0xfe80 // link local
}
