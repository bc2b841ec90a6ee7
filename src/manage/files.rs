//! An app's files, managed by the app (contract "Files, downloads and notifications for the
//! app"): `GET /upload/files/{appid}` lists them a page at a time, `DELETE /{appid}/{path}`
//! removes one and tells the app through its post-callback. Both need the app's secret or the
//! admin token (`auth.rs`). Kept apart from downloads and uploads because these calls change or
//! reveal the app's whole store, and answer to the app, not to its users.
//!
//! A delete records its `deleted` notification in the outbox *before* it unlinks (held back
//! from the sender until the unlink is done), so a `204` always has its notification; an
//! unlink that finds nothing withdraws it and answers 404.

use std::fmt;
use std::io;

use serde::Serialize;

use super::auth::{authenticate, ManageError};
use crate::app::App;
use crate::callback::{SecondInfo, SuccessTrue};
use crate::download::Validators;
use crate::error::respond;
use crate::http::Response;
use crate::registry::{OutboxEntry, OutboxError, OutboxJournal};
use crate::server::Exchange;
use crate::storage::{mime, path, ListQuery, ObjectMeta, ObjectStore, Target};
use upgate_contract::Event;

/// The path of the listing: `/upload/files/{appid}`.
pub const PREFIX: &str = "/upload/files/";
/// Files per page unless `limit` says otherwise.
pub const DEFAULT_LIMIT: usize = 100;
/// The largest `limit`.
pub const MAX_LIMIT: usize = 1000;
/// How long a recorded `deleted` notification is held back from the sender while its unlink
/// runs; the unlink makes it due at once. Should the node stop in between, the notification
/// goes out this long after the restart.
const HOLD_MS: u64 = 30_000;

/// Why a management call about files failed (statuses in `crate::error::status`).
#[derive(Debug)]
pub enum FilesError {
    /// 401, or the registry failed.
    Manage(ManageError),
    /// 400 `bad_query`: a listing's `limit` is not 1..=1000, or a parameter is not UTF-8.
    BadQuery(&'static str),
    /// 400 `bad_appid` / `bad_path`: the address is not an app's file.
    BadPath(path::PathError),
    /// 404 `not_found`: no file at the address.
    NotFound,
    /// 500 `storage_failed`: the store could not list or delete.
    Storage(io::Error),
    /// 503 `outbox_unavailable`: the notification could not be recorded; nothing was deleted.
    Unrecorded(OutboxError),
    /// 503 `origin_unavailable`: the origin could not delete its copy; nothing was deleted.
    Origin(crate::origin::OriginError),
}

impl fmt::Display for FilesError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FilesError::Manage(e) => write!(f, "{e}"),
            FilesError::BadQuery(why) => f.write_str(why),
            FilesError::BadPath(e) => write!(f, "{e}"),
            FilesError::NotFound => f.write_str("no such file"),
            FilesError::Storage(e) => write!(f, "storage: {e}"),
            FilesError::Unrecorded(e) => write!(f, "outbox: {e}"),
            FilesError::Origin(e) => write!(f, "origin: {e}"),
        }
    }
}

impl std::error::Error for FilesError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            FilesError::Manage(e) => Some(e),
            FilesError::Storage(e) => Some(e),
            FilesError::Unrecorded(e) => Some(e),
            FilesError::Origin(e) => Some(e),
            _ => None,
        }
    }
}

impl From<ManageError> for FilesError {
    fn from(e: ManageError) -> Self {
        FilesError::Manage(e)
    }
}

/// `GET /upload/files/{appid}?prefix=&after=&limit=`.
pub async fn list(ex: &mut Exchange<'_>, app: &App) -> Response {
    match listing(ex, app).await {
        Ok(body) => Response::json(200, body),
        Err(e) => respond(ex.access(), &e),
    }
}

/// One listed file, as the contract names its fields.
#[derive(Serialize)]
struct Listed {
    path: String,
    size: u64,
    content_type: String,
    etag: String,
    modified: String,
}

#[derive(Serialize)]
struct Page {
    files: Vec<Listed>,
    next: Option<String>,
}

async fn listing(ex: &mut Exchange<'_>, app: &App) -> Result<String, FilesError> {
    let appid = ex
        .head()
        .path_only()
        .strip_prefix(PREFIX.as_bytes())
        .and_then(|a| std::str::from_utf8(a).ok())
        .filter(|a| crate::registry::valid_appid(a))
        .ok_or(FilesError::BadPath(path::PathError::BadAppid))?
        .to_owned();
    ex.access().appid = Some(appid.clone());
    let query = query_of(ex.head().path())?;
    authenticate(ex, &app.registry, &appid)?;
    let page = app
        .store
        .list_page(&appid, &query)
        .await
        .map_err(FilesError::Storage)?;
    let next = match page.more {
        true => page.objects.last().map(|(p, _)| p.clone()),
        false => None,
    };
    let files = page
        .objects
        .into_iter()
        .map(|(path, meta)| listed(path, meta))
        .collect();
    serde_json::to_string(&Page { files, next })
        .map_err(|e| FilesError::Storage(io::Error::other(e)))
}

/// The same `Content-Type`, `ETag` and `Last-Modified` a download of the file answers with.
fn listed(path: String, meta: ObjectMeta) -> Listed {
    let validators = Validators::new(meta.size, meta.modified);
    let content_type = meta.content_type.unwrap_or_else(|| {
        let filename = path.rsplit('/').next().unwrap_or(&path);
        mime::content_type(filename).to_owned()
    });
    Listed {
        etag: validators.etag().to_owned(),
        modified: validators.last_modified().to_owned(),
        size: meta.size,
        content_type,
        path,
    }
}

/// The listing's parameters from the request-target's query (each percent-decoded; the first
/// of a repeated one counts; others are ignored).
pub fn query_of(target: &[u8]) -> Result<ListQuery, FilesError> {
    let mut q = ListQuery {
        limit: DEFAULT_LIMIT,
        ..ListQuery::default()
    };
    let Some(at) = memchr::memchr(b'?', target) else {
        return Ok(q);
    };
    let (mut prefix, mut after, mut limit) = (None, None, None);
    for (k, v) in url::form_urlencoded::parse(&target[at + 1..]) {
        if v.contains('\u{FFFD}') {
            return Err(FilesError::BadQuery("a query parameter is not UTF-8"));
        }
        let slot = match &*k {
            "prefix" => &mut prefix,
            "after" => &mut after,
            "limit" => &mut limit,
            _ => continue,
        };
        if slot.is_none() {
            *slot = Some(v.into_owned());
        }
    }
    if let Some(limit) = limit {
        q.limit = match limit.parse::<usize>() {
            Ok(n) if (1..=MAX_LIMIT).contains(&n) => n,
            _ => {
                return Err(FilesError::BadQuery(
                    "limit must be a number from 1 to 1000",
                ))
            }
        };
    }
    q.prefix = prefix.unwrap_or_default();
    q.after = after.filter(|a| !a.is_empty());
    Ok(q)
}

/// `DELETE /{appid}/{path}`: 204, or 404 when there is no file.
pub async fn delete(ex: &mut Exchange<'_>, app: &App) -> Response {
    match remove(ex, app).await {
        Ok(()) => Response::new(204),
        Err(e) => respond(ex.access(), &e),
    }
}

async fn remove(ex: &mut Exchange<'_>, app: &App) -> Result<(), FilesError> {
    let target = path::parse(ex.head().path_only()).map_err(FilesError::BadPath)?;
    ex.access().appid = Some(target.appid.clone());
    let (_, record) = authenticate(ex, &app.registry, &target.appid)?;
    let mut head = app.store.head(&target).await;
    // Many nodes: a file this node never cached is the origin's to describe.
    if let (Ok(None), Some(origin)) = (&head, app.origin()) {
        head = Ok(origin.head(&target).await.map_err(FilesError::Origin)?);
    }
    let meta = match head {
        Ok(Some(meta)) => meta,
        Ok(None) => return Err(FilesError::NotFound),
        Err(e) => return Err(FilesError::Storage(e)),
    };
    let note = match &record.callback_url_post {
        Some(url) => Some(record_deleted(app, &target, &meta, url).await?),
        None => None,
    };
    // The origin's copy first: while it is there another node could serve it again.
    if let Some(origin) = app.origin() {
        if let Err(e) = origin.delete(&target).await {
            if let Some(id) = &note {
                let _ = app.registry.outbox().discard(id);
            }
            return Err(FilesError::Origin(e));
        }
    }
    let removed = app.store.delete(&target).await;
    // With an origin, its copy is what was deleted; the local one was only a cache.
    let gone = match &removed {
        Ok(true) => true,
        Ok(false) => app.origin().is_some(),
        Err(_) => false,
    };
    let outbox = app.registry.outbox();
    if let Some(id) = &note {
        if gone {
            // Due now: the file is gone. Not flushed: lost in a crash, it waits out the hold.
            let _ = outbox.reschedule(id, 0, crate::clock::unix_ms(), None);
        } else {
            let _ = outbox.discard(id);
        }
    }
    match removed {
        _ if gone => {
            if removed.is_ok_and(|local| local) {
                app.quotas.removed(&target.appid, meta.size);
            }
            crate::metrics::file_deleted();
            tracing::info!(appid = %target.appid, path = %target.rel, size = meta.size, "file deleted");
            Ok(())
        }
        // Something else at the path (a directory), or deleted by a concurrent request.
        Ok(_) => Err(FilesError::NotFound),
        Err(e) => Err(FilesError::Storage(e)),
    }
}

/// Records the `deleted` post-callback of `target`, held back by [`HOLD_MS`], and flushes it;
/// its event id.
async fn record_deleted(
    app: &App,
    target: &Target,
    meta: &ObjectMeta,
    url: &str,
) -> Result<String, FilesError> {
    let id = crate::upload::new_upload_id();
    let content_type = meta
        .content_type
        .clone()
        .unwrap_or_else(|| mime::content_type(target.filename()).to_owned());
    let info = SecondInfo {
        event: Event::Deleted,
        appid: target.appid.clone(),
        filename: target.filename().to_owned(),
        path: target.rel.clone(),
        size: meta.size,
        content_type,
        // No upload: the deletion's own id (the event id without its `evt_del_`).
        upload_id: id.clone(),
        success: SuccessTrue,
        url: format!(
            "{}/{}/{}",
            app.public_base(),
            target.appid,
            path::encode_rel(&target.rel)
        ),
        sha256: None,
        metadata: None,
        node_id: Some(app.node_id.clone()),
    };
    let now = crate::clock::unix_ms();
    let entry = OutboxEntry {
        event_id: format!("evt_del_{id}"),
        appid: target.appid.clone(),
        url: url.to_owned(),
        body: serde_json::to_vec(&info).map_err(|e| FilesError::Storage(io::Error::other(e)))?,
        attempts: 0,
        next_attempt_at_ms: now + HOLD_MS,
        created_at_ms: now,
        last_error: None,
        // The registered URL, checked when the app registered it.
        guarded: false,
        // No file to wait for: a deletion is announced whether or not a file is there later.
        file: None,
    };
    app.registry
        .outbox()
        .enqueue_async(&entry)
        .await
        .map_err(FilesError::Unrecorded)?;
    Ok(entry.event_id)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn listing_parameters_default_decode_and_bound_the_limit() {
        let q = query_of(b"/upload/files/app1").unwrap();
        assert_eq!(
            q,
            ListQuery {
                prefix: String::new(),
                after: None,
                limit: 100
            }
        );
        let q = query_of(b"/upload/files/app1?prefix=a%20b/&after=a%20b/c&limit=1000&x=1").unwrap();
        assert_eq!(q.prefix, "a b/");
        assert_eq!(q.after.as_deref(), Some("a b/c"));
        assert_eq!(q.limit, 1000);
        assert_eq!(query_of(b"/x?after=&limit=1").unwrap().after, None);
        for bad in ["limit=1001", "limit=0", "limit=-1", "limit=ten", "limit="] {
            let target = format!("/upload/files/app1?{bad}");
            assert!(
                matches!(query_of(target.as_bytes()), Err(FilesError::BadQuery(_))),
                "{bad}"
            );
        }
        assert!(query_of(b"/x?prefix=%ff").is_err());
    }
}
