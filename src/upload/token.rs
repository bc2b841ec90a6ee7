//! Signed upload tokens at the edge (contract "Signed upload token"): an app lets a browser
//! upload without a pre-callback round trip, like an S3 POST policy. The token's format and
//! its checks live in `upgate_contract::token` (shared with `upgate sign-upload` and the demo
//! app); this file finds the token in a request and applies what it allows to the upload.

use upgate_contract::token::{verify_upload, UploadPolicy};

use crate::http::RequestHead;
use crate::registry::AppRecord;

use super::model::UploadRequest;
use super::Refusal;

/// A raw upload's token: `Authorization: Upload-Token <token>`, or `?token=` in the query when
/// its value has the token's shape (`<policy>.<signature>`): a `?token=abc` of the app's own
/// (the example of contract "Who is uploading") is left to the app, in `request.query`.
pub fn from_head(head: &RequestHead) -> Option<String> {
    let path = head.path();
    if let Some(q) = memchr::memchr(b'?', path) {
        let found = url::form_urlencoded::parse(&path[q + 1..])
            .find(|(k, v)| k == "token" && v.contains('.'))
            .map(|(_, v)| v.into_owned());
        if found.is_some() {
            return found;
        }
    }
    head.values("authorization").find_map(|v| {
        let v = std::str::from_utf8(v).ok()?.trim();
        let (scheme, token) = v.split_once(' ')?;
        scheme
            .eq_ignore_ascii_case("upload-token")
            .then(|| token.trim().to_owned())
    })
}

/// Verifies `token` with the app's secrets (the current one and, during a rotation, the
/// previous): a forged, malformed or expired token is 403 `bad_token`.
pub fn verify(token: &str, app: Option<&AppRecord>) -> Result<UploadPolicy, Refusal> {
    let app = app.ok_or_else(|| Refusal::BadToken("the appid is not registered".into()))?;
    let now = crate::clock::unix_secs();
    let policy = verify_upload(token, &app.secrets_for_signing(now), now)
        .map_err(|e| Refusal::BadToken(e.to_string()))?;
    if policy.appid != app.appid {
        return Err(Refusal::BadToken("the token is for another appid".into()));
    }
    Ok(policy)
}

/// Applies a verified policy to the upload: its key or prefix, its declared size and type
/// (403 `bad_token` when they do not fit), and its `max_bytes` as the upload's limit.
pub fn apply(policy: &UploadPolicy, req: &mut UploadRequest) -> Result<(), Refusal> {
    policy
        .allows(
            &req.target.appid,
            &req.target.rel,
            req.size,
            &req.content_type,
        )
        .map_err(|e| Refusal::BadToken(e.to_string()))?;
    if let Some(max) = policy.max_bytes {
        req.limit = req.limit.min(max);
    }
    Ok(())
}
