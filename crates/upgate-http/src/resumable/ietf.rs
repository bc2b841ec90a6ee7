//! IETF Resumable Uploads for HTTP (draft-ietf-httpbis-resumable-upload): the fields as
//! Structured Field Items, `Upload-Limit`, the `104 (Upload Resumption Supported)` interim
//! response, and the interop versions a client announces in `Upload-Draft-Interop-Version`,
//! each with the dialect it speaks. `docs/resumable.md`, "Protocol versions and headers",
//! has the history behind the table in [`InteropVersion`].

use std::fmt;

use super::sf::{self, Bare, MAX_SF_INTEGER};
use super::{media_type_is, ResumableError};

/// The status of the interim response that announces an upload resource (draft §5).
pub const UPLOAD_RESUMPTION_SUPPORTED: u16 = 104;
/// Its reason phrase.
pub const UPLOAD_RESUMPTION_SUPPORTED_REASON: &str = "Upload Resumption Supported";
/// The media type of an append from interop version 6 on (draft §6).
pub const PARTIAL_UPLOAD: &str = "application/partial-upload";
/// The problem type for [`ResumableError::OffsetMismatch`] (draft §7.1).
pub const MISMATCHING_OFFSET_PROBLEM: &str =
    "https://iana.org/assignments/http-problem-types#mismatching-upload-offset";
/// The problem type for lengths that disagree (draft §7.2).
pub const INCONSISTENT_LENGTH_PROBLEM: &str =
    "https://iana.org/assignments/http-problem-types#inconsistent-upload-length";

/// An `Upload-Draft-Interop-Version` the node speaks. The draft bumps it on breaking changes
/// only, so one number covers several drafts:
///
/// | version | drafts | completeness | append `Content-Type` | `Upload-Limit` lifetime key | `Upload-Length` |
/// |---|---|---|---|---|---|
/// | 5 | -03 | `Upload-Complete` | any | no `Upload-Limit` | not defined |
/// | 6 | -04, -05 | `Upload-Complete` | `application/partial-upload` | `expires` | from -05 |
/// | 7 | -06 to -08 | `Upload-Complete` | `application/partial-upload` | `max-age` | yes |
/// | 8 | -09 to -11 and the editor's copy | `Upload-Complete` | `application/partial-upload` | `max-age` | yes |
///
/// tus-js-client 4.x sends 5 for `protocol: 'ietf-draft-03'` and 6 for `'ietf-draft-05'`.
/// Versions 3 and below use `Upload-Incomplete` (the inverse boolean) and are not spoken.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum InteropVersion {
    V5,
    V6,
    V7,
    V8,
}

impl InteropVersion {
    /// Every version spoken, oldest first.
    pub const ALL: [InteropVersion; 4] = [
        InteropVersion::V5,
        InteropVersion::V6,
        InteropVersion::V7,
        InteropVersion::V8,
    ];
    /// The newest draft's version.
    pub const LATEST: InteropVersion = InteropVersion::V8;

    /// Parses `Upload-Draft-Interop-Version` (an sf-integer).
    pub fn parse(value: &[u8]) -> Result<InteropVersion, ResumableError> {
        let n = sf_integer(value).ok_or(ResumableError::BadInteropVersion)?;
        InteropVersion::of_number(n).ok_or(ResumableError::UnsupportedInteropVersion)
    }

    /// The version numbered `n`, if spoken (a number kept in a record, or parsed).
    pub fn of_number(n: i64) -> Option<InteropVersion> {
        InteropVersion::ALL
            .into_iter()
            .find(|v| i64::from(v.number()) == n)
    }

    /// The number, as the header carries it.
    pub fn number(self) -> u8 {
        match self {
            InteropVersion::V5 => 5,
            InteropVersion::V6 => 6,
            InteropVersion::V7 => 7,
            InteropVersion::V8 => 8,
        }
    }

    /// Appends must be `application/partial-upload` (from draft-04, interop 6); before that
    /// any `Content-Type`, or none, was an append.
    pub fn requires_partial_upload(self) -> bool {
        self >= InteropVersion::V6
    }

    /// The `Upload-Limit` key for the upload resource's remaining lifetime: `expires` in
    /// draft-04/-05, renamed `max-age` in draft-06 (interop 7); none before `Upload-Limit`
    /// existed (interop 5).
    pub fn lifetime_key(self) -> Option<&'static str> {
        match self {
            InteropVersion::V5 => None,
            InteropVersion::V6 => Some("expires"),
            InteropVersion::V7 | InteropVersion::V8 => Some("max-age"),
        }
    }

    /// The version has an `Upload-Limit` field (from draft-04, interop 6).
    pub fn has_upload_limit(self) -> bool {
        self.lifetime_key().is_some()
    }

    /// `Upload-Length` is defined (draft-05 on). tus-js-client sends it in every dialect, so
    /// the node may read it from any version; this says whether a server of that draft would.
    pub fn has_upload_length(self) -> bool {
        self >= InteropVersion::V6
    }

    /// The `Content-Type` of an append in this dialect: [`PARTIAL_UPLOAD`] (parameters
    /// allowed) where [`InteropVersion::requires_partial_upload`], else anything.
    pub fn check_append_content_type(
        self,
        content_type: Option<&[u8]>,
    ) -> Result<(), ResumableError> {
        match content_type {
            _ if !self.requires_partial_upload() => Ok(()),
            Some(v) if media_type_is(v, PARTIAL_UPLOAD) => Ok(()),
            _ => Err(ResumableError::NotPartialUpload),
        }
    }

    /// The fields of a `104 (Upload Resumption Supported)` that announces the upload resource
    /// at `location` (draft §4.2 "Server Behavior" and §"Draft Version Identification"): its
    /// `Location`, the `Upload-Limit` where the version has one, and the interop version.
    pub fn resumption_supported_fields(
        self,
        location: &str,
        limit: &UploadLimit,
    ) -> Vec<(&'static str, String)> {
        let mut fields = vec![("Location", location.to_owned())];
        if let Some(limit) = limit.format(self) {
            fields.push(("Upload-Limit", limit));
        }
        fields.push(("Upload-Draft-Interop-Version", self.to_string()));
        fields
    }
}

impl fmt::Display for InteropVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.number())
    }
}

/// The limits a server announces in `Upload-Limit` (draft §4.1.4), each in bytes except
/// `max_age` (seconds). `None` leaves a member out.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct UploadLimit {
    pub max_size: Option<u64>,
    pub min_size: Option<u64>,
    pub max_append_size: Option<u64>,
    pub min_append_size: Option<u64>,
    /// The upload resource's remaining lifetime; written as `expires` or `max-age` by version.
    pub max_age: Option<u64>,
}

impl UploadLimit {
    /// The Dictionary for `version`, e.g. `max-size=1073741824, max-age=86400`; `None` for a
    /// version without `Upload-Limit`. No limits at all is `min-size=0` (the draft: "MUST use
    /// `min-size=0` instead of an empty header value"). Values over the 15-digit sf-integer
    /// range are written as its largest value (about 1 PB or 31 million years).
    pub fn format(&self, version: InteropVersion) -> Option<String> {
        let lifetime = version.lifetime_key()?;
        let members: Vec<(&str, u64)> = [
            ("max-size", self.max_size),
            ("min-size", self.min_size),
            ("max-append-size", self.max_append_size),
            ("min-append-size", self.min_append_size),
            (lifetime, self.max_age),
        ]
        .into_iter()
        .filter_map(|(key, v)| v.map(|v| (key, v.min(MAX_SF_INTEGER as u64))))
        .collect();
        match members.is_empty() {
            true => Some(sf::format_dictionary(&[("min-size", 0)])),
            false => Some(sf::format_dictionary(&members)),
        }
    }
}

/// `Upload-Complete` (draft §4.1.2): an sf-boolean, `?1` when this request completes the
/// upload.
pub fn parse_upload_complete(value: &[u8]) -> Result<bool, ResumableError> {
    sf_boolean(value).ok_or(ResumableError::BadUploadComplete)
}

/// IETF `Upload-Offset` (draft §4.1.1): a non-negative sf-integer.
pub fn parse_ietf_upload_offset(value: &[u8]) -> Result<u64, ResumableError> {
    sf_non_negative(value).ok_or(ResumableError::BadUploadOffset)
}

/// IETF `Upload-Length` (draft §4.1.3): a non-negative sf-integer.
pub fn parse_ietf_upload_length(value: &[u8]) -> Result<u64, ResumableError> {
    sf_non_negative(value).ok_or(ResumableError::BadUploadLength)
}

/// A field value that is an Item holding an Integer (parameters ignored), else `None`.
pub fn sf_integer(value: &[u8]) -> Option<i64> {
    match sf::parse_item(value)? {
        Bare::Integer(n) => Some(n),
        _ => None,
    }
}

/// A field value that is an Item holding a Boolean (parameters ignored), else `None`.
pub fn sf_boolean(value: &[u8]) -> Option<bool> {
    match sf::parse_item(value)? {
        Bare::Boolean(b) => Some(b),
        _ => None,
    }
}

fn sf_non_negative(value: &[u8]) -> Option<u64> {
    sf_integer(value).and_then(|n| u64::try_from(n).ok())
}
