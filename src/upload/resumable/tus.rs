//! tus 1.0 (<https://tus.io/protocols/resumable-upload>) at `/upload/tus/{appid}/` (creation)
//! and `/upload/tus/{appid}/{id}` (an upload), with the extensions `creation`,
//! `creation-with-upload`, `creation-defer-length`, `termination`, `checksum`, `expiration`
//! and `concatenation` (`concat.rs`).
//!
//! | request | answer | here |
//! |---|---|---|
//! | `OPTIONS` (no `Origin`) | 204: `Tus-Version`, `Tus-Extension`, `Tus-Max-Size`, `Tus-Checksum-Algorithm` | [`discovery`] |
//! | `POST …/{appid}/` | 201 + `Location` (creation; with a body, its first append) | [`create`] |
//! | `HEAD …/{id}` | 200: `Upload-Offset`, `Upload-Length` or `Upload-Defer-Length`, `Upload-Metadata` | [`info`] |
//! | `PATCH …/{id}` | 204 + `Upload-Offset` (an append; at the length, the file is stored) | [`patch`] |
//! | `DELETE …/{id}` | 204 (termination) | [`remove`] |
//!
//! `POST` with `X-HTTP-Method-Override` is the method it names. Every answer carries
//! `Tus-Resumable: 1.0.0`; every refusal the error model's JSON with its own status
//! ([`ResumableError`]: 412, 409, 415, 460, 404, 410, 413).

use crate::app::App;
use crate::clock;
use crate::http::{Method, Response};
use crate::metrics;
use crate::registry::ResumableRecord;
use crate::server::{Exchange, Timings};
use crate::storage::{mime, path};
use crate::upload::condition::{self, Refusal};
use crate::upload::context::Protocol;
use crate::upload::shape::valid_content_type;
use crate::upload::{phases, reply, FlowError};

use super::headers::{self, Length};
use super::{
    append, concat, record_of, registration, request_of, Appended, Ending, How, ResumableError,
};
use crate::http::Concat;

/// The path prefix of tus.
pub const PREFIX: &str = "/upload/tus/";

/// `/upload/tus/{appid}/[{id}]` → (appid, id); `None` for any other shape.
pub fn split(path: &[u8]) -> Option<(&str, Option<&str>)> {
    let rest = std::str::from_utf8(path.strip_prefix(PREFIX.as_bytes())?).ok()?;
    let (appid, id) = rest.split_once('/')?;
    match id {
        "" => Some((appid, None)),
        id if !id.contains('/') => Some((appid, Some(id))),
        _ => None,
    }
}

/// The method a tus request means: `X-HTTP-Method-Override` on a `POST` (for clients behind
/// proxies that pass only GET and POST).
fn method_of(ex: &Exchange<'_>) -> Method {
    let method = ex.head().method();
    match (method, ex.head().value("x-http-method-override")) {
        (Method::Post, Some(m)) => match crate::http::parse_method_override(m) {
            Ok("PATCH") => Method::Patch,
            Ok("DELETE") => Method::Delete,
            Ok("HEAD") => Method::Head,
            _ => Method::Other,
        },
        _ => method,
    }
}

/// Handles every request under [`PREFIX`].
pub async fn handle(ex: &mut Exchange<'_>, app: &App) -> Response {
    let mut timings = Timings::default();
    let Some((appid, id)) = split(ex.head().path_only()) else {
        let e = FlowError::from(ResumableError::NotFound);
        return reply::finish(ex, timings, Err::<Response, _>(e), |r| r);
    };
    let (appid, id) = (appid.to_owned(), id.map(str::to_owned));
    ex.access().appid = Some(appid.clone()).filter(|a| crate::registry::valid_appid(a));
    let method = method_of(ex);
    // Every tus request but `OPTIONS` names the version it speaks (412 otherwise).
    if method != Method::Options {
        if let Err(e) = headers::tus_version(ex.head()) {
            let resp = reply::finish(ex, timings, Err::<Response, _>(FlowError::from(e)), |r| r);
            return resp.header("Tus-Resumable", crate::http::TUS_VERSION);
        }
    }
    let result = match (method, id.as_deref()) {
        (Method::Options, _) => Ok(discovery(app)),
        (Method::Post, None) => {
            let _in_flight = metrics::InFlight::enter();
            create(ex, app, &appid, &mut timings).await
        }
        (Method::Head, Some(id)) => info(app, &appid, id),
        (Method::Patch, Some(id)) => {
            let _in_flight = metrics::InFlight::enter();
            patch(ex, app, &appid, id, &mut timings).await
        }
        (Method::Delete, Some(id)) => remove(ex, app, &appid, id).await,
        (_, None) => Ok(not_allowed("POST, OPTIONS")),
        (_, Some(_)) => Ok(not_allowed("HEAD, PATCH, DELETE, OPTIONS")),
    };
    reply::finish(ex, timings, result, |r| r).header("Tus-Resumable", crate::http::TUS_VERSION)
}

fn not_allowed(allow: &'static str) -> Response {
    Response::json(
        405,
        r#"{"success":"false","error":"method_not_allowed","message":"method not allowed here"}"#,
    )
    .header("Allow", allow)
}

/// `OPTIONS`: what this server speaks.
fn discovery(app: &App) -> Response {
    Response::new(204)
        .header("Tus-Version", crate::http::TUS_VERSION)
        .header("Tus-Extension", crate::http::TUS_EXTENSION)
        .header("Tus-Max-Size", app.config.max_body_bytes.to_string())
        .header(
            "Tus-Checksum-Algorithm",
            crate::http::TUS_CHECKSUM_ALGORITHM,
        )
}

/// Creation: the upload's receive conditions and the app's decision on its first file info,
/// then the partial body and its record; a body with the request is the first append.
async fn create(
    ex: &mut Exchange<'_>,
    app: &App,
    appid: &str,
    t: &mut Timings,
) -> Result<Response, FlowError> {
    // 202/304: the tus fields, the app, the name, the declared length.
    let concat = headers::concat(ex.head())?;
    let with_body = ex.head().info().has_body();
    let length = match &concat {
        Some(Concat::Final(_)) => final_length(ex)?,
        _ => headers::creation_length(ex.head())?,
    };
    let meta = headers::metadata(ex.head())?;
    if with_body {
        headers::offset_octet_stream(ex.head())?;
    }
    let checksum = headers::checksum(ex.head())?;
    let record = registration(app, appid)?;
    let partial = concat == Some(Concat::Partial);
    let id = phases::new_upload_id();
    let filename = match headers::text(&meta, "filename")? {
        Some(name) => name,
        // A part has no name of its own: the final upload gives the file's.
        None if partial => id.as_str(),
        None => {
            return Err(ResumableError::Missing {
                field: "upload-metadata",
                why: "a creation needs the filename key",
            }
            .into())
        }
    };
    let rel = headers::text(&meta, "path")?.unwrap_or(filename);
    let target = path::of_text(appid, rel).map_err(Refusal::BadPath)?;
    let parts = match &concat {
        Some(Concat::Final(urls)) => concat::parts_of(app, appid, urls)?,
        _ => Vec::new(),
    };
    let length = match concat {
        Some(Concat::Final(_)) => Length::Known(parts.iter().filter_map(|p| p.length).sum()),
        _ => length,
    };
    let content_type = headers::text(&meta, "filetype")?
        .and_then(valid_content_type)
        .unwrap_or_else(|| mime::content_type(target.filename()).to_owned());
    let limit = condition::limit_of(Some(&record), &app.config);
    if let Length::Known(n) = length {
        if n > limit {
            return Err(Refusal::TooLarge { size: n, limit }.into());
        }
    }
    let now = clock::unix_ms();
    let mut rec = ResumableRecord {
        id,
        appid: appid.to_owned(),
        path: target.rel.clone(),
        protocol: Protocol::Tus.as_str().to_owned(),
        length: match length {
            Length::Known(n) => Some(n),
            Length::Deferred => None,
        },
        offset: 0,
        content_type,
        upload_metadata: ex.head().value("upload-metadata").map(|_| meta.format()),
        metadata: None,
        limit,
        created_ms: now,
        expires_ms: super::expiry_from(app, now),
        pre_valid_until_ms: 0,
        partial,
        interop: None,
    };
    ex.access().upload_id = Some(rec.id.clone());
    let mut req = super::creation_request(ex, &record, &rec, Protocol::Tus)?;
    if !partial {
        phases::not_stored_yet(app, &req.target).await?;
    }
    phases::admit(app, Some(&record), &mut req, rec.length, true)?;
    let location = format!("{}{PREFIX}{appid}/{}", app.public_base(), rec.id);
    if !parts.is_empty() {
        // A final upload: made of its parts and stored now.
        concat::finish(ex, app, &rec, &parts, t).await?;
        return Ok(Response::new(201).header("Location", location));
    }

    // 203/305: the first file info to the app.
    super::ask_at_creation(ex, app, &mut req, &mut rec, t).await?;

    // 204/306: the upload exists from here on.
    super::begin(app, &rec).await?;
    metrics::resumable_created();
    let mut resp = Response::new(201).header("Location", location);
    // The first append: the request's body, or nothing for an empty file (complete at once).
    if with_body || rec.length == Some(0) {
        match append(
            ex,
            app,
            &mut rec,
            req,
            How {
                checksum,
                asked: true,
                ending: Ending::AtLength,
            },
            t,
        )
        .await?
        {
            Appended::Partial | Appended::Complete(_) => {}
        }
        resp = resp.header("Upload-Offset", rec.offset.to_string());
    }
    Ok(resp.header("Upload-Expires", headers::expires(rec.expires_ms)))
}

/// A final upload has no length or body of its own: its parts give them.
fn final_length(ex: &Exchange<'_>) -> Result<Length, FlowError> {
    if ex.head().value("upload-length").is_some() || ex.head().info().has_body() {
        return Err(ResumableError::BadConcat(
            "a final upload's length and bytes are its parts': no Upload-Length, no body",
        )
        .into());
    }
    Ok(Length::Known(0))
}

/// `HEAD`: where the upload stands.
fn info(app: &App, appid: &str, id: &str) -> Result<Response, FlowError> {
    let rec = record_of(app, appid, id)?;
    let mut resp = Response::new(200)
        .header("Upload-Offset", rec.offset.to_string())
        .header("Cache-Control", "no-store")
        .header("Upload-Expires", headers::expires(rec.expires_ms));
    resp = match rec.length {
        Some(n) => resp.header("Upload-Length", n.to_string()),
        None => resp.header("Upload-Defer-Length", "1"),
    };
    if let Some(m) = &rec.upload_metadata {
        resp = resp.header("Upload-Metadata", m.clone());
    }
    if rec.partial {
        resp = resp.header("Upload-Concat", Concat::Partial.format());
    }
    Ok(resp)
}

/// `PATCH`: one append, at the upload's offset.
async fn patch(
    ex: &mut Exchange<'_>,
    app: &App,
    appid: &str,
    id: &str,
    t: &mut Timings,
) -> Result<Response, FlowError> {
    let mut rec = record_of(app, appid, id)?;
    ex.access().upload_id = Some(rec.id.clone());
    headers::offset_octet_stream(ex.head())?;
    let offset = headers::offset(ex.head())?.ok_or(ResumableError::Missing {
        field: "upload-offset",
        why: "an append needs Upload-Offset",
    })?;
    crate::http::check_offset(rec.offset, offset).map_err(ResumableError::Protocol)?;
    if let Some(n) = headers::append_length(ex.head())? {
        match rec.length {
            None if n < rec.offset => {
                return Err(ResumableError::LengthConflict(format!(
                    "{n} is less than the {} bytes received",
                    rec.offset
                ))
                .into())
            }
            None if n > rec.limit => {
                return Err(Refusal::TooLarge {
                    size: n,
                    limit: rec.limit,
                }
                .into())
            }
            None => rec.length = Some(n),
            Some(known) if known != n => {
                return Err(ResumableError::LengthConflict(format!(
                    "the upload's length is {known} already"
                ))
                .into())
            }
            Some(_) => {}
        }
    }
    if rec.is_complete() {
        return Err(ResumableError::Complete.into());
    }
    let checksum = headers::checksum(ex.head())?;
    let record = registration(app, appid)?;
    let mut req = request_of(ex, &record, &rec, Protocol::Tus)?;
    let length = ex.head().info().content_length();
    phases::admit(app, Some(&record), &mut req, length, false)?;
    append(
        ex,
        app,
        &mut rec,
        req,
        How {
            checksum,
            asked: false,
            ending: Ending::AtLength,
        },
        t,
    )
    .await?;
    Ok(Response::new(204)
        .header("Upload-Offset", rec.offset.to_string())
        .header("Upload-Expires", headers::expires(rec.expires_ms)))
}

/// `DELETE`: termination; the partial body and its record go.
async fn remove(
    ex: &mut Exchange<'_>,
    app: &App,
    appid: &str,
    id: &str,
) -> Result<Response, FlowError> {
    let rec = record_of(app, appid, id)?;
    ex.access().upload_id = Some(rec.id.clone());
    if !super::terminate(app, &rec.id).await? {
        return Err(ResumableError::NotFound.into());
    }
    Ok(Response::new(204))
}
