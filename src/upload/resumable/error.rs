//! What a resumable upload's request can get wrong beyond the whole-upload flow's errors. Each
//! variant answers one status (chosen in `crate::error::status`, with every other error's).

use std::fmt;

/// A resumable-upload refusal (tus 1.0 and IETF resumable uploads).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ResumableError {
    /// A protocol field its grammar refuses, a wrong version, media type, offset or checksum:
    /// the protocol's own status and code (`crate::http::ResumableError`: 400, 409, 412, 415,
    /// 460).
    Protocol(crate::http::ResumableError),
    /// A field the request needs is missing or contradicts another (400
    /// `missing_resumable_header`).
    Missing {
        field: &'static str,
        why: &'static str,
    },
    /// A final upload that names parts it cannot be made of (400 `bad_upload_concat`).
    BadConcat(&'static str),
    /// Another append to the upload is in progress on this node (409 `upload_busy`).
    Busy,
    /// No such upload (404 `upload_not_found`).
    NotFound,
    /// The upload expired (410 `upload_expired`).
    Expired,
    /// The append would pass the upload's length (413 `too_large`).
    PastLength { length: u64 },
    /// The upload is complete already: nothing more may be appended (400 `upload_complete`).
    Complete,
    /// A deferred length below the bytes received, or another length than the one set (400
    /// `bad_upload_length`).
    LengthConflict(String),
}

impl fmt::Display for ResumableError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ResumableError::Protocol(e) => write!(f, "{e}"),
            ResumableError::Missing { field, why } => write!(f, "{field}: {why}"),
            ResumableError::BadConcat(why) => write!(f, "upload-concat: {why}"),
            ResumableError::Busy => {
                f.write_str("another request is appending to this upload; retry once it has ended")
            }
            ResumableError::NotFound => f.write_str("no such upload"),
            ResumableError::Expired => {
                f.write_str("the upload expired (resumable_expiry_s without an append)")
            }
            ResumableError::PastLength { length } => {
                write!(
                    f,
                    "the append would pass the upload's length of {length} bytes"
                )
            }
            ResumableError::Complete => f.write_str("the upload is complete"),
            ResumableError::LengthConflict(why) => write!(f, "upload-length: {why}"),
        }
    }
}

impl std::error::Error for ResumableError {}
