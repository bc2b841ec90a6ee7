//! What a resumable upload's request can get wrong beyond the whole-upload flow's errors. Each
//! variant answers one status (chosen in `crate::error::status`, with every other error's).

use std::fmt;

/// A resumable-upload refusal (tus 1.0 and IETF resumable uploads).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ResumableError {
    /// `Tus-Resumable` missing or a version other than 1.0.0 (412, with `Tus-Version`).
    VersionUnsupported,
    /// A protocol field that does not parse or is missing (400 `bad_resumable_header`).
    BadHeader { field: &'static str, why: String },
    /// An `Upload-Checksum` algorithm the node does not compute (400 `checksum_unsupported`).
    ChecksumUnsupported(String),
    /// An append whose body is not `application/offset+octet-stream` (415).
    WrongContentType,
    /// An append at an offset other than the upload's (409, with the upload's offset).
    OffsetMismatch { offset: u64 },
    /// Another append to the upload is in progress on this node (409 `upload_busy`).
    Busy,
    /// No such upload (404 `upload_not_found`).
    NotFound,
    /// The upload expired (410 `upload_expired`).
    Expired,
    /// The append's bytes do not match its `Upload-Checksum` (460); they were discarded.
    ChecksumMismatch,
    /// The append would pass the upload's length (413 `too_large`).
    PastLength { length: u64 },
    /// The upload is complete already: nothing more may be appended (400).
    Complete,
}

impl fmt::Display for ResumableError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ResumableError::VersionUnsupported => {
                f.write_str("the request must carry Tus-Resumable: 1.0.0")
            }
            ResumableError::BadHeader { field, why } => write!(f, "{field}: {why}"),
            ResumableError::ChecksumUnsupported(algo) => write!(
                f,
                "Upload-Checksum algorithm {algo:?} is not supported (sha1, sha256, md5 are)"
            ),
            ResumableError::WrongContentType => {
                f.write_str("an append's Content-Type must be application/offset+octet-stream")
            }
            ResumableError::OffsetMismatch { offset } => write!(
                f,
                "Upload-Offset differs from the upload's offset, {offset}: HEAD the upload and \
                 resume from there"
            ),
            ResumableError::Busy => f.write_str(
                "another request is appending to this upload; retry once it has ended",
            ),
            ResumableError::NotFound => f.write_str("no such upload"),
            ResumableError::Expired => {
                f.write_str("the upload expired (resumable_expiry_s without an append)")
            }
            ResumableError::ChecksumMismatch => f.write_str(
                "the append's bytes do not match its Upload-Checksum; they were discarded",
            ),
            ResumableError::PastLength { length } => {
                write!(f, "the append would pass the upload's length of {length} bytes")
            }
            ResumableError::Complete => f.write_str("the upload is complete"),
        }
    }
}

impl std::error::Error for ResumableError {}
