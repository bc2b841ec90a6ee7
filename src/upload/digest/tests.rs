use proptest::prelude::*;

use super::*;
use crate::error::Fault;
use crate::upload::Refusal;

/// SHA-256 of `hello world`.
const HELLO_HEX: &str = "b94d27b9934d3e08a52e52d7da7dabfac484efe37a5380ee9088f7ace2efcde9";
const HELLO_B64: &str = "uU0nuZNNPgilLlLX2n2r+sSE7+N6U4DukIj3rOLvzek=";

fn hello() -> Sha256Value {
    Sha256::digest(b"hello world").into()
}

fn claims(fields: &[(&str, &str)]) -> Result<Claims, BadDigest> {
    Claims::from_fields(fields.iter().map(|(n, v)| (n.as_bytes(), v.as_bytes())))
}

#[test]
fn test_vector_agrees_with_the_hasher() {
    assert_eq!(hex(&hello()), HELLO_HEX);
    assert_eq!(BASE64.encode(hello()), HELLO_B64);
}

#[test]
fn content_digest_forms() {
    let unpadded = HELLO_B64.trim_end_matches('=');
    let ok: &[(String, usize)] = &[
        (format!("sha-256=:{HELLO_B64}:"), 1),
        (format!("sha-256=:{unpadded}:"), 1),
        (format!("  sha-256=:{HELLO_B64}:  "), 1),
        (format!("sha-512=:AAAA:, sha-256=:{HELLO_B64}:"), 1),
        (format!("sha-256=:{HELLO_B64}:;p=1, md5=\"x,y\""), 1),
        (format!("unixsum=30637, sha-256=:{HELLO_B64}:"), 1),
        ("sha-512=:AAAA:".to_string(), 0),
        ("flag, other=?1, n=-1.5, t=tok/en".to_string(), 0),
    ];
    for (value, n) in ok {
        let got = parse_content_digest(value.as_bytes());
        assert_eq!(got.as_ref().map(Vec::len), Ok(*n), "{value}");
        if *n == 1 {
            assert_eq!(got.unwrap()[0], hello(), "{value}");
        }
    }
    let bad: &[&str] = &[
        "",
        "sha-256",
        "sha-256=abc",
        "sha-256=:not base64!:",
        "sha-256=:AAAA:",
        "sha-256=:AAAA",
        "SHA-256=:AAAA:",
        "sha-256=:AAAA:,",
        "sha-256=:AAAA: sha-512=:AAAA:",
        "=:AAAA:",
        "md5=\"unterminated",
    ];
    for value in bad {
        let got = parse_content_digest(value.as_bytes());
        assert!(got.is_err(), "{value:?} parsed as {got:?}");
        assert_eq!(Refusal::from(got.unwrap_err()).code(), "bad_digest");
    }
}

#[test]
fn digest_forms() {
    let ok: &[(String, usize)] = &[
        (format!("SHA-256={HELLO_B64}"), 1),
        (format!("sha-256={HELLO_B64}"), 1),
        (
            format!("MD5=HUXZLQLMuI/KZ5KDcJPcOA==, SHA-256={HELLO_B64}"),
            1,
        ),
        (format!(", SHA-256={HELLO_B64} ,"), 1),
        ("MD5=HUXZLQLMuI/KZ5KDcJPcOA==".to_string(), 0),
    ];
    for (value, n) in ok {
        let got = parse_digest(value.as_bytes());
        assert_eq!(got.as_ref().map(Vec::len), Ok(*n), "{value}");
        if *n == 1 {
            assert_eq!(got.unwrap()[0], hello(), "{value}");
        }
    }
    for value in [
        "",
        " , ",
        "SHA-256",
        "SHA-256=",
        "SHA-256=AAAA",
        "S HA=x",
        "SHA-256=!!",
    ] {
        assert!(parse_digest(value.as_bytes()).is_err(), "{value:?}");
    }
}

#[test]
fn hex_form() {
    assert_eq!(parse_hex(HELLO_HEX.as_bytes()), Ok(hello()));
    assert_eq!(
        parse_hex(HELLO_HEX.to_ascii_uppercase().as_bytes()),
        Ok(hello())
    );
    assert_eq!(parse_hex(format!(" {HELLO_HEX} ").as_bytes()), Ok(hello()));
    for value in [
        "",
        "abc",
        &HELLO_HEX[1..],
        &format!("{HELLO_HEX}0"),
        &HELLO_HEX.replace('b', "g"),
    ] {
        assert!(parse_hex(value.as_bytes()).is_err(), "{value:?}");
    }
}

#[test]
fn claims_collect_every_header_and_all_must_match() {
    let c = claims(&[
        ("Content-Type", "text/plain"),
        ("Content-Digest", &format!("sha-256=:{HELLO_B64}:")),
        ("digest", &format!("SHA-256={HELLO_B64}")),
        ("X-Checksum-SHA256", HELLO_HEX),
    ])
    .unwrap();
    assert_eq!(c.0.len(), 3);
    assert_eq!(c.check(&hello()), Ok(()));
    let other: Sha256Value = Sha256::digest(b"hello worle").into();
    let m = c.check(&other).unwrap_err();
    assert_eq!(m.header, CONTENT_DIGEST);
    let r = Refusal::from(m);
    assert_eq!((r.status(), r.code()), (400, "digest_mismatch"));
    assert!(r.message().contains(HELLO_HEX), "{}", r.message());

    // One wrong claim among right ones is a mismatch.
    let zero = "0".repeat(64);
    let c = claims(&[
        ("x-checksum-sha256", HELLO_HEX),
        ("x-checksum-sha256", &zero),
    ])
    .unwrap();
    assert_eq!(c.check(&hello()).unwrap_err().header, X_CHECKSUM_SHA256);

    // No claim: anything matches.
    assert_eq!(claims(&[]).unwrap().check(&other), Ok(()));

    // The first malformed header refuses.
    let e = claims(&[("Digest", "SHA-256=AAAA")]).unwrap_err();
    assert_eq!(e.header, DIGEST);
    assert_eq!(Refusal::from(e).status(), 400);
}

#[test]
fn body_digest_streams() {
    let mut d = BodyDigest::new(claims(&[("x-checksum-sha256", HELLO_HEX)]).unwrap());
    d.update(b"hello");
    d.update(b"");
    d.update(b" world");
    assert_eq!(d.finish(), Ok(HELLO_HEX.to_string()));
    let mut d = BodyDigest::new(claims(&[("x-checksum-sha256", HELLO_HEX)]).unwrap());
    d.update(b"hello");
    assert!(d.finish().is_err());
}

proptest! {
    /// Any digest, in any of the three forms (padded or not, any case where allowed, amid
    /// other members), parses back to itself.
    #[test]
    fn every_form_round_trips(
        digest in any::<[u8; 32]>(),
        pad in any::<bool>(),
        upper in any::<bool>(),
        before in any::<bool>(),
    ) {
        let mut b64 = BASE64.encode(digest);
        if !pad {
            b64 = b64.trim_end_matches('=').to_string();
        }
        let other = if before { "sha-512=:AAAA:, " } else { "" };
        let cd = format!("{other}sha-256=:{b64}:");
        prop_assert_eq!(parse_content_digest(cd.as_bytes()), Ok(vec![digest]));
        let alg = if upper { "SHA-256" } else { "sha-256" };
        let d = format!("{}{alg}={b64}", other.replace(":AAAA:", "AAAA"));
        prop_assert_eq!(parse_digest(d.as_bytes()), Ok(vec![digest]));
        let h = if upper { hex(&digest).to_ascii_uppercase() } else { hex(&digest) };
        prop_assert_eq!(parse_hex(h.as_bytes()), Ok(digest));
    }

    /// Arbitrary bytes never panic a parser, and what they accept is bounded by the input: at
    /// most one claim per list element, and hex only from exactly 64 hex digits.
    #[test]
    fn arbitrary_values_are_judged_without_panics(value in prop::collection::vec(any::<u8>(), 0..120)) {
        let elements = value.iter().filter(|&&b| b == b',').count() + 1;
        if let Ok(found) = parse_content_digest(&value) {
            prop_assert!(found.len() <= elements);
        }
        if let Ok(found) = parse_digest(&value) {
            prop_assert!(found.len() <= elements);
        }
        if parse_hex(&value).is_ok() {
            let t = value.trim_ascii();
            prop_assert!(t.len() == 64 && t.iter().all(u8::is_ascii_hexdigit));
        }
    }

    /// Printable garbage: an accepted Content-Digest always came from a `sha-256=:…:` member.
    #[test]
    fn accepted_content_digests_name_sha256(value in "[a-z0-9=:;,\"*. -]{0,60}") {
        if let Ok(found) = parse_content_digest(value.as_bytes()) {
            prop_assert!(found.is_empty() || value.contains("sha-256=:"));
        }
    }
}
