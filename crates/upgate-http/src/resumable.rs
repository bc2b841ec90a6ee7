//! The header grammar of resumable uploads, sans-IO: tus 1.0 and the IETF draft
//! (draft-ietf-httpbis-resumable-upload), parsed from field values and formatted back.
//!
//! Each parser takes one field value as the request carried it (`&[u8]`; surrounding spaces
//! and tabs are not part of it) and returns a typed value or a [`ResumableError`] naming the
//! problem and the status the protocol asks for. Whether a field is required, and what the
//! upload's offset is, are the node's business; nothing here reads a clock or stores state.
//! `docs/resumable.md`, "Protocol versions and headers", says which versions are spoken and why.
//!
//! | file | owns |
//! |---|---|
//! | `resumable.rs` | the map; the field-value trimming and media-type test both dialects share |
//! | `resumable/tus.rs` | tus `Tus-Resumable`, `Upload-Offset`/`-Length`/`-Defer-Length`, `Upload-Concat`, `X-HTTP-Method-Override`, the announced constants, `Upload-Expires` |
//! | `resumable/metadata.rs` | [`Metadata`]: `Upload-Metadata` |
//! | `resumable/checksum.rs` | [`Checksum`]: `Upload-Checksum`, `Tus-Checksum-Algorithm` |
//! | `resumable/ietf.rs` | [`InteropVersion`] and its dialects, `Upload-Complete`, IETF `Upload-Offset`/`-Length`, [`UploadLimit`], 104 |
//! | `resumable/sf.rs` | RFC 9651 structured fields: Items with parameters, a Dictionary writer |
//! | `resumable/date.rs` | RFC 9110 IMF-fixdate from unix seconds |
//! | `resumable/error.rs` | [`ResumableError`] |

mod checksum;
mod date;
mod error;
mod ietf;
mod metadata;
mod sf;
mod tus;

pub use checksum::{Checksum, ChecksumAlgorithm, TUS_CHECKSUM_ALGORITHM};
pub use date::{UtcTime, MAX_HTTP_DATE_SECONDS};
pub use error::ResumableError;
pub use ietf::{
    parse_ietf_upload_length, parse_ietf_upload_offset, parse_upload_complete, sf_boolean,
    sf_integer, InteropVersion, UploadLimit, INCONSISTENT_LENGTH_PROBLEM,
    MISMATCHING_OFFSET_PROBLEM, PARTIAL_UPLOAD, UPLOAD_RESUMPTION_SUPPORTED,
    UPLOAD_RESUMPTION_SUPPORTED_REASON,
};
pub use metadata::{Metadata, MAX_METADATA_BYTES, MAX_METADATA_PAIRS};
pub use sf::{format_sf_boolean, MAX_SF_INTEGER};
pub use tus::{
    check_offset, check_offset_octet_stream, format_upload_expires, parse_method_override,
    parse_tus_resumable, parse_upload_defer_length, parse_upload_length, parse_upload_offset,
    Concat, MAX_CONCAT_PARTS, MAX_UPLOAD_NUMBER, OFFSET_OCTET_STREAM, TUS_EXTENSION, TUS_RESUMABLE,
    TUS_VERSION,
};

/// A field value without the spaces and tabs around it (RFC 9110 §5.5: OWS is not part of it).
fn ows_trim(value: &[u8]) -> &[u8] {
    let is_ows = |b: &u8| *b == b' ' || *b == b'\t';
    let start = value.iter().position(|b| !is_ows(b)).unwrap_or(value.len());
    let end = value
        .iter()
        .rposition(|b| !is_ows(b))
        .map_or(start, |i| i + 1);
    &value[start..end]
}

/// `content_type`'s media type (before any `;` parameters) is `expected`, ignoring ASCII case
/// (RFC 9110 §8.3.1).
fn media_type_is(content_type: &[u8], expected: &str) -> bool {
    let end = memchr::memchr(b';', content_type).unwrap_or(content_type.len());
    ows_trim(&content_type[..end]).eq_ignore_ascii_case(expected.as_bytes())
}

#[cfg(test)]
mod tests;
