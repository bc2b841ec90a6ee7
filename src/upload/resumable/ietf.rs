//! IETF resumable uploads (draft-ietf-httpbis-resumable-upload, interop versions 5 to 8:
//! `docs/resumable.md`): a `POST`/`PUT` to `/{appid}/{path}` carrying `Upload-Complete`
//! creates the upload, whose resource is `/upload/resumable/{id}`.
//!
//! | request | answer | here |
//! |---|---|---|
//! | `POST`/`PUT /{appid}/{path}` + `Upload-Complete` | `104` (when the client's interop version is spoken), then `201` (the whole upload's answer when complete, else `Location` + `Upload-Offset`) | [`create`] |
//! | `HEAD /upload/resumable/{id}` | `204`: `Upload-Offset`, `Upload-Complete: ?0`, `Upload-Length` when known, `Upload-Limit` | [`offset`] |
//! | `PATCH /upload/resumable/{id}` | `204` + `Upload-Offset`; at the end the whole upload's `201` | [`append_to`] |
//! | `DELETE /upload/resumable/{id}` | `204` (cancellation) | [`cancel`] |
//!
//! Each append is the patent's steps again: the pre-callback with `offset` and `length` before
//! any body byte is read, as for tus (`mod.rs`).

use crate::app::App;
use crate::clock;
use crate::http::{self, InteropVersion, Method, RequestHead, Response, UploadLimit};
use crate::metrics;
use crate::registry::{ResumableRecord, ResumableStore};
use crate::server::{Exchange, Timings};
use crate::storage::{mime, path};
use crate::upload::condition::{self, Refusal};
use crate::upload::context::Protocol;
use crate::upload::shape::valid_content_type;
use crate::upload::{phases, reply, FlowError};

use super::{append, registration, request_of, Appended, Ending, How, ResumableError};

/// The path prefix of upload resources.
pub const PREFIX: &str = "/upload/resumable/";

/// True when a `POST`/`PUT` to a file's address asks for a resumable upload.
pub fn is_creation(head: &RequestHead) -> bool {
    matches!(head.method(), Method::Post | Method::Put) && head.value("upload-complete").is_some()
}

/// Handles `/upload/resumable/{id}`.
pub async fn handle(ex: &mut Exchange<'_>, app: &App) -> Response {
    let mut timings = Timings::default();
    let id = std::str::from_utf8(ex.head().path_only())
        .ok()
        .and_then(|p| p.strip_prefix(PREFIX))
        .filter(|id| !id.is_empty() && !id.contains('/'))
        .map(str::to_owned);
    let Some(id) = id else {
        let e = FlowError::from(ResumableError::NotFound);
        return reply::finish(ex, timings, Err::<Response, _>(e), |r| r);
    };
    ex.access().upload_id = Some(id.clone());
    let result = match ex.head().method() {
        Method::Head => offset(ex, app, &id),
        Method::Patch => {
            let _in_flight = metrics::InFlight::enter();
            append_to(ex, app, &id, &mut timings).await
        }
        Method::Delete => cancel(ex, app, &id).await,
        _ => Ok(Response::json(
            405,
            r#"{"success":"false","error":"method_not_allowed","message":"an upload resource takes HEAD, PATCH and DELETE"}"#,
        )
        .header("Allow", "HEAD, PATCH, DELETE")),
    };
    let resp = reply::finish(ex, timings, result, |r| r);
    mismatch_fields(resp)
}

/// A wrong offset's answer also says the upload is not complete (draft §4.4).
fn mismatch_fields(resp: Response) -> Response {
    match resp.status {
        409 if resp.headers.iter().any(|(n, _)| *n == "Upload-Offset") => {
            resp.header("Upload-Complete", http::format_sf_boolean(false))
        }
        _ => resp,
    }
}

/// The interop version of the request: `None` without the field; a value the node does not
/// speak refuses the request (upload resources only; a creation just gets no `104`).
fn version_of(head: &RequestHead) -> Result<Option<InteropVersion>, ResumableError> {
    head.value("upload-draft-interop-version")
        .map(InteropVersion::parse)
        .transpose()
        .map_err(ResumableError::Protocol)
}

/// `Upload-Complete`, required on creations and appends.
fn complete_of(head: &RequestHead) -> Result<bool, ResumableError> {
    let value = head
        .value("upload-complete")
        .ok_or(ResumableError::Missing {
            field: "upload-complete",
            why: "say ?1 when this request carries the upload's last byte, else ?0",
        })?;
    http::parse_upload_complete(value).map_err(ResumableError::Protocol)
}

/// `Upload-Length`, if present.
fn length_of(head: &RequestHead) -> Result<Option<u64>, ResumableError> {
    head.value("upload-length")
        .map(http::parse_ietf_upload_length)
        .transpose()
        .map_err(ResumableError::Protocol)
}

/// The length an upload must end at, from `Upload-Length` and, on a request that completes
/// it, `offset` plus the body's `Content-Length`; 400 when they disagree.
fn end_of(
    head: &RequestHead,
    offset: u64,
    complete: bool,
    known: Option<u64>,
) -> Result<Option<u64>, ResumableError> {
    let declared = length_of(head)?;
    let by_body = head
        .info()
        .content_length()
        .filter(|_| complete)
        .map(|n| offset.saturating_add(n));
    let mut end = known;
    for n in [declared, by_body].into_iter().flatten() {
        match end {
            Some(e) if e != n => {
                return Err(ResumableError::LengthConflict(format!(
                    "the upload's length is {e}, this request says {n}"
                )))
            }
            _ => end = Some(n),
        }
    }
    if let Some(e) = end {
        if e < offset {
            return Err(ResumableError::LengthConflict(format!(
                "{e} is less than the {offset} bytes received"
            )));
        }
    }
    Ok(end)
}

/// What the node announces in `Upload-Limit`.
fn limit_fields(app: &App, rec: &ResumableRecord, version: InteropVersion) -> Option<String> {
    let max_age = rec.expires_ms.saturating_sub(clock::unix_ms()) / 1000;
    UploadLimit {
        max_size: Some(rec.limit),
        max_age: Some(max_age.min(app.config.resumable_expiry_s)),
        ..UploadLimit::default()
    }
    .format(version)
}

/// Creation: the receive conditions and the app's decision on the first file info, the upload
/// resource announced in a `104`, then this request's body as the first append.
pub async fn create(ex: &mut Exchange<'_>, app: &App) -> Response {
    let mut timings = Timings::default();
    let result = create_upload(ex, app, &mut timings).await;
    reply::finish(ex, timings, result, |r| r)
}

async fn create_upload(
    ex: &mut Exchange<'_>,
    app: &App,
    t: &mut Timings,
) -> Result<Response, FlowError> {
    // 202/304: the request's fields, the app, the path, the declared length.
    let spoken = version_of(ex.head()).ok().flatten();
    let complete = complete_of(ex.head())?;
    let length = end_of(ex.head(), 0, complete, None)?;
    let target = path::parse(ex.head().path_only()).map_err(Refusal::BadPath)?;
    let appid = target.appid.clone();
    ex.access().appid = Some(appid.clone());
    let record = registration(app, &appid)?;
    let content_type = ex
        .head()
        .value("content-type")
        .and_then(|v| std::str::from_utf8(v).ok())
        .filter(|v| !v.starts_with(http::PARTIAL_UPLOAD))
        .and_then(valid_content_type)
        .unwrap_or_else(|| mime::content_type(target.filename()).to_owned());
    let limit = condition::limit_of(Some(&record), &app.config);
    if let Some(n) = length.filter(|&n| n > limit) {
        return Err(Refusal::TooLarge { size: n, limit }.into());
    }
    let now = clock::unix_ms();
    let mut rec = ResumableRecord {
        id: phases::new_upload_id(),
        appid: appid.clone(),
        path: target.rel.clone(),
        protocol: Protocol::Resumable.as_str().to_owned(),
        length,
        offset: 0,
        content_type,
        upload_metadata: None,
        metadata: None,
        limit,
        created_ms: now,
        expires_ms: super::expiry_from(app, now),
        pre_valid_until_ms: 0,
        partial: false,
        interop: spoken.map(|v| u32::from(v.number())),
    };
    ex.access().upload_id = Some(rec.id.clone());
    let mut req = super::creation_request(ex, &record, &rec, Protocol::Resumable)?;
    phases::not_stored_yet(app, &req.target).await?;
    phases::admit(app, Some(&record), &mut req, rec.length, true)?;

    // 203/305: the first file info to the app.
    super::ask_at_creation(ex, app, &mut req, &mut rec, t).await?;

    // 204/306: the upload exists from here on; a client that speaks this version learns
    // where before it sends a byte.
    super::begin(app, &rec).await?;
    metrics::resumable_created();
    let location = format!("{}{PREFIX}{}", app.public_base(), rec.id);
    if let Some(v) = spoken {
        let limit = UploadLimit {
            max_size: Some(rec.limit),
            max_age: Some(app.config.resumable_expiry_s),
            ..UploadLimit::default()
        };
        let fields = v.resumption_supported_fields(&location, &limit);
        ex.informational(http::UPLOAD_RESUMPTION_SUPPORTED, &fields)
            .await
            .map_err(FlowError::Body)?;
    }
    let done = append(
        ex,
        app,
        &mut rec,
        req,
        How {
            checksum: None,
            asked: true,
            ending: Ending::Said(complete),
        },
        t,
    )
    .await?;
    Ok(answer(done, app, &rec, 201, spoken).header("Location", location))
}

/// The answer to a request that appended: the whole upload's when it completed the upload,
/// else its progress with `status`.
fn answer(
    done: Appended,
    app: &App,
    rec: &ResumableRecord,
    status: u16,
    v: Option<InteropVersion>,
) -> Response {
    match done {
        Appended::Complete(resp) => (*resp)
            .header("Upload-Offset", rec.offset.to_string())
            .header("Upload-Complete", http::format_sf_boolean(true)),
        Appended::Partial => progress(app, rec, status, v),
    }
}

/// An upload's progress: `Upload-Offset`, `Upload-Complete: ?0`, `Upload-Length` when known,
/// `Upload-Limit` in the client's version.
fn progress(app: &App, rec: &ResumableRecord, status: u16, v: Option<InteropVersion>) -> Response {
    let mut resp = Response::new(status)
        .header("Upload-Offset", rec.offset.to_string())
        .header("Upload-Complete", http::format_sf_boolean(false));
    if let Some(n) = rec.length {
        resp = resp.header("Upload-Length", n.to_string());
    }
    let v = v
        .or_else(|| {
            rec.interop
                .and_then(|n| InteropVersion::of_number(n.into()))
        })
        .unwrap_or(InteropVersion::LATEST);
    if let Some(limit) = limit_fields(app, rec, v) {
        resp = resp.header("Upload-Limit", limit);
    }
    resp
}

/// Offset retrieval (`HEAD`).
fn offset(ex: &Exchange<'_>, app: &App, id: &str) -> Result<Response, FlowError> {
    let v = version_of(ex.head())?;
    let rec = resumable_record(app, id)?;
    Ok(progress(app, &rec, 204, v).header("Cache-Control", "no-store"))
}

/// The upload `id`, whichever app it belongs to (the resource's path names no app).
fn resumable_record(app: &App, id: &str) -> Result<ResumableRecord, FlowError> {
    let rec = app
        .registry
        .resumables()
        .get(id)
        .map_err(FlowError::Registry)?
        .filter(|r| r.protocol == Protocol::Resumable.as_str())
        .ok_or(ResumableError::NotFound)?;
    super::unexpired(rec)
}

/// An append (`PATCH`): at the upload's offset, of the dialect's media type.
async fn append_to(
    ex: &mut Exchange<'_>,
    app: &App,
    id: &str,
    t: &mut Timings,
) -> Result<Response, FlowError> {
    let v = version_of(ex.head())?;
    let mut rec = resumable_record(app, id)?;
    ex.access().appid = Some(rec.appid.clone());
    let dialect = v.unwrap_or(InteropVersion::LATEST);
    dialect
        .check_append_content_type(ex.head().value("content-type"))
        .map_err(ResumableError::Protocol)?;
    let offset = ex
        .head()
        .value("upload-offset")
        .ok_or(ResumableError::Missing {
            field: "upload-offset",
            why: "an append needs Upload-Offset",
        })
        .and_then(|o| http::parse_ietf_upload_offset(o).map_err(ResumableError::Protocol))?;
    http::check_offset(rec.offset, offset).map_err(ResumableError::Protocol)?;
    let complete = complete_of(ex.head())?;
    rec.length = end_of(ex.head(), rec.offset, complete, rec.length)?;
    if let Some(n) = rec.length.filter(|&n| n > rec.limit) {
        return Err(Refusal::TooLarge {
            size: n,
            limit: rec.limit,
        }
        .into());
    }
    let record = registration(app, &rec.appid)?;
    let mut req = request_of(ex, &record, &rec, Protocol::Resumable)?;
    let length = ex.head().info().content_length();
    phases::admit(app, Some(&record), &mut req, length, false)?;
    let done = append(
        ex,
        app,
        &mut rec,
        req,
        How {
            checksum: None,
            asked: false,
            ending: Ending::Said(complete),
        },
        t,
    )
    .await?;
    Ok(answer(done, app, &rec, 204, v))
}

/// Cancellation (`DELETE`): the upload and its bytes go.
async fn cancel(ex: &Exchange<'_>, app: &App, id: &str) -> Result<Response, FlowError> {
    version_of(ex.head())?;
    let rec = resumable_record(app, id)?;
    if !super::terminate(app, &rec.id).await? {
        return Err(ResumableError::NotFound.into());
    }
    Ok(Response::new(204))
}
