//! What can be wrong with a resumable-upload header: one variant per cause, each with the status
//! the tus 1.0 protocol or the IETF draft asks for, a stable `code()` for the JSON `error` field
//! and a sentence a client can act on.

use std::fmt;

use super::{
    InteropVersion, MAX_CONCAT_PARTS, MAX_METADATA_BYTES, MAX_METADATA_PAIRS, MAX_UPLOAD_NUMBER,
};

/// Why a resumable-upload header was refused. tus names the statuses for most of these; the
/// IETF draft says a field whose value is not the structured type it defines "MUST be ignored"
/// (§4.1), so for an IETF request the node treats such a field as absent, and a request that
/// then lacks a field it needs answers 400.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ResumableError {
    /// `Tus-Resumable` other than `1.0.0`. tus core ("Tus-Resumable"): 412 Precondition Failed,
    /// with `Tus-Version`, and the request is not processed.
    TusVersionUnsupported,
    /// `Upload-Offset` that is not a non-negative integer (tus: 1 to 19 digits, at most
    /// [`MAX_UPLOAD_NUMBER`]; IETF: an sf-integer, at most 15 digits). 400.
    BadUploadOffset,
    /// `Upload-Length` that is not a non-negative integer (as for `Upload-Offset`). 400.
    BadUploadLength,
    /// `Upload-Defer-Length` other than `1`. tus creation-defer-length: 400.
    BadDeferLength,
    /// `Upload-Metadata` longer than [`MAX_METADATA_BYTES`]. 400 (tus leaves limits to the
    /// server; the node refuses before storing anything).
    MetadataTooLarge,
    /// More than [`MAX_METADATA_PAIRS`] `Upload-Metadata` pairs. 400.
    TooManyMetadataPairs,
    /// An `Upload-Metadata` key that is empty or holds a byte other than visible ASCII (spaces
    /// and commas included: tus creation, "Upload-Metadata"). 400.
    BadMetadataKey,
    /// The same `Upload-Metadata` key twice ("All keys MUST be unique"). 400.
    DuplicateMetadataKey,
    /// An `Upload-Metadata` value that is not standard, padded base64, or a pair with more
    /// than one space. 400.
    BadMetadataValue,
    /// `Upload-Checksum` naming an algorithm the node does not support (not `sha1`, `sha256`,
    /// `md5`). tus checksum: 400, and the chunk is discarded.
    UnknownChecksumAlgorithm,
    /// `Upload-Checksum` that is not `<algorithm> <base64 digest>`. 400.
    BadChecksum,
    /// An `Upload-Checksum` digest whose length is not the algorithm's (20 bytes for sha1, 32
    /// for sha256, 16 for md5). 400.
    BadDigestLength,
    /// The chunk's digest differs from `Upload-Checksum`. tus checksum: 460 Checksum Mismatch;
    /// the chunk is discarded and the offset is not moved. Returned by `Checksum::verify`.
    ChecksumMismatch,
    /// `Upload-Concat` that is neither `partial` nor `final;` and space-separated URLs. 400.
    BadConcat,
    /// `Upload-Concat: final;` with more than [`MAX_CONCAT_PARTS`] URLs. 400.
    TooManyConcatParts,
    /// `X-HTTP-Method-Override` that is not a method token. 400.
    BadMethodOverride,
    /// A tus `PATCH` (or creation-with-upload `POST`) whose `Content-Type` is not
    /// `application/offset+octet-stream`. tus core: 415 Unsupported Media Type.
    NotOffsetOctetStream,
    /// An append whose `Content-Type` is not `application/partial-upload`, which the draft
    /// requires from interop version 6 on (draft-04 §"Upload Append"). 415.
    NotPartialUpload,
    /// The request's `Upload-Offset` is not the upload's offset. tus core: 409 Conflict; IETF
    /// §"Upload Append": 409 with `Upload-Complete: ?0`, the correct `Upload-Offset` and the
    /// `mismatching-upload-offset` problem type. Returned by `check_offset`.
    OffsetMismatch {
        /// The upload's offset.
        expected: u64,
        /// The request's `Upload-Offset`.
        provided: u64,
    },
    /// `Upload-Complete` that is not an sf-boolean (`?0` or `?1`). The draft: ignore the field;
    /// an append without it is 400.
    BadUploadComplete,
    /// `Upload-Draft-Interop-Version` that is not an sf-integer. The draft: no 104; the node
    /// answers 400 to requests on an upload resource.
    BadInteropVersion,
    /// `Upload-Draft-Interop-Version` that is an integer the node does not speak. The draft
    /// (§"Draft Version Identification"): the server MUST NOT send 104; requests on an upload
    /// resource answer 400.
    UnsupportedInteropVersion,
}

impl ResumableError {
    /// Every variant once, with sample fields (tests and oracles walk them).
    pub const ALL: [ResumableError; 22] = {
        use ResumableError::*;
        [
            TusVersionUnsupported,
            BadUploadOffset,
            BadUploadLength,
            BadDeferLength,
            MetadataTooLarge,
            TooManyMetadataPairs,
            BadMetadataKey,
            DuplicateMetadataKey,
            BadMetadataValue,
            UnknownChecksumAlgorithm,
            BadChecksum,
            BadDigestLength,
            ChecksumMismatch,
            BadConcat,
            TooManyConcatParts,
            BadMethodOverride,
            NotOffsetOctetStream,
            NotPartialUpload,
            OffsetMismatch {
                expected: 0,
                provided: 1,
            },
            BadUploadComplete,
            BadInteropVersion,
            UnsupportedInteropVersion,
        ]
    };

    /// The status the tus protocol or the IETF draft asks for (see each variant).
    pub fn status(self) -> u16 {
        use ResumableError::*;
        match self {
            TusVersionUnsupported => 412,
            ChecksumMismatch => 460,
            NotOffsetOctetStream | NotPartialUpload => 415,
            OffsetMismatch { .. } => 409,
            _ => 400,
        }
    }

    /// The JSON `error` code: stable, snake_case, one per variant.
    pub fn code(self) -> &'static str {
        use ResumableError::*;
        match self {
            TusVersionUnsupported => "tus_version_unsupported",
            BadUploadOffset => "bad_upload_offset",
            BadUploadLength => "bad_upload_length",
            BadDeferLength => "bad_upload_defer_length",
            MetadataTooLarge => "metadata_too_large",
            TooManyMetadataPairs => "too_many_metadata_pairs",
            BadMetadataKey => "bad_metadata_key",
            DuplicateMetadataKey => "duplicate_metadata_key",
            BadMetadataValue => "bad_metadata_value",
            UnknownChecksumAlgorithm => "unknown_checksum_algorithm",
            BadChecksum => "bad_checksum",
            BadDigestLength => "bad_digest_length",
            ChecksumMismatch => "checksum_mismatch",
            BadConcat => "bad_upload_concat",
            TooManyConcatParts => "too_many_concat_parts",
            BadMethodOverride => "bad_method_override",
            NotOffsetOctetStream => "not_offset_octet_stream",
            NotPartialUpload => "not_partial_upload",
            OffsetMismatch { .. } => "offset_mismatch",
            BadUploadComplete => "bad_upload_complete",
            BadInteropVersion => "bad_interop_version",
            UnsupportedInteropVersion => "unsupported_interop_version",
        }
    }
}

impl fmt::Display for ResumableError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use ResumableError::*;
        match self {
            TusVersionUnsupported => f.write_str("Tus-Resumable must be 1.0.0, the only tus version this server speaks"),
            BadUploadOffset => write!(
                f,
                "Upload-Offset must be a non-negative integer of digits only, at most {MAX_UPLOAD_NUMBER}"
            ),
            BadUploadLength => write!(
                f,
                "Upload-Length must be a non-negative integer of digits only, at most {MAX_UPLOAD_NUMBER}"
            ),
            BadDeferLength => f.write_str("Upload-Defer-Length must be 1"),
            MetadataTooLarge => write!(f, "Upload-Metadata is longer than {MAX_METADATA_BYTES} bytes"),
            TooManyMetadataPairs => write!(f, "Upload-Metadata has more than {MAX_METADATA_PAIRS} pairs"),
            BadMetadataKey => f.write_str(
                "an Upload-Metadata key is empty or holds a byte other than visible ASCII without commas",
            ),
            DuplicateMetadataKey => f.write_str("an Upload-Metadata key appears twice"),
            BadMetadataValue => f.write_str(
                "an Upload-Metadata value is not standard base64 with padding, after one space",
            ),
            UnknownChecksumAlgorithm => f.write_str(
                "the Upload-Checksum algorithm is not supported: use sha1, sha256 or md5",
            ),
            BadChecksum => f.write_str(
                "Upload-Checksum must be an algorithm name, one space and a base64 digest",
            ),
            BadDigestLength => f.write_str(
                "the Upload-Checksum digest is not as long as its algorithm's (sha1 20 bytes, sha256 32, md5 16)",
            ),
            ChecksumMismatch => f.write_str("the data does not match Upload-Checksum; send the chunk again"),
            BadConcat => f.write_str(
                "Upload-Concat must be partial, or final; followed by space-separated upload URLs",
            ),
            TooManyConcatParts => write!(f, "Upload-Concat lists more than {MAX_CONCAT_PARTS} uploads"),
            BadMethodOverride => f.write_str("X-HTTP-Method-Override must be a method name"),
            NotOffsetOctetStream => f.write_str(
                "tus upload data must be sent with Content-Type: application/offset+octet-stream",
            ),
            NotPartialUpload => f.write_str(
                "appended data must be sent with Content-Type: application/partial-upload",
            ),
            OffsetMismatch { expected, provided } => write!(
                f,
                "Upload-Offset is {provided} but the upload's offset is {expected}; resume from {expected}"
            ),
            BadUploadComplete => f.write_str("Upload-Complete must be ?0 or ?1"),
            BadInteropVersion => f.write_str("Upload-Draft-Interop-Version must be an integer"),
            UnsupportedInteropVersion => {
                f.write_str("this Upload-Draft-Interop-Version is not supported; supported:")?;
                for v in InteropVersion::ALL {
                    write!(f, " {v}")?;
                }
                Ok(())
            }
        }
    }
}

impl std::error::Error for ResumableError {}
