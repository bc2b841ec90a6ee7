//! The app's view of its undelivered notifications (contract "Files, downloads and
//! notifications for the app"):
//!
//! | request | answer |
//! |---|---|
//! | `GET /upload/outbox/{appid}` | 200 `{"pending":[…],"dead":[…]}`, at most [`LIST_LIMIT`] of each |
//! | `POST /upload/outbox/{appid}/{event_id}/retry` | 202; attempted now (a dead one is pending again) |
//! | `DELETE /upload/outbox/{appid}/{event_id}` | 204; dropped for good |
//!
//! Every call authenticates first ([`super::authenticate`]: the app's secret or the admin
//! token; 401 otherwise, whatever the rest of the path), and only sees that app's entries: an
//! event id of another app answers 404 like one that does not exist. Writes reach the disk
//! (the outbox log's group commit) before the answer.

use std::fmt;

use serde::Serialize;

use super::{authenticate, ManageError};
use crate::app::App;
use crate::error::RouteError;
use crate::http::{Method, Response};
use crate::metrics::{self, OutboxAction};
use crate::register::auth::Principal;
use crate::registry::{OutboxEdit, OutboxEntry, OutboxError, OutboxJournal, RegistryError};
use crate::server::Exchange;

/// The path every call of this API starts with.
pub const PREFIX: &str = "/upload/outbox/";
/// Entries listed per list (pending, dead): the earliest due pending ones, the oldest dead
/// ones. An app with more sees the rest as those are delivered or dropped.
pub const LIST_LIMIT: usize = 1000;

/// Why a call about the outbox was refused (statuses in `crate::error::status`).
#[derive(Debug)]
pub enum OutboxApiError {
    /// No such route under the prefix, or not for this method.
    Route(RouteError),
    /// Credentials missing or wrong, or the registry unreadable.
    Manage(ManageError),
    /// No entry with this event id for this app (404 `not_found`).
    NoSuchEntry,
    /// The outbox could not be read or written.
    Outbox(RegistryError),
}

impl fmt::Display for OutboxApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            OutboxApiError::Route(e) => write!(f, "{e}"),
            OutboxApiError::Manage(e) => write!(f, "{e}"),
            OutboxApiError::NoSuchEntry => {
                f.write_str("no notification with this event id is queued for this app")
            }
            OutboxApiError::Outbox(_) => f.write_str("outbox"),
        }
    }
}

impl std::error::Error for OutboxApiError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            OutboxApiError::Manage(e) => Some(e),
            OutboxApiError::Outbox(e) => Some(e),
            _ => None,
        }
    }
}

impl From<ManageError> for OutboxApiError {
    fn from(e: ManageError) -> Self {
        OutboxApiError::Manage(e)
    }
}

impl From<OutboxError> for OutboxApiError {
    fn from(e: OutboxError) -> Self {
        OutboxApiError::Outbox(e.into())
    }
}

/// The three calls, after the path's shape.
enum Call<'a> {
    List(&'a str),
    Retry(&'a str, &'a str),
    Drop(&'a str, &'a str),
}

/// Which call `path` and `method` name; `None` when no call of this API has that path.
fn call(path: &str, method: Method) -> Result<Call<'_>, RouteError> {
    let rest = path.strip_prefix(PREFIX).ok_or(RouteError::NotFound)?;
    let parts: Vec<&str> = rest.split('/').collect();
    let not_allowed = |allow| RouteError::MethodNotAllowed {
        allow,
        hint: "method not allowed here",
    };
    // Every segment named: no empty appid or event id.
    if parts.iter().any(|p| p.is_empty()) {
        return Err(RouteError::NotFound);
    }
    match (parts.as_slice(), method) {
        ([appid], Method::Get | Method::Head) => Ok(Call::List(appid)),
        ([_], _) => Err(not_allowed("GET, HEAD")),
        ([appid, id, "retry"], Method::Post) => Ok(Call::Retry(appid, id)),
        ([_, _, "retry"], _) => Err(not_allowed("POST")),
        ([appid, id], Method::Delete) => Ok(Call::Drop(appid, id)),
        ([_, _], _) => Err(not_allowed("DELETE")),
        _ => Err(RouteError::NotFound),
    }
}

/// Answers a request under [`PREFIX`].
pub async fn handle(ex: &mut Exchange<'_>, app: &App) -> Response {
    let path = String::from_utf8_lossy(ex.head().path_only()).into_owned();
    let method = ex.head().method();
    match answer(ex, app, &path, method).await {
        Ok(resp) => resp,
        Err(e) => crate::error::respond(ex.access(), &e),
    }
}

async fn answer(
    ex: &mut Exchange<'_>,
    app: &App,
    path: &str,
    method: Method,
) -> Result<Response, OutboxApiError> {
    let call = call(path, method).map_err(OutboxApiError::Route)?;
    let appid = match &call {
        Call::List(a) | Call::Retry(a, _) | Call::Drop(a, _) => *a,
    };
    ex.access().appid = Some(appid.to_owned());
    let (who, _) = authenticate(ex, &app.registry, appid)?;
    let outbox = app.registry.outbox();
    match call {
        Call::List(appid) => {
            let entries = outbox.of_app(appid, LIST_LIMIT)?;
            let view = |e: &OutboxEntry| Listed::of(app, e);
            let body = serde_json::json!({
                "pending": entries.pending.iter().map(view).collect::<Vec<_>>(),
                "dead": entries.dead.iter().map(view).collect::<Vec<_>>(),
            });
            Ok(Response::json(200, body.to_string()))
        }
        Call::Retry(appid, event_id) => {
            let entry = owned(app, appid, event_id)?;
            outbox.update(event_id, crate::clock::unix_ms(), OutboxEdit::Revived)?;
            outbox.flush_async().await?;
            app.outbox_wake.wake();
            metrics::outbox_api(OutboxAction::Retry);
            tracing::info!(
                event_id,
                appid,
                by = %by(&who),
                was_dead = entry.is_dead(),
                "post-callback retry asked; attempting now"
            );
            Ok(Response::json(
                202,
                r#"{"success":"true","status":"retrying"}"#,
            ))
        }
        Call::Drop(appid, event_id) => {
            let entry = owned(app, appid, event_id)?;
            if !outbox.remove(event_id)? {
                return Err(OutboxApiError::NoSuchEntry);
            }
            outbox.flush_async().await?;
            metrics::outbox_api(OutboxAction::Drop);
            tracing::info!(
                event_id,
                appid,
                by = %by(&who),
                was_dead = entry.is_dead(),
                attempts = entry.attempts,
                last_error = entry.last_error.as_deref(),
                "post-callback dropped through the management API"
            );
            Ok(Response::new(204))
        }
    }
}

/// The entry `event_id` when it is `appid`'s; [`OutboxApiError::NoSuchEntry`] otherwise (an
/// entry of another app is not revealed).
fn owned(app: &App, appid: &str, event_id: &str) -> Result<OutboxEntry, OutboxApiError> {
    match app.registry.outbox().get(event_id)? {
        Some(e) if e.appid == appid => Ok(e),
        _ => Err(OutboxApiError::NoSuchEntry),
    }
}

/// Who made a call, for the log.
fn by(who: &Principal) -> String {
    match who {
        Principal::Operator => "operator (admin token)".into(),
        Principal::App(appid) => format!("app {appid} (its secret)"),
    }
}

/// One entry as listed. Times are unix seconds.
#[derive(Serialize)]
struct Listed {
    event_id: String,
    upload_id: Option<String>,
    /// Where the next attempt goes ([`crate::notify::deliver::target`]); `null` while the app
    /// is deregistered or names no post-callback (the entry waits; `last_error` says why).
    url: Option<String>,
    attempts: u32,
    last_error: Option<String>,
    /// `null` for a dead entry (not attempted until retried).
    next_attempt: Option<u64>,
    created: u64,
}

impl Listed {
    fn of(app: &App, e: &OutboxEntry) -> Listed {
        Listed {
            event_id: e.event_id.clone(),
            upload_id: e.upload_id(),
            url: crate::notify::deliver::target(app, e).ok(),
            attempts: e.attempts,
            last_error: e.last_error.clone(),
            next_attempt: (!e.is_dead()).then_some(e.next_attempt_at_ms / 1000),
            created: e.created_at_ms / 1000,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shape(path: &str, method: Method) -> Result<String, u16> {
        use crate::error::Fault;
        match call(path, method) {
            Ok(Call::List(a)) => Ok(format!("list {a}")),
            Ok(Call::Retry(a, e)) => Ok(format!("retry {a} {e}")),
            Ok(Call::Drop(a, e)) => Ok(format!("drop {a} {e}")),
            Err(e) => Err(e.status()),
        }
    }

    #[test]
    fn paths_and_methods_name_one_call_or_a_route_error() {
        assert_eq!(
            shape("/upload/outbox/app1", Method::Get).unwrap(),
            "list app1"
        );
        assert_eq!(
            shape("/upload/outbox/app1", Method::Head).unwrap(),
            "list app1"
        );
        assert_eq!(
            shape("/upload/outbox/app1/evt_1/retry", Method::Post).unwrap(),
            "retry app1 evt_1"
        );
        assert_eq!(
            shape("/upload/outbox/app1/evt_1", Method::Delete).unwrap(),
            "drop app1 evt_1"
        );
        assert_eq!(shape("/upload/outbox/app1", Method::Post), Err(405));
        assert_eq!(shape("/upload/outbox/app1/evt_1", Method::Get), Err(405));
        assert_eq!(
            shape("/upload/outbox/app1/evt_1/retry", Method::Get),
            Err(405)
        );
        for bad in [
            "/upload/outbox/",
            "/upload/outbox//evt_1",
            "/upload/outbox/app1/",
            "/upload/outbox/app1/evt_1/again",
            "/upload/outbox/app1/evt_1/retry/x",
        ] {
            assert_eq!(shape(bad, Method::Delete), Err(404), "{bad}");
        }
    }
}
