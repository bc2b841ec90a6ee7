//! Callback signing, the [Standard Webhooks](https://www.standardwebhooks.com) way.
//!
//! A secret is issued as `whsec_<base64 key>`; a signature is
//! `v1,<base64 HMAC-SHA256(key, "<webhook-id>.<webhook-timestamp>.<body>")>`. During a secret
//! rotation every secret signs, and the `webhook-signature` header carries the signatures
//! space-separated, so an application that knows either secret verifies the call.

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use subtle::ConstantTimeEq;

/// The prefix of a secret as shown to applications.
pub const SECRET_PREFIX: &str = "whsec_";

/// The version tag of the only signature scheme (HMAC-SHA256).
pub const SIGNATURE_VERSION: &str = "v1";

/// The timestamp window Standard Webhooks recommends: five minutes either way.
pub const DEFAULT_TOLERANCE_SECS: u64 = 300;

type HmacSha256 = Hmac<Sha256>;

/// A new secret: `whsec_` + base64 (standard alphabet, padded) of 32 random bytes.
///
/// # Panics
///
/// When the operating system's random source fails, which Linux's `getrandom(2)` does not.
pub fn new_secret() -> String {
    let mut key = [0u8; 32];
    getrandom::getrandom(&mut key).expect("the OS random source failed");
    format!("{SECRET_PREFIX}{}", STANDARD.encode(key))
}

/// The HMAC key of `secret`: the base64-decoded part after `whsec_` (a secret without the prefix
/// is decoded whole, as the Standard Webhooks libraries do). A secret that is not base64 at all is
/// used as raw bytes, so that signing never fails; upgate only issues secrets from
/// [`new_secret`], which always decode.
pub(crate) fn key_bytes(secret: &str) -> Vec<u8> {
    let encoded = secret.strip_prefix(SECRET_PREFIX).unwrap_or(secret);
    STANDARD
        .decode(encoded)
        .unwrap_or_else(|_| secret.as_bytes().to_vec())
}

fn mac(secret: &str, msg_id: &str, timestamp: u64, body: &[u8]) -> [u8; 32] {
    let mut mac = HmacSha256::new_from_slice(&key_bytes(secret)).expect("HMAC takes any key");
    mac.update(msg_id.as_bytes());
    mac.update(b".");
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    mac.finalize().into_bytes().into()
}

/// One signature: `v1,<base64 HMAC-SHA256(key, "{msg_id}.{timestamp}.{body}")>`.
pub fn sign(secret: &str, msg_id: &str, timestamp: u64, body: &[u8]) -> String {
    format!(
        "{SIGNATURE_VERSION},{}",
        STANDARD.encode(mac(secret, msg_id, timestamp, body))
    )
}

/// The `webhook-signature` header value: one signature per secret, space-separated (a rotation
/// sends both). Empty when `secrets` is empty; the caller then omits the header.
pub fn signature_header(secrets: &[String], msg_id: &str, timestamp: u64, body: &[u8]) -> String {
    secrets
        .iter()
        .map(|s| sign(s, msg_id, timestamp, body))
        .collect::<Vec<_>>()
        .join(" ")
}

/// Why [`verify`] refused a call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VerifyError {
    /// `webhook-timestamp` is not a decimal number of seconds.
    BadTimestamp,
    /// `webhook-timestamp` is more than the tolerance in the past.
    TooOld,
    /// `webhook-timestamp` is more than the tolerance in the future.
    TooNew,
    /// No `v1` signature of the header matches any of the secrets.
    NoMatchingSignature,
}

impl std::fmt::Display for VerifyError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            VerifyError::BadTimestamp => "webhook-timestamp is not a number of seconds",
            VerifyError::TooOld => "webhook-timestamp is too old",
            VerifyError::TooNew => "webhook-timestamp is too far in the future",
            VerifyError::NoMatchingSignature => "no webhook-signature matches",
        })
    }
}

impl std::error::Error for VerifyError {}

/// Verifies a signed call the way an application does: the timestamp must lie within
/// `tolerance_secs` of `now` (unix seconds), and one `v1` signature of `signature_header` must
/// equal, compared in constant time, the signature of one of `secrets`. Signatures of other
/// versions are skipped.
pub fn verify(
    secrets: &[String],
    msg_id: &str,
    timestamp: &str,
    signature_header: &str,
    body: &[u8],
    now: u64,
    tolerance_secs: u64,
) -> Result<(), VerifyError> {
    let ts: u64 = timestamp
        .trim()
        .parse()
        .map_err(|_| VerifyError::BadTimestamp)?;
    if now.saturating_sub(ts) > tolerance_secs {
        return Err(VerifyError::TooOld);
    }
    if ts.saturating_sub(now) > tolerance_secs {
        return Err(VerifyError::TooNew);
    }
    let candidates: Vec<Vec<u8>> = signature_header
        .split_whitespace()
        .filter_map(|part| part.split_once(','))
        .filter(|(version, _)| *version == SIGNATURE_VERSION)
        .filter_map(|(_, sig)| STANDARD.decode(sig).ok())
        .collect();
    let mut matched = subtle::Choice::from(0);
    for secret in secrets {
        let expected = mac(secret, msg_id, ts, body);
        for candidate in &candidates {
            matched |= expected.as_slice().ct_eq(candidate.as_slice());
        }
    }
    if bool::from(matched) {
        Ok(())
    } else {
        Err(VerifyError::NoMatchingSignature)
    }
}

#[cfg(test)]
mod tests;
