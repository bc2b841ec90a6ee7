//! What can be wrong with a `multipart/form-data` body or its `Content-Type`: one variant per
//! cause, each with a sentence for logs and error bodies. The node answers every one of them
//! with 400 `bad_multipart`, so they carry no status of their own.

use std::fmt;

use super::{MAX_PARTS, MAX_PART_HEADER_BYTES, MAX_PREAMBLE_BYTES, MAX_TRANSPORT_PADDING};

/// Why a `multipart/form-data` body (or the request's `Content-Type`) was refused. Once the
/// parser returns one, it returns the same one on every later call.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MultipartError {
    /// The `Content-Type` is not `multipart/form-data`.
    NotMultipart,
    /// `multipart/form-data` without a `boundary` parameter.
    NoBoundary,
    /// A `boundary` that is empty, longer than 70 bytes, has a byte RFC 2046 does not allow,
    /// ends with a space, appears twice, or sits in malformed parameters.
    BadBoundary,
    /// More than [`MAX_PREAMBLE_BYTES`] before the first boundary delimiter.
    PreambleTooLarge,
    /// A boundary delimiter followed by more than [`MAX_TRANSPORT_PADDING`] spaces or tabs.
    BadDelimiter,
    /// A part's header block is over [`MAX_PART_HEADER_BYTES`].
    HeadersTooLarge,
    /// More than [`MAX_PARTS`] parts.
    TooManyParts,
    /// A part's header block is malformed; the reason says how.
    BadPartHeaders(&'static str),
    /// A part without `Content-Disposition` (RFC 7578 §4.2 requires it).
    NoContentDisposition,
    /// A `Content-Disposition` whose type is not `form-data`.
    NotFormData,
    /// A `Content-Disposition` without a `name` parameter.
    MissingName,
    /// The body ended before the close delimiter `--boundary--`.
    Truncated,
}

impl fmt::Display for MultipartError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use MultipartError::*;
        match self {
            NotMultipart => f.write_str("the Content-Type is not multipart/form-data"),
            NoBoundary => f.write_str("the multipart/form-data Content-Type has no boundary"),
            BadBoundary => f.write_str(
                "the multipart boundary is not 1 to 70 characters that RFC 2046 allows",
            ),
            PreambleTooLarge => write!(
                f,
                "more than {MAX_PREAMBLE_BYTES} bytes before the first multipart boundary"
            ),
            BadDelimiter => write!(
                f,
                "a multipart boundary followed by more than {MAX_TRANSPORT_PADDING} bytes of padding"
            ),
            HeadersTooLarge => write!(
                f,
                "a multipart part's headers are larger than {MAX_PART_HEADER_BYTES} bytes"
            ),
            TooManyParts => write!(f, "more than {MAX_PARTS} parts in the multipart body"),
            BadPartHeaders(why) => write!(f, "malformed multipart part headers: {why}"),
            NoContentDisposition => f.write_str("a multipart part has no Content-Disposition"),
            NotFormData => f.write_str("a multipart part's Content-Disposition is not form-data"),
            MissingName => f.write_str("a multipart part's Content-Disposition has no name"),
            Truncated => f.write_str("the multipart body ended before its final boundary"),
        }
    }
}

impl std::error::Error for MultipartError {}
