//! tus 1.0 (<https://tus.io/protocols/resumable-upload>): the core headers and those of the
//! creation, creation-defer-length, concatenation and expiration extensions, plus what the
//! server announces. `Upload-Metadata` and `Upload-Checksum` have files of their own.

use super::{date, media_type_is, ows_trim, ResumableError};

/// The only tus version spoken: `Tus-Resumable` in every response, and what requests must send.
pub const TUS_RESUMABLE: &str = "1.0.0";
/// `Tus-Version`: the versions the server supports, preferred first (sent with 412 and OPTIONS).
pub const TUS_VERSION: &str = "1.0.0";
/// `Tus-Extension`: the extensions upgate implements (contract, "Resumable uploads").
pub const TUS_EXTENSION: &str = "creation,creation-with-upload,creation-defer-length,termination,checksum,expiration,concatenation";
/// The media type of tus upload data (`PATCH`, and `POST` with creation-with-upload).
pub const OFFSET_OCTET_STREAM: &str = "application/offset+octet-stream";
/// The largest `Upload-Offset` / `Upload-Length` taken: a file offset is an `off_t` (i64), and
/// tusd parses these as int64 too. 19 digits at most.
pub const MAX_UPLOAD_NUMBER: u64 = i64::MAX as u64;
/// The most upload URLs in one `Upload-Concat: final;…`.
pub const MAX_CONCAT_PARTS: usize = 64;

/// `Tus-Resumable`: Ok only for `1.0.0`; anything else is
/// [`ResumableError::TusVersionUnsupported`] (412 with `Tus-Version`).
pub fn parse_tus_resumable(value: &[u8]) -> Result<(), ResumableError> {
    match ows_trim(value) == TUS_RESUMABLE.as_bytes() {
        true => Ok(()),
        false => Err(ResumableError::TusVersionUnsupported),
    }
}

/// tus `Upload-Offset`: 1 to 19 decimal digits, no sign, at most [`MAX_UPLOAD_NUMBER`].
pub fn parse_upload_offset(value: &[u8]) -> Result<u64, ResumableError> {
    decimal(value).ok_or(ResumableError::BadUploadOffset)
}

/// tus `Upload-Length`: as [`parse_upload_offset`].
pub fn parse_upload_length(value: &[u8]) -> Result<u64, ResumableError> {
    decimal(value).ok_or(ResumableError::BadUploadLength)
}

/// `Upload-Defer-Length`: its value "MUST be `1`".
pub fn parse_upload_defer_length(value: &[u8]) -> Result<(), ResumableError> {
    match ows_trim(value) {
        b"1" => Ok(()),
        _ => Err(ResumableError::BadDeferLength),
    }
}

/// A non-negative decimal integer as tus writes offsets and lengths. The field's surrounding
/// whitespace is not part of its value (RFC 9110 §5.5); whitespace inside is refused.
fn decimal(value: &[u8]) -> Option<u64> {
    let digits = ows_trim(value);
    if digits.len() > 19 {
        return None;
    }
    crate::parse_length(digits)
        .ok()
        .filter(|&n| n <= MAX_UPLOAD_NUMBER)
}

/// `Upload-Concat` (concatenation extension).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Concat {
    /// `partial`: this upload is a piece of a later final upload.
    Partial,
    /// `final;<url> <url>…`: the upload is the listed partial uploads, in order, as sent
    /// (absolute URLs or paths; resolving them is the caller's business). Never empty.
    Final(Vec<String>),
}

impl Concat {
    /// Parses `partial`, or `final;` and 1 to [`MAX_CONCAT_PARTS`] URLs separated by spaces
    /// (runs of spaces are one separator, as tusd reads them). A URL is visible ASCII: RFC 3986
    /// has no spaces and no bytes above 0x7e.
    pub fn parse(value: &[u8]) -> Result<Concat, ResumableError> {
        let value = ows_trim(value);
        if value == b"partial" {
            return Ok(Concat::Partial);
        }
        let list = value
            .strip_prefix(b"final;")
            .ok_or(ResumableError::BadConcat)?;
        let mut urls = Vec::new();
        for url in list.split(|&b| b == b' ').filter(|u| !u.is_empty()) {
            if !url.iter().all(|b| b.is_ascii_graphic()) {
                return Err(ResumableError::BadConcat);
            }
            if urls.len() == MAX_CONCAT_PARTS {
                return Err(ResumableError::TooManyConcatParts);
            }
            urls.push(String::from_utf8_lossy(url).into_owned());
        }
        if urls.is_empty() {
            return Err(ResumableError::BadConcat);
        }
        Ok(Concat::Final(urls))
    }

    /// The header value: `partial` or `final;a b` (what HEAD responses echo back).
    pub fn format(&self) -> String {
        match self {
            Concat::Partial => "partial".to_owned(),
            Concat::Final(urls) => format!("final;{}", urls.join(" ")),
        }
    }
}

/// `X-HTTP-Method-Override`: the method the request stands for (a token, e.g. `PATCH` or
/// `DELETE`), returned as sent; methods are case-sensitive (RFC 9110 §9.1).
pub fn parse_method_override(value: &[u8]) -> Result<&str, ResumableError> {
    let token = ows_trim(value);
    if token.is_empty() || !token.iter().all(|&b| crate::is_tchar(b)) {
        return Err(ResumableError::BadMethodOverride);
    }
    std::str::from_utf8(token).map_err(|_| ResumableError::BadMethodOverride)
}

/// The `Content-Type` of tus upload data: `application/offset+octet-stream` (parameters
/// allowed), else [`ResumableError::NotOffsetOctetStream`] (415).
pub fn check_offset_octet_stream(content_type: Option<&[u8]>) -> Result<(), ResumableError> {
    match content_type {
        Some(v) if media_type_is(v, OFFSET_OCTET_STREAM) => Ok(()),
        _ => Err(ResumableError::NotOffsetOctetStream),
    }
}

/// The request's `Upload-Offset` must be the upload's offset (tus core, `PATCH`; IETF
/// §"Upload Append"), else [`ResumableError::OffsetMismatch`] (409).
pub fn check_offset(expected: u64, provided: u64) -> Result<(), ResumableError> {
    match expected == provided {
        true => Ok(()),
        false => Err(ResumableError::OffsetMismatch { expected, provided }),
    }
}

/// `Upload-Expires` (expiration extension): the moment `unix_seconds` as an RFC 9110
/// IMF-fixdate, e.g. `Wed, 25 Jun 2014 16:00:00 GMT`. The caller reads the clock.
pub fn format_upload_expires(unix_seconds: u64) -> String {
    date::imf_fixdate(unix_seconds)
}
