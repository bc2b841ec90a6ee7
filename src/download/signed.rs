//! Signed download URLs at the edge (contract "Signed download URLs"): an app registered with
//! `downloads = "signed"` has its files served only to a URL it signed, until the URL's
//! deadline. The format and the MAC live in `upgate_contract::url_sig` (shared with
//! `upgate sign-url`); this file finds the parameters in a request and applies the app's
//! choice. Kept apart from serving so that the decision "may this request read the file?" is
//! made in one place, before any file is opened.

use upgate_contract::url_sig::{self, UrlSigError, EXPIRES, SIGNATURE};

use crate::http::RequestHead;
use crate::registry::{AppRecord, Downloads};

/// Whether `head` may download from the app `record` describes (none: not registered, so
/// public) at `now` (unix seconds). A public app ignores `expires` and `signature`; a signed
/// one needs them to match its current or, during a rotation, its previous secret. The path
/// checked is the request path as sent (percent-encoded, without the query).
pub fn check(record: Option<&AppRecord>, head: &RequestHead, now: u64) -> Result<(), UrlSigError> {
    let Some(record) = record.filter(|r| r.downloads == Downloads::Signed) else {
        return Ok(());
    };
    let (mut expires, mut signature) = (None, None);
    if let Some(q) = memchr::memchr(b'?', head.path()) {
        for (k, v) in url::form_urlencoded::parse(&head.path()[q + 1..]) {
            match &*k {
                EXPIRES if expires.is_none() => expires = Some(v.into_owned()),
                SIGNATURE if signature.is_none() => signature = Some(v.into_owned()),
                _ => {}
            }
        }
    }
    url_sig::verify_path(
        &record.secrets_for_signing(now),
        head.path_only(),
        expires.as_deref(),
        signature.as_deref(),
        now,
    )
}
