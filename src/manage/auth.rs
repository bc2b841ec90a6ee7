//! Who may manage an app's files and notifications: the holder of the app's current
//! `whsec_` secret, or the operator's `admin_token`, as `Authorization: Bearer <token>`.
//!
//! Unlike registration, a missing token is never let through because the peer is loopback:
//! these calls delete files and drop notifications, and the contract answers 401 to missing
//! credentials. An app that does not exist answers 401 too (not 404), so a caller without
//! credentials cannot probe which appids are registered.

use std::fmt;

use crate::register::auth::{authorize, Credentials, Denied, Principal};
use crate::registry::{AppRecord, Registry, RegistryError};
use crate::server::Exchange;

/// Why a management call was refused before it ran.
#[derive(Debug)]
pub enum ManageError {
    /// 401 `unauthorized`: credentials missing, malformed or wrong (or the app is unknown).
    Unauthorized(&'static str),
    /// The registry could not be read.
    Registry(RegistryError),
}

impl fmt::Display for ManageError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ManageError::Unauthorized(why) => f.write_str(why),
            ManageError::Registry(e) => write!(f, "registry: {e}"),
        }
    }
}

impl std::error::Error for ManageError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            ManageError::Registry(e) => Some(e),
            ManageError::Unauthorized(_) => None,
        }
    }
}

impl From<RegistryError> for ManageError {
    fn from(e: RegistryError) -> Self {
        ManageError::Registry(e)
    }
}

const MISSING: &str = "management calls need Authorization: Bearer <the app's secret or the \
                       admin token>";

/// The app's record, when the request's bearer token is the app's current secret or the admin
/// token.
pub fn authenticate(
    ex: &Exchange<'_>,
    registry: &Registry,
    appid: &str,
) -> Result<(Principal, AppRecord), ManageError> {
    let authorization: Vec<&[u8]> = ex.head().values("authorization").collect();
    check(
        &authorization,
        ex.config().admin_token.as_deref(),
        registry.get(appid)?,
    )
}

/// [`authenticate`] without the exchange: the request's `Authorization` values, the configured
/// admin token and the app's record (when it exists).
pub fn check(
    authorization: &[&[u8]],
    admin_token: Option<&str>,
    record: Option<AppRecord>,
) -> Result<(Principal, AppRecord), ManageError> {
    if authorization.is_empty() {
        return Err(ManageError::Unauthorized(MISSING));
    }
    let creds = Credentials {
        authorization,
        admin_token,
        // Never a free pass here (see the module comment).
        peer_is_loopback: false,
        target: record
            .as_ref()
            .map(|r| (r.appid.as_str(), r.secret.as_str())),
    };
    let principal = match authorize(&creds) {
        Ok(p) => p,
        Err(Denied::Unauthorized(why) | Denied::Forbidden(why)) => {
            return Err(ManageError::Unauthorized(why))
        }
    };
    match record {
        Some(r) => Ok((principal, r)),
        None => Err(ManageError::Unauthorized(
            "the bearer token is not valid for this request",
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registry::{AppRecord, Registration};

    fn record() -> AppRecord {
        let reg = Registration {
            appid: "app1".into(),
            ..Default::default()
        };
        AppRecord::create(&reg, 0, "whsec_abc".into())
    }

    #[test]
    fn the_apps_secret_or_the_admin_token_and_nothing_else() {
        let ok = |auth: &[u8], admin| check(&[auth], admin, Some(record())).map(|(p, _)| p);
        assert_eq!(
            ok(b"Bearer whsec_abc", None).unwrap(),
            Principal::App("app1".into())
        );
        assert_eq!(ok(b"Bearer t0k", Some("t0k")).unwrap(), Principal::Operator);
        assert!(ok(b"Bearer whsec_abd", Some("t0k")).is_err());
        assert!(ok(b"Basic whsec_abc", None).is_err());
        assert!(check(&[], None, Some(record())).is_err());
        // An unknown app is 401 even for the admin token's holder guessing: nothing to manage.
        assert!(check(&[b"Bearer t0k"], Some("t0k"), None).is_err());
    }
}
