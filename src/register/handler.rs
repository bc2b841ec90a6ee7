//! The registration API (contract "Registration API", patent steps 301-302):
//!
//! | request | answer |
//! |---|---|
//! | `POST /upload/register` (form or JSON body) | 200 `{"appid","success":"true"[,"secret"]}` |
//! | `POST /upload/register/{appid}` | the same, the appid taken from the path |
//! | `GET`/`HEAD /upload/register/{appid}` | 200 the record without its secrets |
//! | `DELETE /upload/register/{appid}` | 200 `{"appid","success":"true"}`; the app's files go too |
//!
//! Order of checks: route and method, appid syntax, authorization (see [`super::auth`]), content
//! type, declared size; only then is the body read (and `100 Continue` sent). Every write is
//! flushed to disk before the answer.

use serde::Serialize;

use super::auth::{self, Credentials, Denied, Principal};
use super::request::{self, BodyKind};
use crate::error::RouteError;
use crate::http::{Method, RequestHead, Response};
use crate::registry::{valid_appid, AppRecord, Change, Registered, Registry, RegistryError};
use crate::server::{BodyError, Exchange};
use crate::storage::{ObjectStore, Store};

/// The path every route of this API starts with.
pub const PREFIX: &str = "/upload/register";
/// Largest registration body; beyond it 413 `body_too_large`.
pub const MAX_BODY: usize = 64 * 1024;

/// Why a registration request was refused (statuses in `crate::error::status`).
#[derive(Debug)]
pub enum RegisterError {
    /// No such route under the prefix, or not for this method.
    Route(RouteError),
    /// The appid in the path or header is invalid, repeated or contradicts the other.
    BadAppid(&'static str),
    /// The body is not a valid registration.
    BadRequest(request::RequestError),
    Unauthorized(&'static str),
    Forbidden(&'static str),
    /// An app named loopback, link-local or private callback addresses.
    CallbackNotAllowed,
    UnsupportedMediaType,
    /// Over [`MAX_BODY`].
    TooLarge,
    Body(BodyError),
    Registry(RegistryError),
    /// Deleting the app's files failed (the app stays registered).
    Files(std::io::Error),
}

impl std::fmt::Display for RegisterError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RegisterError::Route(e) => write!(f, "{e}"),
            RegisterError::BadAppid(why)
            | RegisterError::Unauthorized(why)
            | RegisterError::Forbidden(why) => f.write_str(why),
            RegisterError::BadRequest(e) => f.write_str(&e.message()),
            RegisterError::CallbackNotAllowed => f.write_str(
                "an app may not name loopback, link-local or private addresses; ask the operator",
            ),
            RegisterError::UnsupportedMediaType => {
                f.write_str("send application/x-www-form-urlencoded or application/json")
            }
            RegisterError::TooLarge => f.write_str("a registration body is at most 64 KiB"),
            RegisterError::Body(e) => write!(f, "{e}"),
            RegisterError::Registry(e) => write!(f, "{e}"),
            RegisterError::Files(e) => write!(f, "removing the app's files: {e}"),
        }
    }
}

impl std::error::Error for RegisterError {}

impl From<RegistryError> for RegisterError {
    fn from(e: RegistryError) -> Self {
        RegisterError::Registry(e)
    }
}

impl From<BodyError> for RegisterError {
    fn from(e: BodyError) -> Self {
        RegisterError::Body(e)
    }
}

/// Serves one request whose path starts with [`PREFIX`], for a registry without files (an
/// app's deletion removes its registration only).
pub async fn handle(ex: &mut Exchange<'_>, registry: &Registry) -> Response {
    serve(ex, registry, None).await
}

/// The app's files, where the node keeps them: its store, the quota accounting of their
/// bytes, and the origin all nodes share (`store = "s3"`).
pub type Files<'a> = (
    &'a Store,
    &'a crate::quota::Quotas,
    Option<&'a crate::origin::Origin>,
);

/// [`handle`] for the node: deleting an app removes its files from `store` too (and their
/// bytes from its quota usage).
pub async fn handle_with_files(
    ex: &mut Exchange<'_>,
    registry: &Registry,
    files: Files<'_>,
) -> Response {
    serve(ex, registry, Some(files)).await
}

async fn serve(ex: &mut Exchange<'_>, registry: &Registry, files: Option<Files<'_>>) -> Response {
    let answered = match Route::of(ex.head()) {
        Ok(Route::Register(path_appid)) => register(ex, registry, path_appid).await,
        Ok(Route::Show(appid)) => show(ex, registry, &appid),
        Ok(Route::Delete(appid)) => delete(ex, registry, files, &appid).await,
        Err(e) => Err(e),
    };
    answered.unwrap_or_else(|e| crate::error::respond(ex.access(), &e))
}

#[derive(Debug, PartialEq, Eq)]
enum Route {
    Register(Option<String>),
    Show(String),
    Delete(String),
}

impl Route {
    fn of(head: &RequestHead) -> Result<Route, RegisterError> {
        let not_found = || RegisterError::Route(RouteError::NotFound);
        let rest = head
            .path_only()
            .strip_prefix(PREFIX.as_bytes())
            .ok_or_else(not_found)?;
        let segment = match rest {
            [] => None,
            [b'/', seg @ ..] if !seg.is_empty() && !seg.contains(&b'/') => Some(seg),
            _ => return Err(not_found()),
        };
        let Some(segment) = segment else {
            return match head.method() {
                Method::Post => Ok(Route::Register(None)),
                _ => Err(RegisterError::Route(RouteError::MethodNotAllowed {
                    allow: "POST",
                    hint: "use POST",
                })),
            };
        };
        let appid = match std::str::from_utf8(segment) {
            Ok(a) if valid_appid(a) => a.to_string(),
            _ => return Err(RegistryError::BadAppid.into()),
        };
        match head.method() {
            Method::Get | Method::Head => Ok(Route::Show(appid)),
            Method::Delete => Ok(Route::Delete(appid)),
            Method::Post => Ok(Route::Register(Some(appid))),
            _ => Err(RegisterError::Route(RouteError::MethodNotAllowed {
                allow: "GET, HEAD, POST, DELETE",
                hint: "use GET, HEAD, POST or DELETE",
            })),
        }
    }
}

/// `POST /upload/register[/{appid}]`.
async fn register(
    ex: &mut Exchange<'_>,
    registry: &Registry,
    path_appid: Option<String>,
) -> Result<Response, RegisterError> {
    let head_appid = head_appid(ex.head(), path_appid)?;
    let (principal, current) = authenticate(ex, registry, head_appid.as_deref())?;
    let kind = ex
        .head()
        .value("content-type")
        .and_then(BodyKind::from_content_type)
        .ok_or(RegisterError::UnsupportedMediaType)?;
    if ex
        .head()
        .info()
        .content_length()
        .is_some_and(|n| n > MAX_BODY as u64)
    {
        return Err(RegisterError::TooLarge);
    }
    let body = read_body(ex).await?;
    let reg =
        request::parse(kind, &body, head_appid.as_deref()).map_err(RegisterError::BadRequest)?;
    let current = match current {
        Some(c) => Some(c),
        None => registry.get(&reg.appid)?,
    };
    names_callbacks(current.as_ref(), &reg)?;
    let result = match &principal {
        Principal::Operator => {
            registry
                .register_async(&reg, crate::clock::unix_secs())
                .await
        }
        Principal::App(appid) => {
            app_may_change(appid, current.as_ref(), &reg)?;
            registry.update_async(&reg, crate::clock::unix_secs()).await
        }
    };
    Ok(registered(&principal, &result?))
}

/// A registration must leave the app with some callback: a pre- or post-callback URL, or hosts
/// for the callbacks its clients carry (400 `missing_callbacks`).
fn names_callbacks(
    current: Option<&AppRecord>,
    reg: &crate::registry::Registration,
) -> Result<(), RegisterError> {
    let after = match current {
        Some(c) => c.updated(reg, 0, String::new),
        None => AppRecord::create(reg, 0, String::new()),
    };
    if after.has_callbacks() {
        Ok(())
    } else {
        Err(RegisterError::BadRequest(
            request::RequestError::MissingCallbacks,
        ))
    }
}

/// The appid the request names before its body: the path's, or an `appid` header (which lets an
/// app authenticate with its own secret on `POST /upload/register`).
fn head_appid(
    head: &RequestHead,
    path_appid: Option<String>,
) -> Result<Option<String>, RegisterError> {
    let mut values = head.values("appid");
    let header = match (values.next(), values.next()) {
        (None, _) => None,
        (Some(v), None) => match std::str::from_utf8(v) {
            Ok(a) if valid_appid(a.trim()) => Some(a.trim().to_string()),
            _ => return Err(RegistryError::BadAppid.into()),
        },
        (Some(_), Some(_)) => return Err(RegisterError::BadAppid("repeated appid header")),
    };
    match (path_appid, header) {
        (Some(p), Some(h)) if p != h => Err(RegisterError::BadAppid(
            "the appid header differs from the appid in the path",
        )),
        (Some(p), _) => Ok(Some(p)),
        (None, h) => Ok(h),
    }
}

/// What an app may not do to its own record: change its upload limit (the operator's call), or
/// point callbacks at loopback, link-local or private addresses.
fn app_may_change(
    appid: &str,
    current: Option<&AppRecord>,
    reg: &crate::registry::Registration,
) -> Result<(), RegisterError> {
    if reg.appid != appid {
        return Err(RegisterError::Unauthorized(
            "an app secret manages only its own record",
        ));
    }
    // The operator's limits on the app: an app may not lift its own.
    fn changes<T: PartialEq>(now: Option<T>, change: &Change<T>) -> bool {
        match change {
            Change::Keep => false,
            Change::Clear => now.is_some(),
            Change::Set(v) => now.as_ref() != Some(v),
        }
    }
    let limits = [
        (
            "max_body_bytes",
            changes(current.and_then(|r| r.max_body_bytes), &reg.max_body_bytes),
        ),
        (
            "quota_bytes",
            changes(current.and_then(|r| r.quota_bytes), &reg.quota_bytes),
        ),
        (
            "max_concurrent_uploads",
            changes(
                current.and_then(|r| r.max_concurrent_uploads),
                &reg.max_concurrent_uploads,
            ),
        ),
        (
            "rate_per_s",
            changes(current.and_then(|r| r.rate_per_s), &reg.rate_per_s),
        ),
    ];
    if let Some((field, _)) = limits.iter().find(|(_, changed)| *changed) {
        return Err(RegisterError::Forbidden(match *field {
            "max_body_bytes" => "max_body_bytes can be changed with the admin token only",
            "quota_bytes" => "quota_bytes can be changed with the admin token only",
            "max_concurrent_uploads" => {
                "max_concurrent_uploads can be changed with the admin token only"
            }
            _ => "rate_per_s can be changed with the admin token only",
        }));
    }
    let urls = [&reg.callback_url_pre, &reg.callback_url_post];
    let internal_url = urls
        .iter()
        .any(|c| matches!(c, Change::Set(u) if request::names_internal_host(u)));
    let internal_host = matches!(&reg.callback_hosts, Change::Set(hosts) if hosts.iter().any(|h| request::names_internal_host(h)));
    if internal_url || internal_host {
        return Err(RegisterError::CallbackNotAllowed);
    }
    Ok(())
}

#[derive(Serialize)]
struct RegisterAnswer<'a> {
    appid: &'a str,
    success: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    secret: Option<&'a str>,
}

fn registered(by: &Principal, done: &Registered) -> Response {
    tracing::info!(
        appid = %done.record.appid,
        created = done.created,
        new_secret = done.new_secret.is_some(),
        by = ?by,
        "application registered"
    );
    let answer = RegisterAnswer {
        appid: &done.record.appid,
        success: "true",
        secret: done.new_secret.as_deref(),
    };
    json(200, &answer)
}

/// `GET`/`HEAD /upload/register/{appid}`.
fn show(ex: &Exchange<'_>, registry: &Registry, appid: &str) -> Result<Response, RegisterError> {
    match authenticate(ex, registry, Some(appid))? {
        (_, Some(record)) => Ok(json(200, &AppView::of(&record))),
        (_, None) => Err(RegistryError::UnknownAppid.into()),
    }
}

/// A record as shown by `GET`: never its secrets.
#[derive(Serialize)]
struct AppView<'a> {
    appid: &'a str,
    callback_url_pre: Option<&'a str>,
    callback_url_post: Option<&'a str>,
    callback_hosts: &'a [String],
    max_body_bytes: Option<u64>,
    forward_headers: &'a [String],
    cors_origins: &'a [String],
    expect: Option<crate::config::ExpectPolicy>,
    inline_types: &'a [String],
    downloads: crate::registry::Downloads,
    quota_bytes: Option<u64>,
    max_concurrent_uploads: Option<u32>,
    rate_per_s: Option<f64>,
    created_at: u64,
    updated_at: u64,
}

impl<'a> AppView<'a> {
    fn of(r: &'a AppRecord) -> Self {
        AppView {
            appid: &r.appid,
            callback_url_pre: r.callback_url_pre.as_deref(),
            callback_url_post: r.callback_url_post.as_deref(),
            callback_hosts: &r.callback_hosts,
            max_body_bytes: r.max_body_bytes,
            forward_headers: r.forwarded_headers(),
            cors_origins: &r.cors_origins,
            expect: r.expect,
            inline_types: &r.inline_types,
            downloads: r.downloads,
            quota_bytes: r.quota_bytes,
            max_concurrent_uploads: r.max_concurrent_uploads,
            rate_per_s: r.rate_per_s,
            created_at: r.created_at,
            updated_at: r.updated_at,
        }
    }
}

/// `DELETE /upload/register/{appid}`.
///
/// The app's files go first, renamed aside at once (`ObjectStore::delete_app`: every download of
/// them is 404 from then on) and removed in the background; then its registration. A failure
/// in between leaves a registered app without files, and the same call, repeated, finishes it.
async fn delete(
    ex: &Exchange<'_>,
    registry: &Registry,
    files: Option<Files<'_>>,
    appid: &str,
) -> Result<Response, RegisterError> {
    let principal = match authenticate(ex, registry, Some(appid))? {
        (p, Some(_)) => p,
        (_, None) => return Err(RegistryError::UnknownAppid.into()),
    };
    if let Some((store, quotas, origin)) = files {
        let had = store
            .delete_app(appid)
            .await
            .map_err(RegisterError::Files)?;
        quotas.forget_stored(appid);
        tracing::info!(appid, had_files = had, "application's files removed");
        // The origin's copies go in the background (an app may have many); every other node
        // removes its cached ones when it sees the deletion in etcd.
        if let Some(origin) = origin {
            origin.delete_app(appid);
        }
    }
    match registry.delete_async(appid).await? {
        Some(_) => {
            tracing::info!(appid, by = ?principal, "application deleted");
            Ok(json(
                200,
                &RegisterAnswer {
                    appid,
                    success: "true",
                    secret: None,
                },
            ))
        }
        None => Err(RegistryError::UnknownAppid.into()),
    }
}

/// Who the caller is, and the target app's record when the request names a registered one.
fn authenticate(
    ex: &Exchange<'_>,
    registry: &Registry,
    target: Option<&str>,
) -> Result<(Principal, Option<AppRecord>), RegisterError> {
    let record = match target {
        Some(appid) => registry.get(appid)?,
        None => None,
    };
    let authorization: Vec<&[u8]> = ex.head().values("authorization").collect();
    let creds = Credentials {
        authorization: &authorization,
        admin_token: ex.config().admin_token.as_deref(),
        peer_is_loopback: ex.peer().ip().is_loopback(),
        target: record
            .as_ref()
            .map(|r| (r.appid.as_str(), r.secret.as_str())),
    };
    match auth::authorize(&creds) {
        Ok(p) => Ok((p, record)),
        Err(Denied::Unauthorized(why)) => Err(RegisterError::Unauthorized(why)),
        Err(Denied::Forbidden(why)) => Err(RegisterError::Forbidden(why)),
    }
}

/// Reads the whole body (at most [`MAX_BODY`]), sending `100 Continue` when it is awaited.
async fn read_body(ex: &mut Exchange<'_>) -> Result<Vec<u8>, RegisterError> {
    ex.accept_body().await?;
    let mut body = Vec::new();
    while let Some(chunk) = ex.next_chunk().await? {
        if body.len() + chunk.len() > MAX_BODY {
            return Err(RegisterError::TooLarge);
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

fn json(status: u16, value: &impl Serialize) -> Response {
    Response::json(
        status,
        serde_json::to_vec(value).expect("an answer serialises"),
    )
}
