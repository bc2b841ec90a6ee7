//! `GET`/`HEAD /{appid}/{path}`: serves committed uploads with `Content-Length`,
//! `Content-Type` (the one stored with the object, else from the extension), `ETag`,
//! `Last-Modified`, `304` for matching `If-None-Match` / `If-Modified-Since`, and single byte
//! ranges (`Range`, `If-Range`); safely (`safety.rs`): `nosniff` on every answer, and
//! script-capable types as sandboxed attachments unless the app lets them open inline; and
//! for an app registered with `downloads = "signed"` only to a signed URL (`signed.rs`).

pub mod range;
pub mod safety;
pub mod signed;

use std::time::{SystemTime, UNIX_EPOCH};

use crate::http::{Method, Response, ResponseBody};
use crate::origin::{Fetched, Origin};
use crate::server::Exchange;
use crate::storage::{mime, path, ObjectStore, Store};

use range::RangeDecision;
pub use safety::SafeServing;

/// Why a download has no file to send (statuses in `crate::error::status`).
#[derive(Debug)]
pub enum DownloadError {
    BadPath(path::PathError),
    NotFound,
    /// The app's downloads need a signed URL and this one's is missing, wrong or expired (403
    /// `bad_signature`).
    BadSignature(upgate_contract::url_sig::UrlSigError),
    /// The app's registration could not be read, so whether it needs a signature is unknown
    /// (500; never served on a guess).
    Registry(crate::registry::RegistryError),
    /// The file is not on this node and the origin could not be asked (503
    /// `origin_unavailable`: it may well exist).
    Origin(crate::origin::OriginError),
    /// The range lies outside the file (416, with `Content-Range: bytes */size`).
    RangeNotSatisfiable {
        size: u64,
        validators: Validators,
    },
}

impl std::fmt::Display for DownloadError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DownloadError::BadPath(e) => write!(f, "{e}"),
            DownloadError::NotFound => f.write_str("no such file"),
            DownloadError::BadSignature(e) => write!(f, "{e}"),
            DownloadError::Registry(e) => write!(f, "registry: {e}"),
            DownloadError::Origin(e) => write!(f, "origin: {e}"),
            DownloadError::RangeNotSatisfiable { .. } => {
                f.write_str("the range is outside the file")
            }
        }
    }
}

impl std::error::Error for DownloadError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            DownloadError::Registry(e) => Some(e),
            DownloadError::Origin(e) => Some(e),
            _ => None,
        }
    }
}

/// A download at one of the node's file addresses: the app's registration (read once per
/// download) decides who may read the file ([`signed`]) and which script-capable types open
/// inline (its `inline_types`).
pub async fn handle_registered(ex: &mut Exchange<'_>, app: &crate::app::App) -> Response {
    let appid = path::first_segment(ex.head().path_only());
    let record = match std::str::from_utf8(appid) {
        Ok(a) if crate::registry::valid_appid(a) => app.registry.get(a),
        _ => Ok(None),
    };
    let allowed = record.map_err(DownloadError::Registry).and_then(|record| {
        signed::check(record.as_ref(), ex.head(), crate::clock::unix_secs())
            .map_err(DownloadError::BadSignature)?;
        Ok(record)
    });
    let record = match allowed {
        Ok(record) => record,
        Err(e) => {
            let (name, value) = safety::NOSNIFF;
            return crate::error::respond(ex.access(), &e).header(name, value);
        }
    };
    let inline = record.map(|r| r.inline_types).unwrap_or_default();
    handle(ex, &app.store, app.origin(), &SafeServing::new(&inline)).await
}

/// Answers a download request of an app served as `safe` says (its `inline_types`). Every
/// answer, errors included, carries [`safety::NOSNIFF`]. With an `origin`, a file the local
/// store misses is fetched from it into the local store first (then served like any other).
pub async fn handle(
    ex: &mut Exchange<'_>,
    store: &Store,
    origin: Option<&Origin>,
    safe: &SafeServing<'_>,
) -> Response {
    let resp = match serve(ex, store, origin, safe).await {
        Ok(resp) => resp,
        Err(e) => crate::error::respond(ex.access(), &e),
    };
    let (name, value) = safety::NOSNIFF;
    resp.header(name, value)
}

async fn serve(
    ex: &mut Exchange<'_>,
    store: &Store,
    origin: Option<&Origin>,
    safe: &SafeServing<'_>,
) -> Result<Response, DownloadError> {
    let target = path::parse(ex.head().path_only()).map_err(DownloadError::BadPath)?;
    let mut opened = store.open(&target).await;
    if let (Ok(None), Some(origin)) = (&opened, origin) {
        opened = match origin.fetch(&target).await.map_err(DownloadError::Origin)? {
            Fetched::Absent => Ok(None),
            Fetched::Cached => store.open(&target).await,
            Fetched::Filling(f) => match crate::origin::open_filling(&f).await {
                Some(object) => Ok(Some(object)),
                // The fetch ended in between: the file is in place, or not at all.
                None => store.open(&target).await,
            },
        };
    }
    let object = match opened {
        Ok(Some(object)) => object,
        // A file that cannot be opened is not served; to the client it does not exist.
        Ok(None) | Err(_) => return Err(DownloadError::NotFound),
    };
    let (size, body) = (object.meta.size, object.body);
    let validators = Validators::new(size, object.meta.modified);
    let content_type = object
        .meta
        .content_type
        .unwrap_or_else(|| mime::content_type(target.filename()).to_owned());
    // On a 304 too: a cache that updates its stored headers from it keeps them.
    let safety = safe.headers(&content_type, target.filename());
    let head = ex.head();
    if validators.not_modified(head.value("if-none-match"), head.value("if-modified-since")) {
        body.close().await;
        return Ok(with(validators.apply(Response::new(304)), safety));
    }
    // A range applies to GET only, and only while `If-Range` still names this version.
    let range = match head.value("range") {
        Some(r)
            if head.method() == Method::Get
                && validators.if_range_holds(head.value("if-range")) =>
        {
            range::decide(r, size)
        }
        _ => RangeDecision::Full,
    };
    let (status, offset, len) = match range {
        RangeDecision::Full => (200, 0, size),
        RangeDecision::Partial { start, end } => (206, start, end - start + 1),
        RangeDecision::Unsatisfiable => {
            body.close().await;
            return Err(DownloadError::RangeNotSatisfiable { size, validators });
        }
    };
    let mut resp = validators
        .apply(Response::new(status))
        .header("Content-Type", content_type)
        .header("Accept-Ranges", "bytes");
    resp = with(resp, safety);
    if status == 206 {
        let last = offset + len - 1;
        resp = resp.header("Content-Range", format!("bytes {offset}-{last}/{size}"));
    }
    resp.body = ResponseBody::Sized(len);
    ex.attach_body(body, offset, len);
    Ok(resp)
}

fn with(mut resp: Response, headers: Vec<(&'static str, String)>) -> Response {
    resp.headers.extend(headers);
    resp
}

/// `ETag` and `Last-Modified` of one file version.
#[derive(Debug)]
pub struct Validators {
    etag: String,
    last_modified: String,
    mtime_secs: u64,
}

impl Validators {
    pub fn new(size: u64, mtime: SystemTime) -> Self {
        let since = mtime.duration_since(UNIX_EPOCH).unwrap_or_default();
        Validators {
            etag: format!(
                "\"{:x}-{:x}{:09x}\"",
                size,
                since.as_secs(),
                since.subsec_nanos()
            ),
            last_modified: httpdate::fmt_http_date(mtime),
            mtime_secs: since.as_secs(),
        }
    }

    /// RFC 9110 §13.2.2: `If-None-Match` wins over `If-Modified-Since`.
    pub fn not_modified(
        &self,
        if_none_match: Option<&[u8]>,
        if_modified_since: Option<&[u8]>,
    ) -> bool {
        if let Some(inm) = if_none_match {
            return inm.split(|&b| b == b',').any(|t| {
                let t = t.trim_ascii();
                let t = t.strip_prefix(b"W/").unwrap_or(t);
                t == b"*" || t == self.etag.as_bytes()
            });
        }
        if let Some(ims) = if_modified_since.and_then(|v| std::str::from_utf8(v).ok()) {
            if let Ok(since) = httpdate::parse_http_date(ims) {
                let since = since.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
                return self.mtime_secs <= since;
            }
        }
        false
    }

    /// `If-Range` (RFC 9110 §13.1.5): absent, or a strong match of this version's ETag or an
    /// exact match of its `Last-Modified`.
    pub fn if_range_holds(&self, if_range: Option<&[u8]>) -> bool {
        match if_range.map(<[u8]>::trim_ascii) {
            None => true,
            Some(v) if v.starts_with(b"\"") => v == self.etag.as_bytes(),
            Some(v) => v == self.last_modified.as_bytes(),
        }
    }

    pub fn apply(&self, mut resp: Response) -> Response {
        for (name, value) in self.headers() {
            resp = resp.header(name, value);
        }
        resp
    }

    /// The validator fields of a response about this version.
    pub fn headers(&self) -> Vec<(&'static str, String)> {
        vec![
            ("ETag", self.etag.clone()),
            ("Last-Modified", self.last_modified.clone()),
        ]
    }

    pub fn etag(&self) -> &str {
        &self.etag
    }

    /// The `Last-Modified` value (an HTTP-date).
    pub fn last_modified(&self) -> &str {
        &self.last_modified
    }
}
