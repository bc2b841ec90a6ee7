use super::*;
use Expectation as X;
use ProtocolError::*;
use Version::{Http10 as V10, Http11 as V11};

type Fields = &'static [(&'static str, &'static str)];
/// (framing, expectation, keep-alive)
type Want = Result<(Framing, Expectation, bool), ProtocolError>;

const HOST: (&str, &str) = ("Host", "a");

fn run(version: Version, fields: Fields) -> Result<MessageInfo, ProtocolError> {
    scan(
        version,
        fields.iter().map(|(n, v)| (n.as_bytes(), v.as_bytes())),
    )
}

fn check(cases: &[(&str, Version, Fields, Want)]) {
    for (name, version, fields, want) in cases {
        let got = run(*version, fields).map(|i| (i.framing, i.expect, i.keep_alive));
        assert_eq!(&got, want, "{name}: {fields:?}");
        if let Ok(info) = run(*version, fields) {
            assert_eq!(info.version, *version, "{name}");
        }
    }
}

const L0: Framing = Framing::Length(0);

#[test]
fn content_length_rules() {
    check(&[
        ("no framing fields", V11, &[HOST], Ok((L0, X::None, true))),
        (
            "zero",
            V11,
            &[HOST, ("Content-Length", "0")],
            Ok((L0, X::None, true)),
        ),
        (
            "plain",
            V11,
            &[HOST, ("Content-Length", "42")],
            Ok((Framing::Length(42), X::None, true)),
        ),
        (
            "name any case",
            V11,
            &[HOST, ("cOnTeNt-LeNgTh", "7")],
            Ok((Framing::Length(7), X::None, true)),
        ),
        (
            "leading zeros",
            V11,
            &[HOST, ("Content-Length", "007")],
            Ok((Framing::Length(7), X::None, true)),
        ),
        (
            "u64 max",
            V11,
            &[HOST, ("Content-Length", "18446744073709551615")],
            Ok((Framing::Length(u64::MAX), X::None, true)),
        ),
        (
            "u64 max + 1",
            V11,
            &[HOST, ("Content-Length", "18446744073709551616")],
            Err(BadContentLength),
        ),
        (
            "far overflow",
            V11,
            &[HOST, ("Content-Length", "99999999999999999999999999")],
            Err(BadContentLength),
        ),
        (
            "negative",
            V11,
            &[HOST, ("Content-Length", "-1")],
            Err(BadContentLength),
        ),
        (
            "plus sign",
            V11,
            &[HOST, ("Content-Length", "+1")],
            Err(BadContentLength),
        ),
        (
            "space inside",
            V11,
            &[HOST, ("Content-Length", "1 2")],
            Err(BadContentLength),
        ),
        (
            "hex",
            V11,
            &[HOST, ("Content-Length", "0x10")],
            Err(BadContentLength),
        ),
        (
            "hex letters",
            V11,
            &[HOST, ("Content-Length", "1a")],
            Err(BadContentLength),
        ),
        (
            "decimal point",
            V11,
            &[HOST, ("Content-Length", "1.0")],
            Err(BadContentLength),
        ),
        (
            "exponent",
            V11,
            &[HOST, ("Content-Length", "1e3")],
            Err(BadContentLength),
        ),
        (
            "empty",
            V11,
            &[HOST, ("Content-Length", "")],
            Err(BadContentLength),
        ),
        (
            "non-ascii digit",
            V11,
            &[HOST, ("Content-Length", "\u{661}")],
            Err(BadContentLength),
        ),
        (
            "identical repeated fields",
            V11,
            &[HOST, ("Content-Length", "5"), ("content-length", "5")],
            Ok((Framing::Length(5), X::None, true)),
        ),
        (
            "identical list",
            V11,
            &[HOST, ("Content-Length", "5, 5,5")],
            Ok((Framing::Length(5), X::None, true)),
        ),
        (
            "differing fields",
            V11,
            &[HOST, ("Content-Length", "5"), ("Content-Length", "6")],
            Err(ConflictingContentLength),
        ),
        (
            "differing list",
            V11,
            &[HOST, ("Content-Length", "5, 6")],
            Err(ConflictingContentLength),
        ),
        (
            "same value spelled differently",
            V11,
            &[HOST, ("Content-Length", "5"), ("Content-Length", "05")],
            Ok((Framing::Length(5), X::None, true)),
        ),
        (
            "empty list element",
            V11,
            &[HOST, ("Content-Length", "5,,5")],
            Err(BadContentLength),
        ),
        (
            "bad value after a good one",
            V11,
            &[HOST, ("Content-Length", "5"), ("Content-Length", "x")],
            Err(BadContentLength),
        ),
        (
            "http/1.0 length",
            V10,
            &[("Content-Length", "3")],
            Ok((Framing::Length(3), X::None, false)),
        ),
    ]);
}

#[test]
fn transfer_encoding_rules() {
    check(&[
        (
            "chunked",
            V11,
            &[HOST, ("Transfer-Encoding", "chunked")],
            Ok((Framing::Chunked, X::None, true)),
        ),
        (
            "chunked any case",
            V11,
            &[HOST, ("transfer-encoding", "ChUnKeD")],
            Ok((Framing::Chunked, X::None, true)),
        ),
        (
            "chunked with whitespace",
            V11,
            &[HOST, ("Transfer-Encoding", " chunked ")],
            Ok((Framing::Chunked, X::None, true)),
        ),
        (
            "empty list elements around chunked",
            V11,
            &[HOST, ("Transfer-Encoding", ", chunked ,")],
            Ok((Framing::Chunked, X::None, true)),
        ),
        // Any coding other than chunked: 501
        (
            "gzip then chunked",
            V11,
            &[HOST, ("Transfer-Encoding", "gzip, chunked")],
            Err(UnknownTransferCoding),
        ),
        (
            "gzip field then chunked field",
            V11,
            &[
                HOST,
                ("Transfer-Encoding", "gzip"),
                ("Transfer-Encoding", "chunked"),
            ],
            Err(UnknownTransferCoding),
        ),
        (
            "identity then chunked",
            V11,
            &[HOST, ("Transfer-Encoding", "identity, chunked")],
            Err(UnknownTransferCoding),
        ),
        (
            "coding with parameters",
            V11,
            &[HOST, ("Transfer-Encoding", "foo;q=1, chunked")],
            Err(UnknownTransferCoding),
        ),
        // chunked not final, or not there: 400
        (
            "chunked then identity",
            V11,
            &[HOST, ("Transfer-Encoding", "chunked, identity")],
            Err(ChunkedNotFinal),
        ),
        (
            "chunked field then gzip field",
            V11,
            &[
                HOST,
                ("Transfer-Encoding", "chunked"),
                ("Transfer-Encoding", "gzip"),
            ],
            Err(ChunkedNotFinal),
        ),
        (
            "gzip alone",
            V11,
            &[HOST, ("Transfer-Encoding", "gzip")],
            Err(ChunkedNotFinal),
        ),
        (
            "identity alone",
            V11,
            &[HOST, ("Transfer-Encoding", "identity")],
            Err(ChunkedNotFinal),
        ),
        (
            "chunked twice in a list",
            V11,
            &[HOST, ("Transfer-Encoding", "chunked, chunked")],
            Err(ChunkedNotFinal),
        ),
        (
            "chunked twice in fields",
            V11,
            &[
                HOST,
                ("Transfer-Encoding", "chunked"),
                ("Transfer-Encoding", "chunked"),
            ],
            Err(ChunkedNotFinal),
        ),
        (
            "empty value",
            V11,
            &[HOST, ("Transfer-Encoding", "")],
            Err(ChunkedNotFinal),
        ),
        (
            "only commas",
            V11,
            &[HOST, ("Transfer-Encoding", " , ,")],
            Err(ChunkedNotFinal),
        ),
        (
            "empty field next to chunked",
            V11,
            &[
                HOST,
                ("Transfer-Encoding", "chunked"),
                ("Transfer-Encoding", ""),
            ],
            Err(ChunkedNotFinal),
        ),
        (
            "chunked-ish",
            V11,
            &[HOST, ("Transfer-Encoding", "chunkedx")],
            Err(ChunkedNotFinal),
        ),
        // Smuggling shapes
        (
            "length then chunked",
            V11,
            &[
                HOST,
                ("Content-Length", "5"),
                ("Transfer-Encoding", "chunked"),
            ],
            Err(LengthWithTransferEncoding),
        ),
        (
            "chunked then length",
            V11,
            &[
                HOST,
                ("Transfer-Encoding", "chunked"),
                ("Content-Length", "5"),
            ],
            Err(LengthWithTransferEncoding),
        ),
        (
            "length zero with chunked",
            V11,
            &[
                HOST,
                ("Content-Length", "0"),
                ("Transfer-Encoding", "chunked"),
            ],
            Err(LengthWithTransferEncoding),
        ),
        (
            "length with unknown coding",
            V11,
            &[HOST, ("Content-Length", "5"), ("Transfer-Encoding", "gzip")],
            Err(LengthWithTransferEncoding),
        ),
        (
            "chunked in http/1.0",
            V10,
            &[("Transfer-Encoding", "chunked")],
            Err(TransferEncodingInHttp10),
        ),
        (
            "chunked and length in http/1.0",
            V10,
            &[("Transfer-Encoding", "chunked"), ("Content-Length", "5")],
            Err(TransferEncodingInHttp10),
        ),
        (
            "gzip in http/1.0",
            V10,
            &[("Transfer-Encoding", "gzip")],
            Err(TransferEncodingInHttp10),
        ),
    ]);
    assert_eq!(UnknownTransferCoding.status(), 501);
    for e in [
        ChunkedNotFinal,
        LengthWithTransferEncoding,
        TransferEncodingInHttp10,
        BadContentLength,
        ConflictingContentLength,
    ] {
        assert_eq!(e.status(), 400, "{e:?}");
    }
}

#[test]
fn keep_alive_rules() {
    check(&[
        ("1.1 default", V11, &[HOST], Ok((L0, X::None, true))),
        (
            "1.1 close",
            V11,
            &[HOST, ("Connection", "close")],
            Ok((L0, X::None, false)),
        ),
        (
            "1.1 close any case",
            V11,
            &[HOST, ("connection", "CLOSE")],
            Ok((L0, X::None, false)),
        ),
        (
            "1.1 close in a list",
            V11,
            &[HOST, ("Connection", "upgrade, close")],
            Ok((L0, X::None, false)),
        ),
        (
            "1.1 close in a second field",
            V11,
            &[HOST, ("Connection", "keep-alive"), ("Connection", "close")],
            Ok((L0, X::None, false)),
        ),
        (
            "1.1 keep-alive",
            V11,
            &[HOST, ("Connection", "keep-alive")],
            Ok((L0, X::None, true)),
        ),
        (
            "1.1 other token",
            V11,
            &[HOST, ("Connection", "upgrade")],
            Ok((L0, X::None, true)),
        ),
        (
            "1.1 not quite close",
            V11,
            &[HOST, ("Connection", "closed")],
            Ok((L0, X::None, true)),
        ),
        ("1.0 default", V10, &[], Ok((L0, X::None, false))),
        (
            "1.0 keep-alive",
            V10,
            &[("Connection", "keep-alive")],
            Ok((L0, X::None, true)),
        ),
        (
            "1.0 keep-alive any case",
            V10,
            &[("Connection", "Keep-Alive")],
            Ok((L0, X::None, true)),
        ),
        (
            "1.0 keep-alive in a list",
            V10,
            &[("Connection", "foo, keep-alive")],
            Ok((L0, X::None, true)),
        ),
        (
            "1.0 keep-alive and close",
            V10,
            &[("Connection", "keep-alive, close")],
            Ok((L0, X::None, false)),
        ),
        (
            "1.0 close",
            V10,
            &[("Connection", "close")],
            Ok((L0, X::None, false)),
        ),
    ]);
}

#[test]
fn expect_rules() {
    check(&[
        (
            "100-continue",
            V11,
            &[HOST, ("Expect", "100-continue")],
            Ok((L0, X::Continue, true)),
        ),
        (
            "100-continue any case",
            V11,
            &[HOST, ("expect", "100-Continue")],
            Ok((L0, X::Continue, true)),
        ),
        (
            "repeated 100-continue",
            V11,
            &[HOST, ("Expect", "100-continue"), ("Expect", "100-continue")],
            Ok((L0, X::Continue, true)),
        ),
        (
            "other expectation",
            V11,
            &[HOST, ("Expect", "200-ok")],
            Ok((L0, X::Unsupported, true)),
        ),
        (
            "empty expectation",
            V11,
            &[HOST, ("Expect", "")],
            Ok((L0, X::Unsupported, true)),
        ),
        (
            "list with another member",
            V11,
            &[HOST, ("Expect", "100-continue, foo")],
            Ok((L0, X::Unsupported, true)),
        ),
        (
            "unsupported then 100-continue",
            V11,
            &[HOST, ("Expect", "foo"), ("Expect", "100-continue")],
            Ok((L0, X::Unsupported, true)),
        ),
        (
            "100-continue then unsupported",
            V11,
            &[HOST, ("Expect", "100-continue"), ("Expect", "foo")],
            Ok((L0, X::Unsupported, true)),
        ),
        // RFC 9110 §10.1.1: a server MUST ignore 100-continue from an HTTP/1.0 client.
        (
            "1.0 ignores 100-continue",
            V10,
            &[("Expect", "100-continue")],
            Ok((L0, X::None, false)),
        ),
        (
            "1.0 other expectation",
            V10,
            &[("Expect", "foo")],
            Ok((L0, X::Unsupported, false)),
        ),
    ]);
}

#[test]
fn host_rules() {
    check(&[
        ("1.1 without host", V11, &[], Err(MissingHost)),
        (
            "1.1 with other fields only",
            V11,
            &[("Hostname", "a"), ("X-Host", "a")],
            Err(MissingHost),
        ),
        ("1.0 without host", V10, &[], Ok((L0, X::None, false))),
        ("two hosts", V11, &[HOST, HOST], Err(BadHost)),
        (
            "two hosts in 1.0",
            V10,
            &[HOST, ("host", "b")],
            Err(BadHost),
        ),
        ("empty host", V11, &[("Host", "")], Ok((L0, X::None, true))),
        (
            "host and port",
            V11,
            &[("Host", "upload.example.com:8080")],
            Ok((L0, X::None, true)),
        ),
        (
            "ipv6 literal",
            V11,
            &[("Host", "[2001:db8::1]:443")],
            Ok((L0, X::None, true)),
        ),
        ("space", V11, &[("Host", "a b")], Err(BadHost)),
        ("slash", V11, &[("Host", "a/b")], Err(BadHost)),
        ("userinfo", V11, &[("Host", "user@a")], Err(BadHost)),
        ("question mark", V11, &[("Host", "a?b")], Err(BadHost)),
        ("hash", V11, &[("Host", "a#b")], Err(BadHost)),
        (
            "non-ascii",
            V11,
            &[("Host", "\u{e9}.example")],
            Err(BadHost),
        ),
    ]);
}

#[test]
fn parse_length_table() {
    let cases: &[(&[u8], Result<u64, ProtocolError>)] = &[
        (b"0", Ok(0)),
        (b"1", Ok(1)),
        (b"0000000000000000000000000001", Ok(1)),
        (b"18446744073709551615", Ok(u64::MAX)),
        (b"18446744073709551616", Err(BadContentLength)),
        (b"", Err(BadContentLength)),
        (b" 1", Err(BadContentLength)),
        (b"1 ", Err(BadContentLength)),
        (b"-0", Err(BadContentLength)),
        (b"\x001", Err(BadContentLength)),
    ];
    for (digits, want) in cases {
        assert_eq!(
            &parse_length(digits),
            want,
            "{:?}",
            String::from_utf8_lossy(digits)
        );
    }
}

#[test]
fn message_info_helpers() {
    let info = run(V11, &[HOST, ("Content-Length", "0")]).unwrap();
    assert!(!info.has_body());
    assert_eq!(info.content_length(), Some(0));
    let info = run(V11, &[HOST, ("Content-Length", "9")]).unwrap();
    assert!(info.has_body());
    assert_eq!(info.content_length(), Some(9));
    let info = run(V11, &[HOST, ("Transfer-Encoding", "chunked")]).unwrap();
    assert!(info.has_body(), "a chunked body may always have bytes");
    assert_eq!(info.content_length(), None);
}

/// Fields that are not about framing never change the decision, whatever they hold.
#[test]
fn unrelated_fields_are_ignored() {
    let info = run(
        V11,
        &[
            HOST,
            ("Content-Lengths", "x"),
            ("Transfer-Encodings", "gzip"),
            ("X-Expect", "foo"),
            ("Connections", "close"),
        ],
    )
    .unwrap();
    assert_eq!(
        (info.framing, info.expect, info.keep_alive),
        (L0, X::None, true)
    );
}

#[test]
fn field_names_match_in_any_case_and_nothing_else() {
    for target in [
        "host",
        "expect",
        "connection",
        "content-length",
        "transfer-encoding",
    ] {
        assert!(is_named(target.as_bytes(), target.as_bytes()));
        assert!(is_named(
            target.to_uppercase().as_bytes(),
            target.as_bytes()
        ));
        // Every single-byte change of a token byte breaks the match, except a case flip.
        for i in 0..target.len() {
            for b in (0x21u8..0x7f).filter(|&b| super::super::head::is_tchar(b)) {
                let mut name = target.as_bytes().to_vec();
                name[i] = b;
                let same = b.eq_ignore_ascii_case(&target.as_bytes()[i]);
                assert_eq!(
                    is_named(&name, target.as_bytes()),
                    same,
                    "{name:?} vs {target}"
                );
            }
        }
        assert!(!is_named(&target.as_bytes()[1..], target.as_bytes()));
    }
}
