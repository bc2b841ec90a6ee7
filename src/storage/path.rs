//! Upload targets: `/{appid}/{path}` from the request-target to a checked relative path, and
//! back to a download URL. Everything a client could use to leave its app's directory is
//! refused here, before any callback or file operation.

use std::fmt;

/// Longest accepted request path (contract: over 1024 bytes is `bad_path`).
pub const MAX_PATH_BYTES: usize = 1024;
/// Longest file or directory name most filesystems accept.
const MAX_SEGMENT_BYTES: usize = 255;

/// A checked upload target.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// The first path segment.
    pub appid: String,
    /// The decoded segments after the appid, joined with `/`: safe to join below a directory.
    pub rel: String,
}

impl Target {
    /// The last segment.
    pub fn filename(&self) -> &str {
        self.rel.rsplit('/').next().unwrap_or(&self.rel)
    }
}

/// Why a path is refused (all answer 400 `bad_path`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PathError {
    TooLong,
    NoFile,
    EmptySegment,
    DotSegment,
    BadEscape,
    EscapedSeparator,
    ControlByte,
    NotUtf8,
    SegmentTooLong,
    /// The first segment is not an appid (1-64 of `[A-Za-z0-9_-]`). It becomes a directory
    /// name below `files/`, so `..` or `.` there would leave the app's (and the files') tree.
    BadAppid,
}

impl fmt::Display for PathError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            PathError::TooLong => "path is longer than 1024 bytes",
            PathError::NoFile => "path must be /{appid}/{file path}",
            PathError::EmptySegment => "path has an empty segment",
            PathError::DotSegment => "path has a . or .. segment",
            PathError::BadEscape => "path has an invalid percent-escape",
            PathError::EscapedSeparator => "path has an escaped / or \\",
            PathError::ControlByte => "path has NUL or control bytes",
            PathError::NotUtf8 => "path is not valid UTF-8",
            PathError::SegmentTooLong => "a path segment is longer than 255 bytes",
            PathError::BadAppid => {
                "the first path segment must be an appid (1-64 of A-Z a-z 0-9 _ -)"
            }
        })
    }
}

/// The first segment of an origin-form path, as sent (used for the appid check, which comes
/// before the path check in the contract's order).
pub fn first_segment(path: &[u8]) -> &[u8] {
    let p = path.strip_prefix(b"/").unwrap_or(path);
    let end = p
        .iter()
        .position(|&b| b == b'/' || b == b'?')
        .unwrap_or(p.len());
    &p[..end]
}

/// Parses `/{appid}/{seg}/…/{file}` (query already removed).
pub fn parse(path: &[u8]) -> Result<Target, PathError> {
    if path.len() > MAX_PATH_BYTES {
        return Err(PathError::TooLong);
    }
    let p = path.strip_prefix(b"/").ok_or(PathError::NoFile)?;
    let mut segments = p.split(|&b| b == b'/');
    let appid = segments.next().ok_or(PathError::NoFile)?;
    let appid = String::from_utf8(appid.to_vec()).map_err(|_| PathError::NotUtf8)?;
    // The appid is joined below `files/` as is (never decoded), so it gets the registration's
    // syntax here, not only in the upload's appid check: a download of `/../registry/conf`
    // would otherwise read `data_dir/registry/conf`.
    if !crate::registry::valid_appid(&appid) {
        return Err(PathError::BadAppid);
    }
    let mut rel = String::with_capacity(p.len());
    for raw in segments {
        let seg = decode_segment(raw)?;
        if !rel.is_empty() {
            rel.push('/');
        }
        rel.push_str(&seg);
    }
    if rel.is_empty() {
        return Err(PathError::NoFile);
    }
    Ok(Target { appid, rel })
}

fn decode_segment(raw: &[u8]) -> Result<String, PathError> {
    if raw.is_empty() {
        return Err(PathError::EmptySegment);
    }
    let mut out = Vec::with_capacity(raw.len());
    let mut i = 0;
    while i < raw.len() {
        let b = raw[i];
        if b == b'%' {
            let hex = raw.get(i + 1..i + 3).ok_or(PathError::BadEscape)?;
            let v = std::str::from_utf8(hex)
                .ok()
                .and_then(|h| u8::from_str_radix(h, 16).ok())
                .ok_or(PathError::BadEscape)?;
            if v == b'/' || v == b'\\' {
                return Err(PathError::EscapedSeparator);
            }
            out.push(v);
            i += 3;
        } else {
            if b == b'\\' {
                return Err(PathError::EscapedSeparator);
            }
            out.push(b);
            i += 1;
        }
    }
    if out.iter().any(|&b| b < 0x20 || b == 0x7f) {
        return Err(PathError::ControlByte);
    }
    if out == b"." || out == b".." {
        return Err(PathError::DotSegment);
    }
    if out.len() > MAX_SEGMENT_BYTES {
        return Err(PathError::SegmentTooLong);
    }
    // from_utf8 refuses overlong encodings (`%c0%ae` for '.') and surrogates.
    String::from_utf8(out).map_err(|_| PathError::NotUtf8)
}

/// The target for a path given as text (a form's `key`, a shaping answer's `path`): checked by
/// the same rules as a request path.
pub fn of_text(appid: &str, rel: &str) -> Result<Target, PathError> {
    if rel.len() > MAX_PATH_BYTES {
        return Err(PathError::TooLong);
    }
    let rel = rel.strip_prefix('/').unwrap_or(rel);
    parse(format!("/{appid}/{}", encode_rel(rel)).as_bytes())
}

/// Percent-encodes a decoded relative path for a URL, segment by segment.
pub fn encode_rel(rel: &str) -> String {
    let mut out = String::with_capacity(rel.len() + 8);
    for b in rel.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~' | b'/') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests;
