//! The `value *( OWS ";" OWS name "=" value )` grammar shared by `Content-Type` (RFC 9110
//! §5.6.6) and `Content-Disposition` (RFC 6266 §4.1): the leading value, then the parameters
//! with their quoted strings unescaped. What a parameter means is for the caller.

use std::borrow::Cow;

use crate::is_tchar;

/// One `name=value` parameter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Param<'a> {
    /// As sent; compare with `eq_ignore_ascii_case`.
    pub name: &'a [u8],
    /// Unescaped when it was a quoted string.
    pub value: Cow<'a, [u8]>,
    pub quoted: bool,
}

/// Splits a field value into its leading value (OWS trimmed; may be empty) and the rest, which
/// starts at the first `;` (or is empty).
pub(super) fn leading(value: &[u8]) -> (&[u8], &[u8]) {
    let end = memchr::memchr(b';', value).unwrap_or(value.len());
    (trim(&value[..end]), &value[end..])
}

/// Parses the parameters after the leading value (what [`leading`] left). Empty parameters
/// (`;;`, a trailing `;`) are skipped, as the `*( OWS ";" OWS [ parameter ] )` of RFC 9110
/// allows.
pub(super) fn parse(mut rest: &[u8]) -> Result<Vec<Param<'_>>, &'static str> {
    let mut params = Vec::new();
    loop {
        rest = skip_ows(rest);
        match rest.split_first() {
            None => return Ok(params),
            Some((b';', after)) => rest = skip_ows(after),
            Some(_) => return Err("a parameter is not separated by ';'"),
        }
        if rest.is_empty() || rest[0] == b';' {
            continue;
        }
        let name_len = rest.iter().take_while(|&&b| is_tchar(b)).count();
        if name_len == 0 {
            return Err("a parameter name is not a token");
        }
        let name = &rest[..name_len];
        rest = skip_ows(&rest[name_len..]);
        match rest.split_first() {
            Some((b'=', after)) => rest = skip_ows(after),
            _ => return Err("a parameter has no '=' after its name"),
        }
        let (value, quoted, used) = if rest.first() == Some(&b'"') {
            let (value, used) = quoted_string(rest)?;
            (value, true, used)
        } else {
            let used = rest.iter().take_while(|&&b| is_bare(b)).count();
            if used == 0 {
                return Err("a parameter has an empty value");
            }
            (Cow::Borrowed(&rest[..used]), false, used)
        };
        rest = &rest[used..];
        params.push(Param {
            name,
            value,
            quoted,
        });
    }
}

/// A byte an unquoted value may hold. Looser than a token: browsers and other clients send
/// `/`, `=`, `:` and UTF-8 unquoted, and the value ends unambiguously at OWS or `;`.
fn is_bare(b: u8) -> bool {
    b > b' ' && b != 0x7f && b != b';' && b != b'"'
}

/// A quoted string at the front of `s` (which starts with `"`): its unescaped content and the
/// bytes it takes. A backslash escapes only `"` and `\`; before anything else it is a literal
/// backslash, because browsers do not escape it (WHATWG HTML sends a file `a\b.txt` as
/// `filename="a\b.txt"`) while RFC-minded clients (urllib3) send `\\` and `\"`. Raw UTF-8 is
/// allowed; control bytes other than HTAB are not.
fn quoted_string(s: &[u8]) -> Result<(Cow<'_, [u8]>, usize), &'static str> {
    let body = &s[1..];
    let mut out: Option<Vec<u8>> = None;
    let mut i = 0;
    while i < body.len() {
        match body[i] {
            b'"' => {
                let value = out.map_or(Cow::Borrowed(&body[..i]), Cow::Owned);
                return Ok((value, i + 2));
            }
            b'\\' if matches!(body.get(i + 1), Some(b'"' | b'\\')) => {
                let out = out.get_or_insert_with(|| body[..i].to_vec());
                out.push(body[i + 1]);
                i += 2;
                continue;
            }
            b if (b < b' ' && b != b'\t') || b == 0x7f => {
                return Err("a control byte in a quoted string")
            }
            b => {
                if let Some(out) = out.as_mut() {
                    out.push(b);
                }
            }
        }
        i += 1;
    }
    Err("a quoted string is not closed")
}

fn skip_ows(s: &[u8]) -> &[u8] {
    let n = s.iter().take_while(|&&b| b == b' ' || b == b'\t').count();
    &s[n..]
}

/// `s` without leading and trailing spaces and tabs.
pub(super) fn trim(s: &[u8]) -> &[u8] {
    let s = skip_ows(s);
    let n = s
        .iter()
        .rev()
        .take_while(|&&b| b == b' ' || b == b'\t')
        .count();
    &s[..s.len() - n]
}
