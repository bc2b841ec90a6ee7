//! `application/x-www-form-urlencoded` bodies, strictly: the bytes come from the network (and
//! from the fuzzer), so anything that is not well formed is an error rather than a guess.
//!
//! Rules: pairs are separated by `&` (empty pairs are skipped, as in the WHATWG URL standard);
//! a pair without `=` has an empty value; `+` is a space; `%XX` is one byte; the decoded name
//! and value must be UTF-8. Unlike WHATWG, a `%` not followed by two hex digits and invalid UTF-8
//! are errors, and at most [`MAX_FIELDS`] pairs are accepted.

use std::fmt;

/// Most pairs in one form.
pub const MAX_FIELDS: usize = 64;

/// Why a form body was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FormError {
    /// More than [`MAX_FIELDS`] pairs.
    TooManyFields,
    /// A `%` not followed by two hex digits, in the pair at `index` (0-based).
    BadPercent { index: usize },
    /// The decoded name or value of the pair at `index` is not UTF-8.
    BadUtf8 { index: usize },
}

impl fmt::Display for FormError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FormError::TooManyFields => write!(f, "more than {MAX_FIELDS} form fields"),
            FormError::BadPercent { index } => {
                write!(f, "bad percent escape in form field {}", index + 1)
            }
            FormError::BadUtf8 { index } => write!(f, "form field {} is not UTF-8", index + 1),
        }
    }
}

impl std::error::Error for FormError {}

/// Parses a form body into (name, value) pairs, in order, duplicates kept.
pub fn parse_form(input: &[u8]) -> Result<Vec<(String, String)>, FormError> {
    let mut out = Vec::new();
    for pair in input.split(|&b| b == b'&').filter(|p| !p.is_empty()) {
        let index = out.len();
        if index == MAX_FIELDS {
            return Err(FormError::TooManyFields);
        }
        let (name, value) = match pair.iter().position(|&b| b == b'=') {
            Some(eq) => (&pair[..eq], &pair[eq + 1..]),
            None => (pair, &b""[..]),
        };
        out.push((decode(name, index)?, decode(value, index)?));
    }
    Ok(out)
}

/// Percent-decodes one name or value.
fn decode(raw: &[u8], index: usize) -> Result<String, FormError> {
    let mut bytes = Vec::with_capacity(raw.len());
    let mut i = 0;
    while i < raw.len() {
        match raw[i] {
            b'+' => bytes.push(b' '),
            b'%' => {
                let hi = raw.get(i + 1).and_then(|&b| hex(b));
                let lo = raw.get(i + 2).and_then(|&b| hex(b));
                match (hi, lo) {
                    (Some(hi), Some(lo)) => bytes.push(hi << 4 | lo),
                    _ => return Err(FormError::BadPercent { index }),
                }
                i += 2;
            }
            b => bytes.push(b),
        }
        i += 1;
    }
    String::from_utf8(bytes).map_err(|_| FormError::BadUtf8 { index })
}

fn hex(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}
