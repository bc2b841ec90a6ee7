//! The fields of a resumable upload's requests, read from the head and parsed by the protocol
//! crate's grammar ([`crate::http`]); each failure is the [`ResumableError`] that answers it.

use crate::http::RequestHead;

use super::ResumableError;

/// The only tus version spoken.
pub const TUS_VERSION: &str = "1.0.0";
/// The tus extensions served (`Tus-Extension`).
pub const TUS_EXTENSIONS: &str =
    "creation,creation-with-upload,creation-defer-length,termination,checksum,expiration";
/// The `Upload-Checksum` algorithms computed (`Tus-Checksum-Algorithm`).
pub const CHECKSUM_ALGORITHMS: &str = "sha1,sha256,md5";
/// The media type of a tus append's body.
pub const OFFSET_OCTET_STREAM: &str = "application/offset+octet-stream";

/// `Tus-Resumable: 1.0.0`, required on every tus request but `OPTIONS`.
pub fn tus_version(head: &RequestHead) -> Result<(), ResumableError> {
    match head.value("tus-resumable") {
        Some(v) if v.trim_ascii() == TUS_VERSION.as_bytes() => Ok(()),
        _ => Err(ResumableError::VersionUnsupported),
    }
}

fn bad(field: &'static str, why: impl Into<String>) -> ResumableError {
    ResumableError::BadHeader {
        field,
        why: why.into(),
    }
}

/// A non-negative decimal integer field (`Upload-Offset`, `Upload-Length`), if present.
fn number(head: &RequestHead, field: &'static str) -> Result<Option<u64>, ResumableError> {
    let Some(raw) = head.value(field) else {
        return Ok(None);
    };
    crate::http::parse_length(raw.trim_ascii())
        .map(Some)
        .map_err(|_| bad(field, "must be a non-negative decimal integer"))
}

/// `Upload-Offset`, if present.
pub fn offset(head: &RequestHead) -> Result<Option<u64>, ResumableError> {
    number(head, "upload-offset")
}

/// What a tus creation says of the upload's length.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Length {
    Known(u64),
    /// `Upload-Defer-Length: 1`: an append will say.
    Deferred,
}

/// `Upload-Length` or `Upload-Defer-Length: 1` (exactly one of them).
pub fn creation_length(head: &RequestHead) -> Result<Length, ResumableError> {
    let length = number(head, "upload-length")?;
    let deferred = match head.value("upload-defer-length") {
        None => false,
        Some(v) if v.trim_ascii() == b"1" => true,
        Some(_) => return Err(bad("upload-defer-length", "the only value is 1")),
    };
    match (length, deferred) {
        (Some(n), false) => Ok(Length::Known(n)),
        (None, true) => Ok(Length::Deferred),
        (Some(_), true) => Err(bad(
            "upload-length",
            "give Upload-Length or Upload-Defer-Length, not both",
        )),
        (None, false) => Err(bad(
            "upload-length",
            "a creation needs Upload-Length (or Upload-Defer-Length: 1)",
        )),
    }
}

/// `Upload-Length` on an append (a deferred length being set), if present.
pub fn append_length(head: &RequestHead) -> Result<Option<u64>, ResumableError> {
    number(head, "upload-length")
}

/// `Upload-Metadata`: the pairs, values base64-decoded to text.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Metadata {
    pub raw: Option<String>,
    pub pairs: Vec<(String, String)>,
}

impl Metadata {
    pub fn get(&self, key: &str) -> Option<&str> {
        self.pairs
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }
}

/// `Upload-Metadata`, if present (at most 4 KiB, keys unique, values base64).
pub fn metadata(head: &RequestHead) -> Result<Metadata, ResumableError> {
    use base64::Engine;
    let Some(raw) = head.value("upload-metadata") else {
        return Ok(Metadata::default());
    };
    let field = "upload-metadata";
    if raw.len() > 4096 {
        return Err(bad(field, "at most 4096 bytes"));
    }
    let text = std::str::from_utf8(raw).map_err(|_| bad(field, "not ASCII"))?;
    let mut pairs: Vec<(String, String)> = Vec::new();
    for item in text.split(',').map(str::trim).filter(|i| !i.is_empty()) {
        let mut parts = item.split(' ').filter(|p| !p.is_empty());
        let key = parts.next().unwrap_or("");
        let value = parts.next().unwrap_or("");
        if parts.next().is_some() {
            return Err(bad(field, format!("{key:?}: one base64 value at most")));
        }
        if pairs.iter().any(|(k, _)| k == key) {
            return Err(bad(field, format!("the key {key:?} is repeated")));
        }
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(value)
            .map_err(|_| bad(field, format!("the value of {key:?} is not base64")))?;
        let value = String::from_utf8(bytes)
            .map_err(|_| bad(field, format!("the value of {key:?} is not UTF-8")))?;
        pairs.push((key.to_owned(), value));
    }
    Ok(Metadata {
        raw: Some(text.to_owned()),
        pairs,
    })
}

/// The algorithms of `Upload-Checksum`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Algorithm {
    Sha1,
    Sha256,
    Md5,
}

/// `Upload-Checksum`: the algorithm and the expected digest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checksum {
    pub algorithm: Algorithm,
    pub digest: Vec<u8>,
}

/// `Upload-Checksum`, if present.
pub fn checksum(head: &RequestHead) -> Result<Option<Checksum>, ResumableError> {
    use base64::Engine;
    let Some(raw) = head.value("upload-checksum") else {
        return Ok(None);
    };
    let field = "upload-checksum";
    let text = std::str::from_utf8(raw).map_err(|_| bad(field, "not ASCII"))?;
    let (name, value) = text
        .trim()
        .split_once(' ')
        .ok_or_else(|| bad(field, "expected \"<algorithm> <base64 digest>\""))?;
    let (algorithm, len) = match name {
        "sha1" => (Algorithm::Sha1, 20),
        "sha256" => (Algorithm::Sha256, 32),
        "md5" => (Algorithm::Md5, 16),
        other => return Err(ResumableError::ChecksumUnsupported(other.to_owned())),
    };
    let digest = base64::engine::general_purpose::STANDARD
        .decode(value.trim())
        .map_err(|_| bad(field, "the digest is not base64"))?;
    if digest.len() != len {
        return Err(bad(field, format!("a {name} digest has {len} bytes")));
    }
    Ok(Some(Checksum { algorithm, digest }))
}

/// True when the body is `application/offset+octet-stream`.
pub fn is_offset_octet_stream(head: &RequestHead) -> bool {
    head.value("content-type")
        .and_then(|v| std::str::from_utf8(v).ok())
        .map(|v| v.split(';').next().unwrap_or("").trim())
        .is_some_and(|v| v.eq_ignore_ascii_case(OFFSET_OCTET_STREAM))
}

/// The `Upload-Expires` value: an IMF-fixdate.
pub fn http_date(unix_ms: u64) -> String {
    httpdate::fmt_http_date(std::time::UNIX_EPOCH + std::time::Duration::from_millis(unix_ms))
}
