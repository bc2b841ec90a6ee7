//! The fields of a resumable upload's requests, read from the head with the protocol crate's
//! grammar (`crate::http`, `resumable.rs` there); each refusal is the [`ResumableError`] that
//! answers it.

use crate::http::{self, Checksum, Concat, Metadata, RequestHead};

use super::ResumableError;

/// `Tus-Resumable: 1.0.0`, required on every tus request but `OPTIONS`.
pub fn tus_version(head: &RequestHead) -> Result<(), ResumableError> {
    let value = head.value("tus-resumable").unwrap_or(b"");
    http::parse_tus_resumable(value).map_err(ResumableError::Protocol)
}

/// `Upload-Offset`, if present.
pub fn offset(head: &RequestHead) -> Result<Option<u64>, ResumableError> {
    head.value("upload-offset")
        .map(http::parse_upload_offset)
        .transpose()
        .map_err(ResumableError::Protocol)
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
    let length = append_length(head)?;
    let deferred = head
        .value("upload-defer-length")
        .map(http::parse_upload_defer_length)
        .transpose()
        .map_err(ResumableError::Protocol)?
        .is_some();
    match (length, deferred) {
        (Some(n), false) => Ok(Length::Known(n)),
        (None, true) => Ok(Length::Deferred),
        (Some(_), true) => Err(ResumableError::Missing {
            field: "upload-length",
            why: "give Upload-Length or Upload-Defer-Length, not both",
        }),
        (None, false) => Err(ResumableError::Missing {
            field: "upload-length",
            why: "a creation needs Upload-Length (or Upload-Defer-Length: 1)",
        }),
    }
}

/// `Upload-Length` (on an append: a deferred length being set), if present.
pub fn append_length(head: &RequestHead) -> Result<Option<u64>, ResumableError> {
    head.value("upload-length")
        .map(http::parse_upload_length)
        .transpose()
        .map_err(ResumableError::Protocol)
}

/// `Upload-Metadata` (empty when absent).
pub fn metadata(head: &RequestHead) -> Result<Metadata, ResumableError> {
    match head.value("upload-metadata") {
        Some(v) => Metadata::parse(v).map_err(ResumableError::Protocol),
        None => Ok(Metadata::default()),
    }
}

/// A metadata value as text (`filename`, `path`, `filetype` are text).
pub fn text<'m>(meta: &'m Metadata, key: &'static str) -> Result<Option<&'m str>, ResumableError> {
    meta.get(key)
        .map(|v| {
            std::str::from_utf8(v).map_err(|_| ResumableError::Missing {
                field: "upload-metadata",
                why: "filename, path and filetype must be UTF-8",
            })
        })
        .transpose()
}

/// `Upload-Checksum`, if present.
pub fn checksum(head: &RequestHead) -> Result<Option<Checksum>, ResumableError> {
    head.value("upload-checksum")
        .map(Checksum::parse)
        .transpose()
        .map_err(ResumableError::Protocol)
}

/// The body is `application/offset+octet-stream` (415 otherwise).
pub fn offset_octet_stream(head: &RequestHead) -> Result<(), ResumableError> {
    http::check_offset_octet_stream(head.value("content-type")).map_err(ResumableError::Protocol)
}

/// The `Upload-Expires` value for a moment in unix milliseconds.
pub fn expires(unix_ms: u64) -> String {
    http::format_upload_expires(unix_ms / 1000)
}

/// `Upload-Concat`, if present.
pub fn concat(head: &RequestHead) -> Result<Option<Concat>, ResumableError> {
    head.value("upload-concat")
        .map(Concat::parse)
        .transpose()
        .map_err(ResumableError::Protocol)
}
