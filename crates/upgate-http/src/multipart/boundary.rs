//! The boundary of a request's `Content-Type: multipart/form-data; boundary=…`.

use super::{params, MultipartError};

/// The longest boundary RFC 2046 §5.1.1 allows.
pub const MAX_BOUNDARY_BYTES: usize = 70;

/// The boundary of a `Content-Type: multipart/form-data; boundary=…` value (quoted or not,
/// 1-70 chars per RFC 2046, case-insensitive media type, other params ignored).
pub fn boundary_of(content_type: &[u8]) -> Result<Vec<u8>, MultipartError> {
    let (media, rest) = params::leading(content_type);
    if !media.eq_ignore_ascii_case(b"multipart/form-data") {
        return Err(MultipartError::NotMultipart);
    }
    let params = params::parse(rest).map_err(|_| MultipartError::BadBoundary)?;
    let mut boundaries = params
        .iter()
        .filter(|p| p.name.eq_ignore_ascii_case(b"boundary"));
    let boundary = boundaries.next().ok_or(MultipartError::NoBoundary)?;
    if boundaries.next().is_some() {
        return Err(MultipartError::BadBoundary);
    }
    if !is_boundary(&boundary.value) {
        return Err(MultipartError::BadBoundary);
    }
    Ok(boundary.value.to_vec())
}

/// RFC 2046 §5.1.1: `0*69<bchars> bcharsnospace`.
pub fn is_boundary(b: &[u8]) -> bool {
    (1..=MAX_BOUNDARY_BYTES).contains(&b.len())
        && b.iter().all(|&c| is_bchar(c))
        && b.last() != Some(&b' ')
}

/// `bchars := bcharsnospace / " "`: digits, letters, `'()+_,-./:=?` and space.
fn is_bchar(b: u8) -> bool {
    b.is_ascii_alphanumeric()
        || matches!(
            b,
            b'\''
                | b'('
                | b')'
                | b'+'
                | b'_'
                | b','
                | b'-'
                | b'.'
                | b'/'
                | b':'
                | b'='
                | b'?'
                | b' '
        )
}
