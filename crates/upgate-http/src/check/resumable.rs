//! Invariants of the resumable-upload header parsers ([`check_resumable_headers`]).

use crate::{
    check_offset, format_sf_boolean, format_upload_expires, parse_ietf_upload_length,
    parse_ietf_upload_offset, parse_method_override, parse_tus_resumable, parse_upload_complete,
    parse_upload_defer_length, parse_upload_length, parse_upload_offset, sf_integer, Checksum,
    Concat, InteropVersion, Metadata, ResumableError, UploadLimit, UtcTime, MAX_CONCAT_PARTS,
    MAX_METADATA_BYTES, MAX_METADATA_PAIRS, MAX_SF_INTEGER, MAX_UPLOAD_NUMBER,
};

/// The statuses a [`ResumableError`] may ask for.
pub const RESUMABLE_STATUSES: [u16; 5] = [400, 409, 412, 415, 460];

/// What every resumable error must satisfy: a status from [`RESUMABLE_STATUSES`], a
/// snake_case code and a message.
pub fn check_resumable_error(e: ResumableError) {
    assert!(RESUMABLE_STATUSES.contains(&e.status()), "{e:?}");
    assert!(!e.code().is_empty());
    assert!(e
        .code()
        .bytes()
        .all(|b| b.is_ascii_lowercase() || b == b'_'));
    assert!(!e.to_string().is_empty());
}

/// Feeds `value` to every header parser. None panics; each refusal is a [`ResumableError`]
/// that [`check_resumable_error`] accepts; whatever is accepted formats back to a value that
/// parses to the same thing (`parse(format(parse(x))) == parse(x)`) within the bounds; the
/// tus and IETF number grammars agree where they overlap. The first 16 bytes also drive the
/// formatters that take numbers (`Upload-Expires`, `Upload-Limit`).
pub fn check_resumable_headers(value: &[u8]) {
    let ok_or_checked = |r: Result<(), ResumableError>| {
        if let Err(e) = r {
            check_resumable_error(e);
        }
    };

    // Tus-Resumable and Upload-Defer-Length: exactly one value each.
    ok_or_checked(parse_tus_resumable(value));
    if parse_tus_resumable(value).is_ok() {
        assert_eq!(value.trim_ascii(), b"1.0.0");
    }
    ok_or_checked(parse_upload_defer_length(value));
    if parse_upload_defer_length(value).is_ok() {
        assert_eq!(value.trim_ascii(), b"1");
    }

    // Numbers: tus decimal and IETF sf-integer, each for both fields.
    let tus = parse_upload_offset(value);
    assert_eq!(tus.is_ok(), parse_upload_length(value).is_ok());
    match tus {
        Ok(n) => {
            assert!(n <= MAX_UPLOAD_NUMBER);
            assert_eq!(parse_upload_offset(n.to_string().as_bytes()), Ok(n));
            if value.trim_ascii().len() <= 15 {
                assert_eq!(
                    parse_ietf_upload_offset(value),
                    Ok(n),
                    "tus and IETF differ"
                );
            }
        }
        Err(e) => check_resumable_error(e),
    }
    let ietf = parse_ietf_upload_offset(value);
    assert_eq!(
        ietf,
        parse_ietf_upload_length(value).map_err(|_| ResumableError::BadUploadOffset)
    );
    match ietf {
        Ok(n) => {
            assert!(n <= MAX_SF_INTEGER as u64);
            assert_eq!(parse_ietf_upload_offset(n.to_string().as_bytes()), Ok(n));
        }
        Err(e) => check_resumable_error(e),
    }
    if let Some(n) = sf_integer(value) {
        assert!(n.abs() <= MAX_SF_INTEGER);
        assert_eq!(sf_integer(n.to_string().as_bytes()), Some(n));
    }

    match parse_upload_complete(value) {
        Ok(b) => assert_eq!(
            parse_upload_complete(format_sf_boolean(b).as_bytes()),
            Ok(b)
        ),
        Err(e) => check_resumable_error(e),
    }
    match InteropVersion::parse(value) {
        Ok(v) => {
            assert_eq!(sf_integer(value), Some(i64::from(v.number())));
            assert_eq!(InteropVersion::parse(v.to_string().as_bytes()), Ok(v));
        }
        Err(e) => check_resumable_error(e),
    }
    match parse_method_override(value) {
        Ok(m) => {
            assert!(!m.is_empty() && m.bytes().all(crate::is_tchar));
            assert_eq!(parse_method_override(m.as_bytes()), Ok(m));
        }
        Err(e) => check_resumable_error(e),
    }

    match Metadata::parse(value) {
        Ok(m) => {
            assert!(!m.pairs().is_empty() && m.pairs().len() <= MAX_METADATA_PAIRS);
            let formatted = m.format();
            assert!(formatted.len() <= MAX_METADATA_BYTES);
            assert_eq!(Metadata::parse(formatted.as_bytes()), Ok(m.clone()));
            let mut rebuilt = Metadata::default();
            for (k, v) in m.pairs() {
                rebuilt.insert(k, v).expect("a parsed pair inserts again");
            }
            assert_eq!(rebuilt, m);
        }
        Err(e) => check_resumable_error(e),
    }
    match Checksum::parse(value) {
        Ok(c) => {
            assert_eq!(c.digest().len(), c.algorithm().digest_len());
            assert_eq!(Checksum::parse(c.format().as_bytes()), Ok(c.clone()));
            assert_eq!(c.verify(c.digest()), Ok(()));
        }
        Err(e) => check_resumable_error(e),
    }
    match Concat::parse(value) {
        Ok(c) => {
            if let Concat::Final(urls) = &c {
                assert!(!urls.is_empty() && urls.len() <= MAX_CONCAT_PARTS);
                assert!(urls.iter().all(|u| u.bytes().all(|b| b.is_ascii_graphic())));
            }
            assert_eq!(Concat::parse(c.format().as_bytes()), Ok(c));
        }
        Err(e) => check_resumable_error(e),
    }
    for v in InteropVersion::ALL {
        ok_or_checked(v.check_append_content_type(Some(value)));
    }

    check_number_formatters(value);
}

/// `Upload-Expires`, `Upload-Limit` and offset checks on numbers read from `value`'s first
/// bytes.
fn check_number_formatters(value: &[u8]) {
    let mut word = [0u8; 8];
    let n = value.len().min(8);
    word[..n].copy_from_slice(&value[..n]);
    let a = u64::from_le_bytes(word);
    let mut word = [0u8; 8];
    let rest = value.get(8..).unwrap_or_default();
    word[..rest.len().min(8)].copy_from_slice(&rest[..rest.len().min(8)]);
    let b = u64::from_le_bytes(word);

    let date = format_upload_expires(a);
    assert_eq!(date.len(), 29, "{date}");
    assert!(date.ends_with(" GMT"));
    let t = UtcTime::from_unix(a);
    assert!((1..=12).contains(&t.month) && (1..=31).contains(&t.day));
    assert!(t.hour < 24 && t.minute < 60 && t.second < 60);

    match check_offset(a, b) {
        Ok(()) => assert_eq!(a, b),
        Err(e) => {
            assert_eq!(
                e,
                ResumableError::OffsetMismatch {
                    expected: a,
                    provided: b
                }
            );
            check_resumable_error(e);
        }
    }

    let pick = |bit: u64, v: u64| (a >> bit & 1 == 1).then_some(v);
    let limit = UploadLimit {
        max_size: pick(0, b),
        min_size: pick(1, a),
        max_append_size: pick(2, b >> 7),
        min_append_size: pick(3, a >> 9),
        max_age: pick(4, b >> 3),
    };
    for v in InteropVersion::ALL {
        let Some(dict) = limit.format(v) else {
            assert!(!v.has_upload_limit());
            continue;
        };
        for member in dict.split(", ") {
            let (key, number) = member.split_once('=').expect("key=value");
            assert!(
                ["max-size", "min-size", "max-append-size", "min-append-size"].contains(&key)
                    || Some(key) == v.lifetime_key(),
                "{dict}"
            );
            let number = sf_integer(number.as_bytes()).expect("an sf-integer");
            assert!((0..=MAX_SF_INTEGER).contains(&number));
        }
    }
}
