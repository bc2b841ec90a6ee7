//! The receive conditions of step 202/304, checked on the head alone, in the contract's order.
//! A failure is a [`Refusal`] whose answer is final: the body is never read.

use crate::callback::{CallbackPolicy, PolicyError};
use crate::config::{Config, ExpectPolicy};
use crate::http::{Expectation, RequestHead};
use crate::registry::{valid_appid, AppRecord};
use crate::storage::path::PathError;
use crate::storage::{mime, path};

use super::context::{self, Protocol};
use super::digest::{hex, BadDigest, Mismatch};
use super::model::{CallbackTarget, UploadRequest};

/// A receive condition that failed. Its status and code are chosen with every other error's,
/// in `crate::error::status`; its `Display` is the client's message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// An `Expect` other than `100-continue` (417).
    ExpectationFailed,
    /// No `Expect: 100-continue` while `expect = "require"` (400).
    ExpectRequired,
    /// The appid header is missing, repeated, not the path's first segment, or invalid (400).
    BadAppid(&'static str),
    /// The path is no safe file address (400).
    BadPath(PathError),
    /// No registration and no allowed carried callback, or no pre-callback at all (404).
    UnknownAppid(&'static str),
    /// A client-carried callback URL the policy does not allow (403).
    CallbackNotAllowed(PolicyError),
    /// The declared size is over the app's or the node's limit (413).
    TooLarge { size: u64, limit: u64 },
    /// A digest header that does not parse (400).
    BadDigest(BadDigest),
    /// The body's digest differs from a claim (400, after the body).
    DigestMismatch(Mismatch),
    /// A signed upload token that is malformed, forged, expired or does not cover this upload
    /// (403 `bad_token`).
    BadToken(String),
    /// A `Content-Range` on an upload: partial PUTs are not supported (400).
    PartialPut,
    /// One of the app's quotas (403 `quota_exceeded`, 429 `rate_limited` with `Retry-After`).
    Quota(crate::quota::Denied),
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Refusal::ExpectationFailed => f.write_str("only Expect: 100-continue is supported"),
            Refusal::ExpectRequired => f.write_str(
                "uploads must send Expect: 100-continue; browsers never do: upload to \
                 /upload/form/{appid}, or register the app with expect=optional",
            ),
            Refusal::BadAppid(why) | Refusal::UnknownAppid(why) => f.write_str(why),
            Refusal::BadPath(e) => write!(f, "{e}"),
            Refusal::CallbackNotAllowed(e) => write!(f, "{e}"),
            Refusal::BadToken(why) => write!(f, "upload token: {why}"),
            Refusal::Quota(d) => write!(f, "{d}"),
            Refusal::PartialPut => f.write_str(
                "Content-Range (a partial PUT) is not supported; send the whole file, or use \
                 a resumable upload (tus at /upload/tus/{appid}/, or Upload-Complete) to send \
                 it in pieces",
            ),
            Refusal::TooLarge { size, limit } => {
                write!(f, "the body is {size} bytes; the limit is {limit}")
            }
            Refusal::BadDigest(e) => write!(f, "malformed {} header: {}", e.header, e.why),
            Refusal::DigestMismatch(m) => write!(
                f,
                "the body's SHA-256 is {}, the {} header says {}",
                hex(&m.actual),
                m.header,
                hex(&m.claimed)
            ),
        }
    }
}

impl std::error::Error for Refusal {}

impl From<BadDigest> for Refusal {
    fn from(e: BadDigest) -> Self {
        Refusal::BadDigest(e)
    }
}

impl From<Mismatch> for Refusal {
    fn from(m: Mismatch) -> Self {
        Refusal::DigestMismatch(m)
    }
}

/// The largest body accepted: the smaller of the app's and the node's limit.
pub fn limit_of(app: Option<&AppRecord>, config: &Config) -> u64 {
    app.and_then(|a| a.max_body_bytes)
        .map_or(config.max_body_bytes, |l| l.min(config.max_body_bytes))
}

/// A registered callback URL. It was validated at registration; one that no longer parses is
/// skipped.
fn registered_target(url: Option<&String>) -> Option<CallbackTarget> {
    url.and_then(|u| url::Url::parse(u).ok())
        .map(|url| CallbackTarget { url, guard: None })
}

/// The app's registered pre- and post-callback.
pub fn registered_callbacks(app: &AppRecord) -> (Option<CallbackTarget>, Option<CallbackTarget>) {
    (
        registered_target(app.callback_url_pre.as_ref()),
        registered_target(app.callback_url_post.as_ref()),
    )
}

/// Checks everything that needs no I/O but the registry lookup the caller already made.
/// `app` is the registered record of the path's appid, if any.
// Pure and called from two places (the raw flow, its tests): each argument is one input the
// contract's order of checks reads.
#[allow(clippy::too_many_arguments)]
pub fn check(
    head: &RequestHead,
    config: &Config,
    policy: &CallbackPolicy,
    app: Option<&AppRecord>,
    upload_id: String,
    client_ip: String,
    protocol: Protocol,
    signed: bool,
) -> Result<UploadRequest, Refusal> {
    // A partial PUT (`Content-Range`) would be stored as if it were the whole file: RFC 9110
    // §14.5 asks a server that does not do partial PUTs to refuse it (resumable uploads are
    // the way to send a file in pieces).
    if head.value("content-range").is_some() {
        return Err(Refusal::PartialPut);
    }

    // Expect policy: the patent's client always asks before sending the body; an app may
    // register `expect = optional` for clients that never do.
    let expect = app.and_then(|a| a.expect).unwrap_or(config.expect);
    match head.info().expect {
        Expectation::Unsupported => return Err(Refusal::ExpectationFailed),
        Expectation::None if expect == ExpectPolicy::Require && protocol == Protocol::Raw => {
            return Err(Refusal::ExpectRequired)
        }
        _ => {}
    }

    // appid: required once, equal to the first path segment (claims 3 and 13).
    let mut appids = head.values("appid");
    let appid = match (appids.next(), appids.next()) {
        (Some(v), None) => v,
        (None, _) => return Err(Refusal::BadAppid("the appid header is required")),
        (Some(_), Some(_)) => return Err(Refusal::BadAppid("the appid header is repeated")),
    };
    if appid != path::first_segment(head.path_only()) {
        return Err(Refusal::BadAppid(
            "the appid header must equal the first path segment",
        ));
    }
    let appid_str = std::str::from_utf8(appid).unwrap_or("");
    if !valid_appid(appid_str) {
        return Err(Refusal::BadAppid("appid must be 1-64 of A-Z a-z 0-9 _ -"));
    }

    let target = path::parse(head.path_only()).map_err(Refusal::BadPath)?;

    // Callbacks: client-carried when present and allowed, else registered.
    let app_hosts: &[String] = app.map_or(&[], |a| &a.callback_hosts);
    let carried = |name: &str| -> Result<Option<CallbackTarget>, PolicyError> {
        let Some(raw) = head.value(name) else {
            return Ok(None);
        };
        let url = std::str::from_utf8(raw).map_err(|_| PolicyError::Malformed {
            detail: "not UTF-8".into(),
        })?;
        let checked = policy.check(url, app_hosts)?;
        let (url, guard) = checked.into_parts();
        Ok(Some(CallbackTarget {
            url,
            guard: Some(guard),
        }))
    };
    let carried_pre = carried("callback_url_pre");
    let carried_post = carried("callback_url_post");
    let registered = registered_target;
    let pre = match (&carried_pre, app) {
        (Ok(Some(t)), _) => Some(t.clone()),
        (Ok(None), Some(a)) => registered(a.callback_url_pre.as_ref()),
        _ => None,
    };
    let carried_ok = carried_pre.as_ref().is_ok_and(|c| c.is_some());
    if app.is_none() && !carried_ok {
        return Err(Refusal::UnknownAppid(
            "the appid is not registered and the request carries no allowed callback",
        ));
    }
    for c in [&carried_pre, &carried_post] {
        if let Err(e) = c {
            return Err(Refusal::CallbackNotAllowed(e.clone()));
        }
    }
    if pre.is_none() && !signed {
        return Err(Refusal::UnknownAppid(
            "no pre-upload callback is registered for this appid",
        ));
    }
    let post = match carried_post {
        Ok(Some(t)) => Some(t),
        _ => app.and_then(|a| registered(a.callback_url_post.as_ref())),
    };

    let limit = limit_of(app, config);
    let size = head.info().content_length();
    if let Some(n) = size {
        if n > limit {
            return Err(Refusal::TooLarge { size: n, limit });
        }
    }

    // A declared type that could not be stored (not a media type, too long) is replaced by the
    // extension's here, so the callbacks name the type that will be stored and served.
    let content_type = head
        .value("content-type")
        .and_then(|v| std::str::from_utf8(v).ok())
        .and_then(mime::declared)
        .unwrap_or_else(|| mime::content_type(target.filename()))
        .to_owned();
    Ok(UploadRequest {
        secrets: app
            .map(|a| a.secrets_for_signing(crate::clock::unix_secs()))
            .unwrap_or_default(),
        target,
        size,
        limit,
        content_type,
        upload_id,
        client_ip,
        pre,
        post,
        request: context::request_info(
            head,
            app.map_or(&[][..], |a| a.forwarded_headers()),
            protocol,
        ),
        metadata: None,
        append: None,
        valid_for_s: None,
        quota: None,
    })
}
