//! A part's `Content-Disposition` (RFC 7578 §4.2): `form-data`, the field `name`, and the file
//! name from `filename` or `filename*` (RFC 6266 §4.3: `filename*` wins).
//!
//! Browsers (WHATWG HTML, "multipart/form-data encoding algorithm") send names raw UTF-8 inside
//! quotes with `"`, CR and LF written as `%22`, `%0D` and `%0A`, and no other escaping; those
//! three are decoded, every other `%` stays as sent. `filename*` is an RFC 8187 `ext-value`,
//! `charset "'" [ language ] "'" value-chars`, fully percent-decoded.

use super::params::{self, Param};
use super::MultipartError::{self, BadPartHeaders, MissingName, NotFormData};
use crate::is_tchar;

/// What `Content-Disposition` says about a part.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Disposition {
    pub name: String,
    pub filename: Option<String>,
}

/// Reads a `Content-Disposition` field value.
pub(super) fn parse(value: &[u8]) -> Result<Disposition, MultipartError> {
    let (kind, rest) = params::leading(value);
    if kind.is_empty() || !kind.iter().all(|&b| is_tchar(b)) {
        return Err(BadPartHeaders(
            "Content-Disposition has no disposition type",
        ));
    }
    if !kind.eq_ignore_ascii_case(b"form-data") {
        return Err(NotFormData);
    }
    let params = params::parse(rest).map_err(BadPartHeaders)?;
    let (mut name, mut filename, mut ext) = (None, None, None);
    for param in &params {
        let slot = match param.name {
            n if n.eq_ignore_ascii_case(b"name") => &mut name,
            n if n.eq_ignore_ascii_case(b"filename") => &mut filename,
            n if n.eq_ignore_ascii_case(b"filename*") => &mut ext,
            _ => continue,
        };
        if slot.replace(param).is_some() {
            // RFC 6266 §4.1: a repeated parameter makes the field invalid.
            return Err(BadPartHeaders(
                "a Content-Disposition parameter appears twice",
            ));
        }
    }
    let name = form_text(&name.ok_or(MissingName)?.value)
        .ok_or(BadPartHeaders("the part's name is not UTF-8"))?;
    let filename = match (ext, filename) {
        (Some(ext), _) => Some(ext_value(ext)?),
        (None, Some(plain)) => Some(
            form_text(&plain.value).ok_or(BadPartHeaders("the part's filename is not UTF-8"))?,
        ),
        (None, None) => None,
    };
    Ok(Disposition { name, filename })
}

/// A name as a browser writes it: UTF-8 with `%22`, `%0D` and `%0A` for `"`, CR and LF.
fn form_text(raw: &[u8]) -> Option<String> {
    let mut out = Vec::with_capacity(raw.len());
    let mut i = 0;
    while i < raw.len() {
        let escaped = match raw.get(i..i + 3) {
            Some([b'%', b'2', b'2']) => Some(b'"'),
            Some([b'%', b'0', b'D' | b'd']) => Some(b'\r'),
            Some([b'%', b'0', b'A' | b'a']) => Some(b'\n'),
            _ => None,
        };
        match escaped {
            Some(b) => {
                out.push(b);
                i += 3;
            }
            None => {
                out.push(raw[i]);
                i += 1;
            }
        }
    }
    String::from_utf8(out).ok()
}

/// `filename*`: `UTF-8''…` or `ISO-8859-1''…` (the two charsets RFC 8187 §3.2.1 requires),
/// an optional language tag, then attr-chars and `%XX` escapes.
fn ext_value(param: &Param<'_>) -> Result<String, MultipartError> {
    if param.quoted {
        return Err(BadPartHeaders("filename* is a quoted string"));
    }
    let mut fields = param.value.splitn(3, |&b| b == b'\'');
    let (Some(charset), Some(language), Some(value)) =
        (fields.next(), fields.next(), fields.next())
    else {
        return Err(BadPartHeaders("filename* is not charset'language'value"));
    };
    if !language
        .iter()
        .all(|&b| b.is_ascii_alphanumeric() || b == b'-')
    {
        return Err(BadPartHeaders("filename* has a malformed language tag"));
    }
    let bytes = percent_decode(value).ok_or(BadPartHeaders(
        "filename* has a byte that must be percent-encoded",
    ))?;
    if charset.eq_ignore_ascii_case(b"UTF-8") {
        String::from_utf8(bytes).map_err(|_| BadPartHeaders("filename* is not valid UTF-8"))
    } else if charset.eq_ignore_ascii_case(b"ISO-8859-1") {
        Ok(bytes.into_iter().map(char::from).collect())
    } else {
        Err(BadPartHeaders(
            "filename* has a charset other than UTF-8 or ISO-8859-1",
        ))
    }
}

/// RFC 8187 `value-chars`: `%XX` or an attr-char; `None` for anything else.
fn percent_decode(value: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(value.len());
    let mut i = 0;
    while i < value.len() {
        if value[i] == b'%' {
            let hi = hex(*value.get(i + 1)?)?;
            let lo = hex(*value.get(i + 2)?)?;
            out.push(hi << 4 | lo);
            i += 3;
        } else if is_attr_char(value[i]) {
            out.push(value[i]);
            i += 1;
        } else {
            return None;
        }
    }
    Some(out)
}

fn hex(b: u8) -> Option<u8> {
    (b as char).to_digit(16).map(|d| d as u8)
}

/// RFC 8187 §3.2.1 `attr-char`.
fn is_attr_char(b: u8) -> bool {
    b.is_ascii_alphanumeric()
        || matches!(
            b,
            b'!' | b'#' | b'$' | b'&' | b'+' | b'-' | b'.' | b'^' | b'_' | b'`' | b'|' | b'~'
        )
}
