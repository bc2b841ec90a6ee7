//! `POST /upload/form/{appid}`: a browser's `multipart/form-data` upload (contract "Browser
//! uploads"), the same patent steps as a raw upload ([`super::flow`]) with the same phases; what
//! differs is where the upload's name and fields come from (the form's text parts, read before
//! the pre-callback) and that the file part's bytes are picked out of the body by a demux.
//!
//! | step | patent | here |
//! |---|---|---|
//! | receive conditions on the head (appid, type, size) | 202 / 304 | [`head_conditions`] |
//! | the text fields, bounded, up to the file part's headers | — | [`read_fields`] |
//! | the upload named from `key`; the signed token checked | 202 / 304 | [`form_request`] |
//! | first file info → pre-upload callback | 203 / 305 | `phases::pre_callback` |
//! | the file part → sink, through the registered buffers | 205 / 307 | `phases::receive_form_file` |
//! | commit, post-callback, completion (201, or 303) | 205–206 / 307–308 | `phases::commit`, `phases::post_callback` |
//!
//! Browsers never send `Expect`; a client that does (curl, for bodies over 1 MiB) gets its
//! `100 Continue` after the head's conditions, since the fields the app decides on are in the
//! body. No byte of the file is stored before the app accepted.

mod fields;

pub use fields::{FieldReader, FileDemux, FormFields, FILE_FIELD, MAX_FIELDS, MAX_FIELD_BYTES};

use bytes::Bytes;
use serde_json::{Map, Value};

use crate::app::App;
use crate::http::{PartHead, Response};
use crate::metrics;
use crate::registry::AppRecord;
use crate::server::{Exchange, Step, Timings};
use crate::storage::{mime, path};

use super::condition::{self, Refusal};
use super::context::{self, Protocol};
use super::model::{Notified, Stored, UploadRequest};
use super::phases;
use super::reply::{self, FlowError};
use super::shape::valid_content_type;
use super::token;

/// The path prefix of form uploads.
pub const PREFIX: &str = "/upload/form/";

/// Handles `POST /upload/form/{appid}`.
pub async fn handle_form(ex: &mut Exchange<'_>, app: &App) -> Response {
    let _in_flight = metrics::InFlight::enter();
    let mut timings = Timings::default();
    let result = run(ex, app, &mut timings).await;
    reply::finish(
        ex,
        timings,
        result,
        |(req, stored, notified, redirect)| match redirect {
            Some(to) => see_other(&to, &req, &stored),
            None => reply::created(&req, &stored, notified),
        },
    )
}

async fn run(
    ex: &mut Exchange<'_>,
    app: &App,
    t: &mut Timings,
) -> Result<(UploadRequest, Stored, Notified, Option<String>), FlowError> {
    // 202/304 on the head: the app, the form's boundary, the declared size.
    let (record, boundary, limit) = head_conditions(ex, app)?;

    // The fields the app decides on come first in the body.
    ex.accept_body().await.map_err(FlowError::Body)?;
    let (fields, file, demux, leftover) = read_fields(ex, &boundary).await?;

    // The upload, named by `key` (and checked against a signed token, when one came).
    let mut req = form_request(ex, &record, &fields, &file, limit)?;
    ex.access().upload_id = Some(req.upload_id.clone());
    phases::not_stored_yet(app, &req.target).await?;
    // The file part's size is not known before it ends: it may take the room left.
    phases::admit(app, Some(&record), &mut req, None, true)?;

    // 203/305: the first file info to the pre-upload callback, with the form's fields.
    t.timed(Step::PreCallback, phases::pre_callback(app, &mut req))
        .await?;
    phases::not_stored_yet(app, &req.target).await?;

    // 205/307: the file part into its sink; the rest of the form checked to its end.
    let mut sink = phases::open_sink(app, &req).await?;
    if let Some(bound) = ex.head().info().content_length() {
        sink = phases::reserve_bound(sink, bound).await?;
    }
    let body = phases::receive_form_file(ex, app, &req, sink, demux, leftover);
    let (sink, sha256) = t.timed(Step::Body, body).await?;
    let commit = phases::commit(app, &req, sink, sha256);
    let (stored, note) = t.timed(Step::Commit, commit).await?;
    let notified = t
        .timed(Step::PostCallback, phases::post_callback(app, &req, note))
        .await;

    // 206/308: 201 with the completion JSON, or 303 to the app's page.
    let redirect = redirect_to(&record, fields.success_action_redirect.as_deref());
    Ok((req, stored, notified, redirect))
}

/// The receive conditions a form's head can answer: a registered app (forms carry no callback
/// headers: a browser would need a preflight for them), a `multipart/form-data` type with a
/// boundary, a declared size within the limit. Returns the record, the boundary and the limit.
fn head_conditions(
    ex: &mut Exchange<'_>,
    app: &App,
) -> Result<(AppRecord, Vec<u8>, u64), FlowError> {
    let appid = appid_of(ex.head().path_only()).to_owned();
    let appid = appid.as_str();
    ex.access().appid = Some(appid.to_owned()).filter(|a| crate::registry::valid_appid(a));
    if !crate::registry::valid_appid(appid) {
        return Err(Refusal::BadAppid("appid must be 1-64 of A-Z a-z 0-9 _ -").into());
    }
    let record = app
        .registry
        .get(appid)
        .map_err(FlowError::Registry)?
        .ok_or(Refusal::UnknownAppid(
            "the appid is not registered (form uploads need a registered app)",
        ))?;
    let boundary = ex
        .head()
        .value("content-type")
        .ok_or(crate::http::MultipartError::NotMultipart)
        .and_then(crate::http::boundary_of)
        .map_err(|e| FlowError::BadForm(e.to_string()))?;
    let limit = condition::limit_of(Some(&record), &app.config);
    if let Some(size) = ex.head().info().content_length().filter(|&n| n > limit) {
        return Err(Refusal::TooLarge { size, limit }.into());
    }
    Ok((record, boundary, limit))
}

/// `/upload/form/{appid}` → the appid (empty when the path has none).
fn appid_of(path: &[u8]) -> &str {
    let rest = path.strip_prefix(PREFIX.as_bytes()).unwrap_or(b"");
    std::str::from_utf8(rest).unwrap_or("")
}

/// Reads the body up to the file part's headers: the text fields, and the body bytes after
/// those headers (the file's first bytes, handed to the demux first).
async fn read_fields(
    ex: &mut Exchange<'_>,
    boundary: &[u8],
) -> Result<(FormFields, PartHead, FileDemux, Bytes), FlowError> {
    let mut reader = FieldReader::new(boundary);
    loop {
        let Some(piece) = ex.next_chunk().await.map_err(FlowError::Body)? else {
            return Err(FlowError::BadForm(reader.ended()));
        };
        if let Some(rest) = reader.read(&piece).map_err(FlowError::BadForm)? {
            let (fields, head, demux) = reader.into_file().expect("the file part began");
            return Ok((fields, head, demux, rest));
        }
    }
}

/// The upload a form describes: stored at `key` (`${filename}` replaced by the file part's
/// name; the file name alone without a `key`), typed by the part's `Content-Type` (else the
/// extension's), with the text fields as `request.fields` and metadata.
fn form_request(
    ex: &Exchange<'_>,
    record: &AppRecord,
    fields: &FormFields,
    file: &PartHead,
    limit: u64,
) -> Result<UploadRequest, FlowError> {
    let filename = file.filename.clone().unwrap_or_default();
    let key = fields.key.as_deref().unwrap_or("${filename}");
    if key.contains("${filename}") && filename.is_empty() {
        return Err(FlowError::BadForm(
            "the file part has no file name for ${filename}".into(),
        ));
    }
    let key = key.replace("${filename}", &filename);
    let target = path::of_text(&record.appid, &key).map_err(Refusal::BadPath)?;
    let content_type = file
        .content_type
        .as_deref()
        .and_then(valid_content_type)
        .unwrap_or_else(|| mime::content_type(target.filename()).to_owned());
    let mut request = context::request_info(ex.head(), record.forwarded_headers(), Protocol::Form);
    let mut shown = fields.others.clone();
    shown.insert("key".into(), key);
    request.fields = Some(shown);
    let metadata = (!fields.others.is_empty()).then(|| {
        Value::Object(
            fields
                .others
                .iter()
                .map(|(k, v)| (k.clone(), Value::String(v.clone())))
                .collect::<Map<_, _>>(),
        )
    });
    let policy = match &fields.token {
        Some(t) => Some(token::verify(t, Some(record))?),
        None => None,
    };
    let (pre, post) = condition::registered_callbacks(record);
    if pre.is_none() && policy.is_none() {
        return Err(Refusal::UnknownAppid(
            "no pre-upload callback is registered for this appid (and the form has no token)",
        )
        .into());
    }
    let mut req = UploadRequest {
        secrets: record.secrets_for_signing(crate::clock::unix_secs()),
        target,
        size: None,
        limit,
        content_type,
        upload_id: super::phases::new_upload_id(),
        client_ip: crate::upload::context::client_ip_of(ex),
        pre,
        post,
        request,
        metadata,
        append: None,
        valid_for_s: None,
        quota: None,
    };
    if let Some(policy) = &policy {
        token::apply(policy, &mut req)?;
    }
    Ok(req)
}

/// `success_action_redirect`, when its origin is one the app lists in `cors_origins` (so a
/// form cannot be made to bounce users to any site).
fn redirect_to(record: &AppRecord, to: Option<&str>) -> Option<String> {
    let url = url::Url::parse(to?).ok()?;
    let origin = url.origin().ascii_serialization();
    record
        .cors_origins
        .iter()
        .any(|o| o != "*" && o.eq_ignore_ascii_case(&origin))
        .then(|| url.to_string())
}

/// `303 See Other` to the app's page, with the upload's path, URL and id in the query.
fn see_other(to: &str, req: &UploadRequest, stored: &Stored) -> Response {
    let mut url = url::Url::parse(to).expect("checked by redirect_to");
    url.query_pairs_mut()
        .append_pair("path", &req.target.rel)
        .append_pair("url", &stored.url)
        .append_pair("upload_id", &req.upload_id);
    Response::new(303).header("Location", url.to_string())
}
