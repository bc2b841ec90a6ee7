//! Signed upload tokens: how an application lets a browser upload straight to the node, like an
//! S3 POST policy.
//!
//! ```text
//! token = base64url(policy JSON) "." base64url(HMAC-SHA256(app key, first part))
//! ```
//!
//! base64url is RFC 4648 §5 without padding (padded parts are accepted when verifying); the app
//! key is the decoded `whsec_` secret, the same key that signs callbacks ([`crate::sign`]); the
//! MAC covers the first part exactly as it travels (the base64url text, not the JSON), so any
//! signer that serializes the policy its own way produces tokens that verify. The policy:
//!
//! ```json
//! {"appid":"app1","key_prefix":"uploads/","expires":1767225600,"max_bytes":10485760,
//!  "content_types":["image/*","application/pdf"]}
//! ```
//!
//! | field | meaning |
//! |---|---|
//! | `appid` | the app the upload is for (required) |
//! | `key` | the one stored path allowed (relative, without the appid) |
//! | `key_prefix` | or: every stored path starting with it |
//! | `expires` | unix seconds; the token is valid up to and including this second |
//! | `max_bytes` | optional: the largest upload |
//! | `content_types` | optional: allowed types (exact, case-insensitive, parameters ignored, `type/*` and `*/*` wildcards); an empty list allows none |
//!
//! Exactly one of `key` and `key_prefix` must be present. Unknown fields are refused, not
//! ignored: a policy whose restriction this node does not understand must not pass as a policy
//! without it.
//!
//! The node checks a token in two steps: [`verify_upload`] (length, MAC against the app's current
//! and previous secrets, then expiry) gives the [`UploadPolicy`], and
//! [`UploadPolicy::allows`] checks one upload against it. When the size is unknown at that
//! point (a multipart or chunked body), the caller enforces `max_bytes` while the body streams.

use base64::alphabet;
use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig, URL_SAFE_NO_PAD};
use base64::engine::DecodePaddingMode;
use base64::Engine as _;
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;
use subtle::ConstantTimeEq;

use crate::sign::key_bytes;

/// The longest token accepted; a longer one is refused before any decoding.
pub const MAX_TOKEN_BYTES: usize = 4096;

/// base64url that reads padded and unpadded input alike.
const URL_SAFE_ANY_PAD: GeneralPurpose = GeneralPurpose::new(
    &alphabet::URL_SAFE,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// What a token allows (see the module documentation for each field).
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct UploadPolicy {
    pub appid: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_prefix: Option<String>,
    /// Unix seconds; valid up to and including this second.
    pub expires: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_bytes: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content_types: Option<Vec<String>>,
}

/// Why a token was refused; its `Display` is a reason the uploading client can act on (the
/// node answers `403 bad_token` with it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TokenError {
    /// Not a token: too long, no `.`, not base64url, not the policy JSON, or a policy that
    /// names neither or both of `key` and `key_prefix`.
    Malformed(&'static str),
    /// The MAC matches none of the app's secrets: signed by another key, or altered.
    BadSignature,
    /// Past its `expires`.
    Expired,
    /// The token is for another appid.
    WrongAppid,
    /// The stored path is neither the token's `key` nor under its `key_prefix`.
    WrongKey,
    /// The declared size is over the token's `max_bytes`.
    TooLarge { size: u64, max: u64 },
    /// The content type (as given) is not among the token's `content_types`.
    TypeNotAllowed(String),
}

impl std::fmt::Display for TokenError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            TokenError::Malformed(what) => write!(f, "malformed upload token: {what}"),
            TokenError::BadSignature => f.write_str(
                "upload token signature does not match (altered, or signed with another key)",
            ),
            TokenError::Expired => {
                f.write_str("upload token expired; ask the application for a new one")
            }
            TokenError::WrongAppid => f.write_str("upload token is for another appid"),
            TokenError::WrongKey => {
                f.write_str("upload token does not allow storing at this path (key)")
            }
            TokenError::TooLarge { size, max } => write!(
                f,
                "file is {size} bytes; the upload token allows at most {max}"
            ),
            TokenError::TypeNotAllowed(t) => {
                write!(f, "content type {t:?} is not allowed by the upload token")
            }
        }
    }
}

impl std::error::Error for TokenError {}

fn mac(secret: &str, first_part: &[u8]) -> [u8; 32] {
    let mut mac = Hmac::<Sha256>::new_from_slice(&key_bytes(secret)).expect("HMAC takes any key");
    mac.update(first_part);
    mac.finalize().into_bytes().into()
}

/// A token for `policy`, signed with `secret` (`whsec_…`).
pub fn sign_upload(secret: &str, policy: &UploadPolicy) -> String {
    let json = serde_json::to_vec(policy).expect("the policy serializes");
    let first = URL_SAFE_NO_PAD.encode(json);
    let sig = URL_SAFE_NO_PAD.encode(mac(secret, first.as_bytes()));
    format!("{first}.{sig}")
}

/// Checks the MAC against each of `secrets` (current and, during rotation, previous; compared
/// in constant time), then expiry against `now` (unix seconds), and returns the policy.
///
/// The policy JSON is parsed only after the MAC matched: nothing an outsider sends reaches the
/// JSON parser.
pub fn verify_upload(
    token: &str,
    secrets: &[String],
    now: u64,
) -> Result<UploadPolicy, TokenError> {
    if token.len() > MAX_TOKEN_BYTES {
        return Err(TokenError::Malformed("longer than 4096 bytes"));
    }
    let token = token.trim();
    let (first, sig) = token
        .split_once('.')
        .ok_or(TokenError::Malformed("no '.' between policy and signature"))?;
    if sig.contains('.') {
        return Err(TokenError::Malformed("more than one '.'"));
    }
    if first.is_empty() {
        return Err(TokenError::Malformed("empty policy"));
    }
    let sig = URL_SAFE_ANY_PAD
        .decode(sig)
        .map_err(|_| TokenError::Malformed("signature is not base64url"))?;
    let mut matched = subtle::Choice::from(0);
    for secret in secrets {
        matched |= mac(secret, first.as_bytes()).as_slice().ct_eq(&sig);
    }
    if !bool::from(matched) {
        return Err(TokenError::BadSignature);
    }
    let json = URL_SAFE_ANY_PAD
        .decode(first)
        .map_err(|_| TokenError::Malformed("policy is not base64url"))?;
    let policy: UploadPolicy = serde_json::from_slice(&json)
        .map_err(|_| TokenError::Malformed("policy is not the upload policy JSON"))?;
    match (&policy.key, &policy.key_prefix) {
        (None, None) => return Err(TokenError::Malformed("policy names no key or key_prefix")),
        (Some(_), Some(_)) => {
            return Err(TokenError::Malformed(
                "policy names both key and key_prefix",
            ))
        }
        _ => {}
    }
    if now > policy.expires {
        return Err(TokenError::Expired);
    }
    Ok(policy)
}

impl UploadPolicy {
    /// The edge checks, in this order: `appid` equal; the stored `path` (relative, without the
    /// appid; a leading `/` is ignored) equal to `key` or starting with `key_prefix`; the
    /// declared `size` (when known) at most `max_bytes`; `content_type` matching one of
    /// `content_types` (exact, case-insensitive, parameters ignored, `type/*` and `*/*`
    /// wildcards). With `size` unknown the caller must enforce `max_bytes` while the body
    /// streams.
    pub fn allows(
        &self,
        appid: &str,
        path: &str,
        size: Option<u64>,
        content_type: &str,
    ) -> Result<(), TokenError> {
        if appid != self.appid {
            return Err(TokenError::WrongAppid);
        }
        let path = path.strip_prefix('/').unwrap_or(path);
        let key_ok = match (&self.key, &self.key_prefix) {
            (Some(key), _) => path == key.strip_prefix('/').unwrap_or(key),
            (None, Some(prefix)) => path.starts_with(prefix.strip_prefix('/').unwrap_or(prefix)),
            (None, None) => false,
        };
        if !key_ok {
            return Err(TokenError::WrongKey);
        }
        if let (Some(size), Some(max)) = (size, self.max_bytes) {
            if size > max {
                return Err(TokenError::TooLarge { size, max });
            }
        }
        if let Some(allowed) = &self.content_types {
            let given = essence(content_type);
            if !allowed
                .iter()
                .any(|pattern| type_matches(&essence(pattern), &given))
            {
                return Err(TokenError::TypeNotAllowed(content_type.to_string()));
            }
        }
        Ok(())
    }
}

/// `Image/PNG; charset=x` → `image/png`.
fn essence(media_type: &str) -> String {
    media_type
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase()
}

/// Whether the lower-case essence `given` matches the lower-case `pattern` (`*/*`, `type/*` or
/// an exact type).
fn type_matches(pattern: &str, given: &str) -> bool {
    if given.is_empty() {
        return false;
    }
    if pattern == "*/*" || pattern == given {
        return true;
    }
    match pattern.strip_suffix("/*") {
        Some(major) => given
            .split_once('/')
            .is_some_and(|(m, sub)| m == major && !sub.is_empty()),
        None => false,
    }
}

#[cfg(test)]
mod tests;
