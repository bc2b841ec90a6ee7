//! `upgate sign-upload` as a user runs it: the binary prints one token, which
//! `upgate_contract::token::verify_upload` accepts with the same secret and the arguments'
//! policy, and refuses with another secret.

use std::process::{Command, Stdio};
use std::time::{SystemTime, UNIX_EPOCH};

use upgate_contract::sign::new_secret;
use upgate_contract::token::{verify_upload, TokenError};

const BIN: &str = env!("CARGO_BIN_EXE_upgate");

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

#[test]
fn sign_upload_prints_a_token_that_verifies() {
    let secret = new_secret();
    let before = now();
    let out = Command::new(BIN)
        .args(["sign-upload", "--appid", "app1", "--key", "docs/a.pdf"])
        .args([
            "--expires-in",
            "300",
            "--max-bytes",
            "1024",
            "--content-type",
            "application/pdf",
        ])
        .env("UPGATE_APP_SECRET", &secret)
        .stdin(Stdio::null())
        .output()
        .expect("upgate runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8(out.stdout).unwrap();
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), 1, "one token, nothing else: {stdout:?}");
    let policy = verify_upload(lines[0], &[secret], now()).expect("the token verifies");
    assert_eq!(policy.appid, "app1");
    assert_eq!(policy.key.as_deref(), Some("docs/a.pdf"));
    assert!((before + 300..=now() + 300).contains(&policy.expires));
    assert_eq!(
        policy.allows("app1", "docs/a.pdf", Some(1024), "application/pdf"),
        Ok(())
    );
    assert_eq!(
        policy.allows("app1", "docs/a.pdf", Some(1025), "application/pdf"),
        Err(TokenError::TooLarge {
            size: 1025,
            max: 1024
        })
    );
    assert_eq!(
        verify_upload(lines[0], &[new_secret()], now()),
        Err(TokenError::BadSignature)
    );
}

#[test]
fn sign_upload_refuses_a_secret_that_is_not_whsec() {
    let out = Command::new(BIN)
        .args([
            "sign-upload",
            "--secret",
            "hunter2",
            "--appid",
            "a",
            "--key-prefix",
            "u/",
        ])
        .stdin(Stdio::null())
        .output()
        .expect("upgate runs");
    assert_eq!(out.status.code(), Some(2));
    assert!(out.stdout.is_empty());
    assert!(String::from_utf8_lossy(&out.stderr).contains("whsec_"));
}
