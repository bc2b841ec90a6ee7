//! Content types: from a file name's extension ([`content_type`]), and the check a declared one
//! passes before it is stored with an object and served back as a header ([`declared`]).

/// The longest content type stored with an object (the value of one extended attribute).
pub const MAX_DECLARED: usize = 255;

/// `value` without surrounding blanks, when it is a content type that may be stored and served:
/// at most [`MAX_DECLARED`] bytes, printable ASCII only (no control byte, so no header can be
/// injected through it), shaped `type/subtype` with optional `; name=value` parameters (RFC
/// 9110 §8.3.1: tokens, a parameter value a token or a quoted string). `None` for anything
/// else: the caller falls back to the extension's type.
pub fn declared(value: &str) -> Option<&str> {
    let v = value.trim_matches([' ', '\t']);
    let ok = !v.is_empty()
        && v.len() <= MAX_DECLARED
        && v.bytes().all(|b| (0x20..0x7f).contains(&b))
        && media_type(v.as_bytes());
    ok.then_some(v)
}

/// The media type of a content type, lower-cased, parameters dropped (`Text/HTML; charset=x`
/// → `text/html`).
pub fn essence(content_type: &str) -> String {
    let end = content_type.find(';').unwrap_or(content_type.len());
    content_type[..end]
        .trim_matches([' ', '\t'])
        .to_ascii_lowercase()
}

/// `type "/" subtype *( OWS ";" OWS [ name "=" ( token / quoted-string ) ] )`.
fn media_type(s: &[u8]) -> bool {
    let mut i = token(s, 0);
    if i == 0 || s.get(i) != Some(&b'/') {
        return false;
    }
    let sub = token(s, i + 1);
    if sub == i + 1 {
        return false;
    }
    i = sub;
    loop {
        i = blanks(s, i);
        match s.get(i) {
            None => return true,
            Some(b';') => i = blanks(s, i + 1),
            Some(_) => return false,
        }
        // An empty parameter (`text/plain;` or `;;`) is allowed by the grammar.
        if matches!(s.get(i), None | Some(b';')) {
            continue;
        }
        let name_end = token(s, i);
        if name_end == i || s.get(name_end) != Some(&b'=') {
            return false;
        }
        i = name_end + 1;
        i = if s.get(i) == Some(&b'"') {
            match quoted(s, i) {
                Some(end) => end,
                None => return false,
            }
        } else {
            let end = token(s, i);
            if end == i {
                return false;
            }
            end
        };
    }
}

/// The end of the token starting at `i` (`i` itself when there is none).
fn token(s: &[u8], mut i: usize) -> usize {
    const TCHAR: &[u8] = b"!#$%&'*+-.^_`|~";
    while s
        .get(i)
        .is_some_and(|&b| b.is_ascii_alphanumeric() || TCHAR.contains(&b))
    {
        i += 1;
    }
    i
}

/// The end of the quoted string opening at `i`, past its closing quote.
fn quoted(s: &[u8], mut i: usize) -> Option<usize> {
    i += 1;
    loop {
        match s.get(i)? {
            b'"' => return Some(i + 1),
            b'\\' => {
                s.get(i + 1)?;
                i += 2;
            }
            _ => i += 1,
        }
    }
}

fn blanks(s: &[u8], mut i: usize) -> usize {
    while matches!(s.get(i), Some(b' ' | b'\t')) {
        i += 1;
    }
    i
}

/// The media type for `filename`, `application/octet-stream` when unknown.
pub fn content_type(filename: &str) -> &'static str {
    let ext = match filename.rsplit_once('.') {
        Some((_, ext)) => ext.to_ascii_lowercase(),
        None => return "application/octet-stream",
    };
    match ext.as_str() {
        "txt" | "log" => "text/plain; charset=utf-8",
        "html" | "htm" => "text/html; charset=utf-8",
        "css" => "text/css",
        "csv" => "text/csv",
        "js" | "mjs" => "text/javascript",
        "json" => "application/json",
        "xml" => "application/xml",
        "pdf" => "application/pdf",
        "zip" => "application/zip",
        "gz" => "application/gzip",
        "tar" => "application/x-tar",
        "jpg" | "jpeg" => "image/jpeg",
        "png" => "image/png",
        "gif" => "image/gif",
        "webp" => "image/webp",
        "svg" => "image/svg+xml",
        "ico" => "image/x-icon",
        "mp4" => "video/mp4",
        "webm" => "video/webm",
        "mov" => "video/quicktime",
        "mp3" => "audio/mpeg",
        "ogg" => "audio/ogg",
        "wav" => "audio/wav",
        "wasm" => "application/wasm",
        _ => "application/octet-stream",
    }
}

#[cfg(test)]
mod tests {
    use super::{content_type, declared, essence};

    #[test]
    fn declared_types_that_are_stored() {
        let cases = [
            ("image/png", "image/png"),
            ("  text/html; charset=utf-8 ", "text/html; charset=utf-8"),
            ("Text/HTML;Charset=UTF-8", "Text/HTML;Charset=UTF-8"),
            ("text/plain;", "text/plain;"),
            ("application/vnd.api+json", "application/vnd.api+json"),
            (
                r#"multipart/mixed; boundary="a b\"c""#,
                r#"multipart/mixed; boundary="a b\"c""#,
            ),
        ];
        for (value, stored) in cases {
            assert_eq!(declared(value), Some(stored), "{value:?}");
        }
        let longest = format!("a/{}", "b".repeat(253));
        assert_eq!(declared(&longest), Some(longest.as_str()));
    }

    #[test]
    fn declared_types_that_are_not() {
        let too_long = format!("a/{}", "b".repeat(254));
        let refused = [
            "",
            "   ",
            "png",
            "image/",
            "/png",
            "image/png/x",
            "image png",
            "text/html\r\nSet-Cookie: a=b",
            "text/html\nX: y",
            "text/html\0",
            "text/\u{e9}t\u{e9}",
            "text/html; charset",
            "text/html; charset=",
            "text/html; charset=\"open",
            "text/html; =x",
            "text/html x=y",
            "text/html;\tq=1\x7f",
            too_long.as_str(),
        ];
        for value in refused {
            assert_eq!(declared(value), None, "{value:?}");
        }
    }

    #[test]
    fn essence_is_the_lower_case_media_type() {
        assert_eq!(essence("Text/HTML ; charset=utf-8"), "text/html");
        assert_eq!(essence("image/svg+xml"), "image/svg+xml");
    }

    #[test]
    fn known_extensions_any_case_and_unknown_fallback() {
        assert_eq!(content_type("a/b/photo.JPG"), "image/jpeg");
        assert_eq!(content_type("notes.txt"), "text/plain; charset=utf-8");
        assert_eq!(content_type("archive.tar.gz"), "application/gzip");
        assert_eq!(content_type("README"), "application/octet-stream");
        assert_eq!(content_type("x.unknownext"), "application/octet-stream");
    }
}
