//! Who may use the registration API. Pure: the handler passes in the request's credentials, the
//! configured admin token, whether the peer is loopback, and the target app's current secret.
//!
//! 1. Credentials that are presented are always checked, even from loopback: the admin token
//!    gives full control; the target app's current secret gives control of that app only.
//!    Anything else is 401.
//! 2. Without credentials: 401 when an admin token is configured; otherwise loopback peers have
//!    full control (the operator on the machine) and other peers get 403.
//!
//! Secrets and the admin token are compared in constant time: both sides are hashed to
//! SHA-256 digests first and the two 32-byte digests compared without an early exit, so the
//! time depends neither on where a guess goes wrong nor on its length.

use sha2::{Digest, Sha256};
use subtle::{Choice, ConstantTimeEq};

/// Who is calling.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Principal {
    /// The admin token, or a loopback peer when no admin token is configured.
    Operator,
    /// The holder of this app's current secret: may manage this app's record only.
    App(String),
}

/// Why a request was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Denied {
    /// 401 `unauthorized`: credentials missing or wrong.
    Unauthorized(&'static str),
    /// 403 `forbidden`: no credentials, and the peer is not loopback.
    Forbidden(&'static str),
}

/// What the decision depends on.
#[derive(Debug, Clone, Copy)]
pub struct Credentials<'a> {
    /// Every `Authorization` field value of the request.
    pub authorization: &'a [&'a [u8]],
    /// `admin_token` from the config.
    pub admin_token: Option<&'a str>,
    pub peer_is_loopback: bool,
    /// The target app and its current secret, when the request names a registered app.
    pub target: Option<(&'a str, &'a str)>,
}

/// Decides who the caller is.
pub fn authorize(c: &Credentials<'_>) -> Result<Principal, Denied> {
    let token = match c.authorization {
        [] => None,
        [one] => Some(bearer(one).ok_or(Denied::Unauthorized(
            "expected Authorization: Bearer <token>",
        ))?),
        _ => return Err(Denied::Unauthorized("more than one Authorization field")),
    };
    match token {
        Some(token) => {
            if let Some(admin) = c.admin_token {
                if !admin.is_empty() && ct_eq(token, admin.as_bytes()) {
                    return Ok(Principal::Operator);
                }
            }
            if let Some((appid, secret)) = c.target {
                if !secret.is_empty() && ct_eq(token, secret.as_bytes()) {
                    return Ok(Principal::App(appid.to_string()));
                }
            }
            Err(Denied::Unauthorized(
                "the bearer token is not valid for this request",
            ))
        }
        None if c.admin_token.is_some() => Err(Denied::Unauthorized(
            "registration needs Authorization: Bearer <admin_token>",
        )),
        None if c.peer_is_loopback => Ok(Principal::Operator),
        None => Err(Denied::Forbidden(
            "no admin_token is configured: only loopback peers may register",
        )),
    }
}

/// The token of `Bearer <token>` (scheme case-insensitive), or `None`.
pub fn bearer(value: &[u8]) -> Option<&[u8]> {
    let value = trim(value);
    if value.len() < 7
        || !value[..6].eq_ignore_ascii_case(b"bearer")
        || !matches!(value[6], b' ' | b'\t')
    {
        return None;
    }
    let token = trim(&value[7..]);
    (!token.is_empty()).then_some(token)
}

fn trim(mut v: &[u8]) -> &[u8] {
    while let [b' ' | b'\t', rest @ ..] = v {
        v = rest;
    }
    while let [rest @ .., b' ' | b'\t'] = v {
        v = rest;
    }
    v
}

/// Whether a presented credential equals the expected one, in constant time. Comparing the raw
/// slices would return at once when their lengths differ (which `subtle` does for slices), and
/// would leak the secret's length; the digests always have the same length.
pub fn ct_eq(presented: &[u8], expected: &[u8]) -> bool {
    compare_digests(presented, expected, |a, b| a.ct_eq(b))
}

type Digest32 = [u8; 32];

/// Hashes both sides and lets `cmp` compare the fixed-length digests (split out so a test can
/// watch what is compared).
fn compare_digests(
    presented: &[u8],
    expected: &[u8],
    cmp: impl FnOnce(&Digest32, &Digest32) -> Choice,
) -> bool {
    let a: Digest32 = Sha256::digest(presented).into();
    let b: Digest32 = Sha256::digest(expected).into();
    bool::from(cmp(&a, &b))
}

#[cfg(test)]
mod ct_tests {
    use super::*;

    #[test]
    fn equal_and_unequal_credentials() {
        assert!(ct_eq(b"admin-token", b"admin-token"));
        assert!(ct_eq(b"", b""));
        for (a, b) in [
            (&b"admin-token"[..], &b"admin-tokeN"[..]),
            (b"admin-token", b"admin-toke"),
            (b"admin-token", b"admin-token "),
            (b"", b"admin-token"),
            (b"whsec_a", b"whsec_b"),
        ] {
            assert!(!ct_eq(a, b), "{a:?} vs {b:?}");
            assert!(!ct_eq(b, a), "{b:?} vs {a:?}");
        }
    }

    /// Inputs of any lengths reach the comparison, always as two 32-byte values: there is no
    /// early exit on a length mismatch before it.
    #[test]
    fn does_not_short_circuit_on_length() {
        let secret = b"whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
        for presented in [
            &b""[..],
            b"w",
            b"whsec_",
            &secret[..secret.len() - 1],
            &secret[..],
            b"whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSwXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXX",
        ] {
            let mut compared = None;
            let equal = compare_digests(presented, secret, |a, b| {
                compared = Some((a.len(), b.len()));
                a.ct_eq(b)
            });
            assert_eq!(
                compared,
                Some((32, 32)),
                "a {}-byte guess was not compared as a digest",
                presented.len()
            );
            assert_eq!(equal, presented == &secret[..]);
        }
    }
}
