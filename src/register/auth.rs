//! Who may use the registration API. Pure: the handler passes in the request's credentials, the
//! configured admin token, whether the peer is loopback, and the target app's current secret.
//!
//! 1. Credentials that are presented are always checked, even from loopback: the admin token
//!    gives full control; the target app's current secret gives control of that app only.
//!    Anything else is 401.
//! 2. Without credentials: 401 when an admin token is configured; otherwise loopback peers have
//!    full control (the operator on the machine) and other peers get 403.
//!
//! Secrets and the admin token are compared in constant time.

use subtle::ConstantTimeEq;

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

fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    bool::from(a.ct_eq(b))
}
