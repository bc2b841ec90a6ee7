use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use proptest::prelude::*;

use crate::sign::new_secret;
use crate::token::{sign_upload, verify_upload, TokenError, UploadPolicy, MAX_TOKEN_BYTES};

// The Standard Webhooks example secret (sign/tests.rs).
const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

/// Made by Python's `hmac`/`base64` from the contract's definition, independently of this code:
/// policy `{"appid":"app1","key_prefix":"uploads/","expires":1767225600,"max_bytes":10485760,
/// "content_types":["image/*","application/pdf"]}`, signed with [`SECRET`].
const PYTHON_TOKEN: &str = "eyJhcHBpZCI6ImFwcDEiLCJrZXlfcHJlZml4IjoidXBsb2Fkcy8iLCJleHBpcmVzIjoxNzY3MjI1NjAwLCJtYXhfYnl0ZXMiOjEwNDg1NzYwLCJjb250ZW50X3R5cGVzIjpbImltYWdlLyoiLCJhcHBsaWNhdGlvbi9wZGYiXX0.HyPuAx52FCqoOarMeQyVhAAvxdMdS0CLwSSXKDRzAhY";

/// Python's `json.dumps` (spaces, other field order, `\u` escape), base64url WITH padding.
const PYTHON_PADDED: &str = "eyJleHBpcmVzIjogNDEwMjQ0NDgwMCwgImFwcGlkIjogImFwcDEiLCAia2V5IjogImEgYi9cdTAwZmMudHh0In0=.zscWFtVuTSG99Z4nrJ2CiwKbB_zak-4Tun1vxO359yk=";

const T0: u64 = 1_767_225_600;

fn secrets(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| s.to_string()).collect()
}

fn prefix_policy() -> UploadPolicy {
    UploadPolicy {
        appid: "app1".into(),
        key: None,
        key_prefix: Some("uploads/".into()),
        expires: T0,
        max_bytes: Some(10_485_760),
        content_types: Some(vec!["image/*".into(), "application/pdf".into()]),
    }
}

fn key_policy(key: &str) -> UploadPolicy {
    UploadPolicy {
        appid: "app1".into(),
        key: Some(key.into()),
        key_prefix: None,
        expires: T0,
        max_bytes: None,
        content_types: None,
    }
}

/// A token over arbitrary policy text, for malformed policies `sign_upload` cannot produce.
fn sign_raw(secret: &str, policy_json: &str) -> String {
    use hmac::{Hmac, Mac};
    let first = URL_SAFE_NO_PAD.encode(policy_json);
    let key = crate::sign::key_bytes(secret);
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(&key).unwrap();
    mac.update(first.as_bytes());
    format!(
        "{first}.{}",
        URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes())
    )
}

#[test]
fn signing_matches_an_independent_implementation() {
    assert_eq!(sign_upload(SECRET, &prefix_policy()), PYTHON_TOKEN);
    assert_eq!(
        verify_upload(PYTHON_TOKEN, &secrets(&[SECRET]), T0),
        Ok(prefix_policy())
    );
}

#[test]
fn padded_parts_and_other_serializers_verify() {
    let got = verify_upload(PYTHON_PADDED, &secrets(&[SECRET]), T0).unwrap();
    assert_eq!(got.key.as_deref(), Some("a b/\u{fc}.txt"));
    assert_eq!(got.expires, 4_102_444_800);
    assert_eq!(got.content_types, None);
}

#[test]
fn policy_json_omits_absent_fields() {
    let json = serde_json::to_string(&key_policy("a/b.png")).unwrap();
    assert_eq!(
        json,
        r#"{"appid":"app1","key":"a/b.png","expires":1767225600}"#
    );
}

#[test]
fn any_of_the_secrets_verifies_during_a_rotation() {
    let old = new_secret();
    let token = sign_upload(&old, &prefix_policy());
    let both = secrets(&[SECRET, &old]);
    assert_eq!(verify_upload(&token, &both, T0), Ok(prefix_policy()));
    assert_eq!(
        verify_upload(&token, &secrets(&[SECRET]), T0),
        Err(TokenError::BadSignature)
    );
    assert_eq!(
        verify_upload(&token, &[], T0),
        Err(TokenError::BadSignature)
    );
}

#[test]
fn expiry_is_checked_after_the_signature() {
    let s = secrets(&[SECRET]);
    assert!(verify_upload(PYTHON_TOKEN, &s, 0).is_ok());
    assert!(
        verify_upload(PYTHON_TOKEN, &s, T0).is_ok(),
        "valid through its second"
    );
    assert_eq!(
        verify_upload(PYTHON_TOKEN, &s, T0 + 1),
        Err(TokenError::Expired)
    );
    // An expired token with a bad signature says the signature is bad, not that it expired.
    let other = secrets(&[&new_secret()]);
    assert_eq!(
        verify_upload(PYTHON_TOKEN, &other, T0 + 1),
        Err(TokenError::BadSignature)
    );
}

#[test]
fn any_change_breaks_the_signature() {
    let s = secrets(&[SECRET]);
    let (first, sig) = PYTHON_TOKEN.split_once('.').unwrap();
    // A policy re-encoded with another expiry, the old signature kept.
    let mut p = prefix_policy();
    p.expires += 3600;
    let forged_first = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&p).unwrap());
    let forged = format!("{forged_first}.{sig}");
    assert_eq!(
        verify_upload(&forged, &s, T0),
        Err(TokenError::BadSignature)
    );
    // One character of the signature or of the policy changed.
    let mut bad_sig = sig.to_string();
    let c = if bad_sig.starts_with('A') { "B" } else { "A" };
    bad_sig.replace_range(0..1, c);
    assert_eq!(
        verify_upload(&format!("{first}.{bad_sig}"), &s, T0),
        Err(TokenError::BadSignature)
    );
    assert_eq!(
        verify_upload(&format!("{}.{sig}", &first[1..]), &s, T0),
        Err(TokenError::BadSignature)
    );
    // A truncated signature.
    assert_eq!(
        verify_upload(&format!("{first}.{}", &sig[..20]), &s, T0),
        Err(TokenError::BadSignature)
    );
}

#[test]
fn malformed_tokens_are_named() {
    let s = secrets(&[SECRET]);
    let cases: &[(&str, &str)] = &[
        ("", "no '.'"),
        ("abc", "no '.'"),
        (".abc", "empty policy"),
        ("a.b.c", "more than one '.'"),
        ("eyJ9.!!!", "signature is not base64url"),
        ("eyJ9.a+b/", "signature is not base64url"),
    ];
    for (token, want) in cases {
        match verify_upload(token, &s, T0) {
            Err(TokenError::Malformed(what)) => assert!(what.contains(want), "{token:?}: {what}"),
            other => panic!("{token:?}: {other:?}"),
        }
    }
    let long = format!("{}.{}", "a".repeat(MAX_TOKEN_BYTES), "b");
    assert_eq!(
        verify_upload(&long, &s, T0),
        Err(TokenError::Malformed("longer than 4096 bytes"))
    );
}

#[test]
fn signed_but_invalid_policies_are_malformed() {
    let s = secrets(&[SECRET]);
    let cases: &[(&str, &str)] = &[
        ("not json", "not the upload policy JSON"),
        (r#"{"key":"a","expires":1}"#, "not the upload policy JSON"),
        (
            r#"{"appid":"app1","key":"a"}"#,
            "not the upload policy JSON",
        ),
        (
            r#"{"appid":"app1","key":"a","expires":1,"conditions":[]}"#,
            "not the upload policy JSON",
        ),
        (r#"{"appid":"app1","expires":1}"#, "no key or key_prefix"),
        (
            r#"{"appid":"app1","key":"a","key_prefix":"b","expires":1}"#,
            "both key and key_prefix",
        ),
    ];
    for (json, want) in cases {
        match verify_upload(&sign_raw(SECRET, json), &s, 0) {
            Err(TokenError::Malformed(what)) => assert!(what.contains(want), "{json}: {what}"),
            other => panic!("{json}: {other:?}"),
        }
    }
    // Not base64url inside, but correctly signed.
    let bad_b64 = {
        use hmac::{Hmac, Mac};
        let mut mac =
            Hmac::<sha2::Sha256>::new_from_slice(&crate::sign::key_bytes(SECRET)).unwrap();
        mac.update(b"%%%");
        format!(
            "%%%.{}",
            URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes())
        )
    };
    assert_eq!(
        verify_upload(&bad_b64, &s, 0),
        Err(TokenError::Malformed("policy is not base64url"))
    );
}

#[test]
fn allows_checks_appid_key_size_and_type_in_order() {
    let p = prefix_policy();
    let ok = |path, size, ty| p.allows("app1", path, size, ty);
    assert_eq!(ok("uploads/a.png", Some(1), "image/png"), Ok(()));
    assert_eq!(ok("/uploads/a.png", None, "image/png"), Ok(()));
    assert_eq!(
        ok("uploads/x/y.pdf", Some(10_485_760), "application/pdf"),
        Ok(())
    );
    assert_eq!(
        p.allows("app2", "uploads/a.png", Some(1), "image/png"),
        Err(TokenError::WrongAppid)
    );
    assert_eq!(
        ok("upload/a.png", Some(1), "image/png"),
        Err(TokenError::WrongKey)
    );
    assert_eq!(
        ok("x/uploads/a.png", Some(1), "image/png"),
        Err(TokenError::WrongKey)
    );
    assert_eq!(
        ok("uploads/a.png", Some(10_485_761), "image/png"),
        Err(TokenError::TooLarge {
            size: 10_485_761,
            max: 10_485_760
        })
    );
    assert_eq!(
        ok("uploads/a.txt", Some(1), "text/plain"),
        Err(TokenError::TypeNotAllowed("text/plain".into()))
    );

    let k = key_policy("docs/report.pdf");
    assert_eq!(k.allows("app1", "docs/report.pdf", None, ""), Ok(()));
    assert_eq!(
        k.allows("app1", "/docs/report.pdf", Some(u64::MAX), "x/y"),
        Ok(())
    );
    assert_eq!(
        k.allows("app1", "docs/report.pdf2", None, ""),
        Err(TokenError::WrongKey)
    );
    assert_eq!(
        k.allows("app1", "docs", None, ""),
        Err(TokenError::WrongKey)
    );
}

#[test]
fn content_type_matching() {
    let mut p = key_policy("a");
    p.content_types = Some(vec![
        "image/*".into(),
        "Application/PDF; q=1".into(),
        "text/plain".into(),
    ]);
    let allowed = |t: &str| p.allows("app1", "a", None, t).is_ok();
    for t in [
        "image/png",
        "IMAGE/JPEG",
        "image/svg+xml",
        "application/pdf",
        "application/pdf; name=x",
        "text/plain;charset=utf-8",
        " Text/Plain ",
    ] {
        assert!(allowed(t), "{t}");
    }
    for t in [
        "",
        "image",
        "image/",
        "imagex/png",
        "text/html",
        "application/pdfx",
        "*/*",
    ] {
        assert!(!allowed(t), "{t}");
    }
    p.content_types = Some(vec!["*/*".into()]);
    assert!(p.allows("app1", "a", None, "video/mp4").is_ok());
    assert!(p.allows("app1", "a", None, "").is_err());
    p.content_types = Some(vec![]);
    assert_eq!(
        p.allows("app1", "a", None, "image/png"),
        Err(TokenError::TypeNotAllowed("image/png".into()))
    );
}

#[test]
fn errors_read_as_reasons() {
    let shown = |e: TokenError| e.to_string();
    assert_eq!(
        shown(TokenError::TooLarge { size: 11, max: 10 }),
        "file is 11 bytes; the upload token allows at most 10"
    );
    assert!(shown(TokenError::Expired).contains("expired"));
    assert!(shown(TokenError::Malformed("no '.'")).contains("malformed upload token: no '.'"));
    assert!(shown(TokenError::TypeNotAllowed("text/html".into())).contains("\"text/html\""));
}

fn arb_policy() -> impl Strategy<Value = UploadPolicy> {
    (
        "[A-Za-z0-9_-]{1,64}",
        prop::bool::ANY,
        "\\PC{0,40}",
        any::<u64>(),
        prop::option::of(any::<u64>()),
        prop::option::of(prop::collection::vec("[a-z]{1,8}/[a-z*+.-]{1,12}", 0..4)),
    )
        .prop_map(
            |(appid, exact, key, expires, max_bytes, content_types)| UploadPolicy {
                appid,
                key: exact.then(|| key.clone()),
                key_prefix: (!exact).then_some(key),
                expires,
                max_bytes,
                content_types,
            },
        )
}

proptest! {
    #[test]
    fn signed_policies_round_trip_and_allow_their_own_key(policy in arb_policy(), now in any::<u64>()) {
        let secret = SECRET.to_string();
        let token = sign_upload(&secret, &policy);
        prop_assert!(!token.contains('='));
        let got = verify_upload(&token, &[secret], now);
        if token.len() > MAX_TOKEN_BYTES {
            prop_assert_eq!(got, Err(TokenError::Malformed("longer than 4096 bytes")));
        } else if now > policy.expires {
            prop_assert_eq!(got, Err(TokenError::Expired));
        } else {
            prop_assert_eq!(got, Ok(policy.clone()));
        }
        let path = policy.key.clone().or(policy.key_prefix.clone()).unwrap();
        let ty = policy.content_types.as_ref().and_then(|t| t.first()).map_or("a/b", |t| t.as_str());
        let ty = if ty.ends_with("/*") { ty.replace('*', "x") } else { ty.to_string() };
        let size = policy.max_bytes;
        let allowed = policy.allows(&policy.appid, &path, size, &ty);
        if policy.content_types.as_ref().is_some_and(|t| t.is_empty()) {
            prop_assert_eq!(allowed, Err(TokenError::TypeNotAllowed(ty)));
        } else {
            prop_assert_eq!(allowed, Ok(()));
        }
    }

    #[test]
    fn verify_never_panics_and_refuses_garbage(token in "\\PC{0,300}") {
        let got = verify_upload(&token, &[SECRET.to_string()], 0);
        prop_assert!(got.is_err());
    }
}
