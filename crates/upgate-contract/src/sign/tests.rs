use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;

use crate::sign::{
    new_secret, sign, signature_header, verify, VerifyError, DEFAULT_TOLERANCE_SECS,
};

// The example of the Standard Webhooks specification.
const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
const MSG_ID: &str = "msg_p5jXN8AQM9LWM0D4loKWxJek";
const TS: u64 = 1614265330;
const PAYLOAD: &[u8] = br#"{"test": 2432232314}"#;
const EXPECTED: &str = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=";

fn secrets(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| s.to_string()).collect()
}

#[test]
fn standard_webhooks_test_vector() {
    assert_eq!(sign(SECRET, MSG_ID, TS, PAYLOAD), EXPECTED);
}

#[test]
fn secret_without_prefix_is_the_same_key() {
    let bare = SECRET.strip_prefix("whsec_").unwrap();
    assert_eq!(sign(bare, MSG_ID, TS, PAYLOAD), EXPECTED);
}

#[test]
fn new_secret_is_prefixed_base64_of_32_random_bytes() {
    let a = new_secret();
    let b = new_secret();
    let key = STANDARD.decode(a.strip_prefix("whsec_").unwrap()).unwrap();
    assert_eq!(key.len(), 32);
    assert_ne!(a, b);
}

#[test]
fn header_has_one_signature_per_secret_in_order() {
    let other = new_secret();
    let header = signature_header(&secrets(&[SECRET, &other]), MSG_ID, TS, PAYLOAD);
    let parts: Vec<&str> = header.split(' ').collect();
    assert_eq!(parts, [EXPECTED, &sign(&other, MSG_ID, TS, PAYLOAD)]);
    assert_eq!(signature_header(&[], MSG_ID, TS, PAYLOAD), "");
}

#[test]
fn verify_accepts_the_test_vector_within_the_window() {
    let s = secrets(&[SECRET]);
    let ts = TS.to_string();
    for now in [TS - 300, TS, TS + 300] {
        assert_eq!(verify(&s, MSG_ID, &ts, EXPECTED, PAYLOAD, now, 300), Ok(()));
    }
}

#[test]
fn verify_refuses_timestamps_outside_the_window() {
    let s = secrets(&[SECRET]);
    let ts = TS.to_string();
    let tol = DEFAULT_TOLERANCE_SECS;
    assert_eq!(
        verify(&s, MSG_ID, &ts, EXPECTED, PAYLOAD, TS + tol + 1, tol),
        Err(VerifyError::TooOld)
    );
    assert_eq!(
        verify(&s, MSG_ID, &ts, EXPECTED, PAYLOAD, TS - tol - 1, tol),
        Err(VerifyError::TooNew)
    );
    for bad in ["", "abc", "-1", "1.5", "99999999999999999999999"] {
        assert_eq!(
            verify(&s, MSG_ID, bad, EXPECTED, PAYLOAD, TS, tol),
            Err(VerifyError::BadTimestamp),
            "{bad:?}"
        );
    }
}

#[test]
fn verify_refuses_any_tampering() {
    let s = secrets(&[SECRET]);
    let ts = TS.to_string();
    let no = Err(VerifyError::NoMatchingSignature);
    let body2 = br#"{"test": 2432232315}"#;
    assert_eq!(verify(&s, MSG_ID, &ts, EXPECTED, body2, TS, 300), no);
    assert_eq!(verify(&s, "msg_other", &ts, EXPECTED, PAYLOAD, TS, 300), no);
    let ts2 = (TS + 1).to_string();
    assert_eq!(verify(&s, MSG_ID, &ts2, EXPECTED, PAYLOAD, TS, 300), no);
    let wrong = secrets(&[&new_secret()]);
    assert_eq!(verify(&wrong, MSG_ID, &ts, EXPECTED, PAYLOAD, TS, 300), no);
    assert_eq!(verify(&[], MSG_ID, &ts, EXPECTED, PAYLOAD, TS, 300), no);
    // Right bytes, wrong version tag; truncated; not base64; empty.
    let v2 = EXPECTED.replacen("v1,", "v2,", 1);
    for header in [
        v2.as_str(),
        &EXPECTED[..EXPECTED.len() - 4],
        "v1,!!!",
        "",
        "v1",
    ] {
        assert_eq!(
            verify(&s, MSG_ID, &ts, header, PAYLOAD, TS, 300),
            no,
            "{header:?}"
        );
    }
}

#[test]
fn verify_finds_a_match_among_several_signatures_and_secrets() {
    let old = new_secret();
    let ts = TS.to_string();
    // A header from a rotation (old and new), checked by an app that knows only one of them.
    let header = signature_header(&secrets(&[&old, SECRET]), MSG_ID, TS, PAYLOAD);
    assert_eq!(
        verify(&secrets(&[SECRET]), MSG_ID, &ts, &header, PAYLOAD, TS, 300),
        Ok(())
    );
    assert_eq!(
        verify(&secrets(&[&old]), MSG_ID, &ts, &header, PAYLOAD, TS, 300),
        Ok(())
    );
    // Unknown versions are skipped, not fatal.
    let mixed = format!("v1a,abcd {EXPECTED}");
    assert_eq!(
        verify(&secrets(&[SECRET]), MSG_ID, &ts, &mixed, PAYLOAD, TS, 300),
        Ok(())
    );
    // An app holding two secrets accepts a signature by either.
    let both = secrets(&[&old, SECRET]);
    assert_eq!(
        verify(&both, MSG_ID, &ts, EXPECTED, PAYLOAD, TS, 300),
        Ok(())
    );
}
