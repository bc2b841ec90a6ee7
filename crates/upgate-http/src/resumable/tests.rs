//! Every rule and every error of the resumable-upload headers, on values from the tus 1.0
//! protocol document, the IETF draft and what tus-js-client 4.3.1 sends.

use super::*;
use ResumableError::*;

/// `parse` accepts each of `ok` (with the value it gives) and refuses each of `bad` with `err`.
fn table<T: std::fmt::Debug + PartialEq>(
    parse: impl Fn(&[u8]) -> Result<T, ResumableError>,
    ok: &[(&str, T)],
    bad: &[(&str, ResumableError)],
) {
    for (input, want) in ok {
        assert_eq!(parse(input.as_bytes()).as_ref(), Ok(want), "{input:?}");
    }
    for (input, err) in bad {
        assert_eq!(parse(input.as_bytes()), Err(*err), "{input:?}");
    }
}

// ---- tus core ----

#[test]
fn tus_resumable_is_only_1_0_0_and_else_412() {
    table(
        parse_tus_resumable,
        &[("1.0.0", ()), (" 1.0.0\t", ())],
        &[
            ("0.2.2", TusVersionUnsupported),
            ("1.0", TusVersionUnsupported),
            ("1.0.0,0.2.2", TusVersionUnsupported),
            ("", TusVersionUnsupported),
            ("1.0.1", TusVersionUnsupported),
        ],
    );
    assert_eq!(TusVersionUnsupported.status(), 412);
    assert_eq!(TUS_VERSION, TUS_RESUMABLE);
}

#[test]
fn tus_offsets_and_lengths_are_plain_decimal_up_to_i64_max() {
    let ok = [
        ("70", 70),
        ("0", 0),
        (" 100 ", 100),
        ("007", 7),
        ("9223372036854775807", MAX_UPLOAD_NUMBER),
    ];
    let bad = |e| {
        [
            ("", e),
            (" ", e),
            ("+5", e),
            ("-5", e),
            ("1 0", e),
            ("0x10", e),
            ("1.0", e),
            ("1e3", e),
            ("\u{661}", e),
            ("9223372036854775808", e),
            ("18446744073709551616", e),
            ("00000000000000000001", e),
        ]
    };
    table(parse_upload_offset, &ok, &bad(BadUploadOffset));
    table(parse_upload_length, &ok, &bad(BadUploadLength));
}

#[test]
fn defer_length_is_only_1() {
    table(
        parse_upload_defer_length,
        &[("1", ())],
        &[
            ("0", BadDeferLength),
            ("2", BadDeferLength),
            ("true", BadDeferLength),
            ("", BadDeferLength),
            ("01", BadDeferLength),
        ],
    );
}

#[test]
fn method_override_is_a_token_kept_as_sent() {
    table(
        |v| parse_method_override(v).map(str::to_owned),
        &[
            ("PATCH", "PATCH".to_owned()),
            ("DELETE", "DELETE".to_owned()),
            (" patch ", "patch".to_owned()),
        ],
        &[
            ("", BadMethodOverride),
            ("PAT CH", BadMethodOverride),
            ("PATCH\0", BadMethodOverride),
            ("PATCH,DELETE", BadMethodOverride),
            ("P\u{e4}TCH", BadMethodOverride),
        ],
    );
}

#[test]
fn tus_data_is_offset_octet_stream_else_415() {
    for ok in [
        "application/offset+octet-stream",
        "Application/Offset+Octet-Stream",
        "application/offset+octet-stream; charset=binary",
    ] {
        assert_eq!(
            check_offset_octet_stream(Some(ok.as_bytes())),
            Ok(()),
            "{ok}"
        );
    }
    for bad in [
        None,
        Some(&b"application/octet-stream"[..]),
        Some(b"application/partial-upload"),
        Some(b""),
    ] {
        assert_eq!(check_offset_octet_stream(bad), Err(NotOffsetOctetStream));
    }
    assert_eq!(NotOffsetOctetStream.status(), 415);
}

#[test]
fn an_offset_other_than_the_uploads_is_a_409_naming_both() {
    assert_eq!(check_offset(70, 70), Ok(()));
    let e = check_offset(12_500_000, 25_000_000).unwrap_err();
    assert_eq!(
        e,
        OffsetMismatch {
            expected: 12_500_000,
            provided: 25_000_000
        }
    );
    assert_eq!((e.status(), e.code()), (409, "offset_mismatch"));
    let message = e.to_string();
    assert!(
        message.contains("12500000") && message.contains("25000000"),
        "{message}"
    );
}

// ---- Upload-Metadata ----

#[test]
fn metadata_from_the_tus_example_and_tus_js_client() {
    // tus creation example: a value, then a key with no value and no space.
    let m =
        Metadata::parse(b"filename d29ybGRfZG9taW5hdGlvbl9wbGFuLnBkZg==,is_confidential").unwrap();
    assert_eq!(m.get("filename"), Some(&b"world_domination_plan.pdf"[..]));
    assert_eq!(m.get("is_confidential"), Some(&b""[..]));
    assert_eq!(m.get("Filename"), None);
    assert_eq!(m.pairs().len(), 2);
    // tus-js-client: encodeMetadata joins `key base64` with `,`.
    let m = Metadata::parse(b"filename bXkgZmlsZS50eHQ=,filetype dGV4dC9wbGFpbg==").unwrap();
    assert_eq!(m.get("filetype"), Some(&b"text/plain"[..]));
    assert_eq!(
        m.format(),
        "filename bXkgZmlsZS50eHQ=,filetype dGV4dC9wbGFpbg=="
    );
    // Spaces after commas and a key with a trailing space: tolerated, as tusd does.
    let m = Metadata::parse(b"a Zg==, b , c").unwrap();
    assert_eq!(m.format(), "a Zg==,b,c");
}

#[test]
fn metadata_refusals() {
    let cases: &[(&[u8], ResumableError)] = &[
        (b"", BadMetadataKey),
        (b",a", BadMetadataKey),
        (b"a,", BadMetadataKey),
        (b"a Zg==,,b", BadMetadataKey),
        (b"a\x01 Zg==", BadMetadataKey),
        ("caf\u{e9} Zg==".as_bytes(), BadMetadataKey),
        (b"\xff Zg==", BadMetadataKey),
        (b"a b c", BadMetadataValue),
        (b"a  Zg==", BadMetadataValue),
        (b"a !!!!", BadMetadataValue),
        (b"a Zg", BadMetadataValue),
        (b"a _-8=", BadMetadataValue),
        (b"a Zh==", BadMetadataValue),
        (b"a Zg==,a Zm8=", DuplicateMetadataKey),
        (b"a,a", DuplicateMetadataKey),
    ];
    for (input, err) in cases {
        assert_eq!(
            Metadata::parse(input),
            Err(*err),
            "{:?}",
            String::from_utf8_lossy(input)
        );
    }
    let many: Vec<String> = (0..=MAX_METADATA_PAIRS).map(|i| format!("k{i}")).collect();
    assert_eq!(
        Metadata::parse(many.join(",").as_bytes()),
        Err(TooManyMetadataPairs)
    );
    assert_eq!(
        Metadata::parse(many[..MAX_METADATA_PAIRS].join(",").as_bytes()).map(|m| m.pairs().len()),
        Ok(MAX_METADATA_PAIRS)
    );
    let long = format!("k {}", "A".repeat(MAX_METADATA_BYTES - 1));
    assert_eq!(Metadata::parse(long.as_bytes()), Err(MetadataTooLarge));
    let fits = format!("k {}", "A".repeat(MAX_METADATA_BYTES - 4));
    assert!(Metadata::parse(fits.as_bytes()).is_ok());
}

#[test]
fn metadata_insert_refuses_what_parse_would_and_formats_back() {
    let mut m = Metadata::default();
    m.insert("filename", "r\u{e9}sum\u{e9}, 2024.pdf".as_bytes())
        .unwrap();
    m.insert("empty", b"").unwrap();
    assert_eq!(m.insert("filename", b"x"), Err(DuplicateMetadataKey));
    assert_eq!(m.insert("a b", b"x"), Err(BadMetadataKey));
    assert_eq!(m.insert("a,b", b"x"), Err(BadMetadataKey));
    assert_eq!(m.insert("", b"x"), Err(BadMetadataKey));
    assert_eq!(Metadata::parse(m.format().as_bytes()), Ok(m.clone()));
    assert_eq!(
        m.insert("big", &[0; MAX_METADATA_BYTES]),
        Err(MetadataTooLarge)
    );
    let room = MAX_METADATA_BYTES - m.format().len() - 1 - "big ".len();
    m.insert("big", &vec![7; room / 4 * 3]).unwrap();
    assert!(m.format().len() <= MAX_METADATA_BYTES);
    assert_eq!(Metadata::parse(m.format().as_bytes()), Ok(m));
}

// ---- Upload-Checksum ----

#[test]
fn checksums_of_hello_world() {
    // The tus checksum example and the other two algorithms, digests of "hello world".
    for (value, algorithm) in [
        ("sha1 Kq5sNclPz7QV2+lfQIuc6R7oRu0=", ChecksumAlgorithm::Sha1),
        (
            "sha256 uU0nuZNNPgilLlLX2n2r+sSE7+N6U4DukIj3rOLvzek=",
            ChecksumAlgorithm::Sha256,
        ),
        ("md5 XrY7u+Ae7tCTyyK7j1rNww==", ChecksumAlgorithm::Md5),
    ] {
        let c = Checksum::parse(value.as_bytes()).unwrap();
        assert_eq!(c.algorithm(), algorithm);
        assert_eq!(c.digest().len(), algorithm.digest_len());
        assert_eq!(c.format(), value);
        assert_eq!(c.verify(c.digest()), Ok(()));
        let mut other = c.digest().to_vec();
        other[0] ^= 1;
        assert_eq!(c.verify(&other), Err(ChecksumMismatch));
    }
    assert_eq!(ChecksumMismatch.status(), 460);
    let names: Vec<_> = ChecksumAlgorithm::ALL.iter().map(|a| a.name()).collect();
    assert_eq!(TUS_CHECKSUM_ALGORITHM, names.join(","));
}

#[test]
fn an_unknown_algorithm_is_not_a_malformed_checksum() {
    let cases: &[(&str, ResumableError)] = &[
        ("crc32 DUoRhQ==", UnknownChecksumAlgorithm),
        (
            "sha512 Kq5sNclPz7QV2+lfQIuc6R7oRu0=",
            UnknownChecksumAlgorithm,
        ),
        ("sha-1 !!!", UnknownChecksumAlgorithm),
        ("SHA1 Kq5sNclPz7QV2+lfQIuc6R7oRu0=", BadChecksum),
        ("sha1", BadChecksum),
        ("sha1 ", BadChecksum),
        (" Kq5sNclPz7QV2+lfQIuc6R7oRu0=", BadChecksum),
        ("sha1  Kq5sNclPz7QV2+lfQIuc6R7oRu0=", BadChecksum),
        ("sha1 Kq5sNclPz7QV2-lfQIuc6R7oRu0=", BadChecksum),
        ("sha1 Kq5sNclPz7QV2+lfQIuc6R7oRu0", BadChecksum),
        ("sha1 XrY7u+Ae7tCTyyK7j1rNww==", BadDigestLength),
        ("md5 Kq5sNclPz7QV2+lfQIuc6R7oRu0=", BadDigestLength),
    ];
    for (input, err) in cases {
        assert_eq!(Checksum::parse(input.as_bytes()), Err(*err), "{input:?}");
    }
    assert_eq!(UnknownChecksumAlgorithm.status(), 400);
    assert_eq!(
        Checksum::new(ChecksumAlgorithm::Sha256, &[0; 20]),
        Err(BadDigestLength)
    );
}

// ---- Upload-Concat ----

#[test]
fn concat_partial_and_final_lists() {
    let finals = |urls: &[&str]| Concat::Final(urls.iter().map(|s| s.to_string()).collect());
    table(
        Concat::parse,
        &[
            ("partial", Concat::Partial),
            ("final;/files/a /files/b", finals(&["/files/a", "/files/b"])),
            (
                "final;https://tus.example.org/files/a /files/b/",
                finals(&["https://tus.example.org/files/a", "/files/b/"]),
            ),
            ("final; /a  /b ", finals(&["/a", "/b"])),
            ("final;/a /a", finals(&["/a", "/a"])),
        ],
        &[
            ("", BadConcat),
            ("Partial", BadConcat),
            ("partial;x", BadConcat),
            ("final", BadConcat),
            ("final;", BadConcat),
            ("final;   ", BadConcat),
            ("final:/a", BadConcat),
            ("final;/a\t/b", BadConcat),
            ("final;/caf\u{e9}", BadConcat),
        ],
    );
    assert_eq!(
        finals(&["/files/a", "/files/b"]).format(),
        "final;/files/a /files/b"
    );
    assert_eq!(Concat::Partial.format(), "partial");
    let list = |n: usize| {
        let urls: Vec<String> = (0..n).map(|i| format!("/files/{i}")).collect();
        format!("final;{}", urls.join(" "))
    };
    assert!(Concat::parse(list(MAX_CONCAT_PARTS).as_bytes()).is_ok());
    assert_eq!(
        Concat::parse(list(MAX_CONCAT_PARTS + 1).as_bytes()),
        Err(TooManyConcatParts)
    );
}

// ---- What the server announces ----

#[test]
fn announced_extensions_and_expiry_dates() {
    assert_eq!(
        TUS_EXTENSION.split(',').collect::<Vec<_>>(),
        [
            "creation",
            "creation-with-upload",
            "creation-defer-length",
            "termination",
            "checksum",
            "expiration",
            "concatenation"
        ]
    );
    for (secs, date) in [
        (0, "Thu, 01 Jan 1970 00:00:00 GMT"),
        (784_111_777, "Sun, 06 Nov 1994 08:49:37 GMT"), // RFC 9110 §5.6.7
        (1_403_712_000, "Wed, 25 Jun 2014 16:00:00 GMT"), // the tus expiration example
        (951_782_400, "Tue, 29 Feb 2000 00:00:00 GMT"),
        (4_107_542_399, "Sun, 28 Feb 2100 23:59:59 GMT"),
        (MAX_HTTP_DATE_SECONDS, "Fri, 31 Dec 9999 23:59:59 GMT"),
        (u64::MAX, "Fri, 31 Dec 9999 23:59:59 GMT"),
    ] {
        assert_eq!(format_upload_expires(secs), date, "{secs}");
    }
}

// ---- IETF draft ----

#[test]
fn upload_complete_is_an_sf_boolean() {
    table(
        parse_upload_complete,
        &[
            ("?1", true),
            ("?0", false),
            (" ?1 ", true),
            ("?1;a", true),
            (
                "?0;a=1;b=\"x\";c=:YQ==:;d=tok/en;e=1.5;f=?0;g=@1700000000",
                false,
            ),
            ("?1; a=2", true),
        ],
        &[
            ("", BadUploadComplete),
            ("?", BadUploadComplete),
            ("?2", BadUploadComplete),
            ("1", BadUploadComplete),
            ("true", BadUploadComplete),
            ("?1,?0", BadUploadComplete),
            ("?1 ?0", BadUploadComplete),
            ("?1;", BadUploadComplete),
            ("?1;A=1", BadUploadComplete),
            ("?1;a=", BadUploadComplete),
            ("?1;a=\"x", BadUploadComplete),
            ("?1;a=\"\\x\"", BadUploadComplete),
            ("?1;a=1.5555", BadUploadComplete),
            ("?1;a=:YQ==", BadUploadComplete),
        ],
    );
}

#[test]
fn ietf_offsets_and_lengths_are_non_negative_sf_integers() {
    let ok = [
        ("20000000", 20_000_000),
        ("0", 0),
        ("007", 7),
        ("1;x=1", 1),
        ("999999999999999", MAX_SF_INTEGER as u64),
    ];
    let bad = |e| {
        [
            ("", e),
            ("-1", e),
            ("-0x1", e),
            ("+1", e),
            ("1.0", e),
            ("1000000000000000", e),
            ("?1", e),
            ("\"1\"", e),
            ("1 2", e),
        ]
    };
    table(parse_ietf_upload_offset, &ok, &bad(BadUploadOffset));
    table(parse_ietf_upload_length, &ok, &bad(BadUploadLength));
    assert_eq!(sf_integer(b"-999999999999999"), Some(-MAX_SF_INTEGER));
    assert_eq!(sf_integer(b"-"), None);
    assert_eq!(sf_boolean(b"?1"), Some(true));
    assert_eq!(
        (format_sf_boolean(true), format_sf_boolean(false)),
        ("?1", "?0")
    );
}

#[test]
fn interop_versions_spoken_and_refused() {
    table(
        InteropVersion::parse,
        &[
            ("5", InteropVersion::V5),
            ("6", InteropVersion::V6),
            ("7", InteropVersion::V7),
            ("8", InteropVersion::V8),
        ],
        &[
            ("3", UnsupportedInteropVersion),
            ("4", UnsupportedInteropVersion),
            ("9", UnsupportedInteropVersion),
            ("-6", UnsupportedInteropVersion),
            ("", BadInteropVersion),
            ("six", BadInteropVersion),
            ("6.0", BadInteropVersion),
            ("\"6\"", BadInteropVersion),
        ],
    );
    assert_eq!(InteropVersion::LATEST, InteropVersion::V8);
    let message = UnsupportedInteropVersion.to_string();
    assert!(message.ends_with(" 5 6 7 8"), "{message}");
    for v in InteropVersion::ALL {
        assert_eq!(InteropVersion::parse(v.to_string().as_bytes()), Ok(v));
    }
}

#[test]
fn each_version_in_its_own_dialect() {
    use InteropVersion::*;
    // tus-js-client 4.3.1 'ietf-draft-03' (5) sends no Content-Type on appends; 'ietf-draft-05'
    // (6) sends application/partial-upload, as draft-04 on requires.
    assert_eq!(V5.check_append_content_type(None), Ok(()));
    assert_eq!(V5.check_append_content_type(Some(b"text/plain")), Ok(()));
    for v in [V6, V7, V8] {
        assert_eq!(v.check_append_content_type(None), Err(NotPartialUpload));
        assert_eq!(
            v.check_append_content_type(Some(b"application/offset+octet-stream")),
            Err(NotPartialUpload)
        );
        assert_eq!(
            v.check_append_content_type(Some(b"Application/Partial-Upload")),
            Ok(())
        );
    }
    assert_eq!(
        [V5, V6, V7, V8].map(|v| v.lifetime_key()),
        [None, Some("expires"), Some("max-age"), Some("max-age")]
    );
    assert_eq!(
        [V5, V6, V7, V8].map(|v| v.has_upload_length()),
        [false, true, true, true]
    );
    assert_eq!(
        [V5, V6, V7, V8].map(|v| v.has_upload_limit()),
        [false, true, true, true]
    );
}

#[test]
fn upload_limit_dictionaries() {
    let limit = UploadLimit {
        max_size: Some(1 << 30),
        max_age: Some(86_400),
        ..UploadLimit::default()
    };
    assert_eq!(
        limit.format(InteropVersion::V8).as_deref(),
        Some("max-size=1073741824, max-age=86400")
    );
    assert_eq!(
        limit.format(InteropVersion::V6).as_deref(),
        Some("max-size=1073741824, expires=86400")
    );
    assert_eq!(limit.format(InteropVersion::V5), None);
    assert_eq!(
        UploadLimit::default().format(InteropVersion::V8).as_deref(),
        Some("min-size=0")
    );
    let all = UploadLimit {
        max_size: Some(u64::MAX),
        min_size: Some(1),
        max_append_size: Some(1 << 20),
        min_append_size: Some(4096),
        max_age: Some(60),
    };
    assert_eq!(
        all.format(InteropVersion::V7).as_deref(),
        Some("max-size=999999999999999, min-size=1, max-append-size=1048576, min-append-size=4096, max-age=60")
    );
}

#[test]
fn the_104_announces_location_limits_and_version() {
    let limit = UploadLimit {
        max_size: Some(1000),
        ..UploadLimit::default()
    };
    assert_eq!(
        InteropVersion::V8.resumption_supported_fields("/upload/resumable/abc", &limit),
        [
            ("Location", "/upload/resumable/abc".to_owned()),
            ("Upload-Limit", "max-size=1000".to_owned()),
            ("Upload-Draft-Interop-Version", "8".to_owned()),
        ]
    );
    assert_eq!(
        InteropVersion::V5.resumption_supported_fields("/u/1", &limit),
        [
            ("Location", "/u/1".to_owned()),
            ("Upload-Draft-Interop-Version", "5".to_owned()),
        ]
    );
    assert_eq!(
        (
            UPLOAD_RESUMPTION_SUPPORTED,
            UPLOAD_RESUMPTION_SUPPORTED_REASON
        ),
        (104, "Upload Resumption Supported")
    );
}

// ---- The error type ----

#[test]
fn every_error_has_a_spec_status_a_unique_code_and_a_message() {
    let mut codes = std::collections::HashSet::new();
    for e in ResumableError::ALL {
        assert!([400, 409, 412, 415, 460].contains(&e.status()), "{e:?}");
        let code = e.code();
        assert!(
            code.bytes().all(|b| b.is_ascii_lowercase() || b == b'_'),
            "{code}"
        );
        assert!(codes.insert(code), "{code} twice");
        assert!(e.to_string().len() > 10, "{e:?}");
    }
}
